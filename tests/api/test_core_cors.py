"""CORS from TEMEL_CORS_ORIGINS (the shared server allows https://app.example.com and
http://localhost:3000)."""
import pytest

from conftest import CORS_ORIGIN, assert_problem

ITEM = "/api/v1/_test/items/0190a6c2-7b7a-7cc1-8d5e-3f2b1a0c9e11"
ECHO = "/api/v1/_test/echo"


def vary_has_origin(r):
    return "origin" in [v.strip().lower() for v in r.headers.get("Vary", "").split(",")]


@pytest.mark.parametrize("origin", [CORS_ORIGIN, "http://localhost:3000"])
@pytest.mark.parametrize("method,path,kw,status", [
    ("GET", ITEM, {}, 200),
    ("POST", ECHO, {"json": {"name": "a"}}, 200),
    ("POST", ECHO, {"json": {}}, 422),
    ("GET", "/api/v1/nope", {}, 404),
])
def test_allowed_origin(server, origin, method, path, kw, status):
    r = server.request(method, path, headers={"Origin": origin}, **kw)
    assert r.status_code == status
    assert r.headers.get("Access-Control-Allow-Origin") == origin
    assert r.headers.get("Access-Control-Allow-Credentials") == "true"
    assert vary_has_origin(r), r.headers.get("Vary")


@pytest.mark.parametrize("origin", ["https://evil.example.com", "https://app.example.com.evil.com",
                                    "http://app.example.com", "https://app.example.com:8443",
                                    "https://xapp.example.com", "null", "https://APP.EXAMPLE.COM.evil",
                                    "https://app.example.com,https://evil.com"])
def test_other_origin_gets_no_acao(server, origin):
    r = server.get(ITEM, headers={"Origin": origin})
    assert r.status_code == 200
    assert "Access-Control-Allow-Origin" not in r.headers, r.headers.get("Access-Control-Allow-Origin")
    assert "Access-Control-Allow-Credentials" not in r.headers


def test_never_wildcard(server):
    r = server.get(ITEM, headers={"Origin": CORS_ORIGIN})
    assert r.headers.get("Access-Control-Allow-Origin") != "*"


def test_no_origin_no_acao(server):
    r = server.get(ITEM)
    assert "Access-Control-Allow-Origin" not in r.headers


def test_preflight_allowed(server):
    r = server.request("OPTIONS", ECHO, headers={
        "Origin": CORS_ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type, x-request-id"})
    assert r.status_code == 204, r.text
    assert r.headers.get("Access-Control-Allow-Origin") == CORS_ORIGIN
    assert r.headers.get("Access-Control-Allow-Credentials") == "true"
    methods = {m.strip().upper() for m in r.headers.get("Access-Control-Allow-Methods", "").split(",")}
    assert "POST" in methods, r.headers.get("Access-Control-Allow-Methods")
    allowed_h = {h.strip().lower() for h in r.headers.get("Access-Control-Allow-Headers", "").split(",")}
    assert "content-type" in allowed_h, r.headers.get("Access-Control-Allow-Headers")
    ma = r.headers.get("Access-Control-Max-Age", "")
    assert ma.isdigit() and int(ma) > 0, ma
    assert vary_has_origin(r)
    assert not r.content


def test_preflight_on_parametrised_route(server):
    r = server.request("OPTIONS", ITEM, headers={"Origin": "http://localhost:3000",
                                                 "Access-Control-Request-Method": "GET"})
    assert r.status_code == 204
    assert r.headers.get("Access-Control-Allow-Origin") == "http://localhost:3000"


def test_preflight_from_unlisted_origin_is_403(server):
    r = server.request("OPTIONS", ECHO, headers={"Origin": "https://evil.example.com",
                                                 "Access-Control-Request-Method": "POST"})
    assert_problem(r, 403, "FORBIDDEN")
    assert "Access-Control-Allow-Origin" not in r.headers


def test_cors_disabled_by_default(make_server):
    s = make_server()
    r = s.get(ITEM, headers={"Origin": CORS_ORIGIN})
    assert r.status_code == 200
    assert "Access-Control-Allow-Origin" not in r.headers
    r = s.request("OPTIONS", ECHO, headers={"Origin": CORS_ORIGIN, "Access-Control-Request-Method": "POST"})
    assert r.status_code == 403
    assert "Access-Control-Allow-Origin" not in r.headers
