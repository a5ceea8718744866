"""Explanations in a trader's words: what each feature value means, with its real duration.

`describe(feature, value, scale)` -> e.g. "5-min return −7.1σ of its current volatility",
"1-min volume 9× its usual", "1-min flow 85% taker buys". Windows are grid steps times
`scale` seconds, so on 1-minute bars (scale 15 s) z_300 reads as a 75-min return.
"""

from __future__ import annotations

import math

from blink.features import RECENT, WINDOWS


def duration(seconds: float) -> str:
    """A window as a trader says it: 1-s, 30-s, 5-min, 2-h, 1.5-d."""
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if seconds >= size and (seconds % size == 0 or seconds >= 2 * size):
            return f"{seconds / size:.3g}-{unit}"
    return f"{seconds:.3g}-s"


def _signed(x: float, digits: int = 1) -> str:
    text = f"{abs(x):.{digits}f}"
    return ("−" if x < 0 else "+") + text


def _times(log_ratio: float) -> str:
    x = math.exp(min(log_ratio, 700.0))
    return f"{x:.1f}×" if x < 10 else f"{x:.0f}×"


def describe(feature: str, value: float | None, scale: float = 1.0) -> str:
    if feature == "forest":
        return "unusual combination of features (isolation forest)"
    if value is None or not math.isfinite(value):
        return f"{feature} not available"
    span = duration(WINDOWS.get(feature, 1.0) * scale)
    if feature.startswith("z_"):
        return f"{span} return {_signed(value)}σ of its current volatility"
    if feature == "volratio_60":
        return f"{span} volatility {_times(value)} its usual"
    if feature == "volume_surprise_60":
        return f"{span} volume {_times(value)} its usual"
    if feature == "count_surprise_60":
        before = duration(RECENT * scale).replace("-", " ")  # "the 5 min before"
        return f"{span} trade count {_times(value)} the {before} before"
    if feature == "imbalance_60":
        side = "buys" if value >= 0 else "sells"
        return f"{span} flow {50 * (1 + abs(value)):.0f}% taker {side}"
    return f"{feature} = {value:.4g}"
