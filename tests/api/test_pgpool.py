"""The PostgreSQL pool of the loop threads (src/db/pgpool.c) through the real server:
backends killed under load, pool exhaustion, clients that leave while their request waits.
PostgreSQL only (SQLite has no pool); TEMEL_DB_POOL validation runs on both engines."""
import concurrent.futures
import socket
import subprocess
import threading
import time
import urllib.parse

import psycopg2
import pytest
import requests

from conftest import ENGINE, HTTP_TIMEOUT

pg_only = pytest.mark.skipif(ENGINE != "postgres", reason="the pool is PostgreSQL's")

PRODUCTS = "/api/v1/products?limit=5"


def admin_conn(server):
    conn = psycopg2.connect(server.db_url)
    conn.autocommit = True
    return conn


def server_backends(cur, server):
    """PIDs of the server's connections to its own database (pool and job runner)."""
    db = urllib.parse.urlsplit(server.db_url).path.lstrip("/")
    cur.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid() "
                "AND application_name = 'temel'", (db,))
    return [r[0] for r in cur.fetchall()]


def get(server, path):
    return requests.get(server.url(path), timeout=HTTP_TIMEOUT)


def assert_503_problem(r):
    assert r.status_code == 503, r.text
    assert r.headers.get("Retry-After"), r.headers
    assert r.headers["Content-Type"].startswith("application/problem+json")


@pg_only
def test_killed_backends_under_load_fail_only_503_and_recover(make_server):
    s = make_server(TEMEL_THREADS="2", TEMEL_DB_POOL="2", TEMEL_RATE_LIMIT_READ="1000000/60")
    assert get(s, PRODUCTS).status_code == 200
    stop = threading.Event()
    statuses, errors = [], []
    lock = threading.Lock()

    def hammer():
        sess = requests.Session()
        while not stop.is_set():
            try:
                r = sess.get(s.url(PRODUCTS), timeout=HTTP_TIMEOUT)
                with lock:
                    statuses.append(r.status_code)
                    if r.status_code == 503:
                        assert_503_problem(r)
            except Exception as e:  # a hang (timeout) or a broken response
                with lock:
                    errors.append(repr(e))

    conn = admin_conn(s)
    killed = 0
    with concurrent.futures.ThreadPoolExecutor(12) as ex:
        workers = [ex.submit(hammer) for _ in range(12)]
        try:
            time.sleep(0.5)
            with conn.cursor() as cur:
                for _ in range(3):
                    for pid in server_backends(cur, s):
                        cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
                        killed += 1
                    time.sleep(0.5)
        finally:
            stop.set()
            for w in workers:
                w.result()
    conn.close()
    assert killed >= 4  # two loops x two connections, three times over (plus the job runner's)
    assert not errors, errors[:5]
    assert statuses and set(statuses) <= {200, 503}, sorted(set(statuses))
    assert statuses.count(200) > 0
    # the pool reconnected: the requests after all succeed
    sess = requests.Session()
    after = [sess.get(s.url(PRODUCTS), timeout=HTTP_TIMEOUT).status_code for _ in range(40)]
    assert after == [200] * 40, after
    assert s.alive()


@pg_only
def test_pool_exhaustion_answers_503_with_retry_after(make_server):
    # one loop, one connection: 32 statements in its pipeline, 64 waiting, the rest refused
    s = make_server(TEMEL_THREADS="1", TEMEL_DB_POOL="1", TEMEL_REQUEST_TIMEOUT_MS="30000",
                    TEMEL_RATE_LIMIT_READ="1000000/60")
    assert get(s, PRODUCTS).status_code == 200
    locker = psycopg2.connect(s.db_url)  # a transaction holding the table: every read waits
    with locker.cursor() as cur:
        cur.execute("LOCK TABLE catalog_products IN ACCESS EXCLUSIVE MODE")
    n, capacity = 140, 32 + 64
    with concurrent.futures.ThreadPoolExecutor(n) as ex:
        futs = [ex.submit(requests.get, s.url(PRODUCTS), timeout=40) for _ in range(n)]
        # the refusals come at once, while the lock is still held
        deadline = time.monotonic() + HTTP_TIMEOUT
        while sum(f.done() for f in futs) < n - capacity and time.monotonic() < deadline:
            time.sleep(0.05)
        refused = [f.result() for f in futs if f.done()]
        assert len(refused) >= n - capacity, f"only {len(refused)} answered while the pool was full"
        for r in refused:
            assert_503_problem(r)
        # the server still answers what needs no database
        assert get(s, "/health/live").status_code == 200
        locker.rollback()
        results = [f.result() for f in futs]
    locker.close()
    codes = [r.status_code for r in results]
    assert set(codes) <= {200, 503}, sorted(set(codes))
    assert codes.count(200) == capacity, codes  # everything that was queued succeeded
    assert get(s, PRODUCTS).status_code == 200


@pg_only
def test_client_leaving_while_its_request_waits(make_server):
    s = make_server(TEMEL_THREADS="1", TEMEL_DB_POOL="2", TEMEL_RATE_LIMIT_READ="1000000/60")
    assert get(s, PRODUCTS).status_code == 200
    locker = psycopg2.connect(s.db_url)
    with locker.cursor() as cur:
        cur.execute("LOCK TABLE catalog_products IN ACCESS EXCLUSIVE MODE")
    for _ in range(20):
        c = socket.create_connection(("127.0.0.1", s.port))
        c.sendall(f"GET {PRODUCTS} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        c.close()
    time.sleep(0.3)  # the requests reach the database and wait there
    assert get(s, "/health/live").status_code == 200
    locker.rollback()
    locker.close()
    # their statements complete with nobody to answer; the pool stays usable
    sess = requests.Session()
    assert [sess.get(s.url(PRODUCTS), timeout=HTTP_TIMEOUT).status_code for _ in range(20)] == [200] * 20
    assert s.alive()


@pytest.mark.parametrize("value", ["0", "65", "-1", "many"])
def test_bad_pool_size_exits_2(run_cli, value):
    try:
        p = run_cli("serve", env={"TEMEL_DB_POOL": value}, timeout=15)
    except subprocess.TimeoutExpired:
        pytest.fail(f"temel serve kept running with TEMEL_DB_POOL={value}")
    assert p.returncode == 2
    assert "TEMEL_DB_POOL" in p.stderr_text
