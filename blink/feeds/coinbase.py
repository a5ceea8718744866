"""The Coinbase Exchange websocket source: `matches` + `heartbeat` for every product.

ONE websocket subscription carries every product of `settings.pairs`; each product has its own
`Tape` (`run({product: tape})`; a bare tape is the first product's), so gaps are found by
trade id and heartbeats checked per product, and its own REST backfill; the backfills share
one REST rate budget (`Pacer`: `rest_rate` requests/s in total). The watchdog, the reconnects
and the backoff belong to the one socket. When Coinbase cannot be reached at the first start
(no network), one log line says so and names `make demo` (the synthetic feed).

The read loop only parses frames and hands trades to the tapes (sync, O(1)); everything slow
(REST backfill, database writes) runs in other tasks. A watchdog reconnects when no frame
(heartbeats included) arrives for `watchdog_seconds`. Every disconnect, clean closes included,
leads to a reconnect after a full-jitter backoff (`reconnect_base_seconds` doubling up to
`reconnect_cap_seconds`, reset once a connection stayed up for `stable_seconds`), counted in
`blink_feed_reconnects_total{reason}`. The tape finds the gaps (an id jump, a heartbeat ahead,
the `last_match` after a reconnect); the backfill tasks started here fill them over REST. On an
empty tape, `feed.bootstrap_hours` of history are loaded first (`blink.feeds.bootstrap`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime

import aiohttp
import orjson

from blink.config import Settings
from blink.feeds.backfill import Backfill, GapLog, Pacer
from blink.feeds.bootstrap import Bootstrap
from blink.runtime.health import Health
from blink.runtime.logs import RateLimited
from blink.runtime.metrics import Metrics
from blink.runtime.tasks import backoff_delays, stop_tasks
from blink.runtime.warmup import Warmup
from blink.tape import Tape, by_product
from blink.times import iso_fixed
from blink.trade import TradeError, from_coinbase

log = logging.getLogger(__name__)
_limited = RateLimited(log)
_CLOSING = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED)
# a matches/heartbeat frame is < 1 KB; a bigger one is garbage: aiohttp closes with 1009
MAX_FRAME_BYTES = 1 << 20
OFFLINE_HINT = ("cannot reach Coinbase at %s (%s): no network? `make demo` runs Blink on the "
                "synthetic feed, which needs none")


class CoinbaseSource:
    name = "coinbase"

    def __init__(self, settings: Settings, metrics: Metrics, health: Health,
                 session: aiohttp.ClientSession,
                 gaps: Callable[[str], GapLog | None] | None = None, *,
                 stable_seconds: float = 60.0, warmup: Warmup | None = None) -> None:
        """`gaps(product)`: where that product's holes are recorded (None: not recorded)."""
        self.settings, self.metrics, self.session = settings, metrics, session
        self.gaps = gaps or (lambda product: None)
        self.warmup = warmup  # given: an empty tape is bootstrapped from REST first
        self.health, self.component = health, health["coinbase"]
        self.url, self.product = settings.coinbase_ws_url, settings.pair
        self.stable_seconds = stable_seconds
        self.subscribe = json.dumps({"type": "subscribe", "product_ids": list(settings.pairs),
                                     "channels": ["matches", "heartbeat"]})
        self.pacer = Pacer(settings.rest_rate)  # ONE REST budget for every product's backfill
        self._reached = self._hinted = False  # connected once / said it cannot connect
        self.reconnects = 0
        self._last_mono = 0.0  # time.monotonic() of the last frame
        self._stalled = False
        self._bad = metrics.feed_bad_messages
        self._error_reason: str | None = None

    async def run(self, tapes: Mapping[str, Tape] | Tape) -> None:
        """Connect, read, reconnect, until cancelled; one backfill task per product fills its
        tape's holes."""
        tapes = by_product(tapes, self.product)
        backfills = {p: Backfill(tape, self.session, self.settings, self.metrics,
                                 self.health["backfill"], self.gaps(p), pacer=self.pacer,
                                 unreachable=self._unreachable) for p, tape in tapes.items()}
        tasks = [asyncio.create_task(b.run(), name=f"coinbase-backfill-{p}")
                 for p, b in backfills.items()]
        try:
            if self.warmup is not None:
                boot = Bootstrap(backfills, self.settings.bootstrap_hours, self.warmup)
                empty = {p: t for p, t in tapes.items() if t.contiguous_id is None}
                if empty and self.settings.bootstrap_hours > 0:
                    await boot.begin(empty)
                if any(t.bootstrap_from is not None for t in tapes.values()):  # (again after
                    tasks.append(asyncio.create_task(  # a restart of this task)
                        boot.watch(tapes), name="coinbase-bootstrap"))
            await self._connect_loop(tapes)
        finally:
            await stop_tasks(*tasks)

    async def _connect_loop(self, tapes: Mapping[str, Tape] | Tape) -> None:
        tapes = by_product(tapes, self.product)
        s = self.settings
        delays = backoff_delays(s.reconnect_base_seconds, s.reconnect_cap_seconds)
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            reason, connected_for = await self._session(tapes)
            self.reconnects += 1
            self.metrics.feed_reconnects.labels(reason).inc()
            self.component.detail.update(connected=False, reconnects=self.reconnects,
                                         last_disconnect=reason)
            if connected_for >= self.stable_seconds:
                delays = backoff_delays(s.reconnect_base_seconds, s.reconnect_cap_seconds)
            wait = next(delays)
            _limited.warning(reason, "coinbase feed disconnected (%s) after %.1fs; reconnecting"
                             " in %.2fs", reason, loop.time() - started, wait)
            await asyncio.sleep(wait)

    async def _session(self, tapes: dict[str, Tape]) -> tuple[str, float]:
        """One connection: (why it ended, how long it was up)."""
        loop = asyncio.get_running_loop()
        self._error_reason = None
        try:
            async with self.session.ws_connect(
                    self.url, compress=15, autoping=True, heartbeat=None,
                    max_msg_size=MAX_FRAME_BYTES,
                    timeout=aiohttp.ClientWSTimeout(ws_close=2.0)) as ws:
                connected, self._reached = loop.time(), True
                await ws.send_str(self.subscribe)
                self.component.success(connected=True, url=self.url)
                reason = await self._read(ws, tapes)
                return reason, loop.time() - connected
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            self.component.failure(e, connected=False, url=self.url)
            if isinstance(e, (OSError, TimeoutError)):  # no connection at all (not a refusal)
                self._unreachable(e)
            return "connect_error", 0.0

    def _unreachable(self, e: BaseException) -> None:
        """Coinbase cannot be reached (websocket or REST) before the socket was ever up: say
        so once, naming the feed that needs no network; never again on later reconnects."""
        if not (self._reached or self._hinted):
            self._hinted = True
            log.warning(OFFLINE_HINT, self.url, str(e) or type(e).__name__)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse,
                    tapes: dict[str, Tape]) -> str:
        self._stalled = False
        self._last_mono = time.monotonic()
        watchdog = asyncio.create_task(self._watchdog(ws), name="coinbase-watchdog")
        try:
            while True:
                msg = await ws.receive()  # no per-frame timer: the watchdog task checks
                if msg.type is aiohttp.WSMsgType.TEXT:
                    self._last_mono = time.monotonic()
                    self.frame(msg.data, tapes)
                elif self._stalled:
                    return "stall"
                elif msg.type in _CLOSING:
                    return self._close_reason(ws.close_code, msg.extra)
                elif msg.type is aiohttp.WSMsgType.ERROR:
                    if getattr(msg.data, "code", None) == aiohttp.WSCloseCode.MESSAGE_TOO_BIG:
                        self._bad_frame("huge", "frame over %d bytes: reconnecting",
                                        MAX_FRAME_BYTES)
                        return "message_too_big"
                    return "abnormal_close"
                else:
                    self._bad_frame("binary", "non-text frame skipped")
        finally:
            await stop_tasks(watchdog)

    async def _watchdog(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Close the connection when no frame (heartbeats included) came for too long."""
        limit = self.settings.watchdog_seconds
        while True:
            await asyncio.sleep(min(1.0, limit / 5))
            silent = time.monotonic() - self._last_mono
            if silent > limit:
                log.warning("no frame from %s for %.1fs: treating the connection as dead",
                            self.url, silent)
                self._stalled = True
                await ws.close()  # wakes the reader (CLOSING), then waits ws_close at most
                return

    def frame(self, data: str, tapes: dict[str, Tape]) -> None:
        """Parse one text frame and hand its content to its product's tape (sync, never
        raises); frames of other products are ignored."""
        try:
            m = orjson.loads(data)  # ~0.8 µs a match against json's ~2.8 (strict JSON: no NaN)
        except ValueError:
            return self._bad_frame("json", "frame is not JSON: %.80r", data)
        if not isinstance(m, dict):
            return self._bad_frame("shape", "frame is not a JSON object: %.80r", data)
        kind = m.get("type")
        if kind == "match" or kind == "last_match":
            try:
                trade = from_coinbase(m)
            except TradeError as e:
                return self._bad_frame("match", "bad %s skipped: %s", kind, e)
            tape = tapes.get(trade.product_id)
            if tape is not None:
                tape.add(trade, "ws" if kind == "match" else "last_match")
        elif kind == "heartbeat":
            last = m.get("last_trade_id")
            if not isinstance(last, int) or isinstance(last, bool):
                return self._bad_frame("heartbeat", "heartbeat without an integer last_trade_id")
            tape = tapes.get(m.get("product_id"))
            if tape is not None:
                tape.heartbeat(last)
                self._heartbeat(tape, tapes)
                self._behind(m.get("time"))
        elif kind == "error":
            self._error(m)
        elif kind == "subscriptions":
            log.info("subscribed to %s", m.get("channels"))

    def _heartbeat(self, tape: Tape, tapes: dict[str, Tape]) -> None:
        """Health and lag: the lag gauge per product; `contiguous_id` is the first product's
        (as with one product); with several, `contiguous_ids` has every product's."""
        now = time.time()
        if tape.newest is not None:
            self.metrics.feed_lag.labels(product=tape.product_id).set(now - tape.newest.ts)
        if len(tapes) > 1:
            ids = self.component.detail.setdefault("contiguous_ids", {})
            ids[tape.product_id] = tape.contiguous_id
        if tape.product_id != self.product:
            return
        last_frame = now - (time.monotonic() - self._last_mono)
        self.component.detail.update(connected=True, last_frame=iso_fixed(last_frame, 3),
                                     reconnects=self.reconnects,
                                     contiguous_id=tape.contiguous_id)
        self.component.last_success = now

    def _behind(self, stamp: object) -> None:
        """How far reading lags the exchange: now minus the heartbeat's own time (no trade
        needed, so a quiet market is not lag). Shown in /readyz, which flags it when large."""
        try:
            behind = time.time() - datetime.fromisoformat(str(stamp)).timestamp()
        except ValueError:
            return  # a heartbeat without a usable time: nothing to measure
        self.metrics.feed_behind.set(behind)
        self.component.detail["feed_lag_seconds"] = round(behind, 3)

    def _error(self, m: dict) -> None:
        message, reason = str(m.get("message", "")), str(m.get("reason", ""))
        if "slowconsume" in f"{message} {reason}".lower():
            self._error_reason = "ErrSlowConsume"
            log.warning("coinbase says we read too slowly: %s %s", message, reason)
        elif message == "Failed to subscribe":
            self.component.failure(f"{message}: {reason}", url=self.url)
        else:
            _limited.warning(f"error:{message}", "coinbase error: %s (%s)", message, reason)

    def _close_reason(self, code: int | None, extra: object) -> str:
        text = str(extra or "")
        if "deprecated hostname" in text.lower():
            log.error("Coinbase closed %s with 'deprecated hostname': the URL is dead; set "
                      "BLINK_COINBASE_WS_URL=wss://ws-feed.exchange.coinbase.com", self.url)
            return "deprecated_hostname"
        if self._error_reason:
            return self._error_reason
        if code == 1000:
            return "clean_close"
        if code in (None, 1006):
            return "abnormal_close"
        return f"close_{code}"

    def _bad_frame(self, kind: str, msg: str, *args) -> None:
        self._bad.labels(kind).inc()
        _limited.warning(kind, msg, *args)

