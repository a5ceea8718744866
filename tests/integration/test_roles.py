"""Roles: one `ingest,train` process and two `api` processes against one PostgreSQL and one
Redis, driven by the fake Coinbase server, answer exactly what a monolith run answers.

Every process is a real `python -m blink run`. The model is trained beforehand with
`python -m blink train` into a shared sqlite MLflow store (and no retrain happens during the
test), so the split deployment and the monolith serve the same model and must agree exactly.
"""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import datetime, timedelta

import aiohttp
import asyncpg
import pytest

from tests.conftest import create_database, drop_database
from tests.fakes import rest_url, serve_fake, ws_url
from tests.support.faultkit import free_port
from tests.support.trades import walk_rows
from tests.support.training import insert_trades
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow


class Proc:
    def __init__(self, env: dict, *args: str) -> None:
        self.env, self.args, self.port = env, args, free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, cwd) -> None:
        env = {**self.env, "BLINK_PORT": str(self.port)}
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "blink", *self.args, env=env, cwd=cwd,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)

    async def stop(self) -> str:
        if self.proc.returncode is None:
            self.proc.terminate()
        _, err = await asyncio.wait_for(self.proc.communicate(), 60)
        return err.decode()


async def _get(session, url):
    async with session.get(url) as r:
        return r.status, await r.json()


async def all_healthy(http, procs) -> bool:
    """Every process still running (else fail with its stderr) and answering /healthz."""
    for p in procs:
        assert p.proc.returncode is None, await p.stop()
        try:
            if (await _get(http, p.base + "/healthz"))[0] != 200:
                return False
        except aiohttp.ClientError:
            return False
    return True


async def test_ingest_train_plus_two_api_match_a_monolith(aiohttp_server, tmp_path, redis_url):
    url, prefix = redis_url
    fake, server = await serve_fake(aiohttp_server, history=50, rate=7.0, compress=False)
    split_db, mono_db, train_db = [await create_database() for _ in range(3)]
    mlflow = f"sqlite:///{tmp_path / 'mlflow.db'}"
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("BLINK_", "PG_", "REDIS_", "MLFLOW_"))}
    base |= {
        "MLFLOW_TRACKING_URI": mlflow, "MLFLOW_DISABLE_TELEMETRY": "true",
        "BLINK_COINBASE_WS_URL": ws_url(server), "BLINK_COINBASE_REST_URL": rest_url(server),
        "BLINK_REST_RATE": "100", "BLINK_REGISTRY_POLL_SECONDS": "0.5",
        "BLINK_TRAIN_MIN_ROWS": "1000000000",  # keep the pre-trained model: no retrain here
        "BLINK_MIN_HISTORY_SECONDS": "60", "BLINK_MIN_TRADES": "20", "LOG_LEVEL": "WARNING",
        "BLINK_DATA_DIR": str(tmp_path / "data"),
    }
    procs: list[Proc] = []
    try:
        # 1. a model in the shared registry, trained by the real `train` command
        await insert_trades(train_db, walk_rows(4000))
        train = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "blink", "train", env={**base, "PG_DSN": train_db,
                                                         "BLINK_TRAIN_MIN_ROWS": "500",
                                                         "BLINK_TRAIN_HOURS": "100000"},
            cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await asyncio.wait_for(train.communicate(), 240)
        assert train.returncode == 0, out.decode()[-2000:]

        # 2. the split deployment and a monolith, all on the same fake exchange
        split = {**base, "PG_DSN": split_db, "REDIS_URL": url, "BLINK_REDIS_PREFIX": prefix}
        ingest = Proc(split, "run", "--role", "ingest,train")
        apis = [Proc(split, "run", "--role", "api") for _ in range(2)]
        mono = Proc({**base, "PG_DSN": mono_db}, "run")
        procs = [ingest, *apis, mono]
        for p in procs:
            await p.start(tmp_path)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            async def up() -> bool:  # and both ingesting processes subscribed
                return await all_healthy(http, procs) and len(fake.conns) >= 2
            await wait_until(up, "all four processes up, two feeds subscribed", limit=120,
                             step=0.2)

            async def model_loaded() -> bool:  # both scorers serve the model before trades
                for p in (ingest, mono):
                    ready = (await _get(http, p.base + "/readyz"))[1]
                    if ready["components"].get("model", {}).get("model") is None:
                        return False
                return True
            await wait_until(model_loaded, "the model served by ingest and monolith", limit=120,
                             step=0.3)

            # 3. ~4 minutes of event time, sent to both subscribers at once
            for _ in range(20):
                fake.emit(80)
                await fake.wait_sent()
                await asyncio.sleep(0.05)

            want_last = fake.trades[-1].trade_id

            async def settled() -> bool:
                for p in (apis[0], apis[1], mono):
                    status, body = await _get(http, p.base + "/score")
                    if not body.get("ready") or body.get("features") is None:
                        return False
                s = [(await _get(http, p.base + "/score"))[1] for p in (*apis, mono)]
                return all(x["as_of"] == s[2]["as_of"] for x in s)
            try:
                await wait_until(settled, "split and monolith scored the same last trade",
                                 limit=90, step=0.3)
            except AssertionError:
                seen = [(await _get(http, p.base + "/readyz"))[1] for p in (*apis, mono)]
                raise AssertionError(f"not settled: {seen}") from None

            scores = [(await _get(http, p.base + "/score"))[1] for p in (*apis, mono)]
            for s in scores:
                assert s["ready"] is True and s["model"] == "blink_iforest@production v1"
            assert scores[0] == scores[1] == scores[2]

            # /demo/data: same history (PostgreSQL) from both api replicas and the monolith
            async def demo_data() -> list[dict]:
                return [(await _get(http, p.base + "/demo/data?minutes=60"))[1]
                        for p in (*apis, mono)]

            async def flushed() -> bool:  # each feature flusher writes once a second:
                d = await demo_data()  # (all three empty before the first flush is no answer)
                return len(d[0]["times"]) > 10 and d[0]["times"] == d[1]["times"] == d[2]["times"]
            await wait_until(flushed, "feature rows stored by both pipelines", step=0.5)
            datas = await demo_data()
            for key in ("times", "prices", "anomaly", "score", "score_raw"):
                assert datas[0][key] == datas[1][key] == datas[2][key], key
            assert len(datas[0]["times"]) > 10

        # 4. the split tape is complete: every trade from the first last_match on (once the
        # writer's last batch is in: scoring runs ahead of the writer's flush)
        async def tape() -> list[int]:
            conn = await asyncpg.connect(split_db)
            try:
                return [r[0] for r in await conn.fetch("SELECT trade_id FROM trades ORDER BY 1")]
            finally:
                await conn.close()

        async def written() -> bool:
            return (await tape())[-1:] == [want_last]
        await wait_until(written, "the split tape's last trade written", limit=30, step=0.2)
        ids = await tape()
        assert ids == list(range(ids[0], want_last + 1))
        assert ids[0] <= fake.trades[-1600].trade_id
    finally:
        errs = [await p.stop() for p in procs if p.proc is not None]
        for db in (split_db, mono_db, train_db):
            await drop_database(db)
    for err in errs:
        assert "Traceback" not in err, err[-3000:]


def test_api_role_refuses_to_start_without_redis(tmp_path):
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith(("BLINK_", "REDIS_"))}
    r = subprocess.run([sys.executable, "-m", "blink", "run", "--role", "api"],
                       env={**env, "PG_DSN": "postgresql://x@127.0.0.1/none"}, cwd=tmp_path,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "REDIS" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "blink", "run", "--role", "ingest"],
                       env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "PG_DSN" in r.stderr


async def test_api_role_scores_every_product_from_redis(pg_dsn, redis_url, ml_settings,
                                                        aiohttp_client, tmp_path):
    """An `ingest,train` app watching three products publishes to Redis; a separate
    `--role api` process answers /score for each of them from Redis, POST /score with each
    product's own model (loaded by its own watcher), and 404s an unknown product."""
    from blink.runtime import keys
    from blink.service.app import create_app

    url, prefix = redis_url
    products = ("BTC-USD", "ETH-USD", "SOL-USD")
    settings = ml_settings(pg_dsn=pg_dsn, pairs=",".join(products), role="ingest,train",
                           source="synthetic", speed=5, bootstrap_hours=0.5,
                           train_min_rows=600, registry_poll_seconds=1,
                           retrain_seconds=360_000, redis_url=url, redis_prefix=prefix,
                           max_holdout_rate_factor=1000)  # 30 min of history: promote
    ingest = create_app(settings)
    await aiohttp_client(ingest)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BLINK_", "PG_", "REDIS_", "MLFLOW_", "PAIR", "MODEL_"))}
    env |= {"PG_DSN": pg_dsn, "REDIS_URL": url, "BLINK_REDIS_PREFIX": prefix,
            "PAIRS": ",".join(products), "BLINK_SOURCE": "synthetic",
            "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri,
            "MODEL_NAME": settings.model_name, "MLFLOW_DISABLE_TELEMETRY": "true",
            "BLINK_REGISTRY_POLL_SECONDS": "1", "LOG_LEVEL": "WARNING",
            "BLINK_DATA_DIR": str(tmp_path / "api")}
    api = Proc(env, "run", "--role", "api")
    await api.start(tmp_path)
    latests = ingest[keys.LATESTS]
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            async def scored() -> bool:
                assert api.proc.returncode is None, await api.stop()
                if any(lt.score_raw is None for lt in latests.values()):
                    return False
                try:
                    answers = [await _get(http, f"{api.base}/score?product={p}")
                               for p in products]
                except aiohttp.ClientError:
                    return False
                return all(body.get("ready") for _, body in answers)
            await wait_until(scored, "the api process scores every product", limit=240,
                             step=0.5)
            row = {name: 0.0 for name in (await _get(http, f"{api.base}/score"))[1]["features"]}
            for p in products:
                status, body = await _get(http, f"{api.base}/score?product={p}")
                assert status == 200 and body["product_id"] == p
                assert body["model"] == latests[p].model  # its own model, from Redis
                lag = latests[p].as_of - datetime.fromisoformat(body["as_of"])
                assert timedelta(0) <= lag < timedelta(minutes=1)  # the live state, relayed

                async def posted(p=p) -> bool:  # the api's own watcher loads each model
                    async with http.post(f"{api.base}/score",
                                         json={"features": row, "product": p}) as r:
                        return r.status == 200 and (await r.json())["model"] == \
                            latests[p].model
                await wait_until(posted, f"POST /score for {p}", limit=60, step=0.5)
            assert len({latests[p].model for p in products}) == 3
            status, body = await _get(http, f"{api.base}/score?product=XRP-USD")
            assert status == 404 and body["products"] == list(products)
    finally:
        err = await api.stop()
    assert "Traceback" not in err, err[-3000:]
