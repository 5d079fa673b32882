"""HTTP basics: health/live, security headers, request ids, keep-alive, query parsing,
test routes, UUIDv7, OpenAPI and docs."""
import json
import re
import uuid

import pytest
import requests

from conftest import RawConn, assert_problem, error_fields, raw_exchange

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
ITEM = "/api/v1/_test/items/0190a6c2-7b7a-7cc1-8d5e-3f2b1a0c9e11"


def test_health_live(server):
    r = server.get("/health/live")
    assert r.status_code == 200
    assert r.headers["Content-Type"].split(";")[0].strip() == "application/json"
    assert r.json() == {"status": "ok"}


def test_http11(server):
    c = RawConn(server.port)
    try:
        c.send(b"GET /health/live HTTP/1.1\r\nHost: localhost\r\n\r\n")
        resp = c.read_response()
    finally:
        c.close()
    assert resp is not None
    assert resp.version == "HTTP/1.1"
    assert resp.status == 200
    assert json.loads(resp.body) == {"status": "ok"}


@pytest.mark.parametrize("method,path,kw", [
    ("GET", "/health/live", {}),
    ("GET", "/health", {}),
    ("GET", "/metrics", {}),
    ("GET", "/nope", {}),
    ("POST", "/health/live", {}),
    ("GET", ITEM, {}),
    ("GET", "/api/v1/_test/items/not-a-uuid", {}),
    ("POST", "/api/v1/_test/echo", {"json": {"name": "x"}}),
    ("POST", "/api/v1/_test/echo", {"data": b"{", "headers": {"Content-Type": "application/json"}}),
    ("GET", "/api/v1/openapi.json", {}),
    ("POST", "/api/v1/_test/echo", {"data": b'{"name":"a"}', "headers": {"Content-Type": "text/plain"}}),
    ("POST", "/api/v1/_test/echo", {"data": b'{"name":"' + b"x" * 70000 + b'"}',
                                    "headers": {"Content-Type": "application/json"}}),
    ("GET", "/api/docs", {}),
    ("GET", "/api/v1/_test/uuid?n=3", {}),
])
def test_security_headers_on_every_response(server, method, path, kw):
    r = server.request(method, path, **kw)
    for k, v in SECURITY_HEADERS.items():
        assert r.headers.get(k) == v, f"{method} {path} -> {r.status_code}: {k}={r.headers.get(k)!r}"
    assert r.headers.get("X-Request-Id"), f"{method} {path} has no X-Request-Id"


@pytest.mark.parametrize("rid", ["a", "abc-123", "A.b_c-D9", "x" * 64,
                                 "0190a6c2-7b7a-7cc1-8d5e-3f2b1a0c9e11"])
def test_request_id_echoed_when_sane(server, rid):
    for path in ("/health/live", "/nope", ITEM):
        r = server.get(path, headers={"X-Request-Id": rid})
        assert r.headers.get("X-Request-Id") == rid, path


@pytest.mark.parametrize("rid", ["x" * 65, "abc/def", "<script>", "a b", "ü", "a;b", "a,b", "",
                                 "x" * 5000])
def test_request_id_replaced_when_not_sane(server, rid):
    r = server.get("/health/live", headers={"X-Request-Id": rid.encode("utf-8")})
    got = r.headers.get("X-Request-Id")
    assert got and got != rid
    assert UUID_RE.match(got), got


def test_request_id_in_problem_matches_header(server):
    r = server.get("/nope", headers={"X-Request-Id": "trace-me-123"})
    body = assert_problem(r, 404, "NOT_FOUND")
    assert body["request_id"] == "trace-me-123"


def test_request_ids_are_unique(server):
    ids = {server.get("/health/live").headers["X-Request-Id"] for _ in range(30)}
    assert len(ids) == 30


def test_keepalive_requests_session_reuses_one_connection(server):
    with requests.Session() as s:
        for _ in range(100):
            r = s.get(server.url("/health/live"), timeout=10)
            assert r.status_code == 200
            assert r.json() == {"status": "ok"}
        pool = s.get_adapter(server.url("/")).poolmanager.connection_from_url(server.url("/"))
        assert pool.num_connections == 1, "keep-alive not honoured: client had to reconnect"


def test_keepalive_raw_sequential_requests(server):
    c = RawConn(server.port)
    try:
        for i in range(20):
            path = ITEM if i % 2 else "/health/live"
            assert c.send(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
            resp = c.read_response()
            assert resp is not None, f"connection closed after {i} requests"
            assert resp.status == 200
            assert resp.header("connection", "").lower() != "close"
        assert not c.peer_closed(timeout=0.3)
    finally:
        c.close()


def test_pipelined_requests_answered_in_order(server):
    c = RawConn(server.port)
    try:
        c.send(b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Request-Id: p1\r\n\r\n"
               b"GET /nope HTTP/1.1\r\nHost: x\r\nX-Request-Id: p2\r\n\r\n"
               b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Request-Id: p3\r\n\r\n")
        got = []
        for _ in range(3):
            resp = c.read_response()
            assert resp is not None
            got.append((resp.status, resp.header("x-request-id")))
    finally:
        c.close()
    assert got == [(200, "p1"), (404, "p2"), (200, "p3")]


def test_connection_close_honoured(server):
    c = RawConn(server.port)
    try:
        c.send(b"GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        resp = c.read_response()
        assert resp is not None and resp.status == 200
        assert c.peer_closed(timeout=5)
    finally:
        c.close()


# ------------------------------------------------------------------ items route + query parsing

def test_item_route_echoes_id_and_empty_query(server):
    uid = str(uuid.uuid4())
    r = server.get(f"/api/v1/_test/items/{uid}")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].split(";")[0].strip() == "application/json"
    data = r.json()["data"]
    assert data["id"] == uid and data["query"] == {}
    # the server also echoes the validated pagination; when it does, the defaults are API.md's
    if "page" in data or "limit" in data:
        assert (data.get("page"), data.get("limit")) == (1, 20), data


def test_query_percent_decoding_and_plus(server):
    r = server.get(ITEM + "?a=hello%20world&b=x+y&c=%C3%A7a%C4%9F&d=&e=%2B%26%3D%25&f%20g=1")
    assert r.status_code == 200, r.text
    q = r.json()["data"]["query"]
    assert q == {"a": "hello world", "b": "x y", "c": "çağ", "d": "", "e": "+&=%", "f g": "1"}


def test_query_values_are_strings(server):
    r = server.get(ITEM + "?n=5&t=true&page=2&limit=10")
    assert r.status_code == 200, r.text
    assert r.json()["data"]["query"] == {"n": "5", "t": "true", "page": "2", "limit": "10"}


@pytest.mark.parametrize("qs", ["a=%zz", "a=%4", "a=%", "a=%00", "%zz=1", "a=%e", "a=x%g0",
                                "a=%C3", "a=%ff"])
def test_bad_percent_encoding_is_400(server, qs):
    # %C3 alone and %ff decode to invalid UTF-8; %00 decodes to NUL: all refused.
    # Sent raw: requests would re-quote an invalid "%" as "%25".
    resp, _ = raw_exchange(server, f"GET {ITEM}?{qs} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert resp is not None, "connection closed without an answer"
    assert resp.status == 400, resp
    assert resp.header("content-type", "").startswith("application/problem+json")
    assert resp.json()["code"] == "BAD_REQUEST"


@pytest.mark.parametrize("qs", ["a=%zz", "a=%", "%zz=1"])
def test_requests_requoting_sanity(server, qs):
    """A client library that re-quotes "%" as "%25" gets the literal text back (not a 400)."""
    r = server.get(ITEM + "?" + qs)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("bad", ["not-a-uuid", "123", "0190a6c2-7b7a-7cc1-8d5e-3f2b1a0c9e1",
                                 "0190a6c2-7b7a-7cc1-8d5e-3f2b1a0c9e111",
                                 "0190a6c27b7a7cc18d5e3f2b1a0c9e11x", "g190a6c2-7b7a-7cc1-8d5e-3f2b1a0c9e11",
                                 "%27%20OR%201=1--"])
def test_item_invalid_id_is_422(server, bad):
    r = server.get(f"/api/v1/_test/items/{bad}")
    body = assert_problem(r, 422, "VALIDATION_ERROR")
    assert "id" in error_fields(body), body


@pytest.mark.parametrize("qs,field", [
    ("page=abc", "page"), ("page=0", "page"), ("page=-1", "page"), ("page=1.5", "page"),
    ("page=", "page"), ("page=99999999999999999999999", "page"),
    ("limit=0", "limit"), ("limit=101", "limit"), ("limit=1000", "limit"), ("limit=abc", "limit"),
    ("limit=-5", "limit"), ("limit=10x", "limit"), ("limit=%201", "limit"),
])
def test_pagination_out_of_range_is_422(server, qs, field):
    r = server.get(ITEM + "?" + qs)
    body = assert_problem(r, 422, "VALIDATION_ERROR")
    assert field in error_fields(body), body


@pytest.mark.parametrize("qs", ["page=1", "page=7&limit=1", "limit=100", "limit=20&page=3"])
def test_pagination_in_range_is_accepted(server, qs):
    r = server.get(ITEM + "?" + qs)
    assert r.status_code == 200, r.text


# ------------------------------------------------------------------ UUIDv7

def _check_v7(u):
    assert UUID_RE.match(u), u
    assert u[14] == "7", f"version nibble of {u}"
    assert u[19] in "89ab", f"variant of {u}"


def test_uuid_v7_batch_strictly_increasing(server):
    r = server.get("/api/v1/_test/uuid?n=100")
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert isinstance(data, list) and len(data) == 100
    for u in data:
        _check_v7(u)
    for a, b in zip(data, data[1:]):
        assert a < b, f"not strictly increasing: {a} !< {b}"
    assert len(set(data)) == 100


@pytest.mark.parametrize("n", ["0", "-1", "abc", "1.5", "100000"])
def test_uuid_bad_n_is_422(server, n):
    body = assert_problem(server.get(f"/api/v1/_test/uuid?n={n}"), 422, "VALIDATION_ERROR")
    assert "n" in error_fields(body), body


def test_uuid_v7_timestamp_is_now(server):
    import time
    r = server.get("/api/v1/_test/uuid?n=1")
    assert r.status_code == 200
    u = r.json()["data"][0]
    _check_v7(u)
    ms = int(u.replace("-", "")[:12], 16)
    # the embedded Unix-ms timestamp must be the current time (within an hour: clock sanity,
    # not a performance assertion)
    assert abs(ms / 1000 - time.time()) < 3600


# ------------------------------------------------------------------ OpenAPI + docs

EXPECTED_PATHS = {
    "/health/live": "get", "/health/ready": "get", "/health": "get", "/metrics": "get",
    "/api/v1/openapi.json": "get", "/api/v1/_test/echo": "post",
    "/api/v1/_test/items/{id}": "get", "/api/v1/_test/slow": "get", "/api/v1/_test/uuid": "get",
}


def test_openapi_document(server):
    r = server.get("/api/v1/openapi.json")
    assert r.status_code == 200
    assert r.headers["Content-Type"].split(";")[0].strip() == "application/json"
    doc = r.json()
    assert doc.get("openapi") == "3.1.0"
    assert isinstance(doc.get("info"), dict) and doc["info"].get("title") and doc["info"].get("version")
    paths = doc.get("paths")
    assert isinstance(paths, dict)
    for p, m in EXPECTED_PATHS.items():
        assert p in paths, f"{p} missing from OpenAPI paths: {sorted(paths)}"
        assert m in paths[p], f"{m} missing for {p}"
    for p, ops in paths.items():
        assert p.startswith("/"), p
        assert ":" not in p and "<" not in p, f"path pattern must use {{param}}: {p}"
        for method, op in ops.items():
            if method in ("get", "post", "put", "patch", "delete"):
                assert isinstance(op.get("summary"), str) and op["summary"], f"{method} {p} has no summary"


def test_openapi_path_params_declared(server):
    doc = server.get("/api/v1/openapi.json").json()
    op = doc["paths"]["/api/v1/_test/items/{id}"]["get"]
    params = op.get("parameters", []) + doc["paths"]["/api/v1/_test/items/{id}"].get("parameters", [])
    names = {(p.get("name"), p.get("in")) for p in params if isinstance(p, dict)}
    assert ("id", "path") in names, params


def test_docs_page(server):
    r = server.get("/api/docs")
    assert r.status_code == 200
    assert r.headers["Content-Type"].split(";")[0].strip() == "text/html"
    assert "/api/v1/openapi.json" in r.text


def test_openapi_cli_matches_http(server, run_cli):
    p = run_cli("openapi")
    assert p.returncode == 0, p.stderr_text
    doc = json.loads(p.stdout_text)
    assert doc.get("openapi") == "3.1.0"
    http_doc = server.get("/api/v1/openapi.json").json()
    assert set(doc["paths"]) == set(http_doc["paths"])


def test_test_routes_absent_outside_test_env(make_server):
    s = make_server(TEMEL_ENV="development")
    assert s.get("/health/live").status_code == 200
    for method, path, kw in [("POST", "/api/v1/_test/echo", {"json": {"name": "x"}}),
                             ("GET", ITEM, {}), ("GET", "/api/v1/_test/slow", {}),
                             ("GET", "/api/v1/_test/uuid?n=3", {})]:
        r = s.request(method, path, **kw)
        assert_problem(r, 404, "NOT_FOUND")
    doc = s.get("/api/v1/openapi.json").json()
    assert not [p for p in doc["paths"] if "/_test/" in p], "test routes listed in OpenAPI"
