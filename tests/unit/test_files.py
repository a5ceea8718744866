"""CSV inputs: format detection, the bar → trades rule, Tardis side conversion, series, errors.
The column reader agreeing with the row reader on all of it: tests/unit/test_files_columns.py."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from blink.config import ConfigError
from blink.formats import bars, files, sides, ticks
from blink.trade import Trade
from tests.conftest import DATA

SECOND_BARS = DATA / "coinbase_btcusd_second_trade_bars.csv"
MINUTE_BARS = DATA / "coinbase_btcusd_minute_trade_bars.csv"
TARDIS = DATA / "tardis_trades.csv"
START_DAY = datetime(2024, 1, 1, tzinfo=UTC)


def raw_rows(path) -> list[list[str]]:
    return [line.split(",") for line in path.read_text().splitlines()[1:]]


def test_formats_are_detected_by_header(tmp_path):
    series = tmp_path / "s.csv"
    series.write_text("when,cpu\n2024-01-01T00:00:00Z,1\n")
    ticks = tmp_path / "t.csv"
    ticks.write_text(",".join(files.TICKS) + "\n")
    assert [(files.sniff(p).format, files.sniff(p).flavour)
            for p in (SECOND_BARS, MINUTE_BARS, TARDIS, series, ticks)] == [
        ("bars", ""), ("bars", ""), ("ticks", "tardis"), ("series", ""), ("ticks", "blink")]


@pytest.mark.parametrize("path, seconds", [(SECOND_BARS, 1), (MINUTE_BARS, 60)])
def test_bars_become_trades_by_the_documented_rule(path, seconds):
    rows = list(files.read(path, "BTC-USD"))
    raw = raw_rows(path)
    assert len(rows) == len(raw) == 300
    all_trades = [t for r in rows for t in r.trades]
    assert [t.trade_id for t in all_trades] == list(range(1, len(all_trades) + 1))
    assert len(all_trades) > len(rows)  # bars with a range become several trades
    tick = sides.TickRule()
    for row, cells in zip(rows, raw, strict=True):
        start = datetime.fromisoformat(cells[0])
        o, h, lo, c, v = map(Decimal, cells[1:])
        assert (row.timestamp, row.value, row.line) == (cells[0], cells[4], rows.index(row) + 2)
        ts = row.trades
        assert ts[0].price == o and ts[-1].price == c and ts[0].time == start
        assert all(lo <= t.price <= h for t in ts)
        assert {lo, h} <= {t.price for t in ts} or len(ts) == 1
        assert sum(t.size for t in ts) == v  # the volume, exactly
        assert all(start <= t.time < start + timedelta(seconds=seconds) for t in ts)
        assert [t.side for t in ts] == [tick(t.price) for t in ts]
        assert all(t.product_id == "BTC-USD" for t in ts)


def test_bar_volume_split_and_degenerate_bars():
    ids = itertools.count(10)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    d = Decimal
    ts = bars.bar_trades("X", ids, start, timedelta(seconds=60), d(10), d(12), d(9), d(11),
                         d("1.00000001"), sides.TickRule())
    assert [t.price for t in ts] == [d(10), d(9), d(12), d(11)]  # up bar: low first
    assert [t.size for t in ts] == [d("0.25")] * 3 + [d("0.25000001")]
    assert [t.time.second for t in ts] == [0, 15, 30, 45]
    assert [t.trade_id for t in ts] == [10, 11, 12, 13]
    assert [t.side for t in ts] == ["sell", "buy", "sell", "buy"]
    down = bars.bar_trades("X", ids, start, timedelta(seconds=1), d(10), d(12), d(9), d(9),
                           d(3), sides.TickRule())
    assert [t.price for t in down] == [d(10), d(12), d(9)]  # down bar: high first, 9 merged
    tiny = bars.bar_trades("X", ids, start, timedelta(seconds=1), d(10), d(12), d(9), d(11),
                           d("0.00000002"), sides.TickRule())
    assert [(t.price, t.size) for t in tiny] == [(d(11), d("0.00000002"))]
    zero = bars.bar_trades("X", ids, start, timedelta(seconds=1), d(10), d(10), d(10), d(10),
                           d(0), sides.TickRule())
    assert [(t.price, t.size) for t in zero] == [(d(10), d(0))]


def test_bars_without_prices_are_minutes_without_trades(tmp_path):
    # how exports write a minute without trades: NaN (many datasets) or empty (pandas)
    path = tmp_path / "gaps.csv"
    head = "Timestamp,Open,High,Low,Close,Volume_(BTC),Weighted_Price\n"
    path.write_text(head + "1514764740,NaN,NaN,NaN,NaN,NaN,NaN\n"
                    "1514764800,10,12,9,11,2,10.5\n"
                    "1514764860,NaN,NaN,NaN,NaN,NaN,NaN\n"
                    "1514764920, nan ,,NAN,,0,\n"
                    "1514764980,11,11,11,11,0,11\n"  # volume 0, flat at the last price
                    "1514765040,11,11,10,10,1,10.2\n"
                    "1514765100,12,12,12,12,0,12\n")  # volume 0 at another price: a print
    rows = list(files.read(path, "BTC-USD"))
    assert [(r.line, r.value, len(r.trades)) for r in rows] == [
        (2, "NaN", 0), (3, "11", 4), (4, "NaN", 0), (5, "", 0), (6, "11", 0), (7, "10", 2),
        (8, "12", 1)]
    assert [t.trade_id for r in rows for t in r.trades] == list(range(1, 8))
    for body, line, words in (
            ("1514764800,10,12,9,11,2,10.5\n1514764860,NaN,NaN,NaN,NaN,3,NaN\n", 3,
             "Volume_(BTC): '3' in a bar without prices"),
            ("1514764800,10,12,9,11,2,10.5\n1514764860,NaN,12,NaN,NaN,0,NaN\n", 3,
             "Open: not finite")):  # some prices missing: not a minute without trades
        path.write_text(head + body)
        with pytest.raises(files.FileFormatError,
                           match=rf"gaps.csv:{line}: .*{re.escape(words)}"):
            list(files.read(path, "BTC-USD"))


def test_a_missing_sample_of_a_series_is_a_row_without_a_trade(tmp_path):
    path = tmp_path / "cpu.csv"
    path.write_text("time,cpu\n2024-01-01T00:00:00Z,1.5\n2024-01-01T00:01:00Z,\n"
                    "2024-01-01T00:02:00Z,NaN\n2024-01-01T00:03:00Z,4\n")
    rows = list(files.read(path))
    assert [(r.value, [t.price for t in r.trades]) for r in rows] == [
        ("1.5", [Decimal("1.5")]), ("", []), ("NaN", []), ("4", [Decimal(4)])]


def test_a_bad_bar_among_the_first_rows_names_its_own_line(tmp_path):
    # the parser reads up to 64 rows ahead to tell the bar length: the error is still its own
    path = tmp_path / "early.csv"
    path.write_text("time,open,high,low,close,volume\n2026-01-05T12:00:00Z,10,8,9,11,1\n" +
                    "".join(f"2026-01-05T12:{m:02d}:00Z,10,12,9,11,1\n" for m in range(1, 9)))
    with pytest.raises(files.FileFormatError, match=r"early.csv:2: inconsistent bar"):
        list(files.read(path, "BTC-USD"))


def test_tardis_ticks_taker_side_becomes_maker_side():
    rows = list(files.read(TARDIS))
    raw = raw_rows(TARDIS)
    assert len(rows) == 300
    for row, cells in zip(rows, raw, strict=True):
        (t,) = row.trades
        assert t.trade_id == int(cells[4]) and t.product_id == "BTCUSDT"
        assert t.side == {"buy": "sell", "sell": "buy"}[cells[5]]
        assert t.price == Decimal(cells[6]) and t.size == Decimal(cells[7])
        assert int(t.time.timestamp() * 1_000_000) == pytest.approx(int(cells[2]), abs=1)
        assert t.time == datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(cells[2]))
        assert row.timestamp == cells[2] and row.value == cells[6]
    assert next(files.read_trades(TARDIS, "BTC-USD")).product_id == "BTC-USD"


def test_tick_files_round_trip_exactly(tmp_path):
    t0 = datetime(2026, 3, 1, 12, 0, 0, 1, tzinfo=UTC)
    tape = [Trade("BTC-USD", i, t0 + timedelta(microseconds=i), Decimal("97000.01") + i,
                  Decimal("0.00000001") * i, "buy" if i % 2 else "sell") for i in range(1, 50)]
    path = tmp_path / "ticks.csv"
    assert ticks.write_ticks(path, tape) == 49
    assert list(files.read_trades(path)) == tape
    extra = tmp_path / "spill.csv"  # a spill file: the tick columns plus received_at
    extra.write_text("product_id,trade_id,time,price,size,side,received_at\n"
                     "BTC-USD,7,2026-03-01T12:00:00.123456789Z,1.5,2,sell,2026-03-01T12:00:01Z\n")
    (row,) = files.read(extra)
    assert row.trades[0].time == datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


def test_series_keeps_values_and_accepts_epochs(tmp_path):
    path = tmp_path / "metric.csv"
    path.write_text("ts,value\n1700000000,5\n1700000300000,0\n2023-11-14T22:23:20,-2.50\n")
    rows = list(files.read(path))
    assert [r.value for r in rows] == ["5", "0", "-2.50"]
    assert [r.trades[0].price for r in rows] == [Decimal(5), Decimal(0), Decimal("-2.50")]
    assert [r.trades[0].time.timestamp() for r in rows] == [1.7e9, 1.7e9 + 300, 1.7e9 + 600]
    assert [r.trades[0].trade_id for r in rows] == [1, 2, 3]
    headerless = tmp_path / "bare.csv"
    headerless.write_text("2024-01-01,1\n2024-01-02,2\n")
    rows = list(files.read(headerless))
    assert [(r.line, r.trades[0].time.day) for r in rows] == [(1, 1), (2, 2)]


@pytest.mark.parametrize("content, line, problem", [
    ("", 1, "empty file"),
    ("time_utc,bid_open,bid_high,bid_low,bid_close,last_bid_size,ask_open\n", 1,
     "which column is the value? pass --column NAME"),
    ("time_utc,open,high,low,close,volume_btc\n2016-10-07T00:00:04Z,611.78,611.87\n", 2,
     "expected 6 columns, got 3 (truncated?)"),
    ("time_utc,open,high,low,close,volume_btc\n2016-10-07T00:00:04Z,1,2,1,x,1\n", 2,
     "close: not a number"),
    ("time_utc,open,high,low,close,volume_btc\n2016-10-07T00:00:04Z,1,2,3,1,1\n", 2,
     "inconsistent bar"),
    ("time_utc,open,high,low,close,volume_btc\n2016-10-07T00:00:04Z,1,1,1,1,1\n"
     "2016-10-07T00:00:04Z,1,1,1,1,1\n", 3, "is not after the previous row's time"),
    (",".join(files.TICKS) + "\nBTC-USD,1,2026-01-01T00:00:00Z,1,1,up\n", 2, "side"),
    (",".join(files.TICKS) + "\nBTC-USD,1,yesterday,1,1,buy\n", 2, "time"),
    (",".join(files.TARDIS) + "\nb,BTCUSDT,1582329602111000,1,-3,buy,9682,0.132\n", 2,
     "trade_id"),
    ("ts,value\n2024-01-01T00:00:00Z,1\n2024-01-01T00:01:00Z,inf\n", 3, "value: not finite"),
])
@pytest.mark.parametrize("reader", [files.read, files.read_columns])
def test_bad_files_name_file_line_and_problem(tmp_path, content, line, problem, reader):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(files.FileFormatError) as e:
        list(reader(path))
    assert str(e.value).startswith(f"{path}:{line}: ")
    assert problem in str(e.value)
    assert isinstance(e.value, ConfigError)  # the CLI prints it and exits 2


def test_unreadable_files(tmp_path):
    with pytest.raises(files.FileFormatError, match="missing.csv: cannot open"):
        files.sniff(tmp_path / "missing.csv")
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"ts,value\n2024-01-01T00:00:00Z,1\n2024-01-01T00:01:00Z,\xff\n")
    for reader in (files.read, files.read_columns):
        with pytest.raises(files.FileFormatError, match=r"latin1.csv:3: not UTF-8"):
            list(reader(path))
    with pytest.raises(files.FileFormatError, match="missing.csv: cannot open"):
        next(files.read_columns(tmp_path / "missing.csv"))


def test_rows_stream_until_the_bad_line(tmp_path):
    path = tmp_path / "long.csv"
    good = "".join(f"{1_700_000_000 + i},{i}\n" for i in range(999))
    path.write_text("ts,v\n" + good + "1700009999,row\n" + good)
    seen = []
    with pytest.raises(files.FileFormatError, match=r"long.csv:1001: v: not a number"):
        for row in files.read(path):
            seen.append(row.line)
    assert seen == list(range(2, 1001))


# ---- read_columns: the same rows, trades and errors as read, chunk by chunk ----------------------
