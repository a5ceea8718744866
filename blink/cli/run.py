"""`python -m blink run`: the service, on one event loop, until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import errno
import logging

from blink.config import Settings

log = logging.getLogger(__name__)


def check_replay_file(settings: Settings) -> None:
    """Read the whole replay file first: a bad one raises FileFormatError (FILE:LINE: problem,
    exit 2) before anything starts, so nothing is emptied and no service half-starts."""
    from blink.formats import files

    rows = sum(1 for _ in files.read(settings.replay_file, settings.pair))
    log.info("replay file %s checked: %d rows", settings.replay_file, rows)


def main(settings: Settings, args: argparse.Namespace | None = None) -> int:
    if settings.source == "replay":
        check_replay_file(settings)
    from blink.service import server
    from blink.service.app import create_app  # after the check: a bad file fails in a blink

    app = create_app(settings)
    log.info("blink starting on http://%s:%d (source=%s, roles=%s)", settings.host,
             settings.port, settings.source, ",".join(sorted(settings.roles)))
    try:
        server.run(app, settings)
    except OSError as e:
        if e.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
            log.error("cannot serve on %s:%d: %s", settings.host, settings.port, e)
        else:
            log.error("cannot start: %s", e)
        return 1
    except RuntimeError as e:
        log.error("cannot start: %s", e)
        return 1
    log.info("blink stopped")
    return 0
