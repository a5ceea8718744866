"""`python -m blink run`: the service, on one event loop, until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import logging

from aiohttp import web

from blink.app import create_app
from blink.config import Settings

log = logging.getLogger(__name__)


def main(settings: Settings, args: argparse.Namespace | None = None) -> int:
    app = create_app(settings)
    log.info("blink starting on http://%s:%d (source=%s, roles=%s)", settings.host,
             settings.port, settings.source, ",".join(sorted(settings.roles)))
    try:
        # run_app turns SIGINT/SIGTERM into a graceful shutdown: every cleanup context runs
        web.run_app(app, host=settings.host, port=settings.port, print=None,
                    shutdown_timeout=10, access_log=None, handle_signals=True)
    except OSError as e:
        log.error("cannot serve on %s:%d: %s", settings.host, settings.port, e)
        return 1
    except RuntimeError as e:
        log.error("cannot start: %s", e)
        return 1
    log.info("blink stopped")
    return 0
