"""The ledger's own routes (API.md §4): balance, transactions, pricing, admin
grant (idempotent, audited), plans, `temel ledger verify`, append-only log.
The AI path that spends credit is tested in test_ai*.py."""
import concurrent.futures
import pathlib
import re
import subprocess
import uuid

import pytest
import requests

from conftest import assert_problem, new_user_headers, require_bin

ROOT = pathlib.Path(__file__).resolve().parents[2]


def grant(server, admin_headers, user_id, amount, key=None, reason="test grant"):
    h = dict(admin_headers)
    h["Idempotency-Key"] = key or str(uuid.uuid4())
    return server.post("/api/v1/admin/credits/grant", json={"user_id": user_id, "amount": amount, "reason": reason},
                       headers=h)


def ledger_verify(server):
    env = dict(server.env)
    return subprocess.run([require_bin(), "ledger", "verify"], cwd=str(server.dir), env=env, capture_output=True,
                          text=True, timeout=60)


def test_a_new_users_balance_is_its_ledger(server, db_factory):
    """Issue 15 item 6 (issue 11 item 3): a new user's 50 free credits are a grant entry in the ledger
    from registration on, so /credits/transactions explains the balance; reading writes nothing."""
    h, u = new_user_headers(server)
    tx = server.get("/api/v1/credits/transactions", headers=h).json()
    assert [(t["type"], t["amount"]) for t in tx["data"]] == [("grant", 50)] and tx["meta"]["total"] == 1
    assert tx["data"][0]["reference"].startswith("monthly:")
    r = server.get("/api/v1/credits/balance", headers=h)
    assert r.status_code == 200
    assert r.json() == {"balance": 50, "reserved": 0, "available": 50, "plan": "free"}
    assert r.json()["balance"] == sum(t["amount"] for t in tx["data"])
    # reading wrote nothing more to the ledger
    assert db_factory.query(server.db_url, "SELECT count(*) FROM credit_transactions WHERE user_id = ?",
                            (u["id"],)) == [(1,)]
    v = ledger_verify(server)
    assert v.returncode == 0 and "ledger ok" in v.stdout, v.stdout + v.stderr
    assert_problem(server.get("/api/v1/credits/balance"), 401)


def test_pricing_is_public(server):
    r = server.get("/api/v1/credits/pricing")
    assert r.status_code == 200
    ops = {o["operation"]: o["cost"] for o in r.json()["operations"]}
    assert set(ops) == {"chat", "generate", "resume", "cover-letter", "image"}
    assert all(isinstance(v, int) and v > 0 for v in ops.values())


def test_admin_grant_idempotent_and_audited(server, admin_headers):
    h, u = new_user_headers(server)
    key = str(uuid.uuid4())
    r = grant(server, admin_headers, u["id"], 250, key)
    assert r.status_code == 201, r.text
    entry = r.json()
    assert entry["type"] == "grant" and entry["amount"] == 250
    again = grant(server, admin_headers, u["id"], 250, key)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == entry
    assert_problem(grant(server, admin_headers, u["id"], 251, key), 422, "IDEMPOTENCY_KEY_REUSED")
    b = server.get("/api/v1/credits/balance", headers=h).json()
    assert b["balance"] == 50 + 250 and b["available"] == 300  # the free grant from registration
    tx = server.get("/api/v1/credits/transactions", headers=h).json()
    assert sorted(t["amount"] for t in tx["data"]) == [50, 250]
    assert tx["meta"]["total"] == 2
    assert [t["type"] for t in server.get("/api/v1/credits/transactions?type=grant", headers=h).json()["data"]] == \
        ["grant", "grant"]
    assert_problem(server.get("/api/v1/credits/transactions?type=theft", headers=h), 422)
    audit = server.get(f"/api/v1/admin/audit-logs?action=credits.grant&target_id={u['id']}",
                       headers=admin_headers).json()["data"]
    assert len(audit) == 1 and audit[0]["after"]["amount"] == 250


def test_grant_validation_and_access(server, admin_headers, user_headers):
    h, u = new_user_headers(server)
    assert_problem(grant(server, user_headers, u["id"], 10), 403)
    assert_problem(grant(server, admin_headers, str(uuid.uuid4()), 10), 422)
    for bad in (0, -5, 10**10):
        assert_problem(grant(server, admin_headers, u["id"], bad), 422)
    r = server.post("/api/v1/admin/credits/grant", json={"user_id": u["id"], "amount": 5, "reason": "x", "bonus": 1},
                    headers=admin_headers)
    assert_problem(r, 422)
    assert server.get("/api/v1/credits/balance", headers=h).json()["balance"] == 50


def test_transactions_are_private(server, admin_headers):
    h1, u1 = new_user_headers(server)
    h2, _ = new_user_headers(server)
    assert grant(server, admin_headers, u1["id"], 7).status_code == 201
    assert [t["amount"] for t in server.get("/api/v1/credits/transactions", headers=h2).json()["data"]] == [50]
    assert len(server.get("/api/v1/credits/transactions", headers=h1).json()["data"]) == 2


def test_subscription(server):
    h, _ = new_user_headers(server)
    assert server.get("/api/v1/me/subscription", headers=h).json()["plan"] == "free"
    r = server.post("/api/v1/me/subscription", json={"plan": "pro"}, headers=h)
    assert r.status_code == 201, r.text  # a paid plan is an order to pay; choosing it grants nothing
    assert r.json()["kind"] == "plan" and r.json()["plan"] == "pro" and r.json()["status"] == "pending"
    assert server.get("/api/v1/me/subscription", headers=h).json()["plan"] == "free"
    assert_problem(server.post("/api/v1/me/subscription", json={"plan": "gold"}, headers=h), 422)
    assert server.post("/api/v1/me/subscription", json={"plan": "free"}, headers=h).status_code == 200
    assert server.delete("/api/v1/me/subscription", headers=h).status_code == 200


def test_concurrent_grants_all_land(server, admin_headers):
    h, u = new_user_headers(server)
    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        rs = list(ex.map(lambda i: grant(server, admin_headers, u["id"], i + 1), range(40)))
    assert all(r.status_code == 201 for r in rs), [r.text for r in rs if r.status_code != 201][:3]
    assert server.get("/api/v1/credits/balance", headers=h).json()["balance"] == 50 + sum(range(1, 41))
    v = ledger_verify(server)
    assert v.returncode == 0, v.stdout + v.stderr
    assert "ledger ok" in v.stdout


def test_log_is_append_only_and_verify_finds_tampering(make_server, db_factory):
    s = make_server(TEMEL_ADMIN_EMAIL="a2@example.com", TEMEL_ADMIN_PASSWORD="admin password for tests 2")
    r = requests.post(s.url("/api/v1/auth/login"), json={"email": "a2@example.com",
                                                          "password": "admin password for tests 2"}, timeout=10)
    ah = {"Authorization": f"Bearer {r.json()['access_token']}"}
    _, u = new_user_headers(s)
    assert grant(s, ah, u["id"], 100).status_code == 201
    assert ledger_verify(s).returncode == 0
    with pytest.raises(Exception):
        db_factory.query(s.db_url, "UPDATE credit_transactions SET amount = 1000")
    with pytest.raises(Exception):
        db_factory.query(s.db_url, "DELETE FROM credit_transactions")
    # a balance changed behind the ledger's back is found
    db_factory.query(s.db_url, "UPDATE credit_accounts SET balance = balance + 5 WHERE user_id = ?", (u["id"],))
    v = ledger_verify(s)
    assert v.returncode == 1
    assert u["id"] in v.stdout and "LEDGER BROKEN" in v.stdout


def test_only_the_ai_path_and_the_admin_grant_write_the_ledger():
    """Static check over src/: the ledger's tables and its write API appear only
    in the ledger itself, the AI module, the credit-pack purchase (orders/packs.c) and the paid plan
    period's grant (orders/plans.c)."""
    writers = re.compile(r"credits_(reserve|confirm|refund|add|grant_period)\s*\(|credit_(transactions|accounts)")
    allowed = {ROOT / "src/modules/credits", ROOT / "src/modules/ai"}
    # orders/packs.c adds a paid credits order's purchase (issue 11 item 3), through credits_add only
    # orders/plans.c grants a paid plan period's credits through credits_grant_period only
    allowed_files = {ROOT / "src/modules/orders/packs.c", ROOT / "src/modules/orders/plans.c"}
    offenders = []
    for path in (ROOT / "src").rglob("*.c"):
        if any(a in path.parents for a in allowed) or path in allowed_files:
            continue
        if writers.search(path.read_text(errors="replace")):
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
    # inside the ledger, the only route handler that writes is the admin grant
    credits_c = (ROOT / "src/modules/credits/credits.c").read_text()
    assert "credits_add(" in credits_c
    routes = re.findall(r'\.pattern = "([^"]+)", \.handler = (\w+)', credits_c)
    writing = [p for p, h in routes if re.search(
        rf"static int {h}\(.*?\n}}\n", credits_c, re.S) and re.search(
        r"credits_add|credits_reserve|ensure_account|tx_grant",
        re.search(rf"static int {h}\(.*?\n}}\n", credits_c, re.S).group(0))]
    assert writing == ["/api/v1/admin/credits/grant"], writing


def test_plan_sets_the_ai_quota(server):
    """The free plan allows 20 AI requests a minute per user (GET /credits/pricing
    lists it); the 21st is refused before any credit is reserved."""
    h, _ = new_user_headers(server)
    plans = {p["plan"]: p for p in server.get("/api/v1/credits/pricing").json()["plans"]}
    quota = plans["free"]["ai_requests_per_minute"]
    codes = [server.post("/api/v1/ai/submit", json={"operation": "chat", "input": f"hello {i}"}, headers=h).status_code
             for i in range(quota + 1)]
    assert 429 not in codes[:quota], codes
    assert codes[quota] == 429
