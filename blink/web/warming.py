"""What Blink waits for before it can score, in words and numbers (/readyz, the dashboard).

`status(app)` reads memory only: the warm-up progress (`keys.WARMUP`: history loading, the
first fit) and `Latest` (features warm, a model served). `waiting_for` is the first thing
missing, in the order they happen:

- `history`: a first start loads `bootstrap_hours` of history (REST, generated, or a file);
- `training`: the first model is being fitted;
- `training_rows`: the tape does not yet hold `train_min_rows` warm feature rows;
- `features`: the feature windows are not warm yet;
- `model`: no model is served yet (trained but not promoted or still loading);
- null: ready (`/score` answers).

`progress` (0..1) and `eta_seconds` are given where they can be measured, else null.
"""

from __future__ import annotations

from aiohttp import web

from blink.runtime import keys

SOURCES = {"coinbase_rest": "Coinbase REST", "synthetic": "generated", "replay": "the file"}


def status(app: web.Application) -> dict:
    latest, warmup = app[keys.LATEST], app.get(keys.WARMUP)
    detail = warmup.as_dict() if warmup is not None else {"history": None, "training": None}
    waiting, message, progress, eta = _waiting(latest, warmup)
    return {"waiting_for": waiting, "message": message,
            "progress": None if progress is None else round(progress, 4),
            "eta_seconds": None if eta is None else round(eta, 1), **detail}


def _waiting(latest, warmup) -> tuple[str | None, str, float | None, float | None]:
    if latest.not_ready is None and latest.score_raw is not None:
        return None, "scoring", 1.0, 0.0
    if warmup is not None and warmup.loading:
        h = warmup.history
        where = SOURCES.get(h.source, h.source)
        if h.source == "coinbase_rest" and h.total is None:
            return ("history", f"Finding where the last {h.hours:g} h of trades begin ({where})",
                    0.0, None)
        eta = warmup.history_eta()
        of = f" of {h.total:,}" if h.total else ""
        return ("history", f"Loading {h.hours:g} h of history ({where}): {h.trades:,}{of} trades"
                f" ({100 * h.fraction:.0f} %){_eta(eta)}", h.fraction, eta)
    if warmup is not None and (elapsed := warmup.training_elapsed()) is not None:
        last = warmup.training_seconds
        eta = None if last is None else max(0.0, last - elapsed)
        first = "the first model" if latest.model is None else "a model"
        return "training", f"Training {first} ({elapsed:.0f} s so far){_eta(eta)}", None, eta
    if latest.model is None and warmup is not None and warmup.history is not None \
            and warmup.rows is None and not warmup.history.note:
        return "training", "Training the first model (starting)", None, None
    if latest.model is None and warmup is not None and warmup.rows is not None \
            and warmup.rows_needed:
        eta = warmup.rows_eta()
        return ("training_rows", f"Collecting training data: {warmup.rows:,} of "
                f"{warmup.rows_needed:,} warm feature rows{_eta(eta)}",
                min(1.0, warmup.rows / warmup.rows_needed), eta)
    if latest.not_ready == "no_features" or latest.features is None:
        return "features", "Filling the feature windows", None, None
    if latest.model is None:
        return "model", "Waiting for the first model", None, None
    return latest.not_ready or "score", "Waiting for the first score", None, None


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds >= 90:
        return f", ~{seconds / 60:.0f} min left"
    return f", ~{seconds:.0f} s left"
