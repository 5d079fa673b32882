"""Backup and restore (API.md §12, issue 14 item 3): `temel backup create|list|verify|restore` on both
engines — a copy taken while writers run holds every row committed before it started and restores
elsewhere with a clean ledger and audit chain; a damaged copy, a broken chain or ledger inside a copy,
and a copy of a newer schema are refused; the admin routes run a backup as a job and list them; retention."""
import hashlib
import json
import os
import subprocess
import threading
import time
import uuid

import pytest

from files_util import S3_KEY, S3_SECRET, S3rver
from conftest import (ENGINE, HTTP_TIMEOUT, Server, assert_problem, login_headers,
                      new_user_headers, require_bin, serve_module, wait_for)

ADMIN = ("backup-admin@example.com", "backup admin password 1")
SECRET_KEY = "backup-tests-secret-key-0123456789abcdef"


def env_for(tmp):
    return {"TEMEL_ADMIN_EMAIL": ADMIN[0], "TEMEL_ADMIN_PASSWORD": ADMIN[1], "TEMEL_SECRET_KEY": SECRET_KEY,
            "TEMEL_BACKUP_DIR": str(tmp / "backups"), "TEMEL_JOB_POLL_MS": "20",
            "TEMEL_RATE_LIMIT_WRITE": "1000000/60", "TEMEL_RATE_LIMIT_READ": "1000000/60",
            "TEMEL_RATE_LIMIT_AUTH": "1000000/60"}


@pytest.fixture(scope="module")
def bk(db_factory, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("backup")
    for s in serve_module(db_factory, Server(db_factory.new_url(), env=env_for(tmp))):
        yield s, tmp


def cli(s, *args, db_url=None, timeout=300, **env):
    """The binary with the server's settings (same secret, same backup dir), on db_url if given."""
    e = dict(s.env)
    if db_url:
        e["DATABASE_URL"] = db_url
    e.update({k: str(v) for k, v in env.items()})
    p = subprocess.run([require_bin(), *args], cwd=str(s.dir), env=e, capture_output=True, text=True,
                       timeout=timeout)
    return p


def create(s, *extra, db_url=None):
    p = cli(s, "backup", "create", *extra, db_url=db_url)
    assert p.returncode == 0, p.stderr
    m = json.loads(p.stdout)
    return m


def copy_path(tmp, m, d="backups"):
    return tmp / d / m["file"]


def grant(s, h, user_id):
    hh = dict(h)
    hh["Idempotency-Key"] = str(uuid.uuid4())
    return s.post("/api/v1/admin/credits/grant", json={"user_id": user_id, "amount": 1, "reason": "load"}, headers=hh)


def ids_in(db_factory, url):
    return {r[0] for r in db_factory.query(url, "SELECT id FROM credit_transactions WHERE type = 'grant'")}


def test_backup_under_write_load_restores_everything_committed(bk, db_factory):
    s, tmp = bk
    adm = login_headers(s, *ADMIN)
    _, u = new_user_headers(s, "loaded")
    committed, lock, stop, errors = [], threading.Lock(), threading.Event(), []

    def writer():
        while not stop.is_set():
            try:
                r = grant(s, adm, u["id"])
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(repr(e))
                return
            if r.status_code != 201:
                errors.append(r.text)
                return
            with lock:
                committed.append(r.json()["id"])

    threads = [threading.Thread(target=writer) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: len(committed) >= 60 or errors, "60 grants (or an error) before the backup", timeout=60)
        with lock:
            before = list(committed)  # every grant answered 201 before the backup started
        m = create(s)
        with lock:
            n_at_end = len(committed)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=HTTP_TIMEOUT * 2)
    assert not errors, errors[:3]
    assert len(before) >= 60 and n_at_end > len(before), "writers must run during the backup"
    assert m["engine"] == ENGINE and m["schema_version"] >= 23 and len(m["sha256"]) == 64
    f = copy_path(tmp, m)
    assert f.stat().st_size == m["size"] and (f.stat().st_mode & 0o777) == 0o600

    # restore elsewhere: every row committed before the backup is there
    other = db_factory.new_url()
    p = cli(s, "backup", "restore", str(f), db_url=other)
    assert p.returncode == 2 and "--yes" in p.stderr  # nothing happens without --yes
    p = cli(s, "backup", "restore", str(f), "--yes", db_url=other)
    assert p.returncode == 0, p.stderr
    restored = ids_in(db_factory, other)
    missing = set(before) - restored
    assert not missing, f"{len(missing)} committed grants missing from the restored copy"
    assert len(restored) <= len(committed) + 1
    # the restored database is consistent and serves
    assert cli(s, "ledger", "verify", db_url=other).returncode == 0
    v = cli(s, "backup", "verify", str(f))
    assert v.returncode == 0, v.stdout + v.stderr
    assert "ledger: ok" in v.stdout and "audit chain: ok" in v.stdout and "verify: ok" in v.stdout
    lst = cli(s, "backup", "list")
    assert lst.returncode == 0 and m["file"] in lst.stdout


def test_damaged_copy_fails_verify_and_restore(bk, db_factory):
    s, tmp = bk
    m = create(s)
    d = tmp / "damaged"
    d.mkdir()
    src = copy_path(tmp, m)
    data = bytearray(src.read_bytes())
    data[len(data) // 2] ^= 0x01
    (d / m["file"]).write_bytes(bytes(data))
    (d / (m["file"] + ".manifest.json")).write_text(json.dumps(m))
    v = cli(s, "backup", "verify", str(d / m["file"]))
    assert v.returncode == 1 and "SHA-256 mismatch" in v.stderr and "verify: FAILED" in v.stdout
    other = db_factory.new_url()
    r = cli(s, "backup", "restore", str(d / m["file"]), "--yes", db_url=other)
    assert r.returncode == 1 and "SHA-256 mismatch" in r.stderr
    # no manifest: not a backup
    (d / (m["file"] + ".manifest.json")).unlink()
    assert cli(s, "backup", "verify", str(d / m["file"])).returncode == 1


def tampered_copy(s, tmp, db_factory, sql, name):
    """A copy whose checksum is right but whose content was changed (restored, tampered, backed up)."""
    m = create(s)
    url = db_factory.new_url()
    assert cli(s, "backup", "restore", str(copy_path(tmp, m)), "--yes", db_url=url).returncode == 0
    for q in sql:
        db_factory.query(url, q)
    return create(s, "--to", str(tmp / name), db_url=url)


def test_verify_catches_broken_audit_chain_and_ledger(bk, db_factory):
    s, tmp = bk
    adm = login_headers(s, *ADMIN)
    _, u = new_user_headers(s, "chain")
    assert grant(s, adm, u["id"]).status_code == 201  # at least one audit entry and ledger row
    untrigger = (["DROP TRIGGER audit_logs_no_update"] if ENGINE == "sqlite"
                 else ["ALTER TABLE audit_logs DISABLE TRIGGER USER"])  # the table is append-only
    m = tampered_copy(s, tmp, db_factory, untrigger + ["UPDATE audit_logs SET action = 'credits.gift' WHERE seq = "
                                                       "(SELECT max(seq) FROM audit_logs)"], "chain")
    v = cli(s, "backup", "verify", str(tmp / "chain" / m["file"]))
    assert v.returncode == 1 and "audit chain: BROKEN" in v.stdout, v.stdout + v.stderr
    m = tampered_copy(s, tmp, db_factory, ["UPDATE credit_accounts SET balance = balance + 1000"], "ledger")
    v = cli(s, "backup", "verify", str(tmp / "ledger" / m["file"]))
    assert v.returncode == 1 and "ledger: PROBLEMS" in v.stdout, v.stdout + v.stderr


def test_restore_refuses_a_newer_schema(bk, db_factory):
    s, tmp = bk
    ins = ("INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'from_the_future', 0)"
           if ENGINE == "sqlite" else
           "INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'from_the_future', now())")
    m = tampered_copy(s, tmp, db_factory, [ins], "future")
    assert m["schema_version"] == 9999
    target = db_factory.new_url()
    r = cli(s, "backup", "restore", str(tmp / "future" / m["file"]), "--yes", db_url=target)
    assert r.returncode == 1 and "newer" in r.stderr, r.stderr
    assert not db_factory.table_exists(target, "users")  # nothing was written


def test_a_copy_of_the_other_engine_is_refused(bk, db_factory):
    """The manifest names the engine; verify and restore refuse before reading the copy."""
    s, tmp = bk
    m = create(s)
    other = "postgres" if ENGINE == "sqlite" else "sqlite"
    (tmp / "backups" / (m["file"] + ".manifest.json")).write_text(json.dumps({**m, "engine": other}))
    target = db_factory.new_url()
    v = cli(s, "backup", "verify", str(copy_path(tmp, m)))
    assert v.returncode == 1 and f"the copy is a {other} backup; DATABASE_URL is {ENGINE}" in v.stderr, v.stderr
    r = cli(s, "backup", "restore", str(copy_path(tmp, m)), "--yes", db_url=target)
    assert r.returncode == 1 and f"the copy is a {other} backup" in r.stderr, r.stderr
    assert not db_factory.table_exists(target, "users")  # nothing was written


def test_restore_of_an_unreadable_copy_leaves_the_database_alone(bk, db_factory):
    """A copy whose checksum matches its manifest but which is no database dump: restore fails
    before it touches the target (PostgreSQL: before the schema is dropped)."""
    s, tmp = bk
    m = create(s)
    d = tmp / "garbage"
    d.mkdir()
    junk = b"not a database dump\n" * 100
    (d / m["file"]).write_bytes(junk)
    (d / (m["file"] + ".manifest.json")).write_text(json.dumps({**m, "sha256": hashlib.sha256(junk).hexdigest()}))
    target = db_factory.new_url()
    assert cli(s, "backup", "restore", str(copy_path(tmp, m)), "--yes", db_url=target).returncode == 0
    assert db_factory.table_exists(target, "users")
    r = cli(s, "backup", "restore", str(d / m["file"]), "--yes", db_url=target)
    assert r.returncode == 1, r.stdout + r.stderr
    assert db_factory.table_exists(target, "users")  # nothing was dropped


def test_admin_routes_job_list_audit_and_retention(db_factory, tmp_path):
    s = Server(db_factory.new_url(), env={**env_for(tmp_path), "TEMEL_BACKUP_KEEP": "2"})
    s.start()
    try:
        adm = login_headers(s, *ADMIN)
        uh, _ = new_user_headers(s)
        assert_problem(s.post("/api/v1/admin/backups", headers=uh), 403, "FORBIDDEN")
        assert_problem(s.get("/api/v1/admin/backups"), 401)
        jobs = []
        for _ in range(3):
            r = s.post("/api/v1/admin/backups", headers=adm)
            assert r.status_code == 202, r.text
            jid = r.json()["data"]["job_id"]
            j = wait_for(lambda: (lambda j: j if j["state"] in ("succeeded", "failed", "dead") else None)(
                s.get(f"/api/v1/admin/jobs/{jid}", headers=adm).json()), f"backup job {jid} to finish", timeout=120)
            assert j["state"] == "succeeded", j
            jobs.append(j)
            time.sleep(0.002)  # distinct millisecond stamps in the names
        r = s.get("/api/v1/admin/backups", headers=adm)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["meta"]["total"] == 2  # TEMEL_BACKUP_KEEP
        assert [b["file"] for b in body["data"]] == [jobs[2]["result"]["file"], jobs[1]["result"]["file"]]
        assert sorted(os.listdir(tmp_path / "backups")) == sorted(
            [b["file"] for b in body["data"]] + [b["file"] + ".manifest.json" for b in body["data"]])
        assert_problem(s.get("/api/v1/admin/backups", params={"limit": 101}, headers=adm), 422)
        logs = s.get("/api/v1/admin/audit-logs", params={"action": "backup.create"}, headers=adm).json()
        assert logs["meta"]["total"] == 3
    finally:
        assert s.stop() == 0
        s.cleanup()
        db_factory.drop(s.db_url)


def test_bad_settings_and_usage(run_cli, tmp_path):
    p = run_cli("backup", "list", env={"TEMEL_BACKUP_CRON": "every day"})
    assert p.returncode == 2 and "TEMEL_BACKUP_CRON" in p.stderr_text
    p = run_cli("backup", "list", env={"TEMEL_BACKUP_KEEP": "0"})
    assert p.returncode == 2 and "TEMEL_BACKUP_KEEP" in p.stderr_text
    assert run_cli("backup").returncode == 2
    assert run_cli("backup", "verify").returncode == 2
    assert run_cli("backup", "restore").returncode == 2
    p = run_cli("backup", "list", env={"TEMEL_BACKUP_UPLOAD": "/tmp/somewhere"})
    assert p.returncode == 2 and "TEMEL_BACKUP_UPLOAD" in p.stderr_text


def test_create_to_s3(bk):
    """--to s3://: the copy and its manifest are put under backups/ through the storage interface
    (s3rver); the local copy stays in TEMEL_BACKUP_DIR. An unknown access key: exit 1, nothing left."""
    s, tmp = bk
    s3 = S3rver("backups-test")
    try:
        p = cli(s, "backup", "create", "--to", s3.url, AWS_ACCESS_KEY_ID=S3_KEY, AWS_SECRET_ACCESS_KEY=S3_SECRET)
        assert p.returncode == 0, p.stderr
        m = json.loads(p.stdout)
        up = s3.object_bytes("backups/" + m["file"])
        assert up is not None and hashlib.sha256(up).hexdigest() == m["sha256"]
        assert json.loads(s3.object_bytes("backups/" + m["file"] + ".manifest.json")) == m
        assert copy_path(tmp, m).exists()
        before = set(os.listdir(tmp / "backups"))
        p = cli(s, "backup", "create", "--to", s3.url, AWS_ACCESS_KEY_ID="nobody", AWS_SECRET_ACCESS_KEY="wrong")
        assert p.returncode == 1, p.stdout
        assert set(os.listdir(tmp / "backups")) == before  # no half backup left behind
    finally:
        s3.stop()
