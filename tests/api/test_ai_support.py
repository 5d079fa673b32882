"""Helpers shared by the test_ai*.py files: an AI-ready server (outbound allowed to the local fake,
fast retries), provider setup through the admin API, credit grants, waiting, ledger checks."""
import subprocess
import time
import uuid

import requests

from conftest import HTTP_TIMEOUT, Server, login_headers, require_bin

ADMIN_EMAIL = "ai-admin@example.com"
ADMIN_PASSWORD = "ai admin password 12"
SECRET_KEY = "test-secret-key-for-provider-keys-0123456789"
# key strings that must never appear in a response or the log
KEYS = {
    "openai": ["sk-fake-openai-KEY-aaaaaaaaaaaa-1", "sk-fake-openai-KEY-bbbbbbbbbbbb-2"],
    "anthropic": ["sk-ant-fake-KEY-cccccccccccc-3"],
    "gemini": ["AIzaFakeGeminiKEYdddddddddddd4"],
}
MODELS = {"openai": "gpt-fake", "anthropic": "claude-fake", "gemini": "gemini-fake"}


def ai_env(**extra):
    env = {
        "TEMEL_OUTBOUND_ALLOW": "127.0.0.1",
        "TEMEL_ADMIN_EMAIL": ADMIN_EMAIL,
        "TEMEL_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "TEMEL_SECRET_KEY": SECRET_KEY,
        "TEMEL_JOB_BACKOFF_MS": "20",
        "TEMEL_JOB_POLL_MS": "20",
        "TEMEL_JOB_THREADS": "4",
        "TEMEL_AI_TIMEOUT_MS": "8000",
        "TEMEL_RATE_LIMIT_AI": "1000000/60",
        "TEMEL_RATE_LIMIT_READ": "1000000/60",
        "TEMEL_RATE_LIMIT_WRITE": "1000000/60",
        "TEMEL_RATE_LIMIT_AUTH": "1000000/60",
    }
    env.update(extra)
    return env


def admin(server):
    return login_headers(server, ADMIN_EMAIL, ADMIN_PASSWORD)


def setup_providers(server, fake, adm=None, keys=None):
    """The three providers on the fake, with keys. Returns {kind: provider JSON}."""
    adm = adm or admin(server)
    keys = keys or KEYS
    out = {}
    for kind, model in MODELS.items():
        r = server.post("/api/v1/admin/ai/providers", headers=adm, json={
            "name": f"fake-{kind}", "kind": kind, "base_url": fake.base,
            "models": [{"name": model, "upstream": f"{kind}-upstream-1", "default": kind == "openai",
                        "price_in": 150, "price_out": 600}]})
        assert r.status_code == 201, r.text
        p = r.json()
        for i, k in enumerate(keys[kind]):
            kr = server.post(f"/api/v1/admin/ai/providers/{p['id']}/keys", headers=adm,
                             json={"key": k, "label": f"{kind}-{i}"})
            assert kr.status_code == 201, kr.text
        out[kind] = p
    return out


def grant(server, adm, user_id, amount):
    h = dict(adm)
    h["Idempotency-Key"] = str(uuid.uuid4())
    r = server.post("/api/v1/admin/credits/grant", headers=h,
                    json={"user_id": user_id, "amount": amount, "reason": "ai tests"})
    assert r.status_code == 201, r.text
    return r.json()


def submit(server, headers, operation="chat", inp="hello", model=None, key=None, **extra):
    body = {"operation": operation, "input": inp}
    if model:
        body["model"] = model
    body.update(extra)
    h = dict(headers)
    if key:
        h["Idempotency-Key"] = key
    return server.post("/api/v1/ai/submit", headers=h, json=body)


FINAL = {"succeeded", "failed", "cancelled"}


def wait_job(server, headers, job_id, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        r = server.get(f"/api/v1/ai/jobs/{job_id}", headers=headers)
        assert r.status_code == 200, r.text
        if r.json()["status"] in FINAL or time.monotonic() > deadline:
            return r.json()
        time.sleep(0.05)


def balance(server, headers):
    r = server.get("/api/v1/credits/balance", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def ledger_verify(server):
    return subprocess.run([require_bin(), "ledger", "verify"], cwd=str(server.dir), env=dict(server.env),
                          capture_output=True, text=True, timeout=60)


def ledger_sql_check(db_factory, url):
    """The ledger invariant recomputed with SQL, per account; returns a list of problems."""
    problems = []
    rows = db_factory.query(url, "SELECT user_id, balance, reserved FROM credit_accounts")
    for user_id, bal, res in rows:
        (s,), = db_factory.query(url, "SELECT coalesce(sum(CASE WHEN type IN ('grant','purchase','adjust') "
                                      "THEN amount WHEN type = 'confirm' THEN -amount ELSE 0 END), 0) "
                                      "FROM credit_transactions WHERE user_id = ?", (user_id,))
        (r,), = db_factory.query(url, "SELECT coalesce(sum(t.amount), 0) FROM credit_transactions t "
                                      "WHERE t.user_id = ? AND t.type = 'reserve' AND NOT EXISTS (SELECT 1 FROM "
                                      "credit_transactions s WHERE s.reservation_id = t.id)", (user_id,))
        if bal != s or res != r or bal - res < 0:
            problems.append((user_id, bal, res, s, r))
    return problems


def start_ai_server(db_factory, **env):
    s = Server(db_factory.new_url(), env=ai_env(**env))
    s.start()
    return s


def session_get(url, **kw):
    kw.setdefault("timeout", HTTP_TIMEOUT)
    return requests.get(url, **kw)
