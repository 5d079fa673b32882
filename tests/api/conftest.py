"""Harness for the black-box API tests of temel.

Environment:
  TEMEL_BIN       binary to test (default: <repo>/build/temel)
  TEMEL_TEST_DB   sqlite | postgres (default sqlite)
  DATABASE_URL_PG an existing PostgreSQL cluster URL to use (postgres engine);
                  without it the harness runs `scripts/pgtmp.sh start` and stops it at the end
  TEMEL_ASAN=1    the binary is an ASan+UBSan build: sanitizer options are set and every
                  server log is checked for sanitizer reports

Fixtures:
  server       the shared default server (session-wide; restarted if a test killed it,
               and that test fails)
  make_server  factory: make_server(_dotenv=None, **env) -> started Server with overrides
  run_cli      run_cli(*args, env=None, cwd=None, db_url=None) -> CompletedProcess
  db_factory   creates fresh database URLs for the current engine
"""
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.parse
from pathlib import Path

import pytest
import requests
import urllib3

urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

try:  # keep hypothesis' cache out of the repository
    import hypothesis.configuration
    hypothesis.configuration.set_hypothesis_home_dir(
        os.path.join(tempfile.gettempdir(), "temel-hypothesis"))
except ImportError:
    pass

REPO_ROOT = Path(__file__).resolve().parents[2]
ENGINE = os.environ.get("TEMEL_TEST_DB", "sqlite")
ASAN = os.environ.get("TEMEL_ASAN", "") == "1"
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")
START_TIMEOUT = 15.0
HTTP_TIMEOUT = 10.0  # hang guard for every request a test makes, never a timing assertion

# A generous limit for the shared server so that the whole suite never runs into it;
# rate-limit behaviour is tested on dedicated servers.
ADMIN_EMAIL = "shared-admin@example.com"
ADMIN_PASSWORD = "shared admin password 1"
SHARED_ENV = {
    "TEMEL_RATE_LIMIT_READ": "1000000/60",
    "TEMEL_RATE_LIMIT_WRITE": "1000000/60",
    "TEMEL_RATE_LIMIT_AUTH": "1000000/60",
    "TEMEL_RATE_LIMIT_EMAIL": "1000000/60",
    "TEMEL_ADMIN_EMAIL": ADMIN_EMAIL,
    "TEMEL_ADMIN_PASSWORD": ADMIN_PASSWORD,
    "TEMEL_CORS_ORIGINS": "https://app.example.com,http://localhost:3000",
}
CORS_ORIGIN = "https://app.example.com"


def temel_bin():
    b = os.environ.get("TEMEL_BIN")
    p = Path(b) if b else REPO_ROOT / "build" / "temel"
    if not p.is_absolute():
        p = REPO_ROOT / p
    return p


def require_bin():
    p = temel_bin()
    if not (p.is_file() and os.access(p, os.X_OK)):
        pytest.fail(f"temel binary not found or not executable: {p} (build it or set TEMEL_BIN)",
                    pytrace=False)
    return str(p)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env():
    """A clean environment: nothing from the caller's shell leaks config into the server."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
        "TZ": "UTC",
    }
    if ASAN:
        env["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=1"
        env["UBSAN_OPTIONS"] = "halt_on_error=1:print_stacktrace=1"
    return env


def sanitizer_reports(text):
    return [m for m in SANITIZER_MARKERS if m in text]


# --------------------------------------------------------------------------- databases

class PgCluster:
    """A PostgreSQL cluster: given by DATABASE_URL_PG, or private via scripts/pgtmp.sh."""

    def __init__(self):
        self.url = os.environ.get("DATABASE_URL_PG")
        self.pgtmp_dir = None
        if not self.url:
            script = REPO_ROOT / "scripts" / "pgtmp.sh"
            if not script.exists():
                pytest.fail("TEMEL_TEST_DB=postgres needs DATABASE_URL_PG or scripts/pgtmp.sh",
                            pytrace=False)
            out = subprocess.run([str(script), "start"], capture_output=True, text=True,
                                 timeout=120, cwd=str(REPO_ROOT))
            if out.returncode != 0:
                pytest.fail(f"scripts/pgtmp.sh start failed ({out.returncode}):\n"
                            f"{out.stdout}\n{out.stderr}", pytrace=False)
            for line in out.stdout.splitlines():
                m = re.match(r"\s*export\s+(\w+)=(.*)$", line)
                if not m:
                    continue
                val = shlex.split(m.group(2))[0] if m.group(2).strip() else ""
                if m.group(1) == "DATABASE_URL":
                    self.url = val
                elif m.group(1) == "PGTMP_DIR":
                    self.pgtmp_dir = val
            if not self.url:
                pytest.fail(f"scripts/pgtmp.sh start printed no DATABASE_URL:\n{out.stdout}",
                            pytrace=False)

    def connect(self, url=None):
        import psycopg2
        conn = psycopg2.connect(url or self.url)
        conn.autocommit = True
        return conn

    def create_db(self):
        name = "t_" + secrets.token_hex(6)
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        p = urllib.parse.urlsplit(self.url)
        return name, urllib.parse.urlunsplit((p.scheme, p.netloc, "/" + name, p.query, p.fragment))

    def drop_db(self, name):
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            conn.close()

    def stop(self):
        if self.pgtmp_dir:
            subprocess.run([str(REPO_ROOT / "scripts" / "pgtmp.sh"), "stop", self.pgtmp_dir],
                           capture_output=True, timeout=60, cwd=str(REPO_ROOT))


class DBFactory:
    """Fresh database URLs for the engine under test; everything is removed at the end."""

    def __init__(self, engine, cluster=None):
        self.engine = engine
        self.cluster = cluster
        self.pg_names = []
        self.tmpdirs = []

    def new_url(self, tmpdir=None):
        if self.engine == "sqlite":
            if tmpdir is None:
                tmpdir = tempfile.mkdtemp(prefix="temel-db-")
                self.tmpdirs.append(tmpdir)
            return f"sqlite://{Path(tmpdir).resolve()}/temel.db"
        name, url = self.cluster.create_db()
        self.pg_names.append(name)
        return url

    def drop(self, url):
        if self.engine == "postgres":
            name = urllib.parse.urlsplit(url).path.lstrip("/")
            try:
                self.cluster.drop_db(name)
            except Exception:
                pass
            if name in self.pg_names:
                self.pg_names.remove(name)

    def query(self, url, sql, args=()):
        """Run SQL directly against the database behind url; returns all rows."""
        if self.engine == "sqlite":
            import sqlite3
            path = url[len("sqlite://"):]
            conn = sqlite3.connect(path)
            try:
                rows = conn.execute(sql, args).fetchall()
                conn.commit()  # writes (tests that tamper) must land
                return rows
            finally:
                conn.close()
        conn = self.cluster.connect(url)
        try:
            with conn.cursor() as cur:
                cur.execute(sql.replace("?", "%s"), args)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def table_exists(self, url, table):
        if self.engine == "sqlite":
            rows = self.query(url, "SELECT name FROM sqlite_master WHERE type='table' AND name=?",
                              (table,))
        else:
            rows = self.query(url, "SELECT table_name FROM information_schema.tables "
                                   "WHERE table_schema = current_schema() AND table_name = ?",
                              (table,))
        return len(rows) == 1

    def cleanup(self):
        for name in list(self.pg_names):
            self.drop_db_name(name)
        for d in self.tmpdirs:
            shutil.rmtree(d, ignore_errors=True)

    def drop_db_name(self, name):
        try:
            self.cluster.drop_db(name)
        except Exception:
            pass


# --------------------------------------------------------------------------- server

class ServerStartError(Exception):
    pass


class Server:
    """One `temel serve` process on a free port in its own temp dir."""

    def __init__(self, db_url, env=None, dotenv=None):
        self.dir = Path(tempfile.mkdtemp(prefix="temel-test-"))
        self.port = free_port()
        self.db_url = db_url
        self.killed = False  # set by kill(): a deliberate SIGKILL
        self.env = base_env()
        self.env.update({
            "DATABASE_URL": db_url,
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "TEMEL_ENV": "test",
            "TEMEL_THREADS": "2",
            "TEMEL_LOG_FORMAT": "json",
        })
        for k, v in (env or {}).items():
            if v is None:
                self.env.pop(k, None)
            else:
                self.env[k] = str(v)
        if "PORT" in (env or {}) and env["PORT"] is not None:
            self.port = int(env["PORT"])
        # mail and SMS land in files under the server's own directory
        self.env.setdefault("TEMEL_MAIL_URL", f"file://{self.dir}/mail")
        self.env.setdefault("TEMEL_SMS_URL", f"file://{self.dir}/sms")
        if dotenv is not None:
            (self.dir / ".env").write_text(dotenv)
        self.tls = bool(self.env.get("TEMEL_TLS_CERT"))
        self.scheme = "https" if self.tls else "http"
        self.log_path = self.dir / "server.log"
        self.proc = None
        self.returncode = None
        self.session = requests.Session()

    # -- lifecycle
    def start(self):
        self.killed = False
        self._logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen([require_bin(), "serve"], cwd=str(self.dir), env=self.env,
                                     stdin=subprocess.DEVNULL, stdout=self._logf,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.returncode = self.proc.returncode
                raise ServerStartError(f"temel serve exited with {self.proc.returncode} during "
                                       f"start-up\n--- log tail ---\n{self.log_tail()}")
            try:
                r = requests.get(self.url("/health/live"), timeout=1, verify=False)
                if r.status_code == 200:
                    return self
                last = f"status {r.status_code}"
            except requests.RequestException as e:
                last = repr(e)
            time.sleep(0.05)
        self.kill()
        raise ServerStartError(f"temel serve did not answer /health/live within {START_TIMEOUT}s "
                               f"(last: {last})\n--- log tail ---\n{self.log_tail()}")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=20.0):
        """Send sig, wait for the exit (timeout is a hang guard), return the exit code.
        A process that does not exit is killed and reported as None."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                self.returncode = None
                self._close()
                return None
        self.returncode = self.proc.returncode
        self._close()
        return self.returncode

    def kill(self):
        self.killed = True  # on purpose: retire() does not count its exit status
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._close()

    def _close(self):
        self.session.close()
        f = getattr(self, "_logf", None)
        if f and not f.closed:
            f.close()

    # -- http
    def url(self, path):
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def request(self, method, path, **kw):
        kw.setdefault("timeout", HTTP_TIMEOUT)
        kw.setdefault("verify", False)
        kw.setdefault("allow_redirects", False)
        return requests.request(method, self.url(path), **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def patch(self, path, **kw):
        return self.request("PATCH", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def put(self, path, **kw):
        return self.request("PUT", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def assert_healthy(self):
        assert self.alive(), f"server died (exit {self.proc.poll()})\n{self.log_tail()}"
        r = self.get("/health/live")
        assert r.status_code == 200, f"/health/live answered {r.status_code}"

    # -- logs
    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n=60):
        return "\n".join(self.log_text().splitlines()[-n:])

    def log_lines(self):
        out = []
        for line in self.log_text().splitlines():
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def wait_log(self, pred, timeout=5.0):
        """First parsed log line satisfying pred, waiting up to timeout for it to be written
        (a wait for asynchronous output, not a timing assertion). None if it never appears."""
        deadline = time.monotonic() + timeout
        while True:
            for line in self.log_lines():
                try:
                    if pred(line):
                        return line
                except Exception:
                    pass
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)

    def sanitizer_reports(self):
        return sanitizer_reports(self.log_text())

    def cleanup(self):
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


# --------------------------------------------------------------------------- raw sockets

class RawResponse:
    def __init__(self, status, reason, version, headers, body):
        self.status = status
        self.reason = reason
        self.version = version
        self.headers = headers  # list of (lower-case name, value)
        self.body = body

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return default

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<RawResponse {self.status} {self.body[:200]!r}>"


class RawConn:
    """A plain TCP (or TLS) connection for hand-made HTTP bytes."""

    def __init__(self, port, host="127.0.0.1", timeout=5.0, tls=False):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        if tls:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost")
        self.buf = b""
        self.closed = False  # the peer closed (FIN or RST)

    def send(self, data):
        """Send all bytes; False if the peer closed/reset the connection meanwhile."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.closed = True
            return False

    def _recv(self):
        try:
            d = self.sock.recv(65536)
        except (ConnectionResetError, ssl.SSLError):
            d = b""
        if not d:
            self.closed = True
        self.buf += d
        return d

    def read_response(self, head=False):
        """Read one response. None when the peer closed before sending a status line.
        Raises socket.timeout if the server neither answers nor closes."""
        while b"\r\n\r\n" not in self.buf:
            if not self._recv():
                return None
        head_bytes, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head_bytes.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        version, status = parts[0], int(parts[1])
        reason = parts[2] if len(parts) > 2 else ""
        headers = []
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers.append((k.strip().lower(), v.strip()))
        hd = {k: v for k, v in headers}
        if head or status in (204, 304) or 100 <= status < 200:
            body = b""
        elif "content-length" in hd:
            n = int(hd["content-length"])
            while len(self.buf) < n:
                if not self._recv():
                    break
            body, self.buf = self.buf[:n], self.buf[n:]
        elif "chunked" in hd.get("transfer-encoding", "").lower():
            body = b""
            while True:
                while b"\r\n" not in self.buf:
                    if not self._recv():
                        return RawResponse(status, reason, version, headers, body)
                size_line, self.buf = self.buf.split(b"\r\n", 1)
                size = int(size_line.split(b";")[0], 16)
                while len(self.buf) < size + 2:
                    if not self._recv():
                        break
                body += self.buf[:size]
                self.buf = self.buf[size + 2:]
                if size == 0:
                    break
        else:
            while self._recv():
                pass
            body, self.buf = self.buf, b""
        return RawResponse(status, reason, version, headers, body)

    def peer_closed(self, timeout=3.0):
        """True if the peer closes within timeout (a hang guard); False if it stays open."""
        if self.closed:
            return True
        self.sock.settimeout(timeout)
        try:
            return not self._recv()
        except socket.timeout:
            return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def raw_exchange(server, data, timeout=5.0):
    """Send raw bytes, read one response. Returns (response or None, peer_closed)."""
    c = RawConn(server.port, timeout=timeout, tls=server.tls)
    try:
        c.send(data)
        resp = c.read_response()
        return resp, c.closed
    finally:
        c.close()


# --------------------------------------------------------------------------- helpers for tests

PROBLEM_KEYS = {"type", "title", "status", "detail", "code", "request_id"}


def assert_problem(r, status, code=None):
    """r is a requests.Response; checks the RFC 9457 problem body of API.md §1. Returns the body."""
    assert r.status_code == status, f"expected {status}, got {r.status_code}: {r.text[:500]}"
    ctype = r.headers.get("Content-Type", "")
    assert ctype.split(";")[0].strip().lower() == "application/problem+json", ctype
    body = r.json()
    missing = PROBLEM_KEYS - set(body)
    assert not missing, f"problem body lacks {missing}: {body}"
    assert body["type"] == "about:blank"
    assert isinstance(body["title"], str) and body["title"]
    assert body["status"] == status
    assert isinstance(body["detail"], str)
    if code is not None:
        assert body["code"] == code, body
    assert body["request_id"] == r.headers.get("X-Request-Id"), (body, dict(r.headers))
    if "errors" in body:
        assert isinstance(body["errors"], list)
        for e in body["errors"]:
            assert isinstance(e.get("field"), str) and isinstance(e.get("message"), str), e
    return body


def wait_for(pred, what="condition", timeout=60.0, interval=0.05):
    """Poll pred() until it returns something truthy and return that; AssertionError after timeout
    (a hang guard for asynchronous work, never a timing assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def error_fields(body):
    return [e.get("field") for e in body.get("errors", [])]


# --------------------------------------------------------------------------- pytest wiring

def pytest_configure(config):
    config.addinivalue_line("markers", "sqlite_only: runs only with TEMEL_TEST_DB=sqlite")
    config.addinivalue_line("markers", "postgres_only: runs only with TEMEL_TEST_DB=postgres")
    if ENGINE not in ("sqlite", "postgres"):
        raise pytest.UsageError(f"TEMEL_TEST_DB must be sqlite or postgres, not {ENGINE!r}")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if ENGINE != "sqlite" and item.get_closest_marker("sqlite_only"):
            item.add_marker(pytest.mark.skip(reason="sqlite only"))
        if ENGINE != "postgres" and item.get_closest_marker("postgres_only"):
            item.add_marker(pytest.mark.skip(reason="postgres only"))


def pytest_report_header(config):
    return [f"temel: bin={temel_bin()} engine={ENGINE} asan={ASAN}"]


@pytest.fixture(scope="session")
def engine():
    return ENGINE


@pytest.fixture(scope="session")
def pg_cluster():
    if ENGINE != "postgres":
        yield None
        return
    c = PgCluster()
    yield c
    c.stop()


@pytest.fixture(scope="session")
def db_factory(pg_cluster):
    f = DBFactory(ENGINE, pg_cluster)
    yield f
    f.cleanup()


def retire(s, db_factory, drop=True, strict=False):
    """Stop s (SIGTERM must exit 0), look for sanitizer reports in its log, remove its directory and
    (with drop) its database. strict: a server that had already died counts too (unless the test
    killed it). Returns the problems."""
    problems = []
    if (strict and not s.killed) or s.alive():
        rc = s.stop()
        if rc != 0:
            problems.append(f"server exited with {rc} on SIGTERM\n{s.log_tail()}")
    reports = s.sanitizer_reports()
    if reports:
        problems.append(f"sanitizer reports {reports}\n{s.log_tail(200)}")
    s.cleanup()
    if drop:
        db_factory.drop(s.db_url)
    return problems


def serve_module(db_factory, s, drop=True):
    """For a module-scoped fixture: `yield from serve_module(db_factory, server)` starts server (unless it
    runs already), yields it, and at the end checks it exits 0 on SIGTERM with no sanitizer report."""
    if not s.alive():
        try:
            s.start()
        except ServerStartError as e:
            pytest.fail(str(e), pytrace=False)
    try:
        yield s
    finally:
        problems = retire(s, db_factory, drop=drop, strict=True)
    assert not problems, "\n\n".join(problems)


class _Shared:
    def __init__(self, db_factory):
        self.db_factory = db_factory
        self.server = None
        self.all = []

    def get(self):
        if self.server is None or not self.server.alive():
            s = Server(self.db_factory.new_url(), env=SHARED_ENV)
            self.all.append(s)
            try:
                s.start()
            except ServerStartError as e:
                pytest.fail(str(e), pytrace=False)
            self.server = s
        return self.server


@pytest.fixture(scope="session")
def _shared(db_factory):
    require_bin()
    holder = _Shared(db_factory)
    yield holder
    problems = [p for s in holder.all for p in retire(s, db_factory)]
    assert not problems, "shared server:\n" + "\n\n".join(problems)


@pytest.fixture
def server(_shared):
    """The shared default server. After the test it must still be alive and serving."""
    s = _shared.get()
    start = len(s.log_text())
    yield s
    if not s.alive():
        pytest.fail(f"the server died during this test (exit {s.proc.poll()})\n"
                    f"--- log tail ---\n{s.log_tail()}", pytrace=False)
    try:
        r = requests.get(s.url("/health/live"), timeout=HTTP_TIMEOUT, verify=False)
        ok = r.status_code == 200
    except requests.RequestException as e:
        ok, r = False, e
    if not ok:
        pytest.fail(f"the server stopped serving /health/live after this test: {r}", pytrace=False)
    new = s.log_text()[start:]
    reports = sanitizer_reports(new)
    if reports:
        pytest.fail(f"sanitizer report during this test: {reports}\n{new[-8000:]}", pytrace=False)


@pytest.fixture
def make_server(db_factory):
    """make_server(_dotenv=None, _start=True, **env) -> Server. Each is stopped at teardown,
    which must exit 0 and leave no sanitizer reports."""
    require_bin()
    started = []

    def factory(_dotenv=None, _start=True, **env):
        s = Server(db_factory.new_url(), env=env, dotenv=_dotenv)
        started.append(s)
        if _start:
            try:
                s.start()
            except ServerStartError as e:
                pytest.fail(str(e), pytrace=False)
        return s

    yield factory
    problems = [p for s in started for p in retire(s, db_factory)]
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def run_cli(db_factory, tmp_path):
    """run_cli(*args, env=None, cwd=None, db_url=None, timeout=30) runs the binary once.
    The default environment is the test one with a fresh database."""
    binary = require_bin()
    urls = []

    def run(*args, env=None, cwd=None, db_url=None, timeout=30):
        e = base_env()
        if db_url is None:
            db_url = db_factory.new_url(str(tmp_path))
            urls.append(db_url)
        e.update({"DATABASE_URL": db_url, "HOST": "127.0.0.1", "PORT": str(free_port()),
                  "TEMEL_ENV": "test", "TEMEL_THREADS": "2", "TEMEL_LOG_FORMAT": "json"})
        for k, v in (env or {}).items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = str(v)
        p = subprocess.run([binary, *args], cwd=str(cwd or tmp_path), env=e,
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
        p.stdout_text = p.stdout.decode(errors="replace")
        p.stderr_text = p.stderr.decode(errors="replace")
        if ASAN:
            reports = sanitizer_reports(p.stderr_text)
            assert not reports, f"sanitizer report from temel {args}: {p.stderr_text[-8000:]}"
        return p

    yield run
    for u in urls:
        db_factory.drop(u)


# ---- identity fixtures (for every module's tests) ----

def login_headers(server, email, password):
    r = requests.post(server.url("/api/v1/auth/login"), json={"email": email, "password": password},
                      timeout=HTTP_TIMEOUT, verify=False)
    assert r.status_code == 200, f"login failed: {r.status_code} {r.text[:300]}"
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def new_user_headers(server, prefix="user"):
    """Register a fresh user on server; returns (headers, user JSON)."""
    import uuid
    email = f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"
    r = requests.post(server.url("/api/v1/auth/register"),
                      json={"email": email, "password": "correct horse battery staple", "name": prefix},
                      timeout=HTTP_TIMEOUT, verify=False)
    assert r.status_code == 201, f"register failed: {r.status_code} {r.text[:300]}"
    return {"Authorization": f"Bearer {r.json()['access_token']}"}, r.json()["user"]


@pytest.fixture
def admin_headers(server):
    """Authorization headers of the shared server's bootstrap admin."""
    return login_headers(server, ADMIN_EMAIL, ADMIN_PASSWORD)


@pytest.fixture
def user_headers(server):
    """Authorization headers of a freshly registered ordinary user on the shared server."""
    return new_user_headers(server)[0]
