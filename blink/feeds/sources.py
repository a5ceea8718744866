"""The local trade sources: `make_source(settings)` for `--source replay|synthetic`.

Every source has `name` and `async def run(self, tape)` (runs until cancelled, calls
`tape.add(trade, via=name)`). The Coinbase source lives in `blink.feeds.coinbase`.
"""

from __future__ import annotations

from blink.config import Settings
from blink.feeds.replay import ReplaySource
from blink.feeds.synthetic import SyntheticSource
from blink.runtime.warmup import Warmup


def make_source(settings: Settings,
                warmup: Warmup | None = None) -> ReplaySource | SyntheticSource:
    """The source for `settings.source`; a bad replay file raises FileFormatError here.
    With `warmup`, it plays `settings.bootstrap_hours` of history at once and reports it."""
    if settings.source == "replay":
        return ReplaySource(settings, warmup)
    if settings.source == "synthetic":
        return SyntheticSource(settings, warmup)
    raise ValueError(f"no local source for {settings.source!r} (coinbase is blink.feeds.coinbase)")
