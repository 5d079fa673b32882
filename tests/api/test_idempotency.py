"""Idempotency-Key (API.md §1) through a test route that adds to a counter.
The same suite runs on SQLite and PostgreSQL."""
import concurrent.futures
import uuid

import requests

from conftest import assert_problem


def counter(server):
    return server.get("/api/v1/_test/counter").json()["counter"]


def post(server, body, key=None, headers=None):
    h = dict(headers or {})
    if key is not None:
        h["Idempotency-Key"] = key
    return requests.post(server.url("/api/v1/_test/counter"), json=body, headers=h, timeout=10)


def test_same_key_same_body_replays_without_running(server):
    key = str(uuid.uuid4())
    start = counter(server)
    a = post(server, {"amount": 5}, key)
    assert a.status_code == 201 and "Idempotent-Replayed" not in a.headers
    b = post(server, {"amount": 5}, key)
    assert b.status_code == 201
    assert b.headers["Idempotent-Replayed"] == "true"
    assert b.json() == a.json()
    assert counter(server) == start + 5


def test_same_key_other_body_is_422(server):
    key = str(uuid.uuid4())
    start = counter(server)
    assert post(server, {"amount": 1}, key).status_code == 201
    r = post(server, {"amount": 2}, key)
    assert_problem(r, 422, "IDEMPOTENCY_KEY_REUSED")
    assert counter(server) == start + 1


def test_without_key_every_call_runs(server):
    start = counter(server)
    for _ in range(3):
        assert post(server, {"amount": 1}).status_code == 201
    assert counter(server) == start + 3


def test_keys_are_per_user(server, user_headers):
    key = str(uuid.uuid4())
    start = counter(server)
    assert post(server, {"amount": 1}, key, user_headers).status_code == 201
    other = post(server, {"amount": 1}, key)  # anonymous caller: another owner
    assert other.status_code == 201 and "Idempotent-Replayed" not in other.headers
    assert counter(server) == start + 2


def test_failed_handler_stores_nothing_and_rolls_back(server):
    key = str(uuid.uuid4())
    start = counter(server)
    r = post(server, {"amount": 7, "fail": True}, key)
    assert_problem(r, 409, "CONFLICT")
    assert counter(server) == start  # the write before the failure was rolled back
    ok = post(server, {"amount": 7}, key)  # a different body is allowed: nothing was stored
    assert ok.status_code == 201 and "Idempotent-Replayed" not in ok.headers
    assert counter(server) == start + 7


def test_concurrent_duplicates_execute_once(server):
    key = str(uuid.uuid4())
    start = counter(server)
    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        rs = list(ex.map(lambda _: post(server, {"amount": 3}, key), range(16)))
    assert all(r.status_code == 201 for r in rs), [(r.status_code, r.text[:100]) for r in rs]
    assert len({r.text for r in rs}) == 1
    assert sum(1 for r in rs if r.headers.get("Idempotent-Replayed") == "true") == 15
    assert counter(server) == start + 3


def test_bad_keys_are_422(server):
    start = counter(server)
    for bad in ("x" * 256, "has space", "tab\tkey"):
        r = post(server, {"amount": 1}, bad)
        assert_problem(r, 422, "VALIDATION_ERROR")
    assert counter(server) == start
