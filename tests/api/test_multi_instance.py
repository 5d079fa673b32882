"""Several instances (3 × `temel serve` + a `temel worker`) on one PostgreSQL and one
redis-server, no proxy (multi_util.Cluster spreads requests): a shared rate limit, each
job once, cron once per tick, no oversold stock, no double-spent credit, refresh
rotation seen by every instance, and a rolling restart under load that loses nothing."""
import concurrent.futures
import threading
import uuid
from collections import Counter

import pytest
import requests

from catalog_util import API, new_category, new_product
from conftest import ENGINE, login_headers, wait_for
from multi_util import ADMIN_EMAIL, ADMIN_PASSWORD, HIGH_LIMITS, Cluster
from redis_util import RedisServer

pytestmark = pytest.mark.skipif(ENGINE != "postgres", reason="several instances share one PostgreSQL database")

ITEM = "/api/v1/_test/items/0190a6c2-7b7a-7cc1-8d5e-3f2b1a0c9e11"


@pytest.fixture(scope="module")
def redis():
    r = RedisServer().start()
    yield r
    r.cleanup()


@pytest.fixture(scope="module")
def cluster(db_factory, redis):
    url = db_factory.new_url()
    c = Cluster(url, redis.url, n=3, env=dict(HIGH_LIMITS, TEMEL_OUTBOUND_ALLOW="127.0.0.1",
                                                   # an hour: only Redis pub/sub can explain a fresh flag
                                                   TEMEL_FEATURES_TTL_S="3600"))
    yield c
    problems = c.stop()
    c.cleanup()
    db_factory.drop(url)
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def admin(cluster):
    return login_headers(cluster.servers[0], ADMIN_EMAIL, ADMIN_PASSWORD)


def q(db_factory, cluster, sql, args=()):
    return db_factory.query(cluster.db_url, sql, args)


# --------------------------------------------------------------------------- rate limit

def test_shared_rate_limit_is_one_budget(db_factory, redis):
    """3 instances × 20 requests against a budget of 15: exactly 15 succeed."""
    url = db_factory.new_url()
    c = Cluster(url, redis.url, n=3, env={"TEMEL_RATE_LIMIT_READ": "15/60"}, worker=False)
    try:
        redis.cmd("DEL", "temel:rl:read:127.0.0.1")
        codes = Counter(c.request("GET", ITEM).status_code for _ in range(60))
        assert codes == {200: 15, 429: 45}, codes
    finally:
        problems = c.stop()
        c.cleanup()
        db_factory.drop(url)
    assert not problems


# --------------------------------------------------------------------------- jobs and cron

def test_each_job_runs_once(cluster, db_factory, tmp_path):
    out = tmp_path / "ran.txt"
    ids = []
    for s in cluster.servers:  # enqueued through every instance
        r = s.post("/api/v1/_test/jobs", json={"kind": "test.record", "count": 30, "payload": {"file": str(out)}})
        assert r.status_code == 201, r.text
        ids += r.json()["ids"]
    wait_for(lambda: q(db_factory, cluster, "SELECT count(*) FROM jobs WHERE kind = 'test.record' AND "
                                            "state = 'succeeded'")[0][0] == len(ids), "every job done")
    seen = Counter(out.read_text().split())
    assert set(seen) == set(ids) and max(seen.values()) == 1, seen.most_common(3)


# --------------------------------------------------------------------------- money and stock

def test_stock_never_oversold_across_instances(cluster, admin):
    units, users = 12, 45
    a = cluster.servers[0]
    cat = new_category(a, admin)
    p = new_product(a, admin, cat["slug"], price=999, stock=units, name={"tr": "Son", "en": "Last", "pl": "Ost"})

    def client(i):
        r = cluster.request("POST", f"{API}/auth/register", timeout=120,
                            json={"email": f"multi-{p['id'][-12:]}-{i}@example.com", "name": "racer",
                                  "password": "correct horse battery staple"})
        assert r.status_code == 201, r.text
        h = {"Authorization": f"Bearer {r.json()['access_token']}"}
        ad = cluster.request("POST", f"{API}/me/addresses", headers=h,
                             json={"full_name": "Ada", "line1": "Cd. 1", "city": "İstanbul"})
        assert ad.status_code == 201, ad.text
        c = cluster.request("POST", f"{API}/me/cart", headers=h, json={"product_id": p["id"], "quantity": 1})
        assert c.status_code in (200, 201), c.text
        return h, ad.json()["id"]

    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        clients = list(ex.map(client, range(users)))
    barrier = threading.Barrier(users)
    urls = cluster.urls()

    def buy(i):
        h, aid = clients[i]
        barrier.wait()
        return requests.post(urls[i % len(urls)] + f"{API}/orders", json={"address_id": aid}, headers=h, timeout=60)

    with concurrent.futures.ThreadPoolExecutor(users) as ex:
        results = list(ex.map(buy, range(users)))
    codes = Counter(r.status_code for r in results)
    assert codes == {201: units, 409: users - units}, codes
    for s in cluster.servers:
        assert s.get(f"{API}/products/{p['id']}").json()["stock"] == 0


def test_credits_never_double_spent_across_instances(cluster, db_factory):
    """One user's credit, 18 concurrent AI submits of 3 credits each over 3 instances: exactly
    available // 3 are accepted (credit reserved in one transaction each), the rest are 402."""
    import test_ai_support as S
    from fake_provider import FakeProvider
    fake = FakeProvider().start()
    try:
        a = cluster.servers[0]
        adm = login_headers(a, ADMIN_EMAIL, ADMIN_PASSWORD)
        S.setup_providers(a, fake, adm)  # outbound to 127.0.0.1 is allowed for this cluster
        r = cluster.request("POST", f"{API}/auth/register", json={
            "email": f"spender-{uuid.uuid4().hex[:10]}@example.com", "name": "s",
            "password": "correct horse battery staple"})
        assert r.status_code == 201, r.text
        h = {"Authorization": f"Bearer {r.json()['access_token']}"}
        available = cluster.request("GET", f"{API}/credits/balance", headers=h).json()["available"]
        n, cost = 18, 3
        assert 0 < available // cost < n, available
        barrier = threading.Barrier(n)
        urls = cluster.urls()

        def go(i):
            barrier.wait()
            return requests.post(urls[i % 3] + f"{API}/ai/submit", headers=h, timeout=60,
                                 json={"operation": "resume", "input": f"question {i}"})

        with concurrent.futures.ThreadPoolExecutor(n) as ex:
            res = list(ex.map(go, range(n)))
        codes = Counter(x.status_code for x in res)
        assert codes == {202: available // cost, 402: n - available // cost}, codes
        assert q(db_factory, cluster, "SELECT count(*) FROM credit_accounts WHERE balance - reserved < 0")[0][0] == 0
    finally:
        fake.stop()


# --------------------------------------------------------------------------- sessions

def test_refresh_rotated_on_one_instance_is_refused_on_another(cluster):
    a, b, c = cluster.servers
    r = a.post(f"{API}/auth/register", json={"email": f"rot-{uuid.uuid4().hex[:10]}@example.com", "name": "r",
                                             "password": "correct horse battery staple"})
    assert r.status_code == 201, r.text
    rt1 = r.json()["refresh_token"]
    r2 = b.post(f"{API}/auth/refresh", json={"refresh_token": rt1})
    assert r2.status_code == 200, r2.text
    assert c.post(f"{API}/auth/refresh", json={"refresh_token": rt1}).status_code == 401
    # the replay killed the family everywhere
    assert a.post(f"{API}/auth/refresh", json={"refresh_token": r2.json()["refresh_token"]}).status_code == 401


# --------------------------------------------------------------------------- feature flags

def test_feature_flag_change_reaches_every_instance(cluster, admin):
    """Each instance caches the flags (TTL one hour here); a change made on one instance is seen
    by the others through Redis pub/sub."""
    a, b, c = cluster.servers
    k = f"multi_{uuid.uuid4().hex[:8]}"
    r = a.post(f"{API}/admin/features", json={"key": k, "enabled": False}, headers=admin)
    assert r.status_code == 201, r.text
    fid = r.json()["id"]
    for s in (b, c):  # cached there now
        wait_for(lambda: s.get(f"{API}/features").json()["features"].get(k) is False, "the new flag")
    assert a.patch(f"{API}/admin/features/{fid}", json={"enabled": True}, headers=admin).status_code == 200
    for s in (b, c):
        wait_for(lambda: s.get(f"{API}/features").json()["features"][k] is True, "the change on another instance")
    assert c.delete(f"{API}/admin/features/{fid}", headers=admin).status_code == 204
    for s in (a, b):
        wait_for(lambda: k not in s.get(f"{API}/features").json()["features"], "the delete on another instance")


# --------------------------------------------------------------------------- rolling restart

def test_rolling_restart_loses_no_accepted_request(cluster):
    """Writers keep posting (new connection each, spread over the instances) while every
    instance in turn gets SIGTERM and comes back. Each answered request is a correct 201, and
    the counter equals the number of 201s: nothing accepted was lost or applied unanswered."""
    base = cluster.request("GET", "/api/v1/_test/counter").json()["counter"]
    stop = threading.Event()
    answers, errors = [], []

    def writer():
        while not stop.is_set():
            try:
                r = cluster.request("POST", "/api/v1/_test/counter", json={"amount": 1})
                answers.append((r.status_code, r.json().get("counter") if r.status_code == 201 else r.text))
            except Exception as e:  # anything but a refused connection
                errors.append(repr(e))

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for i in range(len(cluster.servers)):
            wait_for(lambda: len(answers) >= 20 * (i + 1), "load before the restart")
            cluster.restart(i)
        wait_for(lambda: len(answers) >= 20 * (len(cluster.servers) + 1), "load after the restarts")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert not errors, errors[:3]
    bad = [a for a in answers if a[0] != 201]
    assert not bad, bad[:3]
    final = cluster.request("GET", "/api/v1/_test/counter").json()["counter"]
    assert final - base == len(answers)


# --------------------------------------------------------------------------- cron (last: it needs a minute boundary)

def test_cron_fires_once_per_tick(cluster, db_factory):
    """Four runners (3 serve + 1 worker, some restarted above) tick together at each minute
    boundary over one job_cron table: every minute has exactly one test.cron job."""
    kind = "test.cron"
    # the start-up tick and at least one boundary tick all runners raced for (hang guard > 1 min)
    wait_for(lambda: q(db_factory, cluster, "SELECT count(DISTINCT date_trunc('minute', created_at)) FROM jobs "
                                            "WHERE kind = %s", (kind,))[0][0] >= 2, "a minute boundary", timeout=90)
    rows = q(db_factory, cluster, "SELECT date_trunc('minute', created_at), count(*) FROM jobs WHERE kind = %s "
                                  "GROUP BY 1 ORDER BY 1", (kind,))
    assert len(rows) >= 2 and all(n == 1 for _, n in rows), rows
