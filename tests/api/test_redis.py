"""Redis (REDIS_URL): the shared rate limit across instances, the script
reloaded after NOSCRIPT, an outage falling back to the local store (warning
metric, one log line), the reconnect, AUTH, and a bad URL refused at start."""
import pytest

from conftest import assert_problem, wait_for
from redis_util import RedisServer, metric, redis_server  # noqa: F401 (fixture)

ITEM = "/api/v1/_test/items/0190a6c2-7b7a-7cc1-8d5e-3f2b1a0c9e11"


def fallback_lines(server):
    return [l for l in server.log_lines() if "rate limit: Redis did not answer" in l.get("msg", "")]


def test_two_instances_share_one_budget(make_server, redis_server):
    redis_server.cmd("FLUSHALL")
    env = {"REDIS_URL": redis_server.url, "TEMEL_RATE_LIMIT_READ": "10/60"}
    a, b = make_server(**env), make_server(**env)
    codes = [(a if i % 2 else b).get(ITEM).status_code for i in range(24)]
    assert codes.count(200) == 10, codes
    assert codes[:10] == [200] * 10 and set(codes[10:]) == {429}, codes
    assert_problem(a.get(ITEM), 429, "RATE_LIMIT_EXCEEDED")
    assert redis_server.cmd("EXISTS", "temel:rl:read:127.0.0.1") == 1
    for s in (a, b):
        assert metric(s, "temel_ratelimit_fallback_total") == 0
        assert metric(s, "temel_redis_up") == 1


def test_remaining_header_counts_the_shared_budget(make_server, redis_server):
    redis_server.cmd("FLUSHALL")
    env = {"REDIS_URL": redis_server.url, "TEMEL_RATE_LIMIT_READ": "5/60"}
    a, b = make_server(**env), make_server(**env)
    rem = [int((a if i % 2 else b).get(ITEM).headers["X-RateLimit-Remaining"]) for i in range(5)]
    assert rem == [4, 3, 2, 1, 0]


def test_script_flushed_is_loaded_again(make_server, redis_server):
    redis_server.cmd("FLUSHALL")
    s = make_server(REDIS_URL=redis_server.url, TEMEL_RATE_LIMIT_READ="6/60")
    codes = [s.get(ITEM).status_code for _ in range(3)]
    redis_server.cmd("SCRIPT", "FLUSH")
    codes += [s.get(ITEM).status_code for _ in range(5)]
    assert codes == [200] * 6 + [429] * 2
    assert metric(s, "temel_ratelimit_fallback_total") == 0


def test_outage_falls_back_to_the_local_store_and_recovers(make_server):
    r = RedisServer().start()
    try:
        s = make_server(REDIS_URL=r.url, TEMEL_RATE_LIMIT_READ="4/60")
        assert [s.get(ITEM).status_code for _ in range(2)] == [200, 200]
        r.stop()
        # Redis gone: the API keeps answering; the local store (fresh for this key) limits
        codes = [s.get(ITEM).status_code for _ in range(6)]
        assert codes == [200] * 4 + [429] * 2, codes
        assert metric(s, "temel_ratelimit_fallback_total") >= 6
        assert metric(s, "temel_redis_up") == 0
        assert s.get("/health/live").status_code == 200
        assert len(fallback_lines(s)) == 1  # once per outage, not per request
        # back on the same port: the loops reconnect by themselves (backoff ≤ 2 s)
        r.start()
        wait_for(lambda: metric(s, "temel_redis_up") == 1, "a reconnect")
        wait_for(lambda: s.get(ITEM).status_code and r.cmd("EXISTS", "temel:rl:read:127.0.0.1") == 1,
                   "a decision in Redis again")
        assert s.wait_log(lambda l: l.get("msg", "").startswith("redis: available again"))
    finally:
        r.cleanup()


def test_password_in_the_url(make_server):
    r = RedisServer(password="s3cret-pass").start()
    try:
        s = make_server(REDIS_URL=r.url, TEMEL_RATE_LIMIT_READ="3/60")
        assert [s.get(ITEM).status_code for _ in range(4)] == [200, 200, 200, 429]
        assert r.cmd("EXISTS", "temel:rl:read:127.0.0.1") == 1
        assert metric(s, "temel_ratelimit_fallback_total") == 0
        assert "s3cret-pass" not in s.log_text()
        # a wrong password: refused at setup, the API still answers from the local store
        bad = make_server(REDIS_URL=f"redis://:wrong@127.0.0.1:{r.port}/0")
        assert bad.get(ITEM).status_code == 200
        assert metric(bad, "temel_ratelimit_fallback_total") >= 1
        assert "wrong" not in "".join(l.get("msg", "") for l in bad.log_lines())
    finally:
        r.cleanup()


@pytest.mark.parametrize("url", ["http://127.0.0.1:6379", "redis://", "redis://host:99999",
                                 "redis://host:6379/x", "redis://pass@host"])
def test_bad_url_is_refused_at_start(run_cli, url):
    p = run_cli("migrate", "status", env={"REDIS_URL": url})
    assert p.returncode == 2, p.stderr_text
    assert "REDIS_URL" in p.stderr_text
