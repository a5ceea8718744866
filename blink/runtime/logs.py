"""Logging, configured once by the CLI: plain text or JSON lines carrying `extra` fields.

A filter masks registered secrets (API token, passwords in DSNs) in every record.
"""

from __future__ import annotations

import json
import logging
import sys
import time

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_secrets: set[str] = set()


def add_secret(value: str) -> None:
    """Never let this string reach a log line."""
    if value and len(value) >= 4:
        _secrets.add(value)


def _mask(text: str) -> str:
    for s in _secrets:
        if s in text:
            text = text.replace(s, "***")
    return text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for k, v in vars(record).items():
            if k not in _STANDARD and not k.startswith("_"):
                out[k] = v
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return _mask(json.dumps(out, default=str))


class PlainFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return _mask(super().format(record))


def setup(level: str = "INFO", fmt: str = "plain") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else PlainFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiohttp.access", "alembic", "mlflow", "urllib3", "pgserver", "git"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


class RateLimited:
    """Log at most one record per `interval` seconds for one kind of repeated problem."""

    def __init__(self, logger: logging.Logger, interval: float = 10.0) -> None:
        self.logger, self.interval = logger, interval
        self._last: dict[str, float] = {}
        self.suppressed: dict[str, int] = {}

    def warning(self, kind: str, msg: str, *args, **kwargs) -> None:
        self.log(logging.WARNING, kind, msg, *args, **kwargs)

    def error(self, kind: str, msg: str, *args, **kwargs) -> None:
        self.log(logging.ERROR, kind, msg, *args, **kwargs)

    def log(self, level: int, kind: str, msg: str, *args, **kwargs) -> None:
        now = time.monotonic()
        if now - self._last.get(kind, -1e9) >= self.interval:
            skipped = self.suppressed.pop(kind, 0)
            suffix = f" ({skipped} similar suppressed)" if skipped else ""
            self._last[kind] = now
            self.logger.log(level, msg + suffix, *args, **kwargs)
        else:
            self.suppressed[kind] = self.suppressed.get(kind, 0) + 1
