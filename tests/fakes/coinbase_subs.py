"""The fake exchange's subscription protocol: subscribe / unsubscribe in both channel forms,
the `subscriptions` reply listing everything, per-channel errors (the socket stays open), and
`last_match` first on each new `matches` subscription."""

from __future__ import annotations

import json

AUTH_CHANNELS = {"level2", "level3", "full", "user", "rfq_matches", "balance"}
AUTH_REASON = ("level2, level3, and full channels now require authentication. "
               "https://docs.cdp.coinbase.com/exchange/websocket-feed/authentication")
PUBLIC_CHANNELS = {"matches", "heartbeat", "ticker", "ticker_batch", "status", "level2_batch"}


def handle(fake, conn, data: str) -> None:
    """One client message: subscribe / unsubscribe (spec §6, 3-7), or an error."""
    try:
        m = json.loads(data)
    except ValueError:
        m = None
    if not isinstance(m, dict):
        return fake.send(conn, json.dumps({"type": "error", "message": "Malformed JSON"}))
    fake.received.append(m)
    if m.get("type") not in ("subscribe", "unsubscribe"):
        return fake.send(conn, json.dumps({"type": "error", "message": "Invalid type"}))
    channels = m.get("channels") or []
    if not channels:
        return _error(fake, conn, "No channels provided")
    new_matches, valid = [], False
    for ch in channels:
        name, pids = ((ch, m.get("product_ids") or []) if isinstance(ch, str) else
                      (ch.get("name"), ch.get("product_ids") or m.get("product_ids") or []))
        if name in AUTH_CHANNELS:
            _error(fake, conn, AUTH_REASON)
            continue
        if not pids:
            _error(fake, conn, f"You need to specify at least one product ID for channel {name}")
            continue
        for pid in pids:
            if pid in fake.delisted:
                _error(fake, conn, f"{pid} is delisted")
            elif pid not in fake.tapes or name not in PUBLIC_CHANNELS:
                _error(fake, conn, f"{pid} is not a valid product")
            elif (valid := True) and m["type"] == "unsubscribe":
                conn.subs[name] = [p for p in conn.subs.get(name, []) if p != pid]
            elif pid not in conn.subs.setdefault(name, []):
                conn.subs[name].append(pid)
                if name == "matches":
                    new_matches.append(pid)
    conn.subs = {k: v for k, v in conn.subs.items() if v}
    if not valid:
        return
    fake.send(conn, json.dumps({"type": "subscriptions", "channels": [
        {"name": k, "product_ids": v, "account_ids": None} for k, v in conn.subs.items()]}))
    for pid in new_matches:  # spec §6.7: last_match first (maybe one the client has)
        last = fake.tapes[pid][-1]
        if fake.noise:
            fake.send(conn, fake.ticker_frame(last))
        fake.send(conn, fake.match_frame(last, "last_match"))


def _error(fake, conn, reason: str) -> None:
    fake.send(conn, json.dumps({"type": "error", "message": "Failed to subscribe",
                                 "reason": reason}))

