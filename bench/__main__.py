"""`python -m bench [NAME ...]`: run benchmark sections and write docs/benchmarks.md."""

from __future__ import annotations

import importlib
import sys

SECTIONS = ["startup", "firstscore", "scoring", "api", "stream", "backtest", "fits", "ingest",
            "latency", "products", "multifeed", "soak", "retrain"]


def main(argv: list[str]) -> int:
    names = argv or SECTIONS
    for name in names:
        if name not in SECTIONS:
            print(f"unknown benchmark {name!r}; choose from {', '.join(SECTIONS)}")
            return 2
    for name in names:
        print(f"== bench {name}", flush=True)
        importlib.import_module(f"bench.{name}").main()
    print("results written to docs/benchmarks.md")
    return 0


if __name__ == "__main__":  # not when a spawned worker process imports it as __mp_main__
    raise SystemExit(main(sys.argv[1:]))
