"""Limits and hostile input: every case gets a 4xx (or a closed connection) and the server
keeps serving (the `server` fixture checks /health/live after each test as well)."""
import json
import socket

import pytest

from conftest import RawConn, assert_problem, raw_exchange

ECHO = "/api/v1/_test/echo"
LIMIT = 64 * 1024


def body_of_size(n):
    """A valid echo body of exactly n bytes."""
    base = '{"name":"a","meta":{"p":""}}'
    pad = n - len(base)
    assert pad >= 0
    b = ('{"name":"a","meta":{"p":"' + "x" * pad + '"}}').encode()
    assert len(b) == n
    return b


def assert_4xx_or_closed(resp):
    assert resp is None or 400 <= resp.status < 500, f"expected 4xx or close, got {resp}"


# ------------------------------------------------------------------ body size

def test_body_exactly_at_limit_accepted(server):
    r = server.post(ECHO, data=body_of_size(LIMIT), headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text[:300]
    assert len(r.json()["data"]["meta"]["p"]) == LIMIT - len('{"name":"a","meta":{"p":""}}')


def test_body_one_over_limit_is_413(server):
    r = server.post(ECHO, data=body_of_size(LIMIT + 1), headers={"Content-Type": "application/json"})
    assert_problem(r, 413, "PAYLOAD_TOO_LARGE")


def test_body_1mb_is_413(server):
    r = server.post(ECHO, data=body_of_size(1024 * 1024), headers={"Content-Type": "application/json"})
    assert_problem(r, 413, "PAYLOAD_TOO_LARGE")


def test_20mb_body_refused_and_server_keeps_serving(server):
    n = 20 * 1024 * 1024
    c = RawConn(server.port, timeout=10)
    try:
        c.send(f"POST {ECHO} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               f"Content-Length: {n}\r\n\r\n".encode())
        chunk = b"x" * 65536
        sent = 0
        while sent < n and c.send(chunk):
            sent += len(chunk)
        try:
            resp = c.read_response()
        except socket.timeout:
            pytest.fail("no answer and no close after a 20 MB body")
    finally:
        c.close()
    assert resp is None or resp.status == 413, resp
    server.assert_healthy()


def test_20mb_declared_but_not_sent_gets_413_early(server):
    """The limit is checked on Content-Length before the body is read."""
    c = RawConn(server.port, timeout=10)
    try:
        c.send(f"POST {ECHO} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               f"Content-Length: {20 * 1024 * 1024}\r\n\r\n".encode())
        try:
            resp = c.read_response()
        except socket.timeout:
            pytest.fail("server waited for a 20 MB body instead of refusing it up front")
    finally:
        c.close()
    assert resp is None or resp.status == 413, resp
    server.assert_healthy()


def _chunked(data, size=4096):
    out = b""
    for i in range(0, len(data), size):
        part = data[i:i + size]
        out += b"%x\r\n" % len(part) + part + b"\r\n"
    return out + b"0\r\n\r\n"


def test_chunked_body_under_limit_accepted(server):
    body = json.dumps({"name": "chunky", "tags": ["a", "b"]}).encode()
    resp, _ = raw_exchange(server, f"POST {ECHO} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                   "Transfer-Encoding: chunked\r\n\r\n".encode() + _chunked(body, 7))
    assert resp is not None and resp.status == 200, resp
    assert resp.json() == {"data": {"name": "chunky", "tags": ["a", "b"]}}


def test_chunked_body_over_limit_refused(server):
    body = body_of_size(200 * 1024)
    c = RawConn(server.port, timeout=10)
    try:
        c.send(f"POST {ECHO} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               "Transfer-Encoding: chunked\r\n\r\n".encode())
        c.send(_chunked(body, 16384))
        try:
            resp = c.read_response()
        except socket.timeout:
            pytest.fail("no answer and no close after an over-limit chunked body")
    finally:
        c.close()
    assert resp is None or resp.status == 413, resp
    server.assert_healthy()


# ------------------------------------------------------------------ headers

def test_100kb_header(server):
    resp, _ = raw_exchange(server, b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n")
    assert_4xx_or_closed(resp)
    server.assert_healthy()


def test_100kb_header_via_requests(server):
    import requests
    try:
        r = server.get("/health/live", headers={"X-Big": "b" * 100_000})
        assert 400 <= r.status_code < 500, r.status_code
    except requests.ConnectionError:
        pass  # closed connection is allowed
    server.assert_healthy()


def test_200_headers(server):
    hdrs = b"".join(b"X-H%d: v\r\n" % i for i in range(200))
    resp, _ = raw_exchange(server, b"GET /health/live HTTP/1.1\r\nHost: x\r\n" + hdrs + b"\r\n")
    assert_4xx_or_closed(resp)
    server.assert_healthy()


def test_100kb_request_target(server):
    resp, _ = raw_exchange(server, b"GET /api/v1/_test/items/x?a=" + b"b" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert_4xx_or_closed(resp)
    server.assert_healthy()


# ------------------------------------------------------------------ broken framing

@pytest.mark.parametrize("data", [
    b"GET /health/live HTTP/1.1\r\nHost: x\r\n",
    b"GET /health/li",
    b"POST /api/v1/_test/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Content-Length: 100\r\n\r\n{\"name\":",
    b"POST /api/v1/_test/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n10\r\n{\"name\"",
])
def test_truncated_request_then_close(server, data):
    c = RawConn(server.port)
    c.send(data)
    c.close()
    server.assert_healthy()


def test_truncated_request_half_close(server):
    c = RawConn(server.port)
    try:
        c.send(b"GET /health/live HTTP/1.1\r\nHost: x\r\n")
        c.sock.shutdown(socket.SHUT_WR)
        try:
            resp = c.read_response()
        except socket.timeout:
            resp = None
        assert_4xx_or_closed(resp)
    finally:
        c.close()
    server.assert_healthy()


@pytest.mark.parametrize("data", [
    b"\x00\x01\x02garbage\r\n\r\n",
    b"GARBAGE\r\n\r\n",
    b"GET\r\n\r\n",
    b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
    b"GET /health/live HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    b"GET /health/live HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    b"POST /api/v1/_test/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    b"GET /health/live HTTP/1.1\r\nHost: x\r\nBad Header Name: v\r\n\r\n",
    b"GET /health/live HTTP/1.1\r\nHost: x\r\n: empty-name\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40 + b"\r\n\r\n",
])
def test_garbage_request(server, data):
    resp, _ = raw_exchange(server, data)
    assert_4xx_or_closed(resp)
    server.assert_healthy()


def test_request_smuggling_cl_and_te(server):
    """Content-Length together with Transfer-Encoding must not let a second request through
    unseen (RFC 9112 §6.1): either refused, or the body is read as chunked."""
    smuggled = b"GET /nope-smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    body = b"0\r\n\r\n" + smuggled
    data = (b"POST /api/v1/_test/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n" % len(body)) + body
    c = RawConn(server.port)
    try:
        c.send(data)
        first = c.read_response()
        assert_4xx_or_closed(first)
    finally:
        c.close()
    server.assert_healthy()


def test_query_lone_percent(server):
    resp, _ = raw_exchange(server, b"GET /api/v1/_test/items/x?% HTTP/1.1\r\nHost: x\r\n\r\n")
    assert_4xx_or_closed(resp)
    assert resp is None or resp.status in (400, 422), resp
    server.assert_healthy()


def test_http10_without_host(server):
    resp, closed = raw_exchange(server, b"GET /health/live HTTP/1.0\r\n\r\n")
    # HTTP/1.0 does not require Host: a normal answer, a 4xx or a close are all acceptable,
    # never a 5xx
    assert resp is None or resp.status < 500, resp
    if resp is not None and resp.status == 200:
        assert json.loads(resp.body) == {"status": "ok"}
    server.assert_healthy()


def test_http11_without_host_is_400(server):
    """RFC 9112 §3.2: a server MUST answer 400 to an HTTP/1.1 request without Host."""
    resp, _ = raw_exchange(server, b"GET /health/live HTTP/1.1\r\n\r\n")
    assert resp is None or resp.status == 400, resp


@pytest.mark.parametrize("target", [
    b"/api/v1/_test/../../../etc/passwd",
    b"/api/v1/_test/items/..%2F..%2F..%2Fetc%2Fpasswd",
    b"/health/live/../../etc/passwd",
    b"/../../../../etc/passwd",
    b"/%2e%2e/%2e%2e/etc/passwd",
    b"/health/live%00",
    b"/health/live%00.json",
    b"/api/v1/_test/items/%00",
    b"/api/v1/_test/items/0190a6c2-7b7a-7cc1-8d5e-3f2b1a0c9e11%00",
    b"/api/v1/_test/echo%00",
])
def test_dotdot_and_nul_in_path(server, target):
    resp, _ = raw_exchange(server, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert_4xx_or_closed(resp)
    if resp is not None:
        assert b"root:" not in resp.body


def test_raw_nul_byte_in_path(server):
    resp, _ = raw_exchange(server, b"GET /health/live\x00x HTTP/1.1\r\nHost: x\r\n\r\n")
    assert_4xx_or_closed(resp)
    server.assert_healthy()


# ------------------------------------------------------------------ many connections

def test_many_idle_and_partial_connections_do_not_block(server):
    conns = []
    try:
        for i in range(100):
            c = RawConn(server.port)
            if i % 2:
                c.send(b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            conns.append(c)
        for _ in range(5):
            server.assert_healthy()
    finally:
        for c in conns:
            c.close()
    server.assert_healthy()


# ------------------------------------------------------------------ deadline

@pytest.fixture
def deadline_server(make_server):
    return make_server(TEMEL_REQUEST_TIMEOUT_MS="300")


def test_slow_query_hits_deadline_503(deadline_server):
    s = deadline_server
    r = s.get("/api/v1/_test/slow", timeout=30, headers={"X-Request-Id": "slow-1"})
    assert_problem(r, 503, "SERVICE_UNAVAILABLE")
    assert r.headers.get("X-Request-Id") == "slow-1"
    assert r.headers.get("X-Content-Type-Options") == "nosniff"
    line = s.wait_log(lambda l: l.get("request_id") == "slow-1" and l.get("msg") == "request")
    assert line is not None and line["status"] == 503 and line["route"] == "/api/v1/_test/slow", line
    s.assert_healthy()


def test_after_deadline_database_still_usable(deadline_server):
    """A cancelled slow query must not leave the loop's DB connection stuck."""
    s = deadline_server
    for _ in range(3):
        r = s.get("/api/v1/_test/slow", timeout=30)
        assert_problem(r, 503, "SERVICE_UNAVAILABLE")
    for _ in range(6):  # hits both loop threads with high probability
        r = s.get("/health/ready")
        assert r.status_code == 200, r.text
        assert r.json()["services"]["database"]["status"] == "up"
    r = s.post(ECHO, json={"name": "after"})
    assert r.status_code == 200

