"""temel's own request-header limits (src/http/server.c: 64 header fields, 16 KiB of header bytes)
answer 431 with a problem body. h2o caps a request head itself at 100 headers (and ~400 KiB), so
these requests stay below h2o's caps: the 431 can only come from temel (issue 16 item 6).
Host is not counted: h2o keeps it as the request's authority, not as a header field."""
import json

from conftest import raw_exchange

MAX_HEADERS = 64
MAX_HEADER_BYTES = 16 * 1024


def request(fields):
    """GET /api/v1/openapi.json with Host plus exactly these header fields."""
    lines = b"".join(b"%s: %s\r\n" % (k.encode(), v.encode()) for k, v in fields)
    return b"GET /api/v1/openapi.json HTTP/1.1\r\nHost: x\r\n" + lines + b"\r\n"


def fields(n):
    return [(f"X-H-{i}", "v") for i in range(n)]


def assert_431(resp):
    assert resp is not None, "connection closed without an answer"
    assert resp.status == 431, (resp.status, resp.body[:300])
    assert dict(resp.headers)["content-type"].startswith("application/problem+json")
    body = json.loads(resp.body)
    assert body["status"] == 431
    assert "header" in body["detail"]


def test_64_headers_pass(server):
    resp, _ = raw_exchange(server, request(fields(MAX_HEADERS)))
    assert resp is not None and resp.status == 200, resp


def test_65_headers_are_431(server):
    resp, _ = raw_exchange(server, request(fields(MAX_HEADERS + 1)))
    assert_431(resp)
    server.assert_healthy()


def test_99_headers_are_431_below_h2o_cap(server):
    resp, _ = raw_exchange(server, request(fields(99)))
    assert_431(resp)


def test_17kib_header_is_431(server):
    resp, _ = raw_exchange(server, request([("X-Big", "b" * (17 * 1024))]))
    assert_431(resp)
    server.assert_healthy()


def test_header_bytes_at_limit_pass_one_over_is_431(server):
    # a field counts name + value + 4 (": " and CRLF); Host is not a field
    at = MAX_HEADER_BYTES - len("X-Big") - 4
    resp, _ = raw_exchange(server, request([("X-Big", "b" * at)]))
    assert resp is not None and resp.status == 200, resp
    resp, _ = raw_exchange(server, request([("X-Big", "b" * (at + 1))]))
    assert_431(resp)
