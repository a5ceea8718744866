"""The local trade sources: `make_source(settings)` for `--source replay|synthetic`.

Every source has `name` and `async def run(self, tape)` (runs until cancelled, calls
`tape.add(trade, via=name)`). The Coinbase source lives in `blink.feeds.coinbase`.
"""

from __future__ import annotations

from blink.config import Settings
from blink.feeds.replay import ReplaySource
from blink.feeds.synthetic import SyntheticSource


def make_source(settings: Settings) -> ReplaySource | SyntheticSource:
    """The source for `settings.source`; a bad replay file raises FileFormatError here."""
    if settings.source == "replay":
        return ReplaySource(settings)
    if settings.source == "synthetic":
        return SyntheticSource(settings)
    raise ValueError(f"no local source for {settings.source!r} (coinbase is blink.feeds.coinbase)")
