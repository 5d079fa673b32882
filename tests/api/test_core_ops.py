"""Operations: /health*, /metrics, access log, secrets never logged."""
import re
import secrets
import subprocess
import uuid

import pytest

from conftest import assert_problem

SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?\s*')


def parse_metrics(text):
    """Prometheus text format -> list of (name, labels dict, float value). Asserts well-formedness."""
    out = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            if line.startswith("# TYPE"):
                assert len(line.split()) == 4, line
            continue
        m = SAMPLE_RE.match(line)
        assert m, f"malformed metrics line: {line!r}"
        name, labels_s, value = m.groups()
        labels = {}
        if labels_s:
            pos = 0
            while pos < len(labels_s):
                lm = LABEL_RE.match(labels_s, pos)
                assert lm, f"malformed labels in {line!r}"
                labels[lm.group(1)] = lm.group(2)
                pos = lm.end()
        out.append((name, labels, float(value)))
    return out


def metric_value(samples, name, **labels):
    vals = [v for n, l, v in samples if n == name and all(l.get(k) == str(x) for k, x in labels.items())]
    return sum(vals) if vals else None


def scrape(server, **kw):
    r = server.get("/metrics", **kw)
    assert r.status_code == 200, r.text
    return parse_metrics(r.text)


# ------------------------------------------------------------------ health

def _check_health_body(b):
    assert b["status"] in ("healthy", "degraded", "unhealthy"), b
    assert isinstance(b["version"], str) and b["version"]
    assert isinstance(b["uptime_s"], (int, float)) and b["uptime_s"] >= 0
    svc = b["services"]
    db = svc["database"]
    assert db["status"] == "up", db
    assert isinstance(db["latency_ms"], (int, float)) and not isinstance(db["latency_ms"], bool)
    assert db["latency_ms"] >= 0
    disk = svc["disk"]
    assert isinstance(disk["status"], str) and disk["status"]
    assert isinstance(disk["free_bytes"], int) and disk["free_bytes"] > 0
    assert isinstance(disk["path"], str) and disk["path"]
    mem = svc["memory"]
    assert isinstance(mem["status"], str) and mem["status"]
    assert isinstance(mem["rss_bytes"], int) and mem["rss_bytes"] > 1024 * 1024


def test_health(server):
    r = server.get("/health")
    assert r.status_code == 200
    assert r.headers["Content-Type"].split(";")[0].strip() == "application/json"
    b = r.json()
    _check_health_body(b)
    assert b["status"] == "healthy"


def test_health_ready(server):
    r = server.get("/health/ready")
    assert r.status_code == 200, r.text
    _check_health_body(r.json())


def test_health_version_matches_cli(server, run_cli):
    p = run_cli("version")
    assert p.returncode == 0, p.stderr_text
    v = server.get("/health").json()["version"]
    assert v in p.stdout_text, (v, p.stdout_text)


def test_health_uptime_increases(server):
    a = server.get("/health").json()["uptime_s"]
    import time
    time.sleep(1.1)
    b = server.get("/health").json()["uptime_s"]
    assert b > a


@pytest.mark.postgres_only
def test_ready_is_503_when_database_gone(make_server, db_factory):
    s = make_server()
    assert s.get("/health/ready").status_code == 200
    name = s.db_url.rsplit("/", 1)[1].split("?")[0]
    conn = db_factory.cluster.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        for _ in range(4):  # both loop threads
            r = s.get("/health/ready")
            assert r.status_code == 503, r.text
            b = r.json()
            assert b["services"]["database"]["status"] != "up"
        assert s.get("/health/live").status_code == 200
        h = s.get("/health")
        assert h.json()["status"] in ("degraded", "unhealthy")
    finally:
        with conn.cursor() as cur:
            cur.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        conn.close()
    # and it recovers once the database is back
    codes = [s.get("/health/ready").status_code for _ in range(4)]
    assert codes == [200] * 4, codes


# ------------------------------------------------------------------ metrics

def test_metrics_format_and_families(server):
    server.get("/health")  # at least one DB query
    server.get("/health/live")
    r = server.get("/metrics")
    assert r.status_code == 200
    assert r.headers["Content-Type"].split(";")[0].strip() == "text/plain"
    samples = parse_metrics(r.text)
    names = {n for n, _, _ in samples}
    for fam in ("temel_http_requests_total", "temel_http_request_duration_seconds_bucket",
                "temel_http_request_duration_seconds_sum", "temel_http_request_duration_seconds_count",
                "temel_db_query_duration_seconds_bucket", "temel_process_resident_memory_bytes",
                "temel_http_connections_open"):
        assert fam in names, f"{fam} missing from /metrics"
    assert metric_value(samples, "temel_process_resident_memory_bytes") > 1024 * 1024
    assert metric_value(samples, "temel_http_connections_open") >= 1


def test_metrics_rate_limit_refusals_family_present(server):
    text = server.get("/metrics").text
    assert re.search(r'^temel_rate_limit_refusals_total\{[^}]*class="read"[^}]*\} \d', text, re.M), \
        "temel_rate_limit_refusals_total{class=\"read\"} missing"


def test_metrics_request_counter_moves(server):
    before = metric_value(scrape(server), "temel_http_requests_total",
                          route="/health/live", method="GET", status="200") or 0
    for _ in range(3):
        assert server.get("/health/live").status_code == 200
    after = metric_value(scrape(server), "temel_http_requests_total",
                         route="/health/live", method="GET", status="200")
    assert after is not None and after - before >= 3, (before, after)


def test_metrics_counts_errors_by_status(server):
    before = metric_value(scrape(server), "temel_http_requests_total",
                          route="/api/v1/_test/echo", method="POST", status="422") or 0
    for _ in range(3):
        assert server.post("/api/v1/_test/echo", json={}).status_code == 422
    after = metric_value(scrape(server), "temel_http_requests_total",
                         route="/api/v1/_test/echo", method="POST", status="422")
    assert after is not None and after - before >= 3, (before, after)


def test_metrics_route_label_is_pattern(server):
    uid = str(uuid.uuid4())
    for _ in range(2):
        assert server.get(f"/api/v1/_test/items/{uid}").status_code == 200
    text = server.get("/metrics").text
    assert uid not in text, "raw path used as a label"
    samples = parse_metrics(text)
    v = metric_value(samples, "temel_http_requests_total", route="/api/v1/_test/items/{id}",
                     method="GET", status="200")
    assert v is not None and v >= 2
    buckets = [(l, val) for n, l, val in samples
               if n == "temel_http_request_duration_seconds_bucket" and l.get("route") == "/api/v1/_test/items/{id}"]
    assert buckets, "no latency histogram for the route"


def test_metrics_unmatched_route(server):
    junk = "nope-" + secrets.token_hex(8)
    assert server.get(f"/{junk}").status_code == 404
    text = server.get("/metrics").text
    assert junk not in text, "unmatched raw path leaked into labels"
    samples = parse_metrics(text)
    v = metric_value(samples, "temel_http_requests_total", route="unmatched", method="GET", status="404")
    assert v is not None and v >= 1


def test_metrics_histogram_consistent(server):
    for _ in range(3):
        server.get("/health/live")
    samples = parse_metrics(server.get("/metrics").text)
    series = {}
    for n, l, v in samples:
        if n == "temel_http_request_duration_seconds_bucket" and l.get("route") == "/health/live":
            key = tuple(sorted((k, x) for k, x in l.items() if k != "le"))
            series.setdefault(key, []).append((float(l["le"]) if l["le"] != "+Inf" else float("inf"), v))
    assert series, "no histogram buckets for /health/live"
    for key, buckets in series.items():
        buckets.sort()
        assert buckets[-1][0] == float("inf"), "no +Inf bucket"
        counts = [c for _, c in buckets]
        assert counts == sorted(counts), f"buckets not cumulative: {buckets}"
        labels = dict(key)
        count = metric_value(samples, "temel_http_request_duration_seconds_count", **labels)
        total = metric_value(samples, "temel_http_request_duration_seconds_sum", **labels)
        assert count == buckets[-1][1], (count, buckets[-1])
        assert total is not None and total >= 0
    assert any(b[-1][1] >= 3 for b in series.values())


def test_metrics_db_histogram_moves(server):
    def db_count(samples):
        return sum(v for n, l, v in samples if n == "temel_db_query_duration_seconds_bucket" and l.get("le") == "+Inf")
    before = db_count(scrape(server))
    for _ in range(3):
        assert server.get("/health").status_code == 200
    after = db_count(scrape(server))
    assert after - before >= 3, (before, after)


def test_metrics_token(make_server):
    token = "mt-" + secrets.token_hex(12)
    s = make_server(TEMEL_METRICS_TOKEN=token)
    assert_problem(s.get("/metrics"), 401, "UNAUTHORIZED")
    assert_problem(s.get("/metrics", headers={"Authorization": "Bearer wrong"}), 401, "UNAUTHORIZED")
    assert_problem(s.get("/metrics", headers={"Authorization": f"Basic {token}"}), 401, "UNAUTHORIZED")
    assert_problem(s.get("/metrics", headers={"Authorization": f"Bearer {token}x"}), 401, "UNAUTHORIZED")
    assert_problem(s.get("/metrics", headers={"Authorization": f"Bearer {token[:-1]}"}), 401, "UNAUTHORIZED")
    assert_problem(s.get(f"/metrics?token={token}"), 401, "UNAUTHORIZED")
    r = s.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    assert "temel_http_requests_total" in r.text
    assert s.get("/health/live").status_code == 200  # health stays open
    s.get("/health/live", headers={"X-Request-Id": "flush-marker"})
    assert s.wait_log(lambda l: l.get("request_id") == "flush-marker")
    assert token not in s.log_text(), "metrics token written to the log"


# ------------------------------------------------------------------ access log

ACCESS_KEYS = {"ts", "level", "msg", "request_id", "method", "route", "status", "dur_ms", "bytes", "user_id"}


def test_access_log_line(server):
    rid = "log-" + secrets.token_hex(8)
    uid = str(uuid.uuid4())
    r = server.get(f"/api/v1/_test/items/{uid}", headers={"X-Request-Id": rid})
    assert r.status_code == 200
    line = server.wait_log(lambda l: l.get("request_id") == rid and l.get("msg") == "request")
    assert line is not None, f"no access log line for {rid}\n{server.log_tail()}"
    assert ACCESS_KEYS <= set(line), f"missing {ACCESS_KEYS - set(line)}: {line}"
    assert line["level"] == "info"
    assert line["method"] == "GET"
    assert line["route"] == "/api/v1/_test/items/{id}"
    assert line["status"] == 200
    assert isinstance(line["dur_ms"], (int, float)) and line["dur_ms"] >= 0
    assert isinstance(line["bytes"], int) and line["bytes"] > 0
    assert line["user_id"] is None
    assert isinstance(line["ts"], str) and re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$", line["ts"]), line["ts"]
    assert uid not in line["route"]


def test_access_log_one_line_per_request(server):
    rid = "once-" + secrets.token_hex(8)
    server.get("/nope", headers={"X-Request-Id": rid})
    server.get("/health/live", headers={"X-Request-Id": rid + "-after"})
    assert server.wait_log(lambda l: l.get("request_id") == rid + "-after")
    lines = [l for l in server.log_lines() if l.get("request_id") == rid and l.get("msg") == "request"]
    assert len(lines) == 1, lines
    assert lines[0]["status"] == 404 and lines[0]["route"] == "unmatched"


def test_access_log_for_error_statuses(server):
    rid = "err-" + secrets.token_hex(8)
    server.post("/api/v1/_test/echo", data=b"{", headers={"Content-Type": "application/json", "X-Request-Id": rid})
    line = server.wait_log(lambda l: l.get("request_id") == rid and l.get("msg") == "request")
    assert line is not None
    assert line["status"] == 400 and line["method"] == "POST" and line["route"] == "/api/v1/_test/echo"


def test_secrets_never_logged(server):
    bearer = "sekret-bearer-" + secrets.token_hex(12)
    qtok = "sekret-query-" + secrets.token_hex(12)
    cookie = "sekret-cookie-" + secrets.token_hex(12)
    rid = "sec-" + secrets.token_hex(6)
    uid = "0190a6c2-7b7a-7cc1-8d5e-3f2b1a0c9e11"
    server.get(f"/api/v1/_test/items/{uid}?token={qtok}", headers={"Authorization": f"Bearer {bearer}",
                                                                 "Cookie": f"session={cookie}"})
    server.get(f"/nope?token={qtok}", headers={"Authorization": f"Bearer {bearer}"})
    server.get(f"/api/v1/_test/items/bad?token={qtok}&page=0", headers={"Authorization": f"Bearer {bearer}"})
    server.post("/api/v1/_test/echo?token=" + qtok, data=b"{bad", headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {bearer}"})
    server.get("/health/live", headers={"X-Request-Id": rid})
    assert server.wait_log(lambda l: l.get("request_id") == rid)
    text = server.log_text()
    for s in (bearer, qtok, cookie):
        assert s not in text, f"secret {s[:14]}... found in the log"


def test_log_format_text(make_server):
    s = make_server(TEMEL_LOG_FORMAT="text")
    s.get("/health/live", headers={"X-Request-Id": "text-fmt-1"})
    import time
    deadline = time.monotonic() + 5
    while "text-fmt-1" not in s.log_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = [l for l in s.log_text().splitlines() if "text-fmt-1" in l]
    assert lines, s.log_tail()
    assert not lines[0].lstrip().startswith("{"), "TEMEL_LOG_FORMAT=text still writes JSON"


def test_log_level_warn_suppresses_access_lines(make_server):
    s = make_server(TEMEL_LOG_LEVEL="warn")
    for i in range(3):
        s.get("/health/live", headers={"X-Request-Id": f"quiet-{i}"})
    s.stop()
    assert "quiet-" not in s.log_text(), "info access lines logged at TEMEL_LOG_LEVEL=warn"
