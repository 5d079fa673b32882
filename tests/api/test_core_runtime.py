"""The execution model (runtime issue): every request runs in a coroutine on its loop thread; waiting
(timers, the database, the CPU worker pool) yields to the loop; argon2id runs on a bounded worker pool;
a loop accepts at most TEMEL_MAX_CONNECTIONS connections. No timing assertions: ordering only."""
import concurrent.futures
import select
import socket
import time

import requests

from conftest import RawConn, assert_problem


def test_a_waiting_handler_does_not_block_its_loop(make_server):
    s = make_server(TEMEL_THREADS="1")
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        sleeps = [ex.submit(requests.get, s.url("/api/v1/_test/sleep?ms=2500"), timeout=20) for _ in range(6)]
        time.sleep(0.3)
        # database reads and writes are served while six coroutines sleep on the only loop
        assert requests.get(s.url("/health/live"), timeout=20).status_code == 200
        assert requests.get(s.url("/api/v1/products"), timeout=20).status_code == 200
        assert requests.post(s.url("/api/v1/_test/counter"), json={"amount": 1}, timeout=20).status_code == 201
        assert not any(f.done() for f in sleeps), "the sleeps finished before the other requests were served"
        for f in sleeps:
            r = f.result()
            assert r.status_code == 200 and r.json()["slept_ms"] >= 2500


def _register(s, email, password="runtime password 1"):
    r = requests.post(s.url("/api/v1/auth/register"),
                      json={"email": email, "password": password, "name": "R"}, timeout=20)
    assert r.status_code in (201, 202), r.text
    return password


def test_password_hashing_runs_off_the_loop(make_server):
    s = make_server(TEMEL_THREADS="1", TEMEL_CPU_THREADS="1", TEMEL_RATE_LIMIT_AUTH="1000/60")
    pw = _register(s, "offloop@example.com")
    login = {"email": "offloop@example.com", "password": pw}
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        # eight argon2id verifications queue on one worker thread (~tens of ms each)
        logins = [ex.submit(requests.post, s.url("/api/v1/auth/login"), json=login, timeout=30) for _ in range(8)]
        time.sleep(0.02)
        live = requests.get(s.url("/health/live"), timeout=20)
        assert live.status_code == 200
        done_before = sum(f.done() for f in logins)
        assert done_before < 8, "every login finished before /health/live answered"
        assert all(f.result().status_code == 200 for f in logins)


def test_a_full_worker_pool_answers_503_with_retry_after(make_server):
    s = make_server(TEMEL_CPU_THREADS="1", TEMEL_CPU_QUEUE="1", TEMEL_RATE_LIMIT_AUTH="1000/60")
    pw = _register(s, "busy@example.com")
    login = {"email": "busy@example.com", "password": pw}
    with concurrent.futures.ThreadPoolExecutor(12) as ex:
        rs = list(ex.map(lambda _: requests.post(s.url("/api/v1/auth/login"), json=login, timeout=30), range(12)))
    codes = sorted(r.status_code for r in rs)
    assert set(codes) <= {200, 503}, codes
    assert 200 in codes and 503 in codes, codes
    for r in rs:
        if r.status_code == 503:
            assert_problem(r, 503, "SERVICE_UNAVAILABLE")
            assert int(r.headers["Retry-After"]) >= 1
    # nothing stays admitted: a lone login afterwards succeeds
    assert requests.post(s.url("/api/v1/auth/login"), json=login, timeout=30).status_code == 200


def _readable(sock, timeout):
    r, _, _ = select.select([sock], [], [], timeout)
    return bool(r)


def test_connection_cap_per_loop(make_server):
    s = make_server(TEMEL_THREADS="1", TEMEL_MAX_CONNECTIONS="2")
    a, b = RawConn(s.port), RawConn(s.port)
    for c in (a, b):  # two keep-alive connections, each served once
        c.send(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.read_response().status == 200
    third = socket.create_connection(("127.0.0.1", s.port))  # the kernel's backlog accepts it
    third.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert not _readable(third, 1.0), "a third connection was served while two were open at a cap of 2"
    a.close()
    assert _readable(third, 10.0), "the third connection was not served after one closed"
    data = third.recv(4096)
    assert data.startswith(b"HTTP/1.1 200"), data[:80]
    third.close()
    b.close()


def test_client_leaving_while_its_coroutine_waits(server):
    for _ in range(20):
        c = socket.create_connection(("127.0.0.1", server.port))
        c.sendall(b"GET /api/v1/_test/sleep?ms=300 HTTP/1.1\r\nHost: x\r\n\r\n")
        c.close()
    # HTTP/1.1: h2o does not read while a request is in flight, so it notices the close only when it
    # writes; every coroutine still runs to its end and is logged (HTTP/2 resets: test_core_tls.py)
    def finished(_line):
        lines = [l for l in server.log_lines() if l.get("route") == "/api/v1/_test/sleep"]
        return len(lines) >= 20
    assert server.wait_log(finished, timeout=10), "not every sleeping request finished"
    assert server.get("/health/live").status_code == 200
    assert server.get("/api/v1/_test/sleep?ms=1").status_code == 200


def test_writers_from_many_clients_all_land(make_server):
    # SQLite: writers queue for the write lock by yielding; PostgreSQL: row locks. Every add counts once.
    s = make_server(TEMEL_THREADS="2", TEMEL_RATE_LIMIT_WRITE="100000/60")
    before = requests.get(s.url("/api/v1/_test/counter"), timeout=20).json()["counter"]
    with concurrent.futures.ThreadPoolExecutor(32) as ex:
        rs = list(ex.map(lambda _: requests.post(s.url("/api/v1/_test/counter"), json={"amount": 1}, timeout=30),
                         range(400)))
    assert all(r.status_code == 201 for r in rs), {r.status_code for r in rs}
    after = requests.get(s.url("/api/v1/_test/counter"), timeout=20).json()["counter"]
    assert after - before == 400


def test_stack_depth_is_bounded_on_a_coroutine(server):
    # Everything recursive that a request reaches runs on the coroutine's 256 KiB stack: JSON nesting
    # (32), filter nesting (16). At the bound it works, one past it is a 4xx, far past it too — never a crash.
    def meta(depth):  # {"name":"x","meta":{"a":{"a":...}}} with `depth` levels of nesting in all
        inner = "1"
        for _ in range(depth - 1):
            inner = '{"a":' + inner + "}"
        return '{"name":"x","meta":' + inner + "}"
    hdr = {"Content-Type": "application/json"}
    assert server.post("/api/v1/_test/echo", data=meta(32), headers=hdr).status_code == 200
    assert_problem(server.post("/api/v1/_test/echo", data=meta(33), headers=hdr), 400, "BAD_REQUEST")
    assert_problem(server.post("/api/v1/_test/echo", data="[" * 30000 + "]" * 30000, headers=hdr), 400, "BAD_REQUEST")
    deep = "(" * 16 + "price >= 0" + ")" * 16
    assert server.get("/api/v1/products", params={"filter": deep}).status_code == 200
    too_deep = "(" * 17 + "price >= 0" + ")" * 17
    assert_problem(server.get("/api/v1/products", params={"filter": too_deep}), 400, "BAD_REQUEST")
    assert server.get("/health/live").status_code == 200


def test_list_total_comes_with_the_page_and_past_the_last_page(server, admin_headers):
    # The page and its total are one statement; an empty page past the end counts on its own.
    from catalog_util import new_category, new_product
    cat = new_category(server, admin_headers)["slug"]
    for _ in range(7):
        new_product(server, admin_headers, cat)
    first = server.get("/api/v1/products", params={"limit": 5, "page": 1})
    assert first.status_code == 200
    meta = first.json()["meta"]
    total = meta["total"]
    past = server.get("/api/v1/products", params={"limit": 5, "page": meta["pages"] + 3})
    assert past.status_code == 200
    assert past.json()["data"] == [] and past.json()["meta"]["total"] == total
    assert total >= 7
    if total > 5:
        second = server.get("/api/v1/products", params={"limit": 5, "page": 2})
        assert second.json()["meta"]["total"] == total and len(second.json()["data"]) >= 1
    none = server.get("/api/v1/products", params={"filter": "price < 0"})
    assert none.status_code == 200 and none.json()["meta"]["total"] == 0 and none.json()["data"] == []


def _db_statements(s):
    from test_core_ops import parse_metrics
    r = requests.get(s.url("/metrics"), timeout=20)
    assert r.status_code == 200, r.text
    return sum(v for n, l, v in parse_metrics(r.text)
               if n == "temel_db_query_duration_seconds_bucket" and l.get("le") == "+Inf")


def test_a_product_page_is_one_statement(make_server):
    # W1 of the runtime issue: page + total in one round trip. Counted through /metrics: the difference
    # between 20 and 10 lists cancels whatever a scrape itself runs.
    s = make_server(TEMEL_THREADS="1")
    url = s.url("/api/v1/products?limit=20&page=1")
    a = _db_statements(s)
    for _ in range(10):
        assert requests.get(url, timeout=20).status_code == 200
    b = _db_statements(s)
    for _ in range(20):
        assert requests.get(url, timeout=20).status_code == 200
    c = _db_statements(s)
    assert (c - b) - (b - a) == 10, (a, b, c)


def test_users_me_is_one_statement(make_server):
    # W2 of the runtime issue: the session check and the caller's row in one statement.
    s = make_server(TEMEL_THREADS="1", TEMEL_RATE_LIMIT_AUTH="1000/60")
    r = requests.post(s.url("/api/v1/auth/register"),
                      json={"email": "w2@example.com", "password": "runtime password 1", "name": "W2"}, timeout=20)
    assert r.status_code == 201, r.text
    h = {"Authorization": "Bearer " + r.json()["access_token"]}
    me = requests.get(s.url("/api/v1/users/me"), headers=h, timeout=20)
    assert me.status_code == 200 and me.json()["email"] == "w2@example.com" and me.json()["name"] == "W2"
    assert requests.get(s.url("/api/v1/me"), headers=h, timeout=20).json() == me.json()
    a = _db_statements(s)
    for _ in range(10):
        assert requests.get(s.url("/api/v1/users/me"), headers=h, timeout=20).status_code == 200
    b = _db_statements(s)
    for _ in range(20):
        assert requests.get(s.url("/api/v1/users/me"), headers=h, timeout=20).status_code == 200
    c = _db_statements(s)
    assert (c - b) - (b - a) == 10, (a, b, c)


def test_add_to_cart_is_one_statement_after_authentication(make_server):
    # W3 of the runtime issue: the live-product check, the upsert up to the cap and the line returned are
    # one statement; with the session check that is two per request.
    s = make_server(TEMEL_THREADS="1", TEMEL_RATE_LIMIT_AUTH="1000/60", TEMEL_RATE_LIMIT_WRITE="100000/60",
                    TEMEL_ADMIN_EMAIL="w3admin@example.com", TEMEL_ADMIN_PASSWORD="w3 admin password 1")
    admin = requests.post(s.url("/api/v1/auth/login"),
                          json={"email": "w3admin@example.com", "password": "w3 admin password 1"}, timeout=20)
    ah = {"Authorization": "Bearer " + admin.json()["access_token"]}
    from catalog_util import new_category, new_product
    pid = new_product(s, ah, new_category(s, ah)["slug"])["id"]
    r = requests.post(s.url("/api/v1/auth/register"),
                      json={"email": "w3@example.com", "password": "runtime password 1", "name": "W3"}, timeout=20)
    h = {"Authorization": "Bearer " + r.json()["access_token"]}
    add = lambda: requests.post(s.url("/api/v1/me/cart"), json={"product_id": pid, "quantity": 1}, headers=h,
                                timeout=20)
    first = add()
    assert first.status_code == 201 and first.json()["quantity"] == 1 and first.headers.get("ETag")
    a = _db_statements(s)
    for _ in range(10):
        assert add().status_code == 200
    b = _db_statements(s)
    for _ in range(20):
        assert add().status_code == 200
    c = _db_statements(s)
    assert (c - b) - (b - a) == 20, (a, b, c)
    assert add().json()["quantity"] == 32
    big = requests.post(s.url("/api/v1/me/cart"), json={"product_id": pid, "quantity": 99}, headers=h, timeout=20)
    assert_problem(big, 422, "VALIDATION_ERROR")
    gone = requests.post(s.url("/api/v1/me/cart"), json={"product_id": "01900000-0000-7000-8000-000000000000"},
                         headers=h, timeout=20)
    assert_problem(gone, 422, "VALIDATION_ERROR")
