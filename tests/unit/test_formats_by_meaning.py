"""Inputs read by what their columns mean: aliases, case and order, time forms and units,
containers, the value-column picker, `format=`, headerless files, and each bad input."""

from __future__ import annotations

import gzip
import io
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest

from blink.config import ConfigError
from blink.formats import containers, files, sniff
from blink.times import parse_when

T0 = datetime(2024, 1, 1, tzinfo=UTC)
MS = int(T0.timestamp() * 1000)


def write(tmp_path, text: str, name: str = "in.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def both(path, **kw) -> list[files.Row]:
    """`read`'s rows, checked against `read_columns` (same rows, values, trades, arrays)."""
    rows = list(files.read(path, **kw))
    for chunk_rows in (1, 3, 1000):
        chunks = list(files.read_columns(path, chunk_rows=chunk_rows, **kw))
        assert [(t, v) for c in chunks for t, v in zip(c.timestamp, c.value, strict=True)] == [
            (r.timestamp, r.value) for r in rows]
        trades = [t for r in rows for t in r.trades]
        assert [t for c in chunks for t in c.trades()] == trades
        ts = np.concatenate([c.ts for c in chunks]) if chunks else np.array([])
        assert ts.tolist() == [t.ts for t in trades]
        taker = np.concatenate([c.taker for c in chunks]) if chunks else np.array([])
        assert taker.tolist() == [t.taker_buy for t in trades]
    return rows


def bars_text(header: str, n: int = 3, stamp=lambda i: str(MS + 60_000 * i)) -> str:
    """`n` one-minute bars under `header`, whose names say where each field goes."""
    names = [h.strip().lower() for h in header.split(",")]
    cells = {"open": "10", "high": "12", "low": "9", "close": "11"}
    lines = [header]
    for i in range(n):
        row = {**cells, "close": str(11 + i % 2), "high": "13"}
        lines.append(",".join(stamp(i) if sniff._find([name], sniff.TIME_NAMES) == 0
                              else row.get(name, "2" if name.startswith(("vol", "base")) else "7")
                              for name in names))
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("time_name", sniff.TIME_NAMES)
def test_every_time_name_is_the_time_column(tmp_path, time_name):
    path = write(tmp_path, f"{time_name.upper()},cpu\n{MS},1.5\n{MS + 60_000},2\n")
    layout = files.sniff(path)
    assert (layout.format, layout.time_name, layout.names[layout.at["value"]]) == (
        "series", time_name.upper(), "cpu")
    rows = both(path)
    assert [r.trades[0].time for r in rows] == [T0, T0 + timedelta(minutes=1)]
    assert [r.trades[0].price for r in rows] == [Decimal("1.5"), Decimal(2)]


def test_without_a_time_name_the_first_column_is_the_time_if_it_reads_as_one(tmp_path):
    path = write(tmp_path, "when,cpu\n2024-01-01T00:00:00Z,1\n")
    assert files.sniff(path).time_name == "when"
    with pytest.raises(files.FileFormatError, match=r"in.csv:1: no time column: expected one "
                       r"of timestamp, time, .* the header has 'host,cpu'"):
        files.sniff(write(tmp_path, "host,cpu\nweb-1,1\n"))


@pytest.mark.parametrize("header", [
    "timestamp,open,high,low,close,volume",  # ccxt, most exports
    "Timestamp,Open,High,Low,Close,Volume_(BTC),Volume_(Currency),Weighted_Price",  # Kaggle
    "open_time,open,high,low,close,volume,close_time,quote_volume,trades",  # Binance klines
    "VOLUME,CLOSE,LOW,HIGH,OPEN,DATE",  # any order, any case
    "time_utc,open,high,low,close,volume_btc",  # Coinbase bars (Blink's shared data)
    "t,open,high,low,close,vol",
    "datetime,open,high,low,close",  # no volume: still bars
])
def test_bars_by_meaning(tmp_path, header):
    path = write(tmp_path, bars_text(header))
    layout = files.sniff(path)
    assert layout.format == "bars"
    low = [h.lower() for h in header.split(",")]
    assert {m: low[i] for m, i in layout.at.items() if m in sniff.OHLC} == {
        m: m for m in sniff.OHLC}
    rows = both(path)
    assert [r.value for r in rows] == ["11", "12", "11"]  # the close, as written
    assert [r.trades[0].time for r in rows] == [T0 + timedelta(minutes=i) for i in range(3)]
    volume = [sum(t.size for t in r.trades) for r in rows]
    assert volume == [Decimal(2 if "volume" in layout.at else 1)] * 3
    if "volume" in layout.at:  # the first volume column, never quote volume
        assert low[layout.at["volume"]] in ("volume", "volume_(btc)", "volume_btc", "vol")


@pytest.mark.parametrize("size_name", sniff.SIZE_NAMES)
def test_generic_ticks_take_any_size_name_and_the_taker_side(tmp_path, size_name):
    path = write(tmp_path, f"id,side,{size_name},price,time\n7,buy,0.5,100,{MS}\n"
                           f"8,sell,0.25,99.5,{MS + 1}\n")
    layout = files.sniff(path)
    assert (layout.format, layout.flavour) == ("ticks", "generic")
    rows = both(path)
    trades = [r.trades[0] for r in rows]
    assert [(t.trade_id, t.price, t.size, t.side) for t in trades] == [
        (7, Decimal(100), Decimal("0.5"), "sell"), (8, Decimal("99.5"), Decimal("0.25"), "buy")]
    assert [t.product_id for t in trades] == ["BTC-USD"] * 2
    assert [t.time for t in trades] == [T0, T0 + timedelta(milliseconds=1)]


def test_generic_ticks_without_side_or_id_get_the_tick_rule_and_consecutive_ids(tmp_path):
    path = write(tmp_path, "ts,price,amount\n" + "".join(
        f"2024-01-01 00:00:0{i},{p},1\n" for i, p in enumerate(["5", "6", "6", "4", "4.0"])))
    trades = [r.trades[0] for r in both(path, first_id=10)]
    assert [t.trade_id for t in trades] == [10, 11, 12, 13, 14]
    assert [t.side for t in trades] == ["sell", "sell", "sell", "buy", "buy"]


@pytest.mark.parametrize("text, expected", [
    ("2024-01-01T00:00:00Z", T0),
    ("2024-01-01T00:00:00", T0),  # naive: UTC
    ("2024-01-01 00:00:00", T0),  # a space for the T
    ("2024-01-01", T0),
    ("2024-01-01T01:30:00+01:30", T0),
    ("2023-12-31T19:00:00-05:00", T0),
    ("2024-01-01T00:00:00.250Z", T0 + timedelta(milliseconds=250)),
    ("2024-01-01 00:00:00.123456789", T0 + timedelta(microseconds=123456)),
    (str(MS // 1000), T0),  # epoch seconds
    (f"{MS // 1000}.5", T0 + timedelta(milliseconds=500)),
    (str(MS), T0),  # milliseconds
    (str(MS * 1000 + 7), T0 + timedelta(microseconds=7)),  # microseconds
    (str(MS * 1_000_000 + 7_000), T0 + timedelta(microseconds=7)),  # nanoseconds
])
def test_time_forms_and_units(tmp_path, text, expected):
    assert parse_when(text) == expected
    path = write(tmp_path, f"time,value\n{text},1\n")
    (row,) = both(path)
    assert row.trades[0].time == expected and row.timestamp == text


@pytest.mark.parametrize("stamp, unit", [
    ("1704067200", "epoch seconds"), ("1704067200000", "epoch milliseconds"),
    ("1704067200000000", "epoch microseconds"), ("1704067200000000000", "epoch nanoseconds"),
    ("2024-01-01T00:00:00Z", "ISO-8601")])
def test_the_reading_states_the_time_unit(tmp_path, stamp, unit):
    path = write(tmp_path, f"timestamp,value\n{stamp},1\n")
    assert files.describe(path) == f"{path}: CSV, series: time=timestamp, value=value; times {unit}"


def test_the_column_picker(tmp_path):
    path = write(tmp_path, "time,host,cpu,mem\n2024-01-01,a,1,2\n")
    with pytest.raises(files.FileFormatError, match=r"which column is the value\? pass --column "
                                                    r"NAME \(numeric columns: cpu, mem\)"):
        files.sniff(path)
    layout = files.sniff(path, column="MEM")
    assert layout.names[layout.at["value"]] == "mem"
    assert [r.value for r in both(path, column="mem")] == ["2"]
    with pytest.raises(files.FileFormatError, match="no column 'disk'"):
        files.sniff(path, column="disk")
    only = write(tmp_path, "time,host,cpu\n2024-01-01,a,1\n", "only.csv")
    assert [r.value for r in both(only)] == ["1"]  # the only numeric column
    named = write(tmp_path, "time,price,size,value\n2024-01-01,5,6,7\n", "named.csv")
    assert [r.value for r in both(named, format="series")] == ["5"]  # close, price, value
    with pytest.raises(ConfigError, match="--column picks a series"):
        files.sniff(path, format="bars", column="cpu")


def test_format_overrides_the_guess(tmp_path):
    path = write(tmp_path, bars_text("timestamp,open,high,low,close,volume"))
    assert files.sniff(path).format == "bars"
    rows = both(path, format="series")
    assert [(r.value, len(r.trades)) for r in rows] == [("11", 1), ("12", 1), ("11", 1)]
    close = both(path, column="close")
    assert [r.value for r in close] == ["11", "12", "11"]
    with pytest.raises(files.FileFormatError, match="ticks need price and size"):
        files.sniff(path, format="ticks")
    with pytest.raises(ConfigError, match="--format 'csv'"):
        files.sniff(path, format="csv")


def test_headerless_series_and_binance_klines(tmp_path):
    series = write(tmp_path, f"{MS},1\n{MS + 1000},2\n", "s.csv")
    layout = files.sniff(series)
    assert (layout.format, layout.headerless) == ("series", True)
    assert [r.line for r in both(series)] == [1, 2]
    klines = write(tmp_path, "".join(f"{MS + 60_000 * i},10,12,9,11,3,{MS + 60_000 * i + 59_999},"
                                     "33,5,1,11,0\n" for i in range(3)), "k.csv")
    layout = files.sniff(klines)
    assert (layout.format, layout.at["volume"], layout.headerless) == ("bars", 5, True)
    rows = both(klines)
    assert [sum(t.size for t in r.trades) for r in rows] == [Decimal(3)] * 3


def test_a_title_line_above_the_header_is_skipped(tmp_path):
    # as CryptoDataDownload's exchange files begin: a URL, then the header
    rows = "".join(f"{1514764800 + 60 * i},2018-01-01 00:{i:02d}:00,BTC/USD,10,12,9,11,3,33\n"
                   for i in range(3))
    path = write(tmp_path, "https://www.CryptoDataDownload.com\nunix,date,symbol,open,high,"
                 "low,close,Volume BTC,Volume USD\n" + rows, "cdd.csv")
    layout = files.sniff(path)
    assert (layout.format, layout.names[layout.at["volume"]]) == ("bars", "Volume BTC")
    assert [r.line for r in both(path)] == [3, 4, 5]


def test_gzip_parquet_and_standard_input_read_like_the_csv(tmp_path, monkeypatch):
    import pyarrow as pa
    import pyarrow.parquet as pq

    text = bars_text("timestamp,open,high,low,close,volume", 50)
    plain = write(tmp_path, text)
    want = [t for r in both(plain) for t in r.trades]
    gz = tmp_path / "in.csv.gz"
    gz.write_bytes(gzip.compress(text.encode()))
    assert [t for r in both(gz) for t in r.trades] == want
    assert files.describe(gz).startswith(f"{gz}: gzip CSV, bars")
    cols = list(zip(*[line.split(",") for line in text.splitlines()], strict=True))
    table = pa.table({c[0]: pa.array([int(x) if c[0] == "timestamp" else float(x)
                                      for x in c[1:]]) for c in cols})
    pq.write_table(table, tmp_path / "in.parquet")
    rows = both(tmp_path / "in.parquet")
    assert [t for r in rows for t in r.trades] == want
    assert (rows[0].line, rows[0].timestamp) == (2, str(MS))
    monkeypatch.setattr(containers, "_spooled", [])
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    assert [t for r in both("-") for t in r.trades] == want  # read several times: spooled
    assert files.describe("-").startswith("<stdin>: CSV, bars")


@pytest.mark.parametrize("content, line, problem", [
    (b"", 1, "empty file (no header)"),
    (b"\n\n", 1, "empty file (no header)"),
    (b"host,cpu\nweb,1\n", 1, "no time column"),
    (b"time,value\n2024-01-01,1\nyesterday,2\n", 3,
     "time: 'yesterday' is not a time (expected ISO-8601 or epoch"),
    (b"time,value\n2024-01-02,1\n2024-01-01,2\n", 3,
     "time: '2024-01-01' is before the previous row's time (rows must be in time order, "
     "oldest first: reverse a newest-first file)"),
    (b"time,price,size\n1704067200,5,1\n1704067100,5,1\n", 3, "is before the previous row's"),
    (b"timestamp,open,high,low,close\n1,2,3,1,2\n1,2,3,1,2\n", 3, "is not after the previous"),
    (b"time,value\n2024-01-01,1\n2024-01-02,n/a\n", 3, "value: not a number: 'n/a'"),
    (b"time,open,high,low,close\n2024-01-01,1,2,1,x\n", 2, "close: not a number: 'x'"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", 1, "a binary file, not CSV text"),
    (b"PK\x03\x04\x14\x00\x06\x00", 1, "a zip archive (an .xlsx?)"),
    (gzip.compress(b"time,value\n" + b"".join(b"%d,1\n" % (MS + i) for i in range(99)))[:-12],
     0, "broken gzip stream"),
])
def test_bad_inputs_name_the_file_the_line_and_what_was_expected(tmp_path, content, line,
                                                                 problem):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    for reader in (files.read, files.read_columns):
        with pytest.raises(files.FileFormatError) as e:
            list(reader(path))
        where = f"{path}:{line}: " if line else f"{path}:"
        assert str(e.value).startswith(where) and problem in str(e.value), str(e.value)
