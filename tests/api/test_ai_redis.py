"""The AI response cache in Redis (issue 14 item 1): two instances on one database and one
redis-server share it — a prompt answered on A is a cache hit on B for the same user, never for
another user — with the TTL of TEMEL_AI_CACHE_TTL_S; the table is not used then. A Redis outage
skips the cache (temel_redis_cache_skipped_total), the client sees no error, and the cache
works again once Redis is back."""
import uuid

import pytest

from conftest import new_user_headers, wait_for
from fake_provider import fake_provider  # noqa: F401 (fixture)
from redis_util import metric, redis_server, serve_pair  # noqa: F401 (fixture)
import test_ai_support as S

TTL_S = 600


@pytest.fixture
def fake(fake_provider):
    return fake_provider


@pytest.fixture
def redis(redis_server):
    return redis_server


@pytest.fixture(scope="module")
def pair(db_factory, fake_provider, redis_server):
    env = S.ai_env(REDIS_URL=redis_server.url, TEMEL_AI_CACHE_TTL_S=str(TTL_S), TEMEL_JWT_SECRET="r" * 48)
    for a, b in serve_pair(db_factory, env):
        adm = S.admin(a)
        S.setup_providers(a, fake_provider, adm)
        yield a, b, adm


def ai_keys(redis):
    return redis.cmd("KEYS", "temel:ai:*") or []


def test_answer_from_a_is_a_hit_on_b_for_the_same_user_only(pair, fake, redis, db_factory):
    a, b, adm = pair
    hu, _ = new_user_headers(a, "air")
    hv, _ = new_user_headers(a, "air")
    inp = {"messages": [{"role": "user", "content": f"shared cache {uuid.uuid4().hex}"}]}
    before = set(ai_keys(redis))
    r = S.submit(a, hu, "chat", inp)
    assert r.status_code == 202, r.text
    assert S.wait_job(a, hu, r.json()["job_id"])["status"] == "succeeded"
    new = set(ai_keys(redis)) - before
    assert len(new) == 1, new  # stored in Redis, with the configured lifetime
    assert 0 < redis.cmd("PTTL", new.pop()) <= TTL_S * 1000
    assert db_factory.query(a.db_url, "SELECT count(*) FROM ai_cache")[0][0] == 0  # not in the table
    calls = fake.stats()["requests"]
    hit = S.submit(b, hu, "chat", inp)  # the same user on the other instance
    assert hit.status_code == 200, hit.text
    assert hit.json()["cached"] is True and hit.json()["cost"] == 0
    assert S.wait_job(b, hu, hit.json()["job_id"])["result"]["text"].startswith("echo: shared cache")
    assert fake.stats()["requests"] == calls
    other = S.submit(b, hv, "chat", inp)  # another user asking the same: their own call
    assert other.status_code == 202 and other.json()["cached"] is False, other.text
    assert S.wait_job(b, hv, other.json()["job_id"])["status"] == "succeeded"
    assert fake.stats()["requests"] == calls + 1
    for s in (a, b):
        assert metric(s, "temel_redis_cache_skipped_total") == 0


def test_outage_skips_the_cache_without_an_error(pair, fake, redis):
    a, b, adm = pair
    h, _ = new_user_headers(a, "airo")
    inp = {"messages": [{"role": "user", "content": f"outage {uuid.uuid4().hex}"}]}
    r = S.submit(a, h, "chat", inp)
    assert S.wait_job(a, h, r.json()["job_id"])["status"] == "succeeded"
    redis.stop()
    try:
        calls = fake.stats()["requests"]
        for s in (a, b):  # no error to the client: a miss, a provider call of its own, settled
            r = S.submit(s, h, "chat", inp)
            assert r.status_code == 202 and r.json()["cached"] is False, r.text
            assert S.wait_job(s, h, r.json()["job_id"])["status"] == "succeeded"
        assert fake.stats()["requests"] == calls + 2
        assert metric(a, "temel_redis_cache_skipped_total") >= 1
        assert metric(b, "temel_redis_cache_skipped_total") >= 1
        assert a.get("/health/live").status_code == 200
    finally:
        redis.start()
    # back: the loops reconnect by themselves; the cache is used again
    wait_for(lambda: metric(a, "temel_redis_up") == 1 and metric(b, "temel_redis_up") == 1, "a reconnect")
    fresh = {"messages": [{"role": "user", "content": f"after {uuid.uuid4().hex}"}]}
    r = S.submit(a, h, "chat", fresh)
    assert S.wait_job(a, h, r.json()["job_id"])["status"] == "succeeded"

    def hit():
        x = S.submit(b, h, "chat", fresh)
        if x.status_code == 202:  # the job thread's own connection was still in its backoff
            S.wait_job(b, h, x.json()["job_id"])
        return x.status_code == 200 and x.json()["cached"] is True
    wait_for(hit, "a cache hit after the outage")
