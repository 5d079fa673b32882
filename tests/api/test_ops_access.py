"""Who may read /health and /metrics (security issue 9): /health/live and /health/ready stay public;
/health (full) and /metrics need the metrics token or an admin in production (TEMEL_ENV=production),
or whenever TEMEL_METRICS_TOKEN is set; both are rate limited (read class)."""
import secrets

from conftest import ADMIN_EMAIL, ADMIN_PASSWORD, assert_problem, login_headers, new_user_headers

PROD = {"TEMEL_ENV": "production", "TEMEL_JWT_SECRET": "j" * 40, "TEMEL_SECRET_KEY": "k" * 40}


def bearer(tok):
    return {"Authorization": f"Bearer {tok}"}


def test_production_without_token_closes_detail_keeps_probes(make_server):
    s = make_server(**PROD)
    assert_problem(s.get("/health"), 401, "UNAUTHORIZED")
    r = s.get("/metrics")
    assert_problem(r, 401, "UNAUTHORIZED")
    assert r.headers.get("WWW-Authenticate", "").startswith("Bearer")
    assert s.get("/health/live").json() == {"status": "ok"}
    r = s.get("/health/ready")
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "healthy"}  # no versions, paths, counts or memory for anonymous callers


def test_production_metrics_token(make_server):
    token = "mt-" + secrets.token_hex(12)
    s = make_server(TEMEL_METRICS_TOKEN=token, **PROD)
    for bad in ({}, bearer("wrong"), bearer(token + "x"), {"Authorization": f"Basic {token}"}):
        assert_problem(s.get("/health", headers=bad), 401, "UNAUTHORIZED")
        assert_problem(s.get("/metrics", headers=bad), 401, "UNAUTHORIZED")
    h = s.get("/health", headers=bearer(token))
    assert h.status_code == 200, h.text
    assert h.json()["services"]["database"]["status"] == "up"
    assert h.json()["services"]["queue"]["status"] == "up"  # the jobs module's health hook
    m = s.get("/metrics", headers=bearer(token))
    assert m.status_code == 200, m.text
    assert "temel_http_requests_total" in m.text
    assert "temel_jobs_queue_depth" in m.text or "temel_jobs" in m.text  # the jobs module's metrics hook
    # readiness: public and short; the full body with the token
    assert s.get("/health/ready").json() == {"status": "healthy"}
    assert "services" in s.get("/health/ready", headers=bearer(token)).json()


def test_test_env_with_token_closes_health_too(make_server):
    token = "mt-" + secrets.token_hex(12)
    s = make_server(TEMEL_METRICS_TOKEN=token)
    assert_problem(s.get("/health"), 401, "UNAUTHORIZED")
    assert s.get("/health", headers=bearer(token)).status_code == 200
    assert s.get("/health/ready").json() == {"status": "healthy"}  # the detail needs the token here too
    assert "services" in s.get("/health/ready", headers=bearer(token)).json()


def test_test_env_without_token_stays_open(server):
    assert server.get("/health").status_code == 200
    assert server.get("/metrics").status_code == 200


def test_production_admin_reads_detail_user_does_not(make_server):
    s = make_server(TEMEL_ADMIN_EMAIL=ADMIN_EMAIL, TEMEL_ADMIN_PASSWORD=ADMIN_PASSWORD, **PROD)
    admin = login_headers(s, ADMIN_EMAIL, ADMIN_PASSWORD)
    assert s.get("/health", headers=admin).status_code == 200
    assert s.get("/metrics", headers=admin).status_code == 200
    user, _ = new_user_headers(s, "ops")
    assert_problem(s.get("/health", headers=user), 403)
    assert_problem(s.get("/metrics", headers=user), 403)


def test_detail_endpoints_are_rate_limited_probes_are_not(make_server):
    token = "mt-" + secrets.token_hex(12)
    s = make_server(TEMEL_METRICS_TOKEN=token, TEMEL_RATE_LIMIT_READ="3/60", **PROD)
    codes = [s.get("/metrics", headers=bearer(token)).status_code for _ in range(3)]
    assert codes == [200, 200, 200]
    assert_problem(s.get("/metrics", headers=bearer(token)), 429, "RATE_LIMIT_EXCEEDED")
    assert_problem(s.get("/health", headers=bearer(token)), 429, "RATE_LIMIT_EXCEEDED")
    assert_problem(s.get("/health"), 429, "RATE_LIMIT_EXCEEDED")  # anonymous floods count too
    for _ in range(5):
        assert s.get("/health/live").status_code == 200
        assert s.get("/health/ready").status_code == 200
