"""`python -m blink record OUT.csv`: the live feed, gaps refilled, in Blink's tick format."""

from __future__ import annotations

import asyncio
import csv

from blink.cli import main as cli
from blink.cli.record import record
from blink.feeds.sources import make_source
from blink.formats.ticks import TICKS
from tests.fakes import rest_url, ws_url
from tests.fakes.coinbase import FakeCoinbase
from tests.fakes.trades import wire_decimal, wire_time
from tests.support.waiting import wait_until


async def test_record_writes_every_trade_in_id_order(aiohttp_server, make_settings, tmp_path):
    fake = FakeCoinbase(history=20, heartbeat_interval=0.1)
    server = await aiohttp_server(fake.app)
    settings = make_settings(coinbase_ws_url=ws_url(server), coinbase_rest_url=rest_url(server),
                             heartbeat_grace_seconds=0.3, rest_rate=100)
    out = tmp_path / "rec" / "btc.csv"
    task = asyncio.create_task(record(settings, out, duration=1.5))
    await wait_until(lambda: any(c.subs for c in fake.conns), "the recorder subscribed")
    base = fake.trades[-1].trade_id
    fake.drop = {base + 3, base + 4}
    fake.reorder = {base + 8}
    fake.emit(30)
    count = await task
    rows = list(csv.reader(out.read_text().splitlines()))
    want = [[t.product_id, str(t.trade_id), wire_time(t.time), wire_decimal(t.price),
             wire_decimal(t.size), t.side] for t in fake.trades if t.trade_id >= base]
    assert rows[0] == list(TICKS)
    assert rows[1:] == want and count == 31


async def test_record_several_products_into_one_file_that_replays_by_product(
        aiohttp_server, make_settings, tmp_path):
    products = ("BTC-USD", "ETH-USD")
    fake = FakeCoinbase(products=products, history=20, heartbeat_interval=0.1)
    server = await aiohttp_server(fake.app)
    settings = make_settings(coinbase_ws_url=ws_url(server), coinbase_rest_url=rest_url(server),
                             heartbeat_grace_seconds=0.3, rest_rate=100,
                             pairs=",".join(products))
    out = tmp_path / "both.csv"
    task = asyncio.create_task(record(settings, out, duration=1.5))
    await wait_until(lambda: any(c.subs for c in fake.conns), "the recorder subscribed")
    base = fake.trades[-1].trade_id
    fake.drop = {base + 3}  # lost on both products' wire, refilled from each one's REST
    fake.emit(20)
    assert await task == 2 * 21
    replayed = {p: ListTape() for p in products}
    source = make_source(make_settings(source="replay", replay_file=str(out), speed=0,
                                       pairs=",".join(products)))
    play = asyncio.create_task(source.run(replayed))
    await asyncio.wait_for(source.finished.wait(), 30)
    play.cancel()
    await asyncio.gather(play, return_exceptions=True)
    for p in products:
        want = [t for t in fake.tapes[p] if t.trade_id >= base]
        assert replayed[p].trades == want, p


class ListTape:
    contiguous_id = None

    def __init__(self) -> None:
        self.trades: list = []

    def add(self, trade, via: str = "ws") -> bool:
        self.trades.append(trade)
        return True


def test_record_arguments():
    args = cli.build_parser().parse_args(["record", "out.csv", "--duration", "2.5"])
    assert (args.command, args.out, args.duration) == ("record", "out.csv", 2.5)
    assert cli.build_parser().parse_args(["record", "o.csv"]).duration is None
