"""Configuration validation, .env, CLI commands and migrations."""
import json
import re
import subprocess

import pytest

from conftest import free_port


def run_serve_expect_exit(run_cli, env, **kw):
    try:
        return run_cli("serve", env=env, timeout=15, **kw)
    except subprocess.TimeoutExpired:
        pytest.fail(f"temel serve kept running with bad config {env}")


@pytest.mark.parametrize("var,value", [
    ("PORT", "abc"),
    ("PORT", "70000"),
    ("PORT", "-1"),
    ("PORT", "80x"),
    ("TEMEL_THREADS", "0"),
    ("TEMEL_THREADS", "-2"),
    ("TEMEL_THREADS", "many"),
    ("TEMEL_LOG_LEVEL", "loud"),
    ("TEMEL_LOG_FORMAT", "xml"),
    ("DATABASE_URL", "mysql://x"),
    ("DATABASE_URL", "nonsense"),
    ("TEMEL_CORS_ORIGINS", "*"),
    ("TEMEL_CORS_ORIGINS", "https://a.example.com,*"),
    ("TEMEL_RATE_LIMIT_READ", "abc"),
    ("TEMEL_RATE_LIMIT_READ", "5"),
    ("TEMEL_RATE_LIMIT_READ", "5/0"),
    ("TEMEL_RATE_LIMIT_WRITE", "x/60"),
    ("TEMEL_RATE_LIMIT_AUTH", "-1/60"),
    ("TEMEL_ENV", "staging"),
    ("TEMEL_TRUST_PROXY", "maybe"),
    ("TEMEL_REQUEST_TIMEOUT_MS", "abc"),
])
def test_bad_config_exits_2_naming_variable(run_cli, var, value):
    p = run_serve_expect_exit(run_cli, {var: value})
    assert p.returncode == 2, f"{var}={value}: exit {p.returncode}\n{p.stderr_text}"
    assert var in p.stderr_text, f"stderr does not name {var}: {p.stderr_text!r}"


def test_bad_config_does_not_listen(run_cli):
    port = free_port()
    p = run_serve_expect_exit(run_cli, {"PORT": str(port), "TEMEL_LOG_LEVEL": "loud"})
    assert p.returncode == 2


def test_tls_cert_without_key_refused(run_cli, tmp_path):
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    p = run_serve_expect_exit(run_cli, {"TEMEL_TLS_CERT": str(cert)})
    assert p.returncode == 2
    assert "TEMEL_TLS_KEY" in p.stderr_text


def test_tls_missing_files_refused(run_cli, tmp_path):
    p = run_serve_expect_exit(run_cli, {"TEMEL_TLS_CERT": str(tmp_path / "nope.pem"),
                                        "TEMEL_TLS_KEY": str(tmp_path / "nope.key")})
    assert p.returncode != 0
    assert "TEMEL_TLS" in p.stderr_text


def test_bad_config_reports_all_or_first_but_not_secrets(run_cli):
    p = run_serve_expect_exit(run_cli, {"TEMEL_METRICS_TOKEN": "tok-SECRET-123", "PORT": "abc"})
    assert p.returncode == 2
    assert "tok-SECRET-123" not in p.stderr_text + p.stdout_text


def test_database_url_password_not_echoed(run_cli):
    p = run_serve_expect_exit(run_cli, {"DATABASE_URL": "mysql://user:pw-SECRET-9@host/db"})
    assert p.returncode == 2
    assert "pw-SECRET-9" not in p.stderr_text + p.stdout_text


# ------------------------------------------------------------------ .env

def test_dotenv_is_read(make_server):
    s = make_server(_dotenv="# comment\n\nTEMEL_METRICS_TOKEN=from-dotenv-7\n")
    assert s.get("/metrics").status_code == 401
    assert s.get("/metrics", headers={"Authorization": "Bearer from-dotenv-7"}).status_code == 200


def test_real_env_wins_over_dotenv(make_server):
    s = make_server(_dotenv="PORT=abc\nTEMEL_LOG_LEVEL=loud\nTEMEL_METRICS_TOKEN=dotenv-tok\n",
                    TEMEL_LOG_LEVEL="info", TEMEL_METRICS_TOKEN="env-tok")
    # PORT and TEMEL_LOG_LEVEL from the real env overrode the bad .env values, or it would not start
    assert s.get("/metrics", headers={"Authorization": "Bearer env-tok"}).status_code == 200
    assert s.get("/metrics", headers={"Authorization": "Bearer dotenv-tok"}).status_code == 401


def test_bad_value_in_dotenv_exits_2(run_cli, tmp_path):
    (tmp_path / ".env").write_text("TEMEL_THREADS=0\n")
    p = run_serve_expect_exit(run_cli, {"TEMEL_THREADS": None}, cwd=tmp_path)
    assert p.returncode == 2
    assert "TEMEL_THREADS" in p.stderr_text


# ------------------------------------------------------------------ CLI

def test_version(run_cli):
    p = run_cli("version")
    assert p.returncode == 0, p.stderr_text
    assert re.search(r"\d+\.\d+\.\d+", p.stdout_text), p.stdout_text


def test_openapi_cli(run_cli):
    p = run_cli("openapi")
    assert p.returncode == 0, p.stderr_text
    doc = json.loads(p.stdout_text)
    assert doc["openapi"] == "3.1.0"
    assert "/health/live" in doc["paths"]


@pytest.mark.parametrize("args", [("frobnicate",), ("migrate", "sideways"), ("migrate", "down", "abc"),
                                  ("migrate", "down", "-1")])
def test_bad_cli_usage_nonzero(run_cli, args):
    p = run_cli(*args, timeout=15)
    assert p.returncode != 0, f"{args}: {p.stdout_text}"
    assert p.stderr_text.strip(), "usage error must say something on stderr"


def test_no_args_nonzero(run_cli):
    p = run_cli(timeout=15)
    assert p.returncode != 0


def _status_lines(p):
    """Lines like "0001 init applied 2026-...Z" / "0003 users pending", in order."""
    return [l.strip() for l in p.stdout_text.splitlines() if re.match(r"^\s*\d{4}\s", l)]


def test_migrate_cycle(run_cli, db_factory, tmp_path):
    url = db_factory.new_url(str(tmp_path))
    p = run_cli("migrate", "status", db_url=url)
    assert p.returncode == 0, p.stderr_text
    lines = _status_lines(p)
    assert lines and lines[0].startswith("0001 init"), p.stdout_text
    assert all("pending" in l for l in lines), p.stdout_text
    n = len(lines)

    p = run_cli("migrate", "up", db_url=url)
    assert p.returncode == 0, p.stderr_text
    assert db_factory.table_exists(url, "schema_migrations")
    rows = db_factory.query(url, "SELECT version FROM schema_migrations ORDER BY version")
    assert len(rows) == n and int(rows[0][0]) == 1, rows

    p = run_cli("migrate", "status", db_url=url)
    lines = _status_lines(p)
    assert len(lines) == n and all("applied" in l for l in lines), p.stdout_text

    p = run_cli("migrate", "up", db_url=url)  # idempotent
    assert p.returncode == 0, p.stderr_text
    assert len(db_factory.query(url, "SELECT version FROM schema_migrations")) == n

    p = run_cli("migrate", "down", "1", db_url=url)
    assert p.returncode == 0, p.stderr_text
    remaining = db_factory.query(url, "SELECT version FROM schema_migrations ORDER BY version") \
        if db_factory.table_exists(url, "schema_migrations") else []
    assert [r[0] for r in remaining] == [r[0] for r in rows[:-1]], (rows, remaining)

    p = run_cli("migrate", "status", db_url=url)
    assert p.returncode == 0
    lines = _status_lines(p)
    assert "pending" in lines[-1], p.stdout_text
    assert all("applied" in l for l in lines[:-1]), p.stdout_text

    p = run_cli("migrate", "down", str(n), db_url=url)  # back to nothing, then up again
    assert p.returncode == 0, p.stderr_text
    p = run_cli("migrate", "status", db_url=url)
    assert all("pending" in l for l in _status_lines(p)), p.stdout_text
    p = run_cli("migrate", "up", db_url=url)
    assert p.returncode == 0, p.stderr_text
    assert len(db_factory.query(url, "SELECT version FROM schema_migrations")) == n


def test_serve_migrates_on_start(make_server, db_factory):
    s = make_server()
    assert db_factory.table_exists(s.db_url, "schema_migrations")
    rows = db_factory.query(s.db_url, "SELECT version FROM schema_migrations")
    assert len(rows) >= 1


def test_serve_restarts_on_migrated_database(make_server, db_factory):
    s = make_server()
    assert s.stop() == 0
    s.proc = None
    s.start()  # second start on the same, already migrated database
    assert s.get("/health/ready").status_code == 200
