"""Realtime (API.md §11, issue 13 item 4): WebSocket and SSE through the real binary — auth by the
first message (access token, API key, bad token, no message in time), channel permissions, the
message size cap, bounds (channels per connection, requests waiting behind a check), dead peers,
publishers (admin broadcast, order status, AI jobs), presence and its join/leave events.
One server for the module, with short ping/auth intervals (settings, not timing assertions)."""
import json
import queue
import socket
import struct

import pytest
import requests

import test_ai_support as S
from catalog_util import new_category, new_product
from events_util import new_event
from conftest import ENGINE, HTTP_TIMEOUT, Server, assert_problem, new_user_headers, wait_for
from fake_provider import FakeProvider
from files_util import png
from realtime_util import OP_TEXT, WS, Closed, event_of, frame, token_of
from redis_util import RedisServer

PING_MS = 300
AUTH_MS = 600
MAX_MESSAGE = 1024


@pytest.fixture(scope="module")
def fake():
    f = FakeProvider().start()
    yield f
    f.stop()


@pytest.fixture(scope="module")
def rt(db_factory, fake):
    srv = Server(db_factory.new_url(), env=S.ai_env(
        TEMEL_REALTIME_PING_MS=PING_MS, TEMEL_REALTIME_AUTH_TIMEOUT_MS=AUTH_MS,
        TEMEL_REALTIME_MAX_MESSAGE=MAX_MESSAGE))
    srv.start()
    adm = S.admin(srv)
    S.setup_providers(srv, fake, adm)
    yield srv, adm
    rc = srv.stop()
    reports = srv.sanitizer_reports()
    log = srv.log_tail(200)
    srv.cleanup()
    db_factory.drop(srv.db_url)
    assert rc == 0, f"the realtime test server did not exit 0 on SIGTERM\n{log}"
    assert not reports, f"sanitizer reports: {reports}\n{log}"


def connect(srv, headers):
    ws = WS(srv)
    assert ws.status == 101
    ws.auth(token_of(headers))
    return ws


def broadcast(srv, adm, **body):
    r = srv.post("/api/v1/admin/realtime/broadcast", json=body, headers=adm)
    assert r.status_code == 202, r.text
    return r.json()


# ---- WebSocket authentication ----

def test_ws_access_token_gets_ready_and_events(rt):
    srv, adm = rt
    h, u = new_user_headers(srv, "rt")
    ws = WS(srv)
    assert ws.status == 101 and ws.headers["x-request-id"]
    ready = ws.auth(token_of(h))
    assert ready == {"type": "ready", "user_id": u["id"], "role": "user"}
    assert ws.subscribe(f"user:{u['id']}") == {"type": "subscribed", "channel": f"user:{u['id']}"}
    broadcast(srv, adm, channel=f"user:{u['id']}", event="note", data={"text": "çğış"})
    m = event_of(ws, "note")
    assert m == {"type": "event", "channel": f"user:{u['id']}", "event": "note", "data": {"text": "çğış"}}
    ws.send({"type": "ping"})
    assert ws.recv_until(lambda x: x["type"] == "pong")
    ws.send({"type": "unsubscribe", "channel": f"user:{u['id']}"})
    assert ws.recv_until(lambda x: x["type"] == "unsubscribed")["channel"] == f"user:{u['id']}"
    broadcast(srv, adm, channel=f"user:{u['id']}", event="after-unsubscribe")
    broadcast(srv, adm, event="to-everyone", data=1)  # every connection is on broadcast
    m = ws.recv_until(lambda x: x["type"] == "event")
    assert m["event"] == "to-everyone" and m["channel"] == "broadcast"
    ws.close()


def test_ws_frames_of_every_length_arrive_whole_and_in_order(rt):
    """Frames are written whole (header and payload in one write, ws.c ws_send_cb): 7-bit and 16-bit
    payload lengths, big ones that take more than one socket write, queued back to back, arrive
    intact and in publishing order."""
    srv, adm = rt
    h, u = new_user_headers(srv, "rt")
    ws = connect(srv, h)
    ch = f"user:{u['id']}"
    assert ws.subscribe(ch)["type"] == "subscribed"
    sizes = [1, 100, 126, 200, 65000, 30000, 3, 5000]  # the admin route takes bodies up to 64 KiB
    for i, n in enumerate(sizes):
        broadcast(srv, adm, channel=ch, event="sized", data={"i": i, "pad": "é" + "x" * n})
    for i, n in enumerate(sizes):
        m = event_of(ws, "sized")
        assert m["data"] == {"i": i, "pad": "é" + "x" * n}
    ws.close()


@pytest.mark.parametrize("first", [
    {"type": "auth", "token": "not-a-token"},
    {"type": "auth", "token": "tml_" + "x" * 40},
    {"type": "subscribe", "channel": "staff"},
    {"type": "auth"},
    "not json",
])
def test_ws_bad_first_message_closes_4401(rt, first):
    srv, _ = rt
    ws = WS(srv)
    ws.send_text(first if isinstance(first, str) else json.dumps(first))
    m = ws.recv()
    if first == "not json":  # malformed JSON is answered, then the missing auth closes it
        assert m["type"] == "error" and m["code"] == "BAD_REQUEST"
        ws.send({"type": "ping"})
        m = ws.recv()
    assert m["type"] == "error" and m["code"] == "UNAUTHORIZED", m
    assert ws.recv_closed() == 4401


def test_ws_expired_session_and_banned_user(rt):
    srv, adm = rt
    h, u = new_user_headers(srv, "rt-out")
    assert srv.post("/api/v1/auth/logout", headers=h, json={}).status_code in (200, 204)
    ws = WS(srv)
    ws.send({"type": "auth", "token": token_of(h)})
    assert ws.recv()["code"] == "UNAUTHORIZED"
    assert ws.recv_closed() == 4401


def test_ws_no_auth_message_in_time_closes_4408(rt):
    srv, _ = rt
    ws = WS(srv)
    m = ws.recv()  # waits for the server's deadline (AUTH_MS); the socket timeout is the hang guard
    assert m == {"type": "error", "code": "UNAUTHORIZED", "message": "no auth message in time"}
    assert ws.recv_closed() == 4408


def test_ws_api_key(rt):
    srv, adm = rt
    h, u = new_user_headers(srv, "rt-key")
    k = srv.post("/api/v1/me/api-keys", json={"name": "live", "scopes": ["read"]}, headers=h)
    assert k.status_code == 201, k.text
    ws = WS(srv)
    assert ws.auth(k.json()["key"])["user_id"] == u["id"]
    assert ws.subscribe(f"user:{u['id']}")["type"] == "subscribed"
    ws.close()
    # an admin's key without the admin scope acts as a plain user: no staff channel
    ka = srv.post("/api/v1/me/api-keys", json={"name": "adm-live", "scopes": ["read"]}, headers=adm).json()
    ws = WS(srv)
    assert ws.auth(ka["key"])["role"] == "user"
    m = ws.subscribe("staff")
    assert m["type"] == "error" and m["code"] == "FORBIDDEN"
    ws.close()


def test_ws_plain_get_and_bad_handshake_are_400(rt):
    srv, _ = rt
    assert_problem(srv.get("/api/v1/realtime"), 400, "BAD_REQUEST")
    ws = WS(srv, version="8")
    assert ws.status == 400 and ws.body["code"] == "BAD_REQUEST"


# ---- channels ----

def test_channel_permissions(rt):
    srv, adm = rt
    h, u = new_user_headers(srv, "rt-perm")
    h2, u2 = new_user_headers(srv, "rt-other")
    public, draft = new_event(srv, adm)["id"], new_event(srv, adm, status="draft")["id"]
    ws = connect(srv, h)
    allowed = [f"user:{u['id']}", f"events:{public}", "broadcast"]
    refused = [f"user:{u2['id']}", "staff", "tickets:01900000-0000-7000-8000-000000000000",
               "jobs:01900000-0000-7000-8000-000000000000", f"events:{draft}", "events:no-such-event"]
    for ch in allowed:
        assert ws.subscribe(ch)["type"] == "subscribed", ch
    for ch in refused:
        m = ws.subscribe(ch)
        assert m["type"] == "error" and m["code"] == "FORBIDDEN" and m["channel"] == ch, m
    for bad in ["nope", "user:", "user:a b", "staff:1", "events:" + "x" * 65, ""]:
        ws.send({"type": "subscribe", "channel": bad})
        m = ws.recv()
        assert m["type"] == "error" and m["code"] == "VALIDATION_ERROR", (bad, m)
    ws.send({"type": "subscribe"})
    assert ws.recv()["code"] == "VALIDATION_ERROR"
    ws.send({"type": "dance"})
    assert ws.recv()["code"] == "BAD_REQUEST"
    ws.send({"type": "auth", "token": token_of(h)})
    assert ws.recv()["message"] == "already authenticated"
    ws.send_raw(frame(2, b"\x00\x01"))
    assert ws.recv()["code"] == "BAD_REQUEST"
    # refused channels deliver nothing: the next event is the one on an allowed channel
    broadcast(srv, adm, channel=f"user:{u2['id']}", event="not-for-you")
    broadcast(srv, adm, channel="staff", event="not-for-you")
    broadcast(srv, adm, channel=f"events:{draft}", event="not-for-you")
    broadcast(srv, adm, channel=f"events:{public}", event="for-you")
    assert ws.recv_until(lambda m: m["type"] == "event")["event"] == "for-you"
    ws.close()
    # staff read staff and any ticket
    wa = connect(srv, adm)
    for ch in ["staff", "tickets:01900000-0000-7000-8000-000000000000", f"events:{draft}"]:
        assert wa.subscribe(ch)["type"] == "subscribed", ch
    m = wa.subscribe(f"user:{u['id']}")  # user:<id> is the user's own, staff included
    assert m["code"] == "FORBIDDEN"
    wa.close()


def test_subscriptions_bound(rt):
    srv, adm = rt
    ws = connect(srv, adm)  # staff may read any events:<id>
    for i in range(63):  # broadcast is the 64th
        assert ws.subscribe(f"events:e{i}")["type"] == "subscribed"
    assert ws.subscribe("events:e0")["type"] == "subscribed"  # already on it: no new slot
    m = ws.subscribe("events:one-past")
    assert m["type"] == "error" and m["code"] == "VALIDATION_ERROR" and "max 64" in m["message"]
    ws.send({"type": "unsubscribe", "channel": "events:e0"})
    ws.recv_until(lambda x: x["type"] == "unsubscribed")
    assert ws.subscribe("events:one-past")["type"] == "subscribed"
    ws.close()


def test_requests_waiting_behind_a_check_are_bounded(rt):
    """20 subscriptions that need the database in ONE TCP write: on PostgreSQL the first check waits for
    its answer, 16 wait behind it (the bound) and 3 are refused; SQLite answers inline (none refused).
    Every one gets exactly one answer, in order."""
    srv, adm = rt
    h, u = new_user_headers(srv, "rt-burst")
    ws = connect(srv, h)
    chans = [f"jobs:01900000-0000-7000-8000-{i:012d}" for i in range(20)]
    ws.send_raw(b"".join(frame(OP_TEXT, json.dumps({"type": "subscribe", "channel": c}).encode()) for c in chans))
    answers = [ws.recv() for _ in chans]
    limited = [a for a in answers if a["code"] == "RATE_LIMIT_EXCEEDED"]
    forbidden = [a["channel"] for a in answers if a["code"] == "FORBIDDEN"]
    assert len(limited) == (3 if ENGINE == "postgres" else 0), answers
    assert forbidden == chans[:len(forbidden)] and len(forbidden) == 20 - len(limited)
    ws.close()


def test_message_size_cap_closes_1009(rt):
    srv, adm = rt
    ws = connect(srv, adm)
    ws.send({"type": "subscribe", "channel": "events:" + "a" * 60, "pad": "x" * (MAX_MESSAGE - 200)})
    assert ws.recv()["type"] == "subscribed"  # just under the cap: handled (an unknown field is ignored)
    ws.send({"type": "ping", "pad": "x" * MAX_MESSAGE})
    assert ws.recv_closed() == 1009


def test_dead_peer_is_dropped_and_leaves_presence(rt):
    srv, adm = rt
    h, u = new_user_headers(srv, "rt-dead")
    ws = WS(srv, auto_pong=False)
    ws.auth(token_of(h))
    assert any(p["user_id"] == u["id"] for p in presence(srv, adm))
    # it reads (and counts) the pings but never answers; the server ends the connection
    assert ws.recv_closed() is None and ws.pings >= 1
    assert not any(p["user_id"] == u["id"] for p in presence(srv, adm))
    live = connect(srv, h)  # a peer that answers stays: it sees several pings and a reply after them
    while live.pings < 3:
        live.send({"type": "ping"})
        assert live.recv()["type"] == "pong"
    live.close()


# ---- SSE ----

def sse_lines(resp):
    for raw in resp.iter_lines(decode_unicode=True):
        yield raw


def sse_events(lines):
    for ln in lines:
        if ln.startswith("data: "):
            yield json.loads(ln[6:])


def test_sse_stream(rt):
    srv, adm = rt
    h, u = new_user_headers(srv, "rt-sse")
    ev_id = new_event(srv, adm)["id"]
    r = requests.get(srv.url(f"/api/v1/realtime/sse?channels=user:{u['id']},events:{ev_id}"), headers=h,
                     stream=True, timeout=HTTP_TIMEOUT)
    assert r.status_code == 200 and r.headers["content-type"] == "text/event-stream"
    assert r.headers["cache-control"] == "no-store"
    lines = sse_lines(r)
    ev = sse_events(lines)
    assert next(ev) == {"type": "ready", "user_id": u["id"], "role": "user",
                        "channels": [f"user:{u['id']}", f"events:{ev_id}"]}
    broadcast(srv, adm, channel=f"user:{u['id']}", event="hello", data={"n": 1})
    assert next(ev) == {"type": "event", "channel": f"user:{u['id']}", "event": "hello", "data": {"n": 1}}
    assert ": ping" in [next(lines) for _ in range(4)]  # heartbeat comments every PING_MS
    r.close()


def test_sse_refusals(rt):
    srv, adm = rt
    h, u = new_user_headers(srv, "rt-sse-no")
    url = "/api/v1/realtime/sse?channels="
    assert_problem(srv.get(url + "staff"), 401, "UNAUTHORIZED")
    assert_problem(srv.get(url + "staff", headers={"Authorization": "Bearer nope"}), 401, "UNAUTHORIZED")
    assert_problem(srv.get(url + "staff", headers=h), 403, "FORBIDDEN")
    assert_problem(srv.get(url + "user:someone-else", headers=h), 403, "FORBIDDEN")
    assert_problem(srv.get(url + "events:no-such-event", headers=h), 403, "FORBIDDEN")
    for bad in ["", "nope", "events:x,,staff", "user:a%20b"]:
        assert_problem(srv.get(url + bad, headers=h), 422, "VALIDATION_ERROR")
    many = ",".join(f"events:e{i}" for i in range(63))
    r = requests.get(srv.url(url + many), headers=adm, stream=True, timeout=HTTP_TIMEOUT)  # staff: any event
    assert r.status_code == 200
    r.close()
    assert_problem(srv.get(url + many + ",events:one-past", headers=adm), 422, "VALIDATION_ERROR")


# ---- publishers and presence ----

def presence(srv, adm, **q):
    r = srv.get("/api/v1/admin/presence", headers=adm, params=q)
    assert r.status_code == 200, r.text
    return r.json()["data"]


def test_presence_and_staff_events(rt):
    srv, adm = rt
    staff = connect(srv, adm)
    assert staff.subscribe("staff")["type"] == "subscribed"
    h, u = new_user_headers(srv, "rt-pres")
    a = connect(srv, h)
    m = staff.recv_until(lambda x: x.get("event") == "presence.join" and x["data"]["user_id"] == u["id"])
    assert m["channel"] == "staff"
    b = connect(srv, h)  # a second connection: no second join, two connections
    row = [p for p in presence(srv, adm) if p["user_id"] == u["id"]]
    assert row and row[0]["connections"] == 2 and row[0]["email"] == u["email"] and row[0]["role"] == "user"
    a.close()
    b.close()
    m = staff.recv_until(lambda x: x.get("event") in ("presence.leave", "presence.join")
                         and x["data"]["user_id"] == u["id"])
    assert m["event"] == "presence.leave"
    assert not any(p["user_id"] == u["id"] for p in presence(srv, adm))
    r = srv.get("/api/v1/admin/presence", headers=adm, params={"limit": 1})
    assert r.json()["meta"]["limit"] == 1 and len(r.json()["data"]) == 1  # the admin itself is online
    assert_problem(srv.get("/api/v1/admin/presence", headers=adm, params={"limit": 101}), 422, "VALIDATION_ERROR")
    assert_problem(srv.get("/api/v1/admin/presence", headers=adm, params={"user": 1}), 422, "VALIDATION_ERROR")
    assert_problem(srv.get("/api/v1/admin/presence", headers=h), 403, "FORBIDDEN")
    staff.close()


def test_broadcast_validation(rt):
    srv, adm = rt
    h, _ = new_user_headers(srv, "rt-bc")
    url = "/api/v1/admin/realtime/broadcast"
    assert_problem(srv.post(url, json={"event": "x"}, headers=h), 403, "FORBIDDEN")
    assert_problem(srv.post(url, json={"event": "x", "channel": "nope"}, headers=adm), 422, "VALIDATION_ERROR")
    assert_problem(srv.post(url, json={"event": "bad name"}, headers=adm), 422, "VALIDATION_ERROR")
    assert_problem(srv.post(url, json={"channel": "staff"}, headers=adm), 422, "VALIDATION_ERROR")
    assert_problem(srv.post(url, json={"event": "x", "extra": 1}, headers=adm), 422, "VALIDATION_ERROR")
    logs = srv.get("/api/v1/admin/audit-logs", headers=adm, params={"action": "realtime.broadcast"})
    assert logs.status_code == 200 and logs.json()["meta"]["total"] >= 1, logs.text


def test_order_status_reaches_the_owner(rt):
    srv, adm = rt
    cat = new_category(srv, adm)
    p = new_product(srv, adm, cat["slug"], price=1000, stock=5)
    h, u = new_user_headers(srv, "rt-order")
    ws = connect(srv, h)
    ws.subscribe(f"user:{u['id']}")
    assert srv.post("/api/v1/me/cart", json={"product_id": p["id"], "quantity": 1}, headers=h).status_code in (200, 201)
    addr = srv.post("/api/v1/me/addresses", json={"full_name": "A B", "line1": "Cd. 1", "city": "İzmir"}, headers=h)
    o = srv.post("/api/v1/orders", json={"address_id": addr.json()["id"]}, headers=h)
    assert o.status_code == 201, o.text
    oid = o.json()["id"]
    assert srv.patch(f"/api/v1/orders/{oid}", json={"status": "paid"}, headers=adm).status_code == 200
    m = event_of(ws, "order.status")
    assert m["channel"] == f"user:{u['id']}"
    assert m["data"] == {"order_id": oid, "status": "paid", "previous_status": "pending"}
    # a refused change publishes nothing: the next event is the following real change
    assert srv.patch(f"/api/v1/orders/{oid}", json={"status": "delivered"}, headers=adm).status_code == 409
    assert srv.patch(f"/api/v1/orders/{oid}", json={"status": "shipped"}, headers=adm).status_code == 200
    assert event_of(ws, "order.status")["data"]["status"] == "shipped"
    ws.close()


def test_ai_job_progress_and_result(rt):
    srv, adm = rt
    h, u = new_user_headers(srv, "rt-ai")
    S.grant(srv, adm, u["id"], 20)
    ws = connect(srv, h)
    ws.subscribe(f"user:{u['id']}")
    r = S.submit(srv, h, "generate", {"prompt": "realtime please", "max_tokens": 20}, model=S.MODELS["openai"])
    assert r.status_code == 202, r.text
    job = r.json()["job_id"]
    seen = []
    while not seen or seen[-1]["event"] not in ("ai:complete", "ai:error"):
        m = ws.recv_until(lambda x: x["type"] == "event")
        assert m["data"]["job_id"] == job
        seen.append(m)
    assert [m["event"] for m in seen] == ["ai:generating", "ai:progress", "ai:complete"]
    assert seen[-1]["data"]["progress"] == 100
    # jobs:<id> is the owner's only
    assert ws.subscribe(f"jobs:{job}")["type"] == "subscribed"
    h2, _ = new_user_headers(srv, "rt-ai-other")
    other = connect(srv, h2)
    assert other.subscribe(f"jobs:{job}")["code"] == "FORBIDDEN"
    other.close()
    ws.close()


def test_metrics_count_connections(rt):
    srv, adm = rt
    h, _ = new_user_headers(srv, "rt-metrics")
    ws = connect(srv, h)
    text = srv.get("/metrics").text
    line = [ln for ln in text.splitlines() if ln.startswith('temel_realtime_connections{transport="websocket"}')]
    assert line and int(line[0].split()[-1]) >= 1
    ws.close()


# ---- across instances (Redis) ----


def test_file_variants_ready_reaches_the_owner(rt):
    srv, _ = rt
    h, u = new_user_headers(srv, "rt-file")
    other_h, _ = new_user_headers(srv, "rt-file-other")
    ws = connect(srv, h)
    ws.subscribe(f"user:{u['id']}")
    other = connect(srv, other_h)
    r = srv.post("/api/v1/files", headers=h, files={"file": ("p.png", png(300, 200), "application/octet-stream")})
    assert r.status_code == 201, r.text
    fid = r.json()["id"]
    m = event_of(ws, "file.variants_ready")
    assert m["channel"] == f"user:{u['id']}" and m["data"]["file_id"] == fid
    assert set(m["data"]["variants"]) == {"thumbnail", "medium", "large"}
    # what the event says is what the file now shows
    f = srv.get(f"/api/v1/files/{fid}", headers=h).json()
    assert f["variants_state"] == "ready" and set(f["variants"]) == set(m["data"]["variants"])
    # another user's connection (only on broadcast) hears nothing of it
    other.send({"type": "ping"})
    seen = other.recv_until(lambda x: x["type"] == "pong" or x.get("event") == "file.variants_ready")
    assert seen["type"] == "pong"
    ws.close()
    other.close()


def test_two_instances_share_events_and_presence_through_redis(make_server):
    """Two instances on one database and one redis-server: an event published on one reaches a
    subscriber on the other, and presence spans both. Redis stopped: each instance still delivers
    its own events; Redis back on the same port: cross-instance delivery resumes by itself."""
    red = RedisServer().start()
    try:
        env = {"REDIS_URL": red.url, "TEMEL_JWT_SECRET": "j" * 48, "TEMEL_ADMIN_EMAIL": "rt-two@example.com",
               "TEMEL_ADMIN_PASSWORD": "realtime two instances 1", "TEMEL_RATE_LIMIT_READ": "1000000/60",
               "TEMEL_RATE_LIMIT_WRITE": "1000000/60", "TEMEL_RATE_LIMIT_AUTH": "1000000/60"}
        a = make_server(**env)
        b = Server(a.db_url, env={k: a.env[k] for k in a.env if k.startswith(("TEMEL_", "REDIS_"))
                                  and k not in ("TEMEL_MAIL_URL", "TEMEL_SMS_URL")})
        b.start()
        try:
            adm = {"Authorization": "Bearer " + requests.post(
                a.url("/api/v1/auth/login"), json={"email": env["TEMEL_ADMIN_EMAIL"],
                                                   "password": env["TEMEL_ADMIN_PASSWORD"]},
                timeout=HTTP_TIMEOUT).json()["access_token"]}
            h, u = new_user_headers(a, "rt-two")
            chan = f"user:{u['id']}"
            on_a = connect(a, h)
            assert on_a.subscribe(chan)["type"] == "subscribed"
            assert b.get("/health", headers=adm).json()["services"]["realtime_redis"]["status"] == "up"
            # published on b, received on a (its own come back from Redis and are not delivered twice)
            broadcast(b, adm, channel=chan, event="from-b", data={"n": 1})
            assert event_of(on_a, "from-b")["data"] == {"n": 1}
            broadcast(a, adm, channel=chan, event="from-a")
            assert on_a.recv_until(lambda m: m["type"] == "event")["event"] == "from-a"
            broadcast(b, adm, channel=chan, event="marker")
            assert on_a.recv_until(lambda m: m["type"] == "event")["event"] == "marker"  # no second from-a
            # presence on b lists the user connected to a
            wait_for(lambda: any(p["user_id"] == u["id"] for p in presence(b, adm)), "presence across instances")
            # Redis down: a's own events still reach a's subscribers
            red.stop()
            broadcast(a, adm, channel=chan, event="local-only")
            assert event_of(on_a, "local-only")
            assert a.get("/health/ready").status_code == 200
            # Redis back: b's events reach a again (the loops reconnect and resubscribe by themselves)
            red.start()

            def probe():
                broadcast(b, adm, channel=chan, event="probe")
                try:
                    while True:
                        if on_a.recv(timeout=0.5)["event"] == "probe":
                            return True
                except queue.Empty:
                    return False
            wait_for(probe, "cross-instance delivery after Redis came back")
            on_a.close()
        finally:
            assert b.stop() == 0
            assert not b.sanitizer_reports(), b.log_tail(100)
            b.cleanup()
    finally:
        red.cleanup()
