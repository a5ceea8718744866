"""Component health: each part of Blink reports success or failure here.

A failing component logs once when it starts failing and once when it recovers (not on every
retry), and keeps `last_success` for /readyz.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from blink.times import iso_or_none

log = logging.getLogger(__name__)


@dataclass
class Component:
    name: str
    ok: bool | None = None  # None: not started / unknown
    last_success: float | None = None  # epoch seconds (wall)
    last_error: str = ""
    failures: int = 0
    detail: dict = field(default_factory=dict)

    def success(self, **detail) -> None:
        if self.ok is False:
            log.info("%s recovered after %d failures", self.name, self.failures,
                     extra={"component": self.name})
        self.ok, self.failures, self.last_error = True, 0, ""
        self.last_success = time.time()
        self.detail.update(detail)

    def failure(self, error: BaseException | str, **detail) -> None:
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        if self.ok is not False:
            log.error("%s failing: %s", self.name, text, extra={"component": self.name})
        self.ok, self.last_error = False, text[:300]
        self.failures += 1
        self.detail.update(detail)

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "last_success": iso_or_none(self.last_success),
            "last_error": self.last_error or None,
            **self.detail,
        }


class Health:
    """The registry of components, created once per app."""

    def __init__(self) -> None:
        self.components: dict[str, Component] = {}

    def __getitem__(self, name: str) -> Component:
        if name not in self.components:
            self.components[name] = Component(name)
        return self.components[name]

    def as_dict(self) -> dict:
        return {name: c.as_dict() for name, c in sorted(self.components.items())}

