"""The column reader (`files.read_columns`, chunks of arrays) gives what the row reader
(`files.read`) gives: on every shipped format, any chunk size, edge and fuzzed files, and
up to the same bad line."""

from __future__ import annotations

import csv
import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from blink.formats import columns, files, ticks
from blink.trade import Trade
from tests.conftest import DATA

SECOND_BARS = DATA / "coinbase_btcusd_second_trade_bars.csv"
MINUTE_BARS = DATA / "coinbase_btcusd_minute_trade_bars.csv"
TARDIS = DATA / "tardis_trades.csv"
START_DAY = datetime(2024, 1, 1, tzinfo=UTC)



def outcome(items) -> tuple[list, str | None]:
    """The items an iterator yields and the FileFormatError that ended it, if any."""
    out = []
    try:
        for item in items:
            out.append(item)
    except files.FileFormatError as e:
        return out, str(e)
    return out, None


def assert_same_as_read(path, chunk_rows: int = files.CHUNK_ROWS, **kw) -> list[files.Columns]:
    rows, error = outcome(files.read(path, **kw))
    chunks, chunk_error = outcome(files.read_columns(path, chunk_rows=chunk_rows, **kw))
    assert chunk_error == error
    assert all(0 < len(c) <= chunk_rows for c in chunks) or files.sniff(path).format == "bars"
    assert [(c.first_line, c.last_line) for c in chunks] == [
        (rows[a].line, rows[b - 1].line) for a, b in spans([len(c) for c in chunks])]
    assert [(x, y) for c in chunks for x, y in zip(c.timestamp, c.value, strict=True)] == [
        (r.timestamp, r.value) for r in rows]
    trades = [t for r in rows for t in r.trades]
    assert [t for c in chunks for t in c.trades()] == trades
    for c in chunks:
        assert c.ends.dtype == np.int64 and c.ends[-1] == len(c.ts)
        assert c.ts.dtype == c.price.dtype == c.size.dtype == np.float64
        assert c.taker.dtype == np.bool_
    assert [int(e) for c, offset in zip(chunks, starts(chunks), strict=True)
            for e in c.ends + offset] == list(itertools.accumulate(len(r.trades) for r in rows))
    columns = [np.concatenate([getattr(c, name) for c in chunks]).tolist() if chunks else []
               for name in ("ts", "price", "size", "taker")]
    assert columns == [[t.ts for t in trades], [float(t.price) for t in trades],
                       [float(t.size) for t in trades], [t.taker_buy for t in trades]]
    return chunks


def spans(lengths: list[int]) -> list[tuple[int, int]]:
    ends = list(itertools.accumulate(lengths))
    return list(zip([0, *ends][:-1], ends, strict=True))


def starts(chunks) -> list[int]:
    return [0, *itertools.accumulate(len(c.ts) for c in chunks)][:-1]


@pytest.mark.parametrize("path", [SECOND_BARS, MINUTE_BARS, TARDIS])
@pytest.mark.parametrize("chunk_rows", [1, 7, 300, files.CHUNK_ROWS])
def test_read_columns_gives_what_read_gives(path, chunk_rows):
    assert_same_as_read(path, chunk_rows)
    assert_same_as_read(path, chunk_rows, product_id="ETH-USD", first_id=50)


def test_read_columns_on_tick_series_and_spill_files(tmp_path):
    t0 = datetime(2026, 3, 1, 12, 0, 0, 1, tzinfo=UTC)
    tape = [Trade("BTC-USD", i, t0 + timedelta(milliseconds=37 * i), Decimal("97000.01") + i % 7,
                  Decimal("0.00000001") * i, "buy" if i % 3 else "sell") for i in range(1, 500)]
    path = tmp_path / "ticks.csv"
    ticks.write_ticks(path, tape)
    (chunk,) = assert_same_as_read(path)
    assert chunk.trades() == tape and len(chunk) == 499 and (chunk.first_line, chunk.last_line) == (
        2, 500)
    assert len(assert_same_as_read(path, 100)) == 5
    assert_same_as_read(path, 100, product_id="X")
    series = tmp_path / "series.csv"  # ISO, epoch s/ms/µs/ns, no header, repeated values
    forms = ["{d}T00:00:00Z", "{s}", "{s}123", "{s}123456", "{s}123456789", "{d}",
             "{d} 10:00:00.5", "{d}T10:00:00+05:30"]  # one day after another: in time order
    days = [START_DAY + timedelta(days=i) for i in range(90)]
    series.write_text("".join(
        f"{form.format(d=day.date().isoformat(), s=int(day.timestamp()))},{value}\n"
        for day, form, value in zip(days, itertools.cycle(forms), itertools.cycle(
            ["5", "5", "5.0", "-2.5", "0", "-0", "1E3", "1000", "7", "7.00000000000000001"]),
            strict=False)))
    for chunk_rows in (1, 3, 64):
        assert_same_as_read(series, chunk_rows, first_id=10)
    spill = tmp_path / "spill.csv"
    spill.write_text("product_id,trade_id,time,price,size,side,received_at\r\n" + "".join(
        f"BTC-USD,{i},2026-03-01T12:00:00.{i:09d}Z,1.5,2,sell,2026-03-01T12:00:01Z\r\n"
        for i in range(1, 20)))
    assert_same_as_read(spill, 8)


def test_clean_files_never_take_the_row_parser(tmp_path, monkeypatch):
    """The column path must not quietly give up on ordinary files (it would only be slow)."""
    path = tmp_path / "ticks.csv"
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    ticks.write_ticks(path, [Trade("BTC-USD", i, t0 + timedelta(seconds=i), Decimal("9.5"),
                                   Decimal("0.1"), "buy") for i in range(1, 100)])
    series = tmp_path / "series.csv"
    series.write_text("ts,v\n" + "".join(f"{1_700_000_000_000 + i},{i % 5 - 2}\n"
                                          for i in range(100)))
    monkeypatch.setattr(columns, "exact", None)  # calling it would raise TypeError
    for p in (path, series, TARDIS):
        assert sum(len(c) for c in files.read_columns(p, chunk_rows=32)) in (99, 100, 300)


def test_read_columns_keeps_csv_quoting_blank_lines_and_records_across_chunks(tmp_path):
    path = tmp_path / "quoted.csv"
    path.write_text(",".join(files.TICKS) + "\n"
                    'BTC-USD,1,2026-01-01T00:00:00Z,1,1,buy\n'
                    '\n'
                    '"BTC-USD",2,"2026-01-01T00:00:01Z",2,1,sell\n'
                    '"BTC\nUSD",3,2026-01-01T00:00:02Z,3,1,buy\n'  # one record, two lines
                    'BTC-USD,4,2026-01-01T00:00:03Z,4,1,buy\n\n\n')
    for chunk_rows in (1, 2, 3, 10):
        chunks = assert_same_as_read(path, chunk_rows)
        assert [t.product_id for c in chunks for t in c.trades()][2] == "BTC\nUSD"


@pytest.mark.parametrize("content", [
    b"\xef\xbb\xbf2024-01-01T00:00:00Z,1\n2024-01-02,2",  # BOM, no header, no final newline
    ",".join(files.TICKS).encode() + b"\r\n",  # a header only
    ",".join(files.TICKS).encode() + b"\nX\x00\x0b\xe2\x80\xa8,1,2026-01-01T00:00:00Z,1,1,buy\n",
    b"ts,v\n2024-02-29,1\n2023-02-29,1\n",  # no 29 February in 2023
])
def test_read_columns_on_edge_files(tmp_path, content):
    path = tmp_path / "edge.csv"
    path.write_bytes(content)
    for chunk_rows in (1, 2, 100):
        assert_same_as_read(path, chunk_rows)


def test_read_columns_yields_the_rows_before_a_bad_line(tmp_path):
    path = tmp_path / "long.csv"
    good = "".join(f"{1_700_000_000 + i},{i}\n" for i in range(999))
    path.write_text("ts,v\n" + good + "1700009999,row\n" + good)
    chunks, error = outcome(files.read_columns(path, chunk_rows=300))
    assert error == f"{path}:1001: v: not a number: 'row'"
    assert [len(c) for c in chunks] == [300, 300, 300, 99]
    assert chunks[-1].last_line == 1000


def test_a_field_beyond_the_csv_limit_is_an_error_for_both_readers(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text(",".join(files.TICKS) + "\nBTC-USD,1,2026-01-01T00:00:00Z,1,1,buy\n"
                    f"BTC-USD,2,2026-01-01T00:00:00Z,{'0' * csv.field_size_limit()}1,1,buy\n")
    for reader in (files.read, files.read_columns):
        rows, error = outcome(reader(path))
        assert len(rows) == 1 and error.startswith(f"{path}:3: field larger than field limit")


def test_epochs_in_nanoseconds_and_times_out_of_range(tmp_path):
    path = tmp_path / "ns.csv"
    path.write_text("ts,v\n1700000000123456789,1\n")
    (row,) = files.read(path)
    assert row.trades[0].time == datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=UTC)
    for header, line, problem in [
            ("ts,v", "-99999999999,1", "ts: epoch out of range"),
            ("ts,v", "0001-01-01T00:00:00+01:00,1", "ts: out of range"),
            (",".join(files.TICKS), "X,1,0001-01-01T00:00:00+01:00,1,1,buy", "time: bad value"),
            (",".join(files.TARDIS), "b,S,99999999999999999999,1,1,buy,1,1",
             "timestamp: bad value")]:
        path.write_text(f"{header}\n{line}\n")
        for reader in (files.read, files.read_columns):
            with pytest.raises(files.FileFormatError, match=f"^{path}:2: {problem}"):
                list(reader(path))


# Cell values for the fuzz test below: mostly good, the rest each broken in a way that a fast
# column conversion could get wrong (formats the row parser accepts, near-misses it rejects).
GOOD_TIMES = ["2026-01-01T00:00:02.286434Z", "2026-01-01T00:00:02Z", "2024-02-29 23:59:59.5Z",
              "2026-01-01T00:00:02.123456789Z", "2026-01-01T00:00:02+01:30",
              "2026-01-01T00:00:02-00:00", "1999-12-31T23:59:59.999999Z"]
ODD_TIMES = ["2026-02-29T00:00:00Z", "2026-13-01T00:00:00Z", "2026-01-01T24:00:00Z",
             "2026-01-01T00:00:60Z", "2026-01-01T00:00:00.Z", "2026-01-01t00:00:00z",
             "2026-01-01T00:00:00+24:00", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59Z",
             "2026-01-01T00:00", "2026-01-01T00:00:00.1234567890Z", "２026-01-01T00:00:00Z",
             "yesterday", ""]
GOOD_DECIMALS = ["97000.01", "0.00000001", "1", "12.", ".5", "0.000000000000000000000000000001"]
ODD_DECIMALS = ["0", "-1", "1e5", "1E-31", "0.0000000000000000000000000000009", "1" + "0" * 31,
                "x", "", " 1", "1_0", "inf", "nan", "١", "1.2.3", "."]
GOOD_IDS = ["1", "42", "007", "999999999999999999"]
ODD_IDS = ["9223372036854775807", "9223372036854775808", "0", "00", "-3", "+3", "x", "", " 5",
           "1_0", "١"]
SIDES = ["buy", "sell", "up", "", "BUY", "sell "]


def cell(good: list[str], odd: list[str]):
    return st.one_of(st.sampled_from(good), st.sampled_from(good), st.sampled_from(good + odd))


FUZZ = {
    "ticks": (",".join(files.TICKS), st.tuples(
        cell(["BTC-USD"], ["", "ETH USD"]), cell(GOOD_IDS, ODD_IDS), cell(GOOD_TIMES, ODD_TIMES),
        cell(GOOD_DECIMALS, ODD_DECIMALS), cell(GOOD_DECIMALS, ODD_DECIMALS),
        cell(SIDES[:2], SIDES[2:])).map(",".join)),
    "tardis": (",".join(files.TARDIS), st.tuples(
        cell(["binance"], [""]), cell(["BTCUSDT"], [""]),
        cell(["1582329602111000", "1582329602111001"],
             ["-5", "0", "9007199254740993", "99999999999999999999", "1.5", "x"]),
        cell(["1"], ["", "x"]), cell(GOOD_IDS, ODD_IDS), cell(SIDES[:2], SIDES[2:]),
        cell(GOOD_DECIMALS, ODD_DECIMALS), cell(GOOD_DECIMALS, ODD_DECIMALS)).map(",".join)),
    "series": ("when,value", st.tuples(
        cell(["1700000000", "1700000000123", "1700000000123456", "1700000000123456789",
              "2024-01-01", "2024-01-01T10:00:00", *GOOD_TIMES],
             ["-1", "99999999999999999999", "1e9", " 1700000000", *ODD_TIMES]),
        cell(["5", "-2.50", "0", "-0", "5.0", "7.000000000000000000001", "7"],
             ["1e3", "1000", " 8 ", "nan", "x", "", "1" + "0" * 400, "--1"])).map(",".join)),
}
ODD_LINES = ["", '"BTC-USD"', "a,b", "\r", "\xff", '"open', "x" * 10]


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(sorted(FUZZ)), st.data(), st.integers(1, 4), st.booleans())
def test_read_columns_agrees_with_read_on_fuzzed_files(tmp_path_factory, kind, data, chunk_rows,
                                                       crlf):
    header, row = FUZZ[kind]
    lines = data.draw(st.lists(st.one_of(row, row, row, st.sampled_from(ODD_LINES)), max_size=12))
    path = tmp_path_factory.mktemp("fuzz") / f"{kind}.csv"
    end = "\r\n" if crlf else "\n"
    text = "".join(line + end for line in [header, *lines])
    path.write_bytes(text.encode().replace("\xff".encode(), b"\xff"))  # a byte that is not UTF-8
    assert_same_as_read(path, chunk_rows)
