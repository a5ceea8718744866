"""The replay source on real data: every format, pacing, bad files, and into PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from blink.feeds.replay import ReplaySource
from blink.feeds.sources import make_source
from blink.formats import files
from blink.formats.ticks import write_ticks
from blink.runtime.health import Health
from blink.runtime.metrics import Metrics
from blink.runtime.warmup import Warmup
from blink.store import db
from blink.store.writer import Writer
from blink.tape import Tape
from blink.trade import Trade
from tests.conftest import DATA
from tests.support.trades import stored as tape_in_db
from tests.support.trades import varied

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
SLICES = [DATA / "coinbase_btcusd_second_trade_bars.csv",
          DATA / "coinbase_btcusd_minute_trade_bars.csv", DATA / "tardis_trades.csv"]
FULL = [SHARED / "coinbase_lean_btcusd" / "coinbase_btcusd_second_trade_bars.csv",
        SHARED / "coinbase_lean_btcusd" / "coinbase_btcusd_minute_trade_bars.csv",
        SHARED / "binance_futures_btcusdt_ticks" / "tardis_trades.csv"]


class ListTape:
    contiguous_id = None

    def __init__(self):
        self.trades: list[Trade] = []
        self.wall: list[float] = []

    def add(self, trade: Trade, via: str = "ws") -> bool:
        assert via == "replay"
        self.trades.append(trade)
        self.wall.append(asyncio.get_running_loop().time())
        return True


async def play(source: ReplaySource, tape) -> None:
    task = asyncio.create_task(source.run(tape))
    await asyncio.wait_for(source.finished.wait(), 60)
    await asyncio.sleep(0.02)
    assert not task.done()  # a finished replay idles until cancelled (never replays twice)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.parametrize("path", SLICES + FULL, ids=lambda p: f"{p.parent.name}/{p.name}")
async def test_replays_every_trade_of_real_files(make_settings, path):
    if not path.exists():
        pytest.skip(f"{path} not present (the shared data set is optional)")
    settings = make_settings(source="replay", replay_file=str(path), speed=0)
    source = make_source(settings)
    assert isinstance(source, ReplaySource) and source.name == "replay"
    tape = ListTape()
    await play(source, tape)
    assert source.error is None
    assert tape.trades == list(files.read_trades(path, "BTC-USD"))
    assert source.added == len(tape.trades) > 0
    assert {t.product_id for t in tape.trades} == {"BTC-USD"}


async def test_pacing_follows_event_time_and_cuts_long_silences(make_settings):
    path = DATA / "coinbase_btcusd_minute_trade_bars.csv"  # two days, 14 months apart
    speed = 30_000.0
    source = make_source(make_settings(source="replay", replay_file=str(path), speed=speed,
                                       bootstrap_hours=0))  # (the prefill: test below)
    source.MAX_PAUSE = 0.2
    tape = ListTape()
    await play(source, tape)
    t0, w0 = tape.trades[0].ts, tape.wall[0]
    gap = next(i for i in range(1, len(tape.trades))
               if tape.trades[i].ts - tape.trades[i - 1].ts > 86400)
    for trade, wall in zip(tape.trades[:gap], tape.wall[:gap], strict=True):
        assert wall - w0 >= (trade.ts - t0) / speed - 0.002  # never early
    assert tape.wall[gap] - tape.wall[gap - 1] >= 0.2 - 0.002  # the silence, cut short
    assert tape.wall[-1] - w0 < (tape.trades[-1].ts - t0) / speed / 1000  # not months


def test_bad_files_fail_fast(make_settings, tmp_path):
    bad = tmp_path / "quotes.csv"
    bad.write_text("time_utc,bid_open,bid_high,bid_low,bid_close,last_bid_size,ask_open\n")
    with pytest.raises(files.FileFormatError, match="quotes.csv:1: which column is the value"):
        make_source(make_settings(source="replay", replay_file=str(bad)))
    with pytest.raises(files.FileFormatError, match="nope.csv: cannot open"):
        make_source(make_settings(source="replay", replay_file=str(tmp_path / "nope.csv")))


async def test_garbage_row_stops_the_replay_with_one_error(make_settings, tmp_path, caplog):
    path = tmp_path / "ticks.csv"
    good = (DATA / "tardis_trades.csv").read_text().splitlines()
    path.write_text("\n".join(good[:51] + ["binance-futures,BTCUSDT,oops"] + good[51:]) + "\n")
    source = make_source(make_settings(source="replay", replay_file=str(path), speed=0))
    tape = ListTape()
    await play(source, tape)
    assert len(tape.trades) == 50
    assert source.error.endswith("ticks.csv:52: expected 8 columns, got 3 (truncated?)")
    assert [r.message for r in caplog.records if r.levelname == "ERROR"] == [
        f"replay stopped: {source.error}"]


async def test_replay_through_tape_and_writer_into_postgres(make_settings, pg_dsn):
    path = DATA / "tardis_trades.csv"
    settings = make_settings(source="replay", replay_file=str(path), speed=0, pg_dsn=pg_dsn)
    pool = await db.create_pool(pg_dsn, settings.schema)
    metrics = Metrics()
    writer = Writer(pool, settings, metrics, Health()["writer"])
    tape = Tape(settings.pair, metrics, "replay")
    tape.subscribe(writer.submit)
    task = asyncio.create_task(writer.run())
    await play(make_source(settings), tape)
    await asyncio.wait_for(writer.wait_flushed(), 30)
    await writer.close()
    await task
    await pool.close()
    stored = await tape_in_db(pg_dsn, "replay")
    assert stored == list(files.read_trades(path, "BTC-USD"))
    assert metrics.registry.get_sample_value(
        "blink_trades_ingested_total", {"source": "replay", "product": "BTC-USD"}) == len(stored)


async def test_the_first_hours_of_a_file_play_at_once_then_paced(make_settings):
    path = DATA / "coinbase_btcusd_minute_trade_bars.csv"  # two days, 14 months apart
    source = make_source(make_settings(source="replay", replay_file=str(path), speed=1.0,
                                       bootstrap_hours=1.0), Warmup())
    tape = ListTape()
    task = asyncio.create_task(source.run(tape))
    while not source.warmup.history or source.warmup.loading:  # noqa: ASYNC110 - a poll
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    t0 = tape.trades[0].ts
    assert tape.trades[-1].ts - t0 >= 3600  # an hour of the file at once, then ×1 pacing
    assert max(t.ts for t in tape.trades) - t0 < 3600 + 60
    history = source.warmup.history
    assert history.source == "replay" and history.done and history.fraction == 1.0


async def test_a_file_with_a_product_column_is_routed_by_product(make_settings, tmp_path,
                                                                  caplog):
    btc, eth, doge = (varied(300, product=p) for p in ("BTC-USD", "ETH-USD", "DOGE-USD"))
    path = tmp_path / "recorded.csv"  # several products, the same ids, interleaved
    write_ticks(path, [t for three in zip(btc, eth, doge, strict=True) for t in three])
    settings = make_settings(source="replay", replay_file=str(path), speed=0,
                             pairs="ETH-USD,BTC-USD")
    tapes = {"ETH-USD": ListTape(), "BTC-USD": ListTape()}
    source = make_source(settings)
    await play(source, tapes)
    assert tapes["BTC-USD"].trades == btc and tapes["ETH-USD"].trades == eth
    assert source.added == 600 and source.skipped == {"DOGE-USD": 300}
    assert any("DOGE-USD 300" in r.getMessage() for r in caplog.records
               if r.levelname == "WARNING")


async def test_a_file_without_a_product_column_is_the_first_products(make_settings):
    path = DATA / "tardis_trades.csv"
    settings = make_settings(source="replay", replay_file=str(path), speed=0,
                             pairs="ETH-USD,BTC-USD")
    tapes = {"ETH-USD": ListTape(), "BTC-USD": ListTape()}
    await play(make_source(settings), tapes)
    assert tapes["ETH-USD"].trades == list(files.read_trades(path, "ETH-USD"))
    assert tapes["BTC-USD"].trades == []
