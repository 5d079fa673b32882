"""Rate limiting: headers, 429, classes, keys (client IP, X-Forwarded-For with TEMEL_TRUST_PROXY)."""
import pytest

from conftest import assert_problem

ITEM = "/api/v1/_test/items/0190a6c2-7b7a-7cc1-8d5e-3f2b1a0c9e11"
ECHO = "/api/v1/_test/echo"


def rl_headers(r):
    vals = {}
    for h in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
        v = r.headers.get(h)
        assert v is not None and v.strip().isdigit(), f"{h}: {v!r} on {r.status_code} {r.url}"
        vals[h] = int(v)
    return vals


@pytest.mark.parametrize("method,path,kw", [
    ("GET", ITEM, {}),
    ("GET", "/api/v1/_test/items/bad", {}),
    ("GET", "/api/v1/openapi.json", {}),
    ("POST", ECHO, {"json": {"name": "a"}}),
    ("POST", ECHO, {"json": {}}),
    ("GET", "/api/v1/nope", {}),
])
def test_ratelimit_headers_on_every_api_response(server, method, path, kw):
    r = server.request(method, path, **kw)
    rl_headers(r)


def test_default_limits(make_server):
    s = make_server()
    h = rl_headers(s.get(ITEM))
    assert h["X-RateLimit-Limit"] == 600
    assert h["X-RateLimit-Remaining"] == 599
    assert 0 <= h["X-RateLimit-Reset"] <= 60
    h = rl_headers(s.post(ECHO, json={"name": "a"}))
    assert h["X-RateLimit-Limit"] == 120
    assert h["X-RateLimit-Remaining"] == 119


def test_read_limit_counts_down_then_429(make_server):
    s = make_server(TEMEL_RATE_LIMIT_READ="5/60")
    remaining = []
    for _ in range(5):
        r = s.get(ITEM)
        assert r.status_code == 200, r.text
        h = rl_headers(r)
        assert h["X-RateLimit-Limit"] == 5
        assert 0 <= h["X-RateLimit-Reset"] <= 60
        remaining.append(h["X-RateLimit-Remaining"])
    assert remaining == [4, 3, 2, 1, 0]
    r = s.get(ITEM)
    assert_problem(r, 429, "RATE_LIMIT_EXCEEDED")
    ra = r.headers.get("Retry-After")
    assert ra is not None and ra.isdigit() and 1 <= int(ra) <= 60, ra
    h = rl_headers(r)
    assert h["X-RateLimit-Remaining"] == 0 and h["X-RateLimit-Limit"] == 5
    assert r.headers.get("X-Content-Type-Options") == "nosniff"
    assert r.headers.get("X-Frame-Options") == "DENY"
    # operational endpoints are not limited
    for _ in range(10):
        assert s.get("/health/live").status_code == 200
    # the write class has its own budget
    assert s.post(ECHO, json={"name": "a"}).status_code == 200
    # and the refusal is counted
    text = s.get("/metrics").text
    line = [l for l in text.splitlines() if l.startswith("temel_rate_limit_refusals_total") and 'class="read"' in l]
    assert line and float(line[0].split()[-1]) >= 1, line


def test_refused_requests_do_not_reach_validation(make_server):
    s = make_server(TEMEL_RATE_LIMIT_READ="1/60")
    assert s.get(ITEM).status_code == 200
    # an invalid request after the budget is gone is refused with 429, not validated
    assert_problem(s.get("/api/v1/_test/items/bad"), 429, "RATE_LIMIT_EXCEEDED")


def test_write_limit(make_server):
    s = make_server(TEMEL_RATE_LIMIT_WRITE="3/60")
    for _ in range(3):
        r = s.post(ECHO, json={"name": "a"})
        assert r.status_code == 200
        assert rl_headers(r)["X-RateLimit-Limit"] == 3
    r = s.post(ECHO, json={"name": "a"})
    assert_problem(r, 429, "RATE_LIMIT_EXCEEDED")
    assert int(r.headers["Retry-After"]) >= 1
    assert s.get(ITEM).status_code == 200  # read budget untouched


def test_xff_ignored_without_trust_proxy(make_server):
    s = make_server(TEMEL_RATE_LIMIT_READ="2/60")
    for _ in range(2):
        assert s.get(ITEM, headers={"X-Forwarded-For": "203.0.113.1"}).status_code == 200
    assert s.get(ITEM, headers={"X-Forwarded-For": "203.0.113.2"}).status_code == 429
    assert s.get(ITEM, headers={"X-Forwarded-For": "198.51.100.7"}).status_code == 429
    assert s.get(ITEM).status_code == 429


def test_xff_distinct_keys_with_trust_proxy(make_server):
    s = make_server(TEMEL_RATE_LIMIT_READ="2/60", TEMEL_TRUST_PROXY="1")
    a = {"X-Forwarded-For": "203.0.113.1"}
    b = {"X-Forwarded-For": "203.0.113.2"}
    for _ in range(2):
        assert s.get(ITEM, headers=a).status_code == 200
    assert_problem(s.get(ITEM, headers=a), 429, "RATE_LIMIT_EXCEEDED")
    r = s.get(ITEM, headers=b)
    assert r.status_code == 200
    assert rl_headers(r)["X-RateLimit-Remaining"] == 1
    assert s.get(ITEM, headers=a).status_code == 429


def test_trust_proxy_odd_xff_values_do_not_break(make_server):
    s = make_server(TEMEL_TRUST_PROXY="1")
    for xff in ["garbage", "", "999.1.1.1", "::ffff:1.2.3.4", "1.2.3.4, 5.6.7.8", "x" * 4000,
                "1.2.3.4\tfoo", "2001:db8::1", ",,,"]:
        r = s.get(ITEM, headers={"X-Forwarded-For": xff})
        assert r.status_code in (200, 400), (xff[:40], r.status_code)
        s.assert_healthy()
