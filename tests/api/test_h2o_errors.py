"""Errors h2o answers before any handler runs (issue 15 item 3) are problem+json with request_id,
like every other error (API.md §1): a body over the server-wide cap (16 MiB) by Content-Length or
by chunks, broken chunked framing or Content-Length, an unknown Transfer-Encoding or Expect.
What h2o answers with no HTTP response at all is listed in docs/http-errors.md."""
import json
import re
import socket

import pytest

from conftest import RawConn

ECHO = "/api/v1/_test/echo"
CAP = 16 * 1024 * 1024
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def exchange(server, head, body=b"", stream=None):
    c = RawConn(server.port, timeout=15, tls=server.tls)
    try:
        c.send(head + body)
        if stream:
            for chunk in stream:
                if not c.send(chunk):
                    break
        try:
            resp = c.read_response()
        except socket.timeout:
            pytest.fail("no answer and no close")
        return resp, c
    finally:
        c.close()


def assert_raw_problem(resp, status, code, request_id=None):
    assert resp is not None, "the connection closed without a response"
    assert resp.status == status, (resp.status, resp.body[:300])
    assert resp.header("content-type").split(";")[0] == "application/problem+json", resp.headers
    body = json.loads(resp.body)
    assert body["type"] == "about:blank" and body["status"] == status and body["code"] == code, body
    assert body["title"] and body["detail"], body
    rid = resp.header("x-request-id")
    assert rid and body["request_id"] == rid, (body, resp.headers)
    if request_id:
        assert rid == request_id
    else:
        assert UUID.match(rid), rid
    assert resp.header("x-content-type-options") == "nosniff"
    assert int(resp.header("content-length")) == len(resp.body)
    return body


def post_head(extra, path=ECHO):
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + extra + "\r\n").encode()


def test_declared_body_over_the_cap_is_a_problem_with_the_callers_request_id(server):
    resp, _ = exchange(server, post_head(f"X-Request-Id: big-upload-1\r\nContent-Length: {CAP + 1}\r\n"))
    body = assert_raw_problem(resp, 413, "PAYLOAD_TOO_LARGE", "big-upload-1")
    assert str(CAP) in body["detail"]
    server.assert_healthy()


def test_over_the_cap_without_request_id_gets_a_new_one_and_a_translated_title(server):
    resp, _ = exchange(server, post_head(f"Accept-Language: tr\r\nContent-Length: {20 * 1024 * 1024}\r\n"))
    body = assert_raw_problem(resp, 413, "PAYLOAD_TOO_LARGE")
    en, _ = exchange(server, post_head(f"Content-Length: {20 * 1024 * 1024}\r\n"))
    assert body["title"] != json.loads(en.body)["title"]
    # any path: h2o refuses before routing
    resp, _ = exchange(server, post_head(f"Content-Length: {CAP + 1}\r\n", path="/api/v1/no/such/route"))
    assert_raw_problem(resp, 413, "PAYLOAD_TOO_LARGE")


def test_chunked_body_growing_over_the_cap(server):
    chunk = b"x" * 65536
    frame = b"%x\r\n" % len(chunk) + chunk + b"\r\n"
    frames = (frame for _ in range(CAP // len(chunk) + 8))
    resp, _ = exchange(server, post_head("X-Request-Id: chunked-big\r\nTransfer-Encoding: chunked\r\n"),
                       stream=frames)
    assert_raw_problem(resp, 413, "PAYLOAD_TOO_LARGE", "chunked-big")
    server.assert_healthy()


@pytest.mark.parametrize("extra,body", [
    ("Transfer-Encoding: chunked\r\n", b"zz\r\nnot hex\r\n"),
    ("Transfer-Encoding: gzip\r\n", b""),
    ("Content-Length: 12abc\r\n", b""),
], ids=["broken-chunks", "unknown-transfer-encoding", "broken-content-length"])
def test_broken_framing_is_a_400_problem(server, extra, body):
    resp, _ = exchange(server, post_head("X-Request-Id: framing\r\n" + extra), body)
    assert_raw_problem(resp, 400, "BAD_REQUEST", "framing")
    server.assert_healthy()


def test_unknown_expectation_is_a_problem(server):
    resp, _ = exchange(server, post_head("Content-Length: 2\r\nExpect: 200-ok\r\n"), b"{}")
    assert_raw_problem(resp, 417, "BAD_REQUEST")


def test_errors_from_our_handlers_are_unchanged(server):
    """The filter sits on h2o's fallback path only: a routed request's problem is ours, with its
    route's own limit (64 KiB here) and the usual rate-limit headers."""
    resp, _ = exchange(server, post_head("X-Request-Id: routed\r\nContent-Length: 70000\r\n"), b"x" * 70000)
    body = assert_raw_problem(resp, 413, "PAYLOAD_TOO_LARGE", "routed")
    assert "65536" in body["detail"]
    assert resp.header("x-ratelimit-limit") is not None
