"""Plumbing shared by the Python load benches (bench/orders.py, bench/events.py).

serve(prefix, admin) starts a fresh `temel serve` ($TEMEL_BIN, default build/temel; 2 threads,
rate limits off, mail into files) on a free port against $DATABASE_URL, waits for /health/live,
signs in as the bootstrap admin and yields a Server (port, admin token, engine name); it stops the
server and removes its folder afterwards. call() is a JSON client with one keep-alive connection
per thread. timed() runs fn over items on conc threads and returns the results, the wall time and
the sorted latencies; latency() formats their p50/p99."""
import contextlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_local = threading.local()


def call(port, method, path, body=None, token=None):
    c = getattr(_local, "conn", None)
    if c is None:
        c = _local.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    h = {"Content-Type": "application/json"}
    if token:
        h["Authorization"] = "Bearer " + token
    c.request(method, path, body=json.dumps(body) if body is not None else None, headers=h)
    r = c.getresponse()
    data = r.read()
    return r.status, (json.loads(data) if data else None)


@dataclass
class Server:
    port: int
    admin: str   # the bootstrap admin's access token
    engine: str  # "sqlite" or "postgres"


@contextlib.contextmanager
def serve(prefix, admin):
    url = os.environ.get("DATABASE_URL")
    if not url:
        sys.exit("DATABASE_URL is required")
    port = free_port()
    d = tempfile.mkdtemp(prefix=prefix)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": d, "LANG": "C.UTF-8",
           "DATABASE_URL": url, "HOST": "127.0.0.1", "PORT": str(port), "TEMEL_THREADS": "2",
           "TEMEL_LOG_LEVEL": "warn", "TEMEL_ADMIN_EMAIL": admin[0], "TEMEL_ADMIN_PASSWORD": admin[1],
           "TEMEL_RATE_LIMIT_WRITE": "1000000000/1", "TEMEL_RATE_LIMIT_READ": "1000000000/1",
           "TEMEL_RATE_LIMIT_AUTH": "1000000000/1", "TEMEL_MAIL_URL": f"file://{d}/mail"}
    binary = os.environ.get("TEMEL_BIN", os.path.join(ROOT, "build", "temel"))
    log = open(os.path.join(d, "server.log"), "wb")
    proc = subprocess.Popen([binary, "serve"], cwd=d, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(300):
            try:
                if call(port, "GET", "/health/live")[0] == 200:
                    break
            except OSError:
                _local.conn = None
                time.sleep(0.05)
        st, tok = call(port, "POST", "/api/v1/auth/login", {"email": admin[0], "password": admin[1]})
        assert st == 200, tok
        yield Server(port, tok["access_token"], "postgres" if url.startswith("postgres") else "sqlite")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
        shutil.rmtree(d, ignore_errors=True)


def timed(fn, items, conc):
    """fn(item) for every item, conc at a time (each pool thread opens its own connection)."""
    lat, lock = [], threading.Lock()

    def one(item):
        a = time.monotonic()
        r = fn(item)
        b = time.monotonic()
        with lock:
            lat.append(b - a)
        return r

    t0 = time.monotonic()
    with ThreadPoolExecutor(conc) as ex:
        res = list(ex.map(one, items))
    wall = time.monotonic() - t0
    lat.sort()
    return res, wall, lat


def latency(lat):
    return f"p50 {lat[len(lat) // 2] * 1000:.1f} ms, p99 {lat[int(len(lat) * 0.99) - 1] * 1000:.1f} ms"
