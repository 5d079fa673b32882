"""Jobs admin API (API.md §6): queues, list, read, retry, cancel — admin only."""
import time

import pytest

from conftest import ENGINE, assert_problem, new_user_headers

WAIT = 30.0
STATES = ["available", "scheduled", "running", "retryable", "succeeded", "failed", "dead", "cancelled"]


def enqueue(server, **body):
    r = server.post("/api/v1/_test/jobs", json=body)
    assert r.status_code == 201, r.text[:500]
    return r.json()["ids"]


def wait_job(server, headers, jid, states, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while True:
        r = server.get(f"/api/v1/admin/jobs/{jid}", headers=headers)
        assert r.status_code == 200, r.text
        if r.json()["state"] in states:
            return r.json()
        if time.monotonic() > deadline:
            pytest.fail(f"job {jid} never reached {states} (last {r.json()['state']})")
        time.sleep(0.05)


def test_admin_routes_need_admin(server):
    for method, path in (("GET", "/api/v1/admin/queues"), ("GET", "/api/v1/admin/jobs"),
                         ("GET", "/api/v1/admin/jobs/01a201c6-0000-7000-8000-000000000000"),
                         ("POST", "/api/v1/admin/jobs/01a201c6-0000-7000-8000-000000000000/retry"),
                         ("DELETE", "/api/v1/admin/jobs/01a201c6-0000-7000-8000-000000000000")):
        assert_problem(server.request(method, path), 401, "UNAUTHORIZED")
    user, _ = new_user_headers(server)
    assert_problem(server.get("/api/v1/admin/queues", headers=user), 403, "FORBIDDEN")
    assert_problem(server.get("/api/v1/admin/jobs", headers=user), 403, "FORBIDDEN")


def test_queues_counts(server, admin_headers):
    jid = enqueue(server, kind="test.noop", queue="adminq", delay_ms=600000)[0]
    r = server.get("/api/v1/admin/queues", headers=admin_headers)
    assert r.status_code == 200
    data = {q["queue"]: q for q in r.json()["data"]}
    q = data["adminq"]
    assert list(q["counts"]) == STATES
    assert q["counts"]["scheduled"] >= 1
    assert q["total"] == sum(q["counts"].values())
    assert q["concurrency"] is None
    assert server.delete(f"/api/v1/admin/jobs/{jid}", headers=admin_headers).status_code == 204


def test_list_filters_and_pagination(server, admin_headers):
    queue = f"list{time.monotonic_ns() % 10**9}"
    ids = enqueue(server, kind="test.noop", queue=queue, count=5, delay_ms=600000)
    r = server.get("/api/v1/admin/jobs", params={"queue": queue, "state": "scheduled", "limit": 2},
                   headers=admin_headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["meta"] == {"total": 5, "page": 1, "limit": 2, "pages": 3}
    assert [j["id"] for j in body["data"]] == list(reversed(ids))[:2]  # newest first
    j = body["data"][0]
    for k in ("id", "kind", "queue", "priority", "state", "attempt", "max_attempts", "run_at", "progress",
              "last_error", "result", "created_at", "updated_at"):
        assert k in j
    assert "payload" not in j
    assert j["priority"] == "normal" and j["kind"] == "test.noop" and j["queue"] == queue
    r = server.get("/api/v1/admin/jobs", params={"queue": queue, "page": 3, "limit": 2}, headers=admin_headers)
    assert [j["id"] for j in r.json()["data"]] == [ids[0]]
    r = server.get("/api/v1/admin/jobs", params={"queue": queue, "state": "dead"}, headers=admin_headers)
    assert r.json()["meta"]["total"] == 0 and r.json()["data"] == []
    for jid in ids:
        assert server.delete(f"/api/v1/admin/jobs/{jid}", headers=admin_headers).status_code == 204


def test_list_rejects_bad_filters(server, admin_headers):
    assert_problem(server.get("/api/v1/admin/jobs", params={"state": "bogus"}, headers=admin_headers), 422,
                   "VALIDATION_ERROR")
    assert_problem(server.get("/api/v1/admin/jobs", params={"color": "red"}, headers=admin_headers), 422,
                   "VALIDATION_ERROR")
    assert_problem(server.get("/api/v1/admin/jobs", params={"limit": 1000}, headers=admin_headers), 422,
                   "VALIDATION_ERROR")


def test_get_one_and_404(server, admin_headers):
    jid = enqueue(server, kind="test.noop", payload={"hello": "world"})[0]
    j = wait_job(server, admin_headers, jid, ("succeeded",))
    assert j["payload"] == {"hello": "world"} and j["result"] == {"ok": True} and j["attempt"] == 1
    assert j["finished_at"].endswith("Z")
    assert_problem(server.get("/api/v1/admin/jobs/01a201c6-0000-7000-8000-000000000000", headers=admin_headers),
                   404, "NOT_FOUND")
    assert_problem(server.get("/api/v1/admin/jobs/not-a-uuid", headers=admin_headers), 404, "NOT_FOUND")


def test_retry_dead_job(server, admin_headers):
    jid = enqueue(server, kind="test.fail", max_attempts=1)[0]
    j = wait_job(server, admin_headers, jid, ("dead",))
    assert j["attempt"] == 1
    r = server.post(f"/api/v1/admin/jobs/{jid}/retry", headers=admin_headers)
    assert r.status_code == 200, r.text
    assert r.json()["state"] in ("available", "running", "dead")
    j = wait_job(server, admin_headers, jid, ("dead",))  # it fails again, with a fresh attempt count
    assert j["attempt"] == 1
    # retry on a job that is not finished-badly is a conflict
    ok = enqueue(server, kind="test.noop")[0]
    wait_job(server, admin_headers, ok, ("succeeded",))
    assert_problem(server.post(f"/api/v1/admin/jobs/{ok}/retry", headers=admin_headers), 409, "CONFLICT")
    assert_problem(server.post("/api/v1/admin/jobs/01a201c6-0000-7000-8000-000000000000/retry",
                               headers=admin_headers), 404, "NOT_FOUND")


def test_cancel(server, admin_headers):
    jid = enqueue(server, kind="test.noop", delay_ms=600000)[0]
    r = server.delete(f"/api/v1/admin/jobs/{jid}", headers=admin_headers)
    assert r.status_code == 204 and r.content == b""
    assert server.get(f"/api/v1/admin/jobs/{jid}", headers=admin_headers).json()["state"] == "cancelled"
    assert server.delete(f"/api/v1/admin/jobs/{jid}", headers=admin_headers).status_code == 204  # idempotent
    # a cancelled job can be retried
    r = server.post(f"/api/v1/admin/jobs/{jid}/retry", headers=admin_headers)
    assert r.status_code == 200
    wait_job(server, admin_headers, jid, ("succeeded",))
    # finished → 409
    assert_problem(server.delete(f"/api/v1/admin/jobs/{jid}", headers=admin_headers), 409, "CONFLICT")
    assert_problem(server.delete("/api/v1/admin/jobs/01a201c6-0000-7000-8000-000000000000", headers=admin_headers),
                   404, "NOT_FOUND")


def test_cancel_running_is_conflict(server, admin_headers):
    jid = enqueue(server, kind="test.sleep", payload={"ms": 3000})[0]
    wait_job(server, admin_headers, jid, ("running",))
    assert_problem(server.delete(f"/api/v1/admin/jobs/{jid}", headers=admin_headers), 409, "CONFLICT")
    wait_job(server, admin_headers, jid, ("succeeded",))
