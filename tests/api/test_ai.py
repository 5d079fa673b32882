"""The AI proxy (API.md §5, issue 6): submit and settle on the three wire formats, 402, idempotent
submit, cache hits not charged, waiting routes, failures and refunds, key rotation and retirement,
cancel, ownership, usage and analytics, anti-abuse flags, admin provider API, no key leaks.
Runs against the local fake provider (fake_provider.py). The concurrency and kill -9 cases are in
test_ai_money.py."""
import json
import time
import uuid

import pytest

from conftest import assert_problem, new_user_headers
from fake_provider import FakeProvider
import test_ai_support as S

SEEN = []  # every response body of this module, grepped for keys at the end


@pytest.fixture(scope="module")
def fake():
    f = FakeProvider().start()
    yield f
    f.stop()


@pytest.fixture(scope="module")
def ai(db_factory, fake):
    srv = S.start_ai_server(db_factory)
    adm = S.admin(srv)
    provs = S.setup_providers(srv, fake, adm)
    yield srv, adm, provs
    rc = srv.stop()
    reports = srv.sanitizer_reports()
    log = srv.log_text()
    srv.cleanup()
    db_factory.drop(srv.db_url)
    assert rc == 0, f"the AI test server did not exit 0 on SIGTERM\n{log[-6000:]}"
    assert not reports, f"sanitizer reports: {reports}"
    for keys in S.KEYS.values():
        for k in keys:
            assert k not in log, "a provider key reached the server log"


@pytest.fixture(autouse=True)
def _reset_fake(fake):
    fake.reset()
    yield


def rec(r):
    SEEN.append(r.text)
    return r


def user(srv, adm, credits=None):
    h, u = new_user_headers(srv, "ai")
    if credits:
        S.grant(srv, adm, u["id"], credits)
    return h, u


@pytest.mark.parametrize("kind", ["openai", "anthropic", "gemini"])
def test_submit_settles_on_each_format(ai, fake, kind):
    srv, adm, _ = ai
    h, u = user(srv, adm)
    before = S.balance(srv, h)
    r = rec(S.submit(srv, h, "generate", {"prompt": f"write about {kind} {uuid.uuid4().hex}",
                                          "system": "be brief", "max_tokens": 50, "temperature": 0.5},
                     model=S.MODELS[kind]))
    assert r.status_code == 202, r.text
    body = r.json()
    assert set(body) >= {"job_id", "status", "cost", "transaction_id"}
    assert body["status"] == "queued" and body["cost"] == 2 and body["transaction_id"]
    j = S.wait_job(srv, h, body["job_id"])
    SEEN.append(json.dumps(j))
    assert j["status"] == "succeeded", j
    assert j["progress"] == 100 and j["result"]["text"].startswith("echo: write about")
    assert j["result"]["usage"]["input_tokens"] > 0
    assert j["charged"] == 2 and not j["cached"]
    assert fake.stats()["by_format"] == {kind: 1}
    after = S.balance(srv, h)
    assert after["balance"] == before["balance"] - 2 and after["reserved"] == 0
    tx = srv.get("/api/v1/credits/transactions", headers=h).json()["data"]
    types = sorted(t["type"] for t in tx)
    assert types.count("reserve") == 1 and types.count("confirm") == 1 and "refund" not in types


def test_402_when_short_and_nothing_queued(ai, db_factory):
    srv, adm, _ = ai
    h, u = user(srv, adm)
    avail = S.balance(srv, h)["available"]
    # spend down with resume (3 each) on distinct prompts
    ids = []
    while avail >= 3:
        r = S.submit(srv, h, "resume", f"my resume {uuid.uuid4().hex}")
        assert r.status_code == 202, r.text
        ids.append(r.json()["job_id"])
        avail -= 3
    for i in ids:
        assert S.wait_job(srv, h, i)["status"] == "succeeded"
    n_before = db_factory.query(srv.db_url, "SELECT count(*) FROM ai_requests WHERE user_id = ?", (u["id"],))
    r = rec(S.submit(srv, h, "resume", "one more"))
    assert_problem(r, 402, "INSUFFICIENT_CREDITS")
    assert db_factory.query(srv.db_url, "SELECT count(*) FROM ai_requests WHERE user_id = ?", (u["id"],)) == n_before
    b = S.balance(srv, h)
    assert b["available"] == avail and b["reserved"] == 0


def test_idempotent_submit_replays_and_refuses_reuse(ai, db_factory):
    srv, adm, _ = ai
    h, u = user(srv, adm, 20)
    key = str(uuid.uuid4())
    inp = f"idempotent {uuid.uuid4().hex}"
    r1 = rec(S.submit(srv, h, "chat", inp, key=key))
    assert r1.status_code == 202, r1.text
    r2 = rec(S.submit(srv, h, "chat", inp, key=key))
    assert r2.status_code == 202 and r2.headers.get("Idempotent-Replayed") == "true"
    assert r2.json() == r1.json()
    assert_problem(S.submit(srv, h, "chat", inp + " changed", key=key), 422, "IDEMPOTENCY_KEY_REUSED")
    assert db_factory.query(srv.db_url, "SELECT count(*) FROM ai_requests WHERE user_id = ?", (u["id"],)) == [(1,)]
    assert db_factory.query(srv.db_url, "SELECT count(*) FROM credit_transactions WHERE user_id = ? AND "
                                        "type = 'reserve'", (u["id"],)) == [(1,)]
    assert S.wait_job(srv, h, r1.json()["job_id"])["status"] == "succeeded"


def test_cache_hit_costs_nothing_and_is_recorded(ai, fake, db_factory):
    srv, adm, _ = ai
    h, u = user(srv, adm)
    inp = {"messages": [{"role": "user", "content": f"cache me {uuid.uuid4().hex}"}]}
    r = S.submit(srv, h, "chat", inp)
    assert S.wait_job(srv, h, r.json()["job_id"])["status"] == "succeeded"
    b1 = S.balance(srv, h)
    n_tx = len(srv.get("/api/v1/credits/transactions", headers=h).json()["data"])
    calls = fake.stats()["requests"]
    r = rec(S.submit(srv, h, "chat", inp))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "succeeded" and body["cost"] == 0 and body["cached"] is True
    assert body["transaction_id"] is None
    j = S.wait_job(srv, h, body["job_id"])
    assert j["cached"] and j["charged"] == 0 and j["result"]["text"].startswith("echo: cache me")
    assert S.balance(srv, h) == b1
    assert len(srv.get("/api/v1/credits/transactions", headers=h).json()["data"]) == n_tx
    assert fake.stats()["requests"] == calls  # no provider call
    usage = srv.get("/api/v1/me/usage", headers=h).json()
    assert usage["totals"]["cache_hits"] == 1 and usage["totals"]["requests"] == 2
    assert usage["totals"]["ai_calls"] == 1 and usage["totals"]["credits_spent"] == 1
    # a different operation or model is a different key
    r = S.submit(srv, h, "generate", inp)
    assert r.status_code == 202
    S.wait_job(srv, h, r.json()["job_id"])


def test_cache_is_per_user_and_can_be_turned_off_per_provider(ai, fake, db_factory):
    """Issue 15 item 4: user B asking what user A asked gets no cached answer (a provider call of
    their own, charged), A still hits their own; with the provider's cache off nobody hits."""
    srv, adm, provs = ai
    (ha, ua), (hb, ub) = user(srv, adm), user(srv, adm)
    inp = {"messages": [{"role": "user", "content": f"my secret question {uuid.uuid4().hex}"}]}
    ra = S.submit(srv, ha, "chat", inp)
    assert ra.status_code == 202, ra.text
    assert S.wait_job(srv, ha, ra.json()["job_id"])["status"] == "succeeded"
    calls = fake.stats()["requests"]
    rb = rec(S.submit(srv, hb, "chat", inp))
    assert rb.status_code == 202, rb.text  # queued for B: not A's answer
    assert rb.json()["cached"] is False and rb.json()["cost"] > 0
    jb = S.wait_job(srv, hb, rb.json()["job_id"])
    assert jb["status"] == "succeeded" and not jb["cached"] and jb["charged"] > 0
    assert fake.stats()["requests"] == calls + 1  # B's own provider call
    ra2 = rec(S.submit(srv, ha, "chat", inp))
    assert ra2.status_code == 200 and ra2.json()["cached"] is True  # A's own cache still works
    # the provider's cache off: served by nobody, stored for nobody
    pid = provs["openai"]["id"]
    r = srv.patch(f"/api/v1/admin/ai/providers/{pid}", headers=adm, json={"cache": False})
    assert r.status_code == 200, r.text
    assert r.json()["cache"] is False
    try:
        ra3 = rec(S.submit(srv, ha, "chat", inp))
        assert ra3.status_code == 202 and ra3.json()["cached"] is False, ra3.text
        assert S.wait_job(srv, ha, ra3.json()["job_id"])["status"] == "succeeded"
        fresh = {"messages": [{"role": "user", "content": f"uncached {uuid.uuid4().hex}"}]}
        n = db_factory.query(srv.db_url, "SELECT count(*) FROM ai_cache")[0][0]
        S.wait_job(srv, ha, S.submit(srv, ha, "chat", fresh).json()["job_id"])
        assert db_factory.query(srv.db_url, "SELECT count(*) FROM ai_cache")[0][0] == n
        entries = srv.get("/api/v1/admin/audit-logs", headers=adm, params={"action": "ai.provider_update"}).json()
        assert entries["data"][0]["after"]["cache"] is False and entries["data"][0]["before"]["cache"] is True
    finally:
        assert srv.patch(f"/api/v1/admin/ai/providers/{pid}", headers=adm, json={"cache": True}).status_code == 200
    assert_problem(srv.patch(f"/api/v1/admin/ai/providers/{pid}", headers=adm, json={"cache": "no"}), 422)


def test_wait_routes(ai, fake):
    srv, adm, _ = ai
    h, u = user(srv, adm, 50)
    for path, op in [("chat", "chat"), ("generate", "generate"), ("resume", "resume"),
                     ("cover-letter", "cover-letter")]:
        r = rec(srv.post(f"/api/v1/ai/{path}", headers=h,
                         json={"input": f"{op} {uuid.uuid4().hex}", "wait": 5}))
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "succeeded" and r.json()["operation"] == op
    # slow provider: 202 with the job to poll, then it finishes
    fake.set_delay(1500)
    r = rec(srv.post("/api/v1/ai/chat?wait=1", headers=h, json={"input": f"slow {uuid.uuid4().hex}"}))
    assert r.status_code == 202, r.text
    assert r.json()["status"] in ("queued", "running")
    assert r.headers["Location"] == f"/api/v1/ai/jobs/{r.json()['id']}"
    assert S.wait_job(srv, h, r.json()["id"])["status"] == "succeeded"
    fake.set_delay(0)
    r = srv.post("/api/v1/ai/chat?wait=0", headers=h, json={"input": f"no wait {uuid.uuid4().hex}"})
    assert r.status_code == 202
    assert_problem(srv.post("/api/v1/ai/chat?wait=61", headers=h, json={"input": "x"}), 422)
    assert_problem(srv.post("/api/v1/ai/chat", headers=h, json={"input": "x", "wait": 61}), 422)
    assert_problem(srv.post("/api/v1/ai/chat", json={"input": "x"}), 401)


@pytest.mark.parametrize("mode,count,expect", [
    ("400", None, "failed"),        # permanent: refunded at once
    ("500", 1, "succeeded"),        # transient, then fine (client retry inside the attempt or the job retry)
    ("429", 2, "succeeded"),        # 429 is retried by the job
    ("malformed", None, "failed"),  # malformed on every attempt: refunded after the last
    ("empty", None, "failed"),
])
def test_provider_failures_confirm_or_refund(ai, fake, mode, count, expect):
    srv, adm, _ = ai
    h, u = user(srv, adm)
    b0 = S.balance(srv, h)
    fake.set_mode(mode, count)
    r = S.submit(srv, h, "chat", f"fail {mode} {uuid.uuid4().hex}")
    assert r.status_code == 202
    j = S.wait_job(srv, h, r.json()["job_id"])
    SEEN.append(json.dumps(j))
    assert j["status"] == expect, j
    b1 = S.balance(srv, h)
    assert b1["reserved"] == 0
    tx = srv.get("/api/v1/credits/transactions", headers=h).json()["data"]
    settles = [t["type"] for t in tx if t["type"] in ("confirm", "refund")]
    if expect == "succeeded":
        assert b1["balance"] == b0["balance"] - 1 and settles == ["confirm"]
    else:
        assert b1 == b0 and settles == ["refund"]
        assert j["error"]
    for keys in S.KEYS.values():
        for k in keys:
            assert k not in json.dumps(j)


def test_key_rotation_and_retirement(db_factory, fake):
    srv = S.start_ai_server(db_factory)
    try:
        adm = S.admin(srv)
        keys = {"openai": ["sk-rot-good-1-xxxxxxxx", "sk-rot-bad-2-yyyyyyyy", "sk-rot-good-3-zzzzzzzz"],
                "anthropic": ["sk-ant-only-bad-qqqqqqq"], "gemini": ["AIza-rot-gem-wwwwwwww"]}
        provs = S.setup_providers(srv, fake, adm, keys)
        fake.set_key("sk-rot-bad-2-yyyyyyyy", "401")
        fake.set_key("sk-ant-only-bad-qqqqqqq", "403")
        h, u = new_user_headers(srv)
        S.grant(srv, adm, u["id"], 100)
        for i in range(6):
            r = S.submit(srv, h, "chat", f"rotate {i}")
            assert S.wait_job(srv, h, r.json()["job_id"])["status"] == "succeeded"
        by_key = fake.stats()["by_key"]
        assert by_key["sk-rot-good-1-xxxxxxxx"] >= 2 and by_key["sk-rot-good-3-zzzzzzzz"] >= 2
        assert by_key["sk-rot-bad-2-yyyyyyyy"] == 1  # tried once, then retired
        p = [x for x in srv.get("/api/v1/admin/ai/providers", headers=adm).json()["data"]
             if x["kind"] == "openai"][0]
        st = {k["label"]: k["status"] for k in p["keys"]}
        assert st == {"openai-0": "active", "openai-1": "retired", "openai-2": "active"}
        assert [k["retired_reason"] for k in p["keys"] if k["status"] == "retired"] == ["provider answered 401"]
        # the only anthropic key is refused: the job fails and refunds
        b0 = S.balance(srv, h)
        r = S.submit(srv, h, "chat", "anthropic please", model="claude-fake")
        j = S.wait_job(srv, h, r.json()["job_id"])
        assert j["status"] == "failed" and "401/403" in j["error"]
        assert S.balance(srv, h) == b0
        # retirement is audited, by key id only
        audit = srv.get("/api/v1/admin/audit-logs?action=ai.key_retire", headers=adm)
        assert audit.status_code == 200, audit.text
        text = audit.text + srv.get("/api/v1/admin/audit-logs", headers=adm).text
        assert "ai.key_retire" in text
        for ks in keys.values():
            for k in ks:
                assert k not in text and k not in srv.log_text()
        assert srv.log_text().count("retired") >= 2
    finally:
        rc = srv.stop()
        srv.cleanup()
        db_factory.drop(srv.db_url)
    assert rc == 0


def test_keys_encrypted_at_rest_and_never_returned(ai, db_factory):
    srv, adm, provs = ai
    rows = db_factory.query(srv.db_url, "SELECT secret FROM ai_provider_keys")
    assert rows
    blob = " ".join(r[0] for r in rows)
    for ks in S.KEYS.values():
        for k in ks:
            assert k not in blob and k.encode().hex() not in blob
    r = rec(srv.get("/api/v1/admin/ai/providers", headers=adm))
    for ks in S.KEYS.values():
        for k in ks:
            assert k not in r.text
    assert all(set(k) == {"id", "label", "status", "retired_reason", "created_at", "retired_at"}
               for p in r.json()["data"] for k in p["keys"])


def test_admin_provider_api(ai, fake):
    srv, adm, provs = ai
    h, u = new_user_headers(srv)
    assert_problem(srv.get("/api/v1/admin/ai/providers", headers=h), 403)
    assert_problem(srv.get("/api/v1/admin/ai/providers"), 401)
    good = {"name": "extra-openai", "kind": "openai", "base_url": fake.base,
            "models": [{"name": "extra-model", "upstream": "u-1"}]}
    assert_problem(srv.post("/api/v1/admin/ai/providers", headers=h, json=good), 403)
    for bad, field in [({**good, "kind": "cohere"}, "kind"),
                       ({**good, "base_url": "ftp://x/y"}, "base_url"),
                       ({**good, "base_url": "https://user:pw@host/v1"}, "base_url"),
                       ({**good, "name": "Bad Name"}, "name"),
                       ({**good, "models": [{"name": "m", "upstream": "../x"}]}, "models.upstream"),
                       ({**good, "models": [{"name": "m", "upstream": "u", "extra": 1}]}, "models"),
                       ({**good, "secret": "x"}, "secret")]:
        r = srv.post("/api/v1/admin/ai/providers", headers=adm, json=bad)
        assert_problem(r, 422)
        assert field in r.text
    r = srv.post("/api/v1/admin/ai/providers", headers=adm, json=good)
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    assert r.json()["keys"] == [] and r.json()["models"][0]["name"] == "extra-model"
    assert_problem(srv.post("/api/v1/admin/ai/providers", headers=adm, json=good), 409)
    dup_model = {**good, "name": "other", "models": [{"name": "gpt-fake", "upstream": "x"}]}
    assert_problem(srv.post("/api/v1/admin/ai/providers", headers=adm, json=dup_model), 409)
    # keys
    secret = "sk-admin-api-test-SECRET-0001"
    assert_problem(srv.post(f"/api/v1/admin/ai/providers/{pid}/keys", headers=h, json={"key": secret}), 403)
    assert_problem(srv.post(f"/api/v1/admin/ai/providers/{uuid.uuid4()}/keys", headers=adm,
                            json={"key": secret}), 404)
    assert_problem(srv.post(f"/api/v1/admin/ai/providers/{pid}/keys", headers=adm,
                            json={"key": "has space"}), 422)
    kr = rec(srv.post(f"/api/v1/admin/ai/providers/{pid}/keys", headers=adm, json={"key": secret, "label": "k"}))
    assert kr.status_code == 201 and secret not in kr.text
    kid = kr.json()["id"]
    assert set(kr.json()) == {"id", "provider_id", "label", "status", "created_at"}
    # patch: disable, then the model is unavailable to users
    r = srv.patch(f"/api/v1/admin/ai/providers/{pid}", headers=adm, json={"enabled": False})
    assert r.status_code == 200 and r.json()["enabled"] is False
    r = S.submit(srv, h, "chat", "x", model="extra-model")
    assert_problem(r, 422)
    assert_problem(srv.patch(f"/api/v1/admin/ai/providers/{uuid.uuid4()}", headers=adm, json={"enabled": True}), 404)
    # delete key
    assert_problem(srv.delete(f"/api/v1/admin/ai/providers/{pid}/keys/{uuid.uuid4()}", headers=adm), 404)
    assert_problem(srv.delete(f"/api/v1/admin/ai/providers/{pid}/keys/{kid}", headers=h), 403)
    r = srv.delete(f"/api/v1/admin/ai/providers/{pid}/keys/{kid}", headers=adm)
    assert r.status_code == 204
    assert_problem(srv.delete(f"/api/v1/admin/ai/providers/{pid}/keys/{kid}", headers=adm), 404)
    # audited, never with the key
    logs = srv.get("/api/v1/admin/audit-logs?limit=100", headers=adm)
    assert logs.status_code == 200
    actions = {e["action"] for e in logs.json()["data"]}
    assert {"ai.provider_create", "ai.provider_update", "ai.key_add", "ai.key_delete"} <= actions
    assert secret not in logs.text and secret not in srv.log_text()
    # documented in the OpenAPI document
    doc = srv.get("/api/v1/openapi.json").json()
    assert "/api/v1/admin/ai/providers" in doc["paths"]
    post = doc["paths"]["/api/v1/admin/ai/providers"]["post"]
    assert "requestBody" in post and "summary" in post
    assert "/api/v1/admin/ai/providers/{id}/keys/{key_id}" in doc["paths"]
    assert "/api/v1/ai/submit" in doc["paths"]


def test_input_validation(ai):
    srv, adm, _ = ai
    h, u = user(srv, adm)
    cases = [
        ({"operation": "chat"}, "input"),
        ({"operation": "nope", "input": "x"}, "operation"),
        ({"operation": "chat", "input": ""}, "input"),
        ({"operation": "chat", "input": 5}, "input"),
        ({"operation": "chat", "input": {"prompt": "a", "messages": []}}, "input"),
        ({"operation": "chat", "input": {"messages": [{"role": "system", "content": "x"}]}}, "input.messages"),
        ({"operation": "chat", "input": {"messages": [{"role": "user", "content": "x"},
                                                      {"role": "assistant", "content": "y"}]}}, "input.messages"),
        ({"operation": "chat", "input": {"prompt": "x", "max_tokens": 0}}, "input.max_tokens"),
        ({"operation": "chat", "input": {"prompt": "x", "temperature": 3}}, "input.temperature"),
        ({"operation": "chat", "input": {"prompt": "x", "evil": 1}}, "input"),
        ({"operation": "chat", "input": "x" * 50001}, "input"),
        ({"operation": "chat", "input": "x", "model": "no-such-model"}, "model"),
        ({"operation": "chat", "input": "x", "priority": "urgent"}, "priority"),
        ({"operation": "chat", "input": "x", "cost": 0}, "cost"),
        ({"operation": "image", "input": "x"}, "operation"),
    ]
    for body, field in cases:
        r = srv.post("/api/v1/ai/submit", headers=h, json=body)
        assert_problem(r, 422)
        assert any(e["field"] == field for e in r.json().get("errors", [])), (body, r.text)
    assert_problem(srv.post("/api/v1/ai/submit", headers={**h, "Content-Type": "application/json"}, data="{"), 400)
    assert S.balance(srv, h)["reserved"] == 0


def test_jobs_list_get_and_ownership(ai):
    srv, adm, _ = ai
    h, u = user(srv, adm, 20)
    h2, u2 = user(srv, adm)
    ids = [S.submit(srv, h, "chat", f"list {i} {uuid.uuid4().hex}").json()["job_id"] for i in range(3)]
    for i in ids:
        S.wait_job(srv, h, i)
    r = srv.get("/api/v1/ai/jobs?limit=2", headers=h)
    assert r.status_code == 200
    assert r.json()["meta"] == {"total": 3, "page": 1, "limit": 2, "pages": 2}
    assert [j["id"] for j in r.json()["data"]] == ids[::-1][:2]
    assert srv.get("/api/v1/ai/jobs?status=succeeded", headers=h).json()["meta"]["total"] == 3
    assert srv.get("/api/v1/ai/jobs?status=failed", headers=h).json()["meta"]["total"] == 0
    assert_problem(srv.get("/api/v1/ai/jobs?status=weird", headers=h), 422)
    assert_problem(srv.get("/api/v1/ai/jobs?colour=red", headers=h), 422)
    assert srv.get("/api/v1/ai/jobs", headers=h2).json()["meta"]["total"] == 0
    assert_problem(srv.get(f"/api/v1/ai/jobs/{ids[0]}", headers=h2), 404)
    assert_problem(srv.post(f"/api/v1/ai/jobs/{ids[0]}/cancel", headers=h2), 404)
    assert_problem(srv.get(f"/api/v1/ai/jobs/{uuid.uuid4()}", headers=h), 404)
    # finished: cancel is a conflict
    assert_problem(srv.post(f"/api/v1/ai/jobs/{ids[0]}/cancel", headers=h), 409)


def test_cancel_queued_job_refunds(db_factory, fake):
    # no runner in this server: jobs stay queued
    srv = S.start_ai_server(db_factory, TEMEL_JOB_THREADS="0")
    try:
        adm = S.admin(srv)
        S.setup_providers(srv, fake, adm)
        h, u = new_user_headers(srv)
        b0 = S.balance(srv, h)
        r = S.submit(srv, h, "resume", "cancel me")
        assert r.status_code == 202
        jid = r.json()["job_id"]
        assert S.balance(srv, h)["reserved"] == 3
        assert srv.get(f"/api/v1/ai/jobs/{jid}", headers=h).json()["status"] == "queued"
        c = srv.post(f"/api/v1/ai/jobs/{jid}/cancel", headers=h)
        assert c.status_code == 200, c.text
        assert c.json()["status"] == "cancelled" and c.json()["charged"] == 0
        assert S.balance(srv, h) == b0
        assert_problem(srv.post(f"/api/v1/ai/jobs/{jid}/cancel", headers=h), 409)
        tx = srv.get("/api/v1/credits/transactions", headers=h).json()["data"]
        assert sorted(t["type"] for t in tx if t["type"] != "grant") == ["refund", "reserve"]
        assert S.ledger_verify(srv).returncode == 0
    finally:
        rc = srv.stop()
        srv.cleanup()
        db_factory.drop(srv.db_url)
    assert rc == 0


def test_analytics_ai_usage(ai):
    srv, adm, _ = ai
    h, u = user(srv, adm)
    r = S.submit(srv, h, "chat", f"analytics {uuid.uuid4().hex}", model="claude-fake")
    S.wait_job(srv, h, r.json()["job_id"])
    a = srv.get("/api/v1/admin/analytics/ai-usage", headers=adm)
    assert a.status_code == 200, a.text
    body = a.json()
    assert body["totals"]["requests"] >= 1
    m = {x["model"]: x for x in body["models"]}
    assert "claude-fake" in m
    x = m["claude-fake"]
    assert set(x) >= {"requests", "cache_hits", "cache_hit_rate", "credits", "cost_usd_micros",
                      "latency_p50_ms", "latency_p95_ms", "tokens_in", "tokens_out"}
    assert x["latency_p95_ms"] >= x["latency_p50_ms"] >= 0
    assert x["cost_usd_micros"] >= 0 and 0 <= x["cache_hit_rate"] <= 1
    assert_problem(srv.get("/api/v1/admin/analytics/ai-usage", headers=h), 403)
    assert_problem(srv.get("/api/v1/admin/analytics/ai-usage?from=yesterday", headers=adm), 422)
    day = body["to"][:10]
    assert srv.get(f"/api/v1/admin/analytics/ai-usage?from=2020-01-01&to={day}", headers=adm).status_code == 422
    r = srv.get("/api/v1/me/usage?from=2026-01-01", headers=h)
    assert r.status_code in (200, 422)


def test_abuse_flag_and_staff_mail(db_factory, fake):
    srv = S.start_ai_server(db_factory)
    try:
        adm = S.admin(srv)
        S.setup_providers(srv, fake, adm)
        users = [new_user_headers(srv, "farm") for _ in range(5)]  # 5 accounts from one IP: farm signal
        h, u = users[0]
        S.grant(srv, adm, u["id"], 50)
        for i in range(5):  # the same prompt again and again: repeat signal
            r = S.submit(srv, h, "chat", "same prompt every time")
            assert r.status_code in (200, 202), r.text
        flags = srv.get("/api/v1/admin/flags", headers=adm)
        assert flags.status_code == 200, flags.text
        data = flags.json()["data"]
        assert [f["user_id"] for f in data] == [u["id"]]
        f = data[0]
        assert f["score"] >= 70 and f["status"] == "open"
        assert f["signals"]["same_prompt"] >= 5 and f["signals"]["ip_accounts"] >= 5
        # one flag per open case, however many more requests
        S.submit(srv, h, "chat", "same prompt every time")
        assert srv.get("/api/v1/admin/flags", headers=adm).json()["meta"]["total"] == 1
        assert_problem(srv.get("/api/v1/admin/flags", headers=h), 403)
        # staff were mailed
        deadline = time.monotonic() + 10
        mails = []
        while time.monotonic() < deadline:
            mails = [p.read_text(errors="replace") for p in (srv.dir / "mail").glob("*.eml")] \
                if (srv.dir / "mail").exists() else []
            if any("flagged" in m for m in mails):
                break
            time.sleep(0.1)
        flagged = [m for m in mails if "flagged" in m]
        assert len(flagged) == 1 and S.ADMIN_EMAIL in flagged[0] and u["id"] in flagged[0]
    finally:
        rc = srv.stop()
        srv.cleanup()
        db_factory.drop(srv.db_url)
    assert rc == 0


def test_priority_capped_for_free_plan(ai, db_factory):
    srv, adm, _ = ai
    h, u = user(srv, adm)
    r = S.submit(srv, h, "chat", f"prio {uuid.uuid4().hex}", priority="high")
    assert r.status_code == 202
    j = S.wait_job(srv, h, r.json()["job_id"])
    assert j["priority"] == "normal"
    r = S.submit(srv, h, "chat", f"prio {uuid.uuid4().hex}", priority="low")
    assert S.wait_job(srv, h, r.json()["job_id"])["priority"] == "low"


def test_no_key_in_any_response_of_this_module(ai):
    srv, adm, _ = ai
    text = "\n".join(SEEN)
    for ks in S.KEYS.values():
        for k in ks:
            assert k not in text
    for ks in S.KEYS.values():
        for k in ks:
            assert k not in srv.log_text()
