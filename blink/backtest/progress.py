"""A one-line progress bar on stderr (only drawn on a terminal), redrawn at most 5 × a second.

The total is the input's line count (counted in binary chunks up front: ~1 s per GB).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

WIDTH = 30
EVERY = 0.2  # wall seconds between redraws


def count_lines(path: str | Path) -> int:
    n = 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            n += chunk.count(b"\n")
    return n


class Progress:
    def __init__(self, path: str | Path, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.total = max(count_lines(path), 1)
        self.started = self._drawn = time.monotonic()

    def update(self, rows: int, line: int) -> None:
        now = time.monotonic()
        if now - self._drawn < EVERY:
            return
        self._drawn = now
        frac = min(line / self.total, 1.0)
        bar = "#" * round(frac * WIDTH)
        rate = rows / max(now - self.started, 1e-9)
        eta = (1 - frac) / frac * (now - self.started) if frac > 0 else 0.0
        self.stream.write(f"\r[{bar:<{WIDTH}}] {frac:6.1%} {rows:,} rows {rate:,.0f}/s "
                          f"ETA {eta:4.0f} s ")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\r" + " " * (WIDTH + 60) + "\r")
        self.stream.flush()
