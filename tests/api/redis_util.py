"""A private redis-server (the Debian package) for the tests: a free port, no
persistence, its own directory; stop/start to simulate an outage. A raw RESP
client (no Python redis package is needed) to look inside."""
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import Server, free_port, retire

REDIS_BIN = shutil.which("redis-server") or "/usr/bin/redis-server"
WAIT = 10.0  # hang guard, never a timing assertion


class RedisServer:
    def __init__(self, password=None):
        self.dir = tempfile.mkdtemp(prefix="temel-redis-")
        self.port = free_port()
        self.password = password
        self.proc = None

    @property
    def url(self):
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self):
        args = [REDIS_BIN, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", self.dir, "--daemonize", "no", "--loglevel", "warning"]
        if self.password:
            args += ["--requirepass", self.password]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        end = time.monotonic() + WAIT
        while True:
            try:
                if self.cmd("PING") == "PONG":
                    return self
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > end:
                raise RuntimeError(f"redis-server did not start on {self.port}")
            time.sleep(0.02)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=WAIT)
        self.proc = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- a minimal RESP client
    def cmd(self, *args):
        with socket.create_connection(("127.0.0.1", self.port), timeout=WAIT) as s:
            f = s.makefile("rb")
            if self.password:
                s.sendall(_encode(["AUTH", self.password]))
                _read(f)
            s.sendall(_encode(args))
            return _read(f)


def _encode(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def _read(f):
    line = f.readline()
    if not line:
        raise OSError("redis closed the connection")
    t, rest = line[:1], line[1:-2]
    if t == b"+":
        return rest.decode()
    if t == b"-":
        raise RuntimeError(rest.decode())
    if t == b":":
        return int(rest)
    if t == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        return data.decode(errors="replace")
    if t == b"*":
        n = int(rest)
        return None if n < 0 else [_read(f) for _ in range(n)]
    raise OSError(f"bad RESP line {line!r}")


@pytest.fixture(scope="module")
def redis_server():
    r = RedisServer().start()
    yield r
    r.cleanup()


def metric(server, name):
    """The value of one unlabelled /metrics line (None when absent)."""
    for line in server.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def serve_pair(db_factory, env):
    """Two `temel serve` instances on one new database (the first migrates), e.g. sharing a
    redis-server through env's REDIS_URL. A generator for a module fixture: `for a, b in
    serve_pair(...): yield ...`; at the end both must exit 0 on SIGTERM with no sanitizer report."""
    url = db_factory.new_url()
    a = Server(url, env=env).start()
    b = Server(url, env=env).start()
    yield a, b
    problems = retire(a, db_factory, drop=False) + retire(b, db_factory)
    assert not problems, "\n".join(problems)
