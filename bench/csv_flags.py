"""Do the scores file's flags show what Blink alerted on? (`python -m bench.csv_flags`)

Blink alerts by events, folded from the score of every trade; an outside evaluation reads the
backtest's scores file, one row per input row. On the raw bar stretches and their large
injected copies (as `make evaluate` builds them), per stretch: the forest's events, how many of
them have a flagged row in the file (within a bar of the event), and the labelled windows
(the real 2 % moves, the injections; after the warm-up) caught by the events and by the
flagged rows (`evaluation.judge`: runs of flagged rows at most two bars apart, one alert).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench import evaluation, inject, moves
from blink import config
from blink.backtest import driver, sampling
from blink.formats import files


def main() -> None:
    bars = inject.days(evaluation.bar_file("coinbase_btcusd_minute_trade_bars.csv"))
    total = [0, 0, 0, 0, 0]
    with tempfile.TemporaryDirectory() as tmp:
        for span, run in inject.segments(bars).items():
            for name in ("raw", "large"):
                rows, windows = inject.segment(bars, run, None if name == "raw" else name)
                windows = moves.label(rows) if name == "raw" else windows
                path = inject.write(Path(tmp) / f"{span}-{name}.csv", bars[run[0]][0], rows)
                settings = config.load(flags={"data_dir": tmp}, env={})
                settings = sampling.plan(settings, "bars", files.read(path, settings.pair))
                out, bt = evaluation.replay(list(driver.chunks(path, settings.pair)),
                                            settings, {})
                counts, _, _, read = evaluation.judge({"forest": (out, bt)}, windows)["forest"]
                flagged = [s.ts for s in out if s.anomaly]
                events = list(bt.events.values())
                got = [len(events),
                       sum(any(e.start - 60 <= t <= e.end + 60 for t in flagged) for e in events),
                       counts.windows, counts.detected, read.detected]
                total = [a + b for a, b in zip(total, got, strict=True)]
                print(f"{span} {name}: events {got[0]} (with a flagged row {got[1]}); windows "
                      f"{got[2]}, caught by the events {got[3]}, by the flagged rows {got[4]}")
    print(f"all: events {total[0]} (with a flagged row {total[1]}); windows {total[2]}, caught "
          f"by the events {total[3]}, by the flagged rows {total[4]}")


if __name__ == "__main__":
    main()
