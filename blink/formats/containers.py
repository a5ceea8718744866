"""What holds an input's lines: a CSV file, gzipped CSV, a Parquet file, or standard input.

The container is told by the file's first bytes, not its name: gzip's magic, Parquet's `PAR1`;
anything else must be UTF-8 text. Parquet is read a record batch at a time and written out as
CSV lines by pyarrow (times in its text form, `2024-01-01 00:00:00Z`), so every format reads
all three the same way; a Parquet "line" is its row number + 1 (the header is line 1).
Standard input (`-`) is copied to a temporary file on first use, so it can be read more than
once (the format is chosen, the sampling planned, then the rows read), and named `<stdin>`.
Binary files, archives and broken gzip streams are `FileFormatError`s naming the file.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import shutil
import sys
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from blink.formats.cells import FileFormatError

STDIN = "-"
GZIP, PARQUET, ZIP = b"\x1f\x8b", b"PAR1", b"PK\x03\x04"
SNIFF_BYTES = 8192
PARQUET_BATCH = 65536
_spooled: list = []  # the temporary file holding standard input, once read


@dataclass
class Input:
    name: str  # how messages name the input (the path as given, or <stdin>)
    lines: Iterator[bytes]  # raw lines, newline kept
    container: str  # "CSV", "gzip CSV" or "Parquet"


def name_of(path: str | Path) -> str:
    return "<stdin>" if str(path) == STDIN else str(path)


@contextlib.contextmanager
def opened(path: str | Path) -> Iterator[Input]:
    """The lines of `path` (see the module docstring); closed on exit."""
    name, real = name_of(path), _spool() if str(path) == STDIN else path
    with contextlib.ExitStack() as stack:
        try:
            f = stack.enter_context(open(real, "rb"))
        except OSError as e:
            raise FileFormatError(f"{name}: cannot open: {e.strerror or e}") from None
        head = f.peek(SNIFF_BYTES)[:SNIFF_BYTES] if hasattr(f, "peek") else b""
        if head.startswith(PARQUET):
            yield Input(name, _parquet(name, f), "Parquet")
            return
        if head.startswith(GZIP):
            z = stack.enter_context(gzip.GzipFile(fileobj=f, mode="rb"))
            yield Input(name, _unzipped(name, z), "gzip CSV")
            return
        _text_or_fail(name, head)
        yield Input(name, iter(f), "CSV")


def _spool() -> str:
    if not _spooled:
        tmp = tempfile.NamedTemporaryFile(prefix="blink-stdin-")  # noqa: SIM115 (kept open)
        shutil.copyfileobj(sys.stdin.buffer, tmp)
        tmp.flush()
        _spooled.append(tmp)
    return _spooled[0].name


def _text_or_fail(name: str, head: bytes) -> None:
    if head.startswith(ZIP):
        raise FileFormatError(f"{name}:1: a zip archive (an .xlsx?), not CSV text: export CSV, "
                              "gzip CSV or Parquet")
    if b"\0" in head:
        raise FileFormatError(f"{name}:1: a binary file, not CSV text (expected CSV, "
                              ".csv.gz or Parquet)")


def _unzipped(name: str, z: gzip.GzipFile) -> Iterator[bytes]:
    n = 0
    try:
        for n, line in enumerate(z, 1):  # noqa: B007 (n: where it broke)
            if n == 1:
                _text_or_fail(name, line[:SNIFF_BYTES])
            yield line
    except (OSError, EOFError, zlib.error) as e:
        raise FileFormatError(f"{name}:{n + 1}: broken gzip stream: {e}") from None


def _parquet(name: str, f) -> Iterator[bytes]:
    try:
        import pyarrow as pa
    except ImportError:
        raise FileFormatError(f"{name}: a Parquet file; reading it needs pyarrow "
                              "(pip install 'blink[parquet]' or pyarrow)") from None
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(f)
        batches = pf.iter_batches(batch_size=PARQUET_BATCH)
        header = True
        for batch in _or_empty(batches, pf.schema_arrow):
            buf = io.BytesIO()
            pcsv.write_csv(pa.Table.from_batches([batch]), buf, pcsv.WriteOptions(
                include_header=header, quoting_style="needed"))
            header = False
            buf.seek(0)
            yield from buf
    except (pa.ArrowException, OSError) as e:
        raise FileFormatError(f"{name}: unreadable Parquet: {str(e)[:200]}") from None


def _or_empty(batches: Iterable, schema) -> Iterator:
    """The batches, or one empty batch of `schema` when there are none (the header)."""
    import pyarrow as pa

    empty = True
    for batch in batches:
        empty = False
        yield batch
    if empty:
        yield pa.RecordBatch.from_pylist([], schema=schema)


def decoded(name: str, raw: Iterable[bytes], first: int) -> Iterator[str]:
    """Lines decoded one by one (line numbers from `first`), so a bad byte names its line."""
    for n, line in enumerate(raw, first):
        try:
            yield line.decode("utf-8-sig" if n == 1 else "utf-8")  # drop a BOM
        except UnicodeDecodeError:
            raise FileFormatError(f"{name}:{n}: not UTF-8 text") from None


def cells(name: str, line: bytes, number: int) -> list[str]:
    """The cells of one line (line `number` of the file), stripped."""
    try:
        return [c.strip() for c in next(csv.reader(decoded(name, [line], number)), [])]
    except csv.Error as e:
        raise FileFormatError(f"{name}:{number}: {e}") from None


def count_lines(path: str | Path) -> int:
    """The lines of `path` through its container (Parquet: rows + the header), for progress."""
    with opened(path) as source:
        if source.container == "Parquet":
            return 1 + sum(1 for _ in source.lines)
        if source.container == "CSV":
            f = source.lines  # the file itself: count newlines in binary blocks
            return sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))
        return sum(1 for _ in source.lines)
