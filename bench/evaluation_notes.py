"""The diagnosis section of docs/evaluation.md: what the misses of issue 13 were traced to,
what changed, and what did not work (`bench.evaluation_doc.render` puts it after the
targets). Plain text with the figures measured while diagnosing (each with its command), in
bench/evaluation_notes.md; the tables around it are this run's.
"""

from __future__ import annotations

from pathlib import Path

# measured by this harness on main 860d7fc (see the module docstring); None: not measured
TODAY: dict[str, float | None] = {
    'recall_price_jump': 0.3838,
    'recall_volatility_burst': 0.0202,
    'recall_volume_spike': 0.0,
    'recall_flash_crash': 0.32,
    'fa_stream rate': 0.0,
    'fa_realistic rate': 6.3642,
    'delay_price_jump': 0.1985,
    'delay_flash_crash': 24.179,
    'bars_f1': 0.2719,
    'bars_margin': -0.1297,
    'raw_fa': 12.9651,
}

NOTES = Path(__file__).with_name("evaluation_notes.md")  # the diagnosis text


def notes() -> str:
    return NOTES.read_text(encoding="utf-8").rstrip("\n")

