"""Durable jobs (issue 3: queue, runner, scheduler, admin API) on both engines.

Jobs are enqueued through the test-only route POST /api/v1/_test/jobs (test kinds
test.noop / test.fail / test.sleep / test.record / test.progress exist only with
TEMEL_ENV=test) and observed directly in the database. Every wait has a timeout
that is a hang guard, never a timing assertion.
"""
import json
import os
import signal
import subprocess
import time
from collections import Counter

import pytest
import requests

from conftest import ENGINE, Server, ServerStartError, assert_problem, base_env, require_bin, wait_for

WAIT = 30.0


# ---------------------------------------------------------------- helpers

def ms(col):
    """SQL for a timestamp column as epoch ms on the engine under test."""
    return col if ENGINE == "sqlite" else f"(extract(epoch from {col}) * 1000)::bigint"


def enqueue(server, expect=201, **body):
    r = server.post("/api/v1/_test/jobs", json=body)
    assert r.status_code == expect, r.text[:500]
    return r.json()


def job(db_factory, server, job_id):
    rows = db_factory.query(
        server.db_url,
        f"SELECT state, attempt, max_attempts, progress, result, last_error, {ms('run_at')}, "
        f"{ms('started_at')}, {ms('finished_at')}, queue, priority FROM jobs WHERE id = ?", (job_id,))
    if not rows:
        return None
    k = ("state", "attempt", "max_attempts", "progress", "result", "last_error", "run_at", "started_at",
         "finished_at", "queue", "priority")
    return dict(zip(k, rows[0]))


def wait_state(db_factory, server, job_id, states, timeout=WAIT):
    if isinstance(states, str):
        states = (states,)
    return wait_for(lambda: (lambda j: j if j and j["state"] in states else None)(job(db_factory, server, job_id)),
                    f"job {job_id} to reach {states}", timeout)


def counts(server, queue=None):
    r = server.get("/api/v1/_test/jobs/counts", params={"queue": queue} if queue else None)
    assert r.status_code == 200, r.text
    return r.json()


class Worker:
    """A `temel worker` process on a server's database."""

    def __init__(self, server, **env):
        self.env = dict(server.env)
        self.env.update({k: str(v) for k, v in env.items()})
        self.log_path = server.dir / f"worker-{time.monotonic_ns()}.log"
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([require_bin(), "worker"], cwd=str(server.dir), env=self.env,
                                     stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                self._log.close()
                return None
        self._log.close()
        return self.proc.returncode

    def log(self):
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def workers():
    started = []

    def start(server, **env):
        w = Worker(server, **env)
        started.append(w)
        return w

    yield start
    for w in started:
        if w.proc.poll() is None:
            w.stop(signal.SIGKILL)


@pytest.fixture
def idle_server(make_server):
    """A server that enqueues but runs nothing (TEMEL_JOB_THREADS=0): workers run the jobs."""
    return make_server(TEMEL_JOB_THREADS="0")


# ---------------------------------------------------------------- runner basics

def test_job_runs_and_succeeds(server, db_factory):
    ids = enqueue(server, kind="test.noop")["ids"]
    j = wait_state(db_factory, server, ids[0], "succeeded")
    assert j["attempt"] == 1 and j["progress"] == 100
    assert json.loads(j["result"]) == {"ok": True}
    assert j["finished_at"] >= j["started_at"] >= j["run_at"]


def test_progress_and_result(server, db_factory):
    ids = enqueue(server, kind="test.progress")["ids"]
    j = wait_state(db_factory, server, ids[0], "succeeded")
    assert json.loads(j["result"]) == {"progress_set": 50}
    assert j["progress"] == 100


def test_delayed_job_does_not_run_early(server, db_factory):
    ids = enqueue(server, kind="test.noop", delay_ms=1500)["ids"]
    j = job(db_factory, server, ids[0])
    assert j["state"] in ("scheduled", "running", "succeeded")
    j = wait_state(db_factory, server, ids[0], "succeeded")
    assert j["started_at"] >= j["run_at"], j


def test_unknown_kind_and_bad_options(server):
    r = server.post("/api/v1/_test/jobs", json={"kind": "no.such.kind"})
    assert_problem(r, 422, "VALIDATION_ERROR")
    r = server.post("/api/v1/_test/jobs", json={"kind": "test.noop", "priority": "urgent"})
    assert_problem(r, 422, "VALIDATION_ERROR")


def test_unique_key_dedupe(server, db_factory):
    key = f"uk-{time.monotonic_ns()}"
    first = enqueue(server, kind="test.noop", unique_key=key, delay_ms=600000)
    again = enqueue(server, kind="test.noop", unique_key=key)
    assert again["duplicates"] == 1 and again["ids"] == first["ids"]
    # several in one transaction: the first one holds the key
    other = f"uk2-{time.monotonic_ns()}"
    many = enqueue(server, kind="test.noop", unique_key=other, count=3, delay_ms=600000)
    assert many["duplicates"] == 2 and len(set(many["ids"])) == 1
    rows = db_factory.query(server.db_url, "SELECT count(*) FROM jobs WHERE unique_key = ?", (key,))
    assert rows[0][0] == 1


def test_unique_key_free_again_after_finish(server, db_factory):
    key = f"uk3-{time.monotonic_ns()}"
    a = enqueue(server, kind="test.noop", unique_key=key)["ids"][0]
    wait_state(db_factory, server, a, "succeeded")
    b = enqueue(server, kind="test.noop", unique_key=key)
    assert b["duplicates"] == 0 and b["ids"][0] != a


def test_rolled_back_enqueue_never_exists(server, db_factory):
    r = enqueue(server, expect=200, kind="test.noop", count=5, rollback=True)
    assert r["rolled_back"] is True and len(r["ids"]) == 5
    marker = enqueue(server, kind="test.noop")["ids"][0]  # committed after: runs
    wait_state(db_factory, server, marker, "succeeded")
    for i in r["ids"]:
        assert job(db_factory, server, i) is None


def test_retry_with_backoff_then_dead(make_server, db_factory):
    s = make_server(TEMEL_JOB_BACKOFF_MS="50")
    jid = enqueue(s, kind="test.fail", max_attempts=3)["ids"][0]
    j = wait_state(db_factory, s, jid, ("dead", "failed"))
    assert j["state"] == "dead" and j["attempt"] == 3 and j["max_attempts"] == 3
    assert j["last_error"] == "test failure on attempt 3"
    # on_dead ran inside the transaction that marked it
    rows = db_factory.query(s.db_url, "SELECT value FROM app_meta WHERE key = ?", ("job-dead:" + jid,))
    assert rows == [("dead",)]
    retried = [l for l in s.log_lines() if l.get("msg") == "job" and l.get("id") == jid]
    assert [l["outcome"] for l in retried] == ["retried", "retried", "dead"]

    perm = enqueue(s, kind="test.fail", payload={"permanent": True})["ids"][0]
    j = wait_state(db_factory, s, perm, ("dead", "failed"))
    assert j["state"] == "failed" and j["attempt"] == 1


def test_health_queue_and_metrics(server, db_factory):
    jid = enqueue(server, kind="test.noop")["ids"][0]
    wait_state(db_factory, server, jid, "succeeded")
    h = server.get("/health").json()
    q = h["services"]["queue"]
    assert q["status"] == "up"
    for k in ("pending", "failed", "dead"):
        assert isinstance(q[k], int) and q[k] >= 0
    text = server.get("/metrics").text
    assert 'temel_jobs_total{queue="test",outcome="succeeded"}' in text
    assert "temel_job_duration_seconds_bucket{queue=\"test\",le=\"+Inf\"}" in text
    assert "# TYPE temel_jobs_queue_depth gauge" in text


# ---------------------------------------------------------------- workers

def test_priority_then_run_at(idle_server, db_factory, workers, tmp_path):
    out = tmp_path / "order.txt"
    plan = [("low", "a"), ("normal", "b"), ("high", "c"), ("high", "d"), ("normal", "e")]
    for prio, label in plan:
        enqueue(idle_server, kind="test.record", priority=prio, payload={"file": str(out), "label": label})
    w = workers(idle_server, TEMEL_JOB_THREADS="1")
    wait_for(lambda: counts(idle_server, "test")["succeeded"] == 5, what="5 jobs done")
    assert w.stop() == 0
    assert out.read_text().split() == ["c", "d", "b", "e", "a"]


def test_thousand_jobs_two_workers_exactly_once(idle_server, db_factory, workers, tmp_path):
    out = tmp_path / "ids.txt"
    ids = enqueue(idle_server, kind="test.record", count=1000, payload={"file": str(out)})["ids"]
    assert len(set(ids)) == 1000
    w1 = workers(idle_server, TEMEL_JOB_THREADS="2")
    w2 = workers(idle_server, TEMEL_JOB_THREADS="2")
    wait_for(lambda: counts(idle_server, "test")["succeeded"] == 1000, timeout=120, what="1000 jobs done")
    assert w1.stop() == 0, w1.log()[-2000:]
    assert w2.stop() == 0, w2.log()[-2000:]
    seen = Counter(out.read_text().split())
    assert set(seen) == set(ids)
    assert max(seen.values()) == 1, [k for k, v in seen.items() if v > 1][:5]
    rows = db_factory.query(idle_server.db_url, "SELECT max(attempt) FROM jobs WHERE kind = 'test.record'")
    assert rows[0][0] == 1


def test_worker_killed_mid_job_is_reclaimed(idle_server, db_factory, workers):
    env = {"TEMEL_JOB_THREADS": "1", "TEMEL_JOB_LEASE_MARGIN_MS": "300"}
    jid = enqueue(idle_server, kind="test.sleep", timeout_ms=4000,
                  payload={"ms": 60000, "first_only": True})["ids"][0]
    w1 = workers(idle_server, **env)
    j = wait_state(db_factory, idle_server, jid, "running")
    assert j["attempt"] == 1
    w1.proc.send_signal(signal.SIGKILL)
    w1.proc.wait(timeout=10)
    w2 = workers(idle_server, **env)
    j = wait_state(db_factory, idle_server, jid, ("succeeded", "dead", "failed"))
    assert j["state"] == "succeeded" and j["attempt"] == 2, j
    assert "lease expired" in (j["last_error"] or "")
    assert w2.stop() == 0


def test_worker_drains_on_sigterm(idle_server, db_factory, workers):
    jid = enqueue(idle_server, kind="test.sleep", payload={"ms": 800})["ids"][0]
    w = workers(idle_server, TEMEL_JOB_THREADS="1")
    wait_state(db_factory, idle_server, jid, "running")
    assert w.stop() == 0
    # the running job finished before the worker exited
    assert job(db_factory, idle_server, jid)["state"] == "succeeded"


def test_worker_needs_threads(idle_server):
    w = Worker(idle_server, TEMEL_JOB_THREADS="0")
    assert w.proc.wait(timeout=20) == 2
    assert "TEMEL_JOB_THREADS" in w.log()


def test_bad_job_settings_exit_2(run_cli):
    for var, val in (("TEMEL_JOB_THREADS", "-1"), ("TEMEL_JOB_POLL_MS", "x"), ("TEMEL_JOB_RETENTION_DAYS", "0")):
        p = run_cli("worker", env={var: val})
        assert p.returncode == 2, (var, p.stderr_text)
        assert var in p.stderr_text


# ---------------------------------------------------------------- scheduler

def test_missed_cron_tick_fires_once(make_server, db_factory):
    s = make_server()
    name = "test.every_minute"
    wait_for(lambda: db_factory.query(s.db_url, "SELECT count(*) FROM jobs WHERE kind = 'test.cron'")[0][0] >= 1,
             what="the first cron tick")
    assert s.stop() == 0
    # pretend the instance was down for three hours
    if ENGINE == "sqlite":
        db_factory.query(s.db_url, "UPDATE job_cron SET last_tick = last_tick - 10800000 WHERE name = ?", (name,))
    else:
        db_factory.query(s.db_url, "UPDATE job_cron SET last_tick = last_tick - interval '3 hours' WHERE name = ?",
                         (name,))
    before = db_factory.query(s.db_url, "SELECT count(*) FROM jobs WHERE kind = 'test.cron'")[0][0]
    s2 = Server(s.db_url, env={"TEMEL_JOB_THREADS": "1"})
    try:
        s2.start()
        wait_for(lambda: s2.wait_log(lambda l: l.get("msg", "").startswith("cron test.every_minute"), timeout=0.1),
                 what="the cron entry to fire after the restart")
        after = db_factory.query(s.db_url, "SELECT count(*) FROM jobs WHERE kind = 'test.cron'")[0][0]
        # once (twice only if a minute boundary passed meanwhile), never once per missed minute (180)
        assert 1 <= after - before <= 2, (before, after)
        assert s2.stop() == 0
    finally:
        s2.cleanup()
