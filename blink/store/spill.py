"""The writer's spill file: an append-only CSV of trades the database could not take yet.

One file per schema (`<data_dir>/spill-<schema>.csv`). Every append is flushed and fsync'd, so
what `append` returned from is on disk. The file is drained from the front (a byte offset kept in
memory) and deleted once empty. Its columns are Blink's tick format plus `received_at`, so a spill
file can also be replayed. Every method is blocking file I/O: call them in a thread.
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import os
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

log = logging.getLogger(__name__)

HEADER = ("product_id", "trade_id", "time", "price", "size", "side", "received_at")
# one row as the writer batches it: (product_id, trade_id, time, price, size, side, received_at)
Row = tuple[str, int, datetime, Decimal, Decimal, str, float]  # received_at: epoch seconds


def spill_path(data_dir: Path, schema: str) -> Path:
    return data_dir / f"spill-{schema}.csv"


class Spill:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0  # bytes already drained into the database
        self.bad_lines = 0  # unreadable lines skipped (a torn last line after a crash)

    def exists(self) -> bool:
        return self.path.exists()

    def append(self, rows: Sequence[Row]) -> None:
        """Append rows in order and fsync before returning."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        tail = self._last_byte()
        if tail is None:
            w.writerow(HEADER)
        elif tail != b"\n":
            buf.write("\n")  # end a torn line left by a crash, so it cannot swallow a new row
        w.writerows((p, i, t.isoformat(), format(px, "f"), format(sz, "f"), side,
                     datetime.fromtimestamp(r, UTC).isoformat())
                    for p, i, t, px, sz, side, r in rows)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = memoryview(buf.getvalue().encode("utf-8"))
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            start = os.lseek(fd, 0, os.SEEK_END)
            try:
                while data:
                    data = data[os.write(fd, data):]
                os.fsync(fd)
            except OSError:  # disk full, read-only...: leave the file as it was, no torn row
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, start)
                    if start == 0:  # nor an empty file nobody would ever drain
                        self.path.unlink()
                raise
        finally:
            os.close(fd)

    def _last_byte(self) -> bytes | None:
        """The file's last byte; None when there is no file or it is empty."""
        try:
            with open(self.path, "rb") as f:
                f.seek(0, os.SEEK_END)
                if f.tell() == 0:
                    return None
                f.seek(-1, os.SEEK_END)
                return f.read(1)
        except FileNotFoundError:
            return None

    def read(self, max_rows: int) -> tuple[list[Row], int]:
        """Up to `max_rows` rows from the current offset, and the offset after them.

        No rows means the file is drained. Unreadable lines (a torn last line after a crash)
        are skipped and counted in `bad_lines`.
        """
        rows: list[Row] = []
        try:
            f = open(self.path, "rb")
        except FileNotFoundError:
            return rows, self.offset
        with f:
            f.seek(self.offset)
            end = self.offset
            while len(rows) < max_rows:
                line = f.readline()
                if not line:
                    break
                end += len(line)
                row = _parse(line) if line.endswith(b"\n") else None
                if row is not None:
                    rows.append(row)
                elif line.strip() and not line.startswith(b"product_id,"):
                    self.bad_lines += 1
                    log.warning("%s: skipped an unreadable line at byte %d",
                                self.path, end - len(line))
        return rows, end

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
        self.offset = 0

    def count(self) -> int:
        """Complete data rows from the current offset (used once, for a leftover file)."""
        n = 0
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            for line in f:
                if line.endswith(b"\n") and _parse(line) is not None:
                    n += 1
        return n


def _parse(line: bytes) -> Row | None:
    try:
        fields: Iterable[str] = next(csv.reader([line.decode("utf-8")]))
        p, i, t, px, sz, side, r = fields
        return (p, int(i), datetime.fromisoformat(t), Decimal(px), Decimal(sz), side,
                datetime.fromisoformat(r).timestamp())
    except (ValueError, InvalidOperation, UnicodeDecodeError, StopIteration):
        return None
