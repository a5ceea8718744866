"""The fake Coinbase exchange in its own process, driven over stdin, for the feed benchmarks.

`python -m bench.feed PORT HISTORY [PRODUCTS]` serves `tests.fakes.coinbase.FakeCoinbase`
(websocket + REST, no permessage-deflate; PRODUCTS a comma list, default BTC-USD) with HISTORY
trades of each product already made, prints one JSON line
`{"first": id, "last": id, "time": iso}` (the history's ids and first trade time), then obeys
stdin lines, answering each with one JSON line once it is done:

- `burst N`: make N trades and send them to the matches subscriber as fast as the socket
  takes them. Frames are pre-built and written as raw (unmasked, uncompressed) websocket
  frames straight to the transport, in chunks, so the server is not the bottleneck;
- `pace N`: make N trades and send them through the fake's normal send path at the live
  rate: the generator's sweeps (fills with one matching-engine time) go out together, one
  sweep after another at exponential intervals of mean size / `RATE` (seeded): ~7.3 trades/s;
- `products N X`: the same for EVERY product at once, each at X times the live rate, N
  trades each (each product its own sweeps and clock, merged in time on the one socket).

Heartbeats and REST (backfill) keep working throughout; `fake.trades` grows only with what
was sent, so heartbeats never run far ahead of the wire.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import sys
import time

from aiohttp import web

from tests.fakes.coinbase import FakeCoinbase

CHUNK = 500  # frames per transport write
HIGH_WATER = 1 << 20  # pause writing while the transport holds more than this (bytes)
RATE = 7.3  # Coinbase BTC-USD's average trades/s


def ws_frame(text: str) -> bytes:
    """One final, unmasked, uncompressed text frame (what a server sends)."""
    data = text.encode()
    n = len(data)
    if n < 126:
        return bytes((0x81, n)) + data
    if n < 1 << 16:
        return bytes((0x81, 126)) + n.to_bytes(2, "big") + data
    return bytes((0x81, 127)) + n.to_bytes(8, "big") + data


async def subscriber(fake: FakeCoinbase):
    while not (conns := fake._subscribers("matches")):  # noqa: ASYNC110 - fake has no event
        await asyncio.sleep(0.01)
    await fake.wait_sent()  # subscriptions + last_match are out
    return conns[0]


async def burst(fake: FakeCoinbase, n: int) -> dict:
    new = fake.gen.trades(n)
    frames = [ws_frame(fake.match_frame(t, "match")) for t in new]
    conn = await subscriber(fake)
    transport = conn.request.transport
    t0 = time.perf_counter()
    for i in range(0, n, CHUNK):
        while transport.get_write_buffer_size() > HIGH_WATER:  # noqa: ASYNC110 - a poll
            await asyncio.sleep(0.0005)
        fake.trades.extend(new[i:i + CHUNK])
        transport.write(b"".join(frames[i:i + CHUNK]))
    while transport.get_write_buffer_size():  # noqa: ASYNC110 - a poll
        await asyncio.sleep(0.0005)
    return {"sent": n, "seconds": time.perf_counter() - t0, "last": new[-1].trade_id}


async def pace(fake: FakeCoinbase, n: int) -> dict:
    new = fake.gen.trades(n)
    sweeps = [list(g) for _, g in itertools.groupby(new, key=lambda t: t.time)]
    conn = await subscriber(fake)
    loop, rng = asyncio.get_running_loop(), random.Random(3)
    start = due = loop.time()
    for sweep in sweeps:
        due += rng.expovariate(RATE / len(sweep))
        await asyncio.sleep(due - loop.time())
        for t in sweep:
            fake.trades.append(t)
            fake.send(conn, fake.match_frame(t, "match"))
    await fake.wait_sent()
    return {"sent": n, "seconds": loop.time() - start, "last": new[-1].trade_id}


async def products(fake: FakeCoinbase, n: int, speed: float) -> dict:
    rng = random.Random(3)
    timeline = []  # (due offset, product index, sweep)
    for i, pid in enumerate(fake.products):
        due = 0.0
        new = fake.gens[pid].trades(n)
        for _, group in itertools.groupby(new, key=lambda t: t.time):
            sweep = list(group)
            due += rng.expovariate(RATE * speed / len(sweep))
            timeline.append((due, i, sweep))
    timeline.sort(key=lambda item: item[:2])
    conn = await subscriber(fake)
    loop = asyncio.get_running_loop()
    start = loop.time()
    for due, _, sweep in timeline:
        if (wait := start + due - loop.time()) > 0:
            await asyncio.sleep(wait)
        for t in sweep:
            fake.tapes[t.product_id].append(t)
            fake.send(conn, fake.match_frame(t, "match"))
    await fake.wait_sent()
    return {"sent": n * len(fake.products), "seconds": loop.time() - start}


async def main(port: int, history: int, pids: tuple[str, ...] = ("BTC-USD",)) -> None:
    fake = FakeCoinbase(products=pids, history=history, heartbeat_interval=1.0, compress=False)
    runner = web.AppRunner(fake.app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    first = fake.trades[0]
    print(json.dumps({"first": first.trade_id, "last": fake.trades[-1].trade_id,
                      "time": first.time.isoformat()}), flush=True)
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        verb, n, *more = line.split()
        if verb == "products":
            result = await products(fake, int(n), float(more[0]))
        else:
            result = await (burst if verb == "burst" else pace)(fake, int(n))
        # the id each product's tape ends at: the bench waits for Blink to have taken them
        result["last"] = {pid: fake.tapes[pid][-1].trade_id for pid in fake.products}
        print(json.dumps(result), flush=True)
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]),
                     *([tuple(sys.argv[3].split(","))] if len(sys.argv) > 3 else [])))
