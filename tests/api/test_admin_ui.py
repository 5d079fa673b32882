"""The admin dashboard at /admin (API.md §12, issue 14 item 4): embedded static files with their
Content-Type, a strict Content-Security-Policy and revalidating cache headers; and the page itself in
a real headless Chromium (tests/api/admin_ui/drive.js, playwright-core with Debian's chromium): sign
in, search a user, grant credits and see the ledger change, retry a dead job, the audit chain status,
health charts — with no console or CSP error. Screenshots go to $ADMIN_UI_SHOTS (or a temp dir),
never into the repository."""
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO_ROOT, Server, assert_problem, login_headers, new_user_headers, serve_module, wait_for

ADMIN = ("ui-admin@example.com", "ui admin password 12")
DRIVER = Path(__file__).resolve().parent / "admin_ui" / "drive.js"
NODE_MODULES = REPO_ROOT / "tools" / "node" / "node_modules" / "playwright-core"


@pytest.fixture(scope="module")
def ui(db_factory):
    yield from serve_module(db_factory, Server(db_factory.new_url(), env={
        "TEMEL_ADMIN_EMAIL": ADMIN[0], "TEMEL_ADMIN_PASSWORD": ADMIN[1], "TEMEL_JOB_POLL_MS": "20",
        "TEMEL_JOB_BACKOFF_MS": "20", "TEMEL_RATE_LIMIT_READ": "1000000/60", "TEMEL_RATE_LIMIT_WRITE": "1000000/60",
        "TEMEL_RATE_LIMIT_AUTH": "1000000/60"}))


CSP_MUST = ["default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'",
            "frame-ancestors 'none'", "base-uri 'none'"]


def test_static_files_headers_and_caching(ui):
    r = ui.get("/admin")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    csp = r.headers["Content-Security-Policy"]
    for part in CSP_MUST:
        assert part in csp, csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert r.headers["Cache-Control"] == "no-cache" and r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert '<script src="/admin/app.js"' in r.text and "<script>" not in r.text and "style=" not in r.text
    etag = r.headers["ETag"]
    again = ui.get("/admin", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["ETag"] == etag
    assert ui.get("/admin", headers={"If-None-Match": '"other"'}).status_code == 200
    for name, ctype in (("app.js", "text/javascript; charset=utf-8"), ("app.css", "text/css; charset=utf-8"),
                        ("index.html", "text/html; charset=utf-8")):
        f = ui.get("/admin/" + name)
        assert f.status_code == 200 and f.headers["Content-Type"] == ctype, name
        assert f.content == (REPO_ROOT / "src/modules/admin_ui/static" / name).read_bytes()  # embedded as is
        assert f.headers["ETag"] != etag or name == "index.html"
    for bad in ("/admin/nope.js", "/admin/..%2Fmain.c", "/admin/static_files.h"):
        assert_problem(ui.get(bad), 404, "NOT_FOUND")
    assert ui.post("/admin", json={}).status_code == 405


def wait_state(s, adm, jid, states):
    return wait_for(lambda: (lambda j: j if j["state"] in states else None)(
        s.get(f"/api/v1/admin/jobs/{jid}", headers=adm).json()), f"job {jid} in {states}", timeout=30)


def test_dashboard_in_headless_chromium(ui, tmp_path):
    missing = [t for t, ok in (("node", shutil.which("node")), ("/usr/bin/chromium", Path("/usr/bin/chromium").exists()),
                               (str(NODE_MODULES), NODE_MODULES.exists())) if not ok]
    if missing:  # a missing tool is a failure, never a silent skip
        pytest.fail(f"missing {missing}: install chromium and run scripts/node-deps.sh (make deps)", pytrace=False)
    adm = login_headers(ui, *ADMIN)
    _, user = new_user_headers(ui, "uiuser")
    r = ui.post("/api/v1/_test/jobs", json={"kind": "test.fail", "queue": "ui", "max_attempts": 1})
    assert r.status_code == 201, r.text
    jid = r.json()["ids"][0]
    assert wait_state(ui, adm, jid, ("dead",))["state"] == "dead"
    shots = Path(os.environ.get("ADMIN_UI_SHOTS") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    args = {"base": ui.url(""), "email": ADMIN[0], "password": ADMIN[1], "user_email": user["email"],
            "user_id": user["id"], "job_id": jid, "amount": 77, "shots": str(shots)}
    p = subprocess.run(["node", str(DRIVER), json.dumps(args)], capture_output=True, text=True, timeout=180)
    try:
        out = json.loads(p.stdout)
    except ValueError:
        pytest.fail(f"driver printed no JSON (exit {p.returncode}):\n{p.stdout[-2000:]}\n{p.stderr[-4000:]}")
    assert p.returncode == 0 and "error" not in out, out.get("error", "") + p.stderr[-2000:]
    # sign-in
    assert out["wrong_password_message"] == "Wrong email or password."
    assert out["signed_in_as"] == ADMIN[0] and out["signed_out"] is True
    # ban and unban from the users list, both audited
    assert "banned" in out["user_row_after_ban"]
    assert ui.get(f"/api/v1/users/{user['id']}", headers=adm).json()["status"] == "active"
    bans = ui.get("/api/v1/admin/audit-logs", params={"target_id": user["id"], "category": "users"}, headers=adm).json()
    assert bans["meta"]["total"] == 2, bans
    # the grant went through the API and the ledger on screen changed
    assert out["ledger_after"] > out["ledger_before"]  # the grant (the free grant is there from registration)
    assert out["ledger_top"][1] == "grant" and out["ledger_top"][2] == "77"
    led = ui.get("/api/v1/admin/credits/transactions", params={"user_id": user["id"], "type": "grant"},
                 headers=adm).json()
    assert [t["amount"] for t in led["data"]][:1] == [77]
    # the dead job was retried (audited, attempts started again)
    assert out["toast_after_retry"].startswith("retried test.fail")
    logs = ui.get("/api/v1/admin/audit-logs", params={"action": "jobs.retry", "target_id": jid}, headers=adm).json()
    assert logs["meta"]["total"] == 1
    j = wait_state(ui, adm, jid, ("dead",))
    assert j["state"] == "dead" and j["attempt"] == 1  # it ran once more and failed again
    assert "credits.grant" in out["audit_actions"] and "jobs.retry" in out["audit_actions"]
    assert "intact" in out["chain_status"]
    assert {"status", "uptime", "database", "queue"} <= set(out["health_cards"])
    # no script error and no CSP violation anywhere
    assert out["console_errors"] == [] and out["page_errors"] == [], (out["console_errors"], out["page_errors"])
    assert len(out["shots"]) >= 10 and all(Path(x).stat().st_size > 5000 for x in out["shots"])


def test_a_non_admin_cannot_use_it(ui):
    """The page is public, its data is not: the API refuses a user's token (what the page shows as
    'not an administrator')."""
    h, _ = new_user_headers(ui, "notadmin")
    assert_problem(ui.get("/api/v1/admin/credits/transactions", headers=h), 403, "FORBIDDEN")
    assert_problem(ui.get("/api/v1/admin/credits/transactions"), 401)
    adm = login_headers(ui, *ADMIN)
    assert_problem(ui.get("/api/v1/admin/credits/transactions", params={"user_id": "x"}, headers=adm), 422)
    assert_problem(ui.get("/api/v1/admin/credits/transactions", params={"type": "gift"}, headers=adm), 422)
