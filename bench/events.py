#!/usr/bin/python3
"""POST /api/v1/events/{id}/register: N clients racing for one event (issue 12's registration bench).

  DATABASE_URL=sqlite:///tmp/events-bench/temel.db bench/events.py
  DATABASE_URL=postgresql://... bench/events.py            (e.g. from scripts/pgtmp.sh)

Starts `temel serve` ($TEMEL_BIN, default build/temel; 2 threads, rate limits off) on a free port
against $DATABASE_URL (fresh), then, untimed: signs in as the bootstrap admin, publishes one event
with $BENCH_SEATS seats (default 500) and a waitlist, and makes $BENCH_CLIENTS guest accounts
(default 1000). Timed: every client registers once, $BENCH_CONC at a time (default 32; one
keep-alive connection per client thread) — all on the same event row, the worst case. Prints
registrations/s over the wall time and p50/p99 latency, and checks that exactly $BENCH_SEATS are
confirmed and the rest waitlisted with positions 1..N without gaps."""
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from orders import ROOT, _local, call, free_port  # noqa: E402  (the same client as the orders bench)

ADMIN = ("events-bench@example.com", "events bench password 1")
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "1000"))
SEATS = int(os.environ.get("BENCH_SEATS", "500"))
CONC = int(os.environ.get("BENCH_CONC", "32"))


def main():
    url = os.environ.get("DATABASE_URL")
    if not url:
        sys.exit("DATABASE_URL is required")
    port = free_port()
    d = tempfile.mkdtemp(prefix="temel-events-bench-")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": d, "LANG": "C.UTF-8",
           "DATABASE_URL": url, "HOST": "127.0.0.1", "PORT": str(port), "TEMEL_THREADS": "2",
           "TEMEL_LOG_LEVEL": "warn", "TEMEL_ADMIN_EMAIL": ADMIN[0], "TEMEL_ADMIN_PASSWORD": ADMIN[1],
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
        st, tok = call(port, "POST", "/api/v1/auth/login", {"email": ADMIN[0], "password": ADMIN[1]})
        admin = tok["access_token"]
        st, ev = call(port, "POST", "/api/v1/events", {"title": "Bench", "starts_at": "2099-01-01T10:00:00.000Z",
                                                         "status": "published", "capacity": SEATS, "waitlist": True},
                      admin)
        assert st == 201, ev

        def guest(_):
            st, r = call(port, "POST", "/api/v1/auth/guest")
            assert st == 201, r
            return r["access_token"]

        t0 = time.monotonic()
        with ThreadPoolExecutor(8) as ex:
            tokens = list(ex.map(guest, range(CLIENTS)))
        print(f"setup: {CLIENTS} guest accounts in {time.monotonic() - t0:.1f} s", flush=True)

        lat, lock = [], threading.Lock()

        def register(t):
            a = time.monotonic()
            st, r = call(port, "POST", f"/api/v1/events/{ev['id']}/register", {}, t)
            b = time.monotonic()
            with lock:
                lat.append(b - a)
            return st, r

        _local.conn = None
        t0 = time.monotonic()
        with ThreadPoolExecutor(CONC) as ex:
            res = list(ex.map(register, tokens))
        wall = time.monotonic() - t0
        lat.sort()
        ok = [r for st, r in res if st == 201]
        confirmed = sum(1 for r in ok if r["status"] == "confirmed")
        positions = sorted(r["waitlist_position"] for r in ok if r["status"] == "waitlisted")
        engine = "postgres" if url.startswith("postgres") else "sqlite"
        print(f"{engine}: {len(ok)}/{CLIENTS} registrations 201 in {wall:.2f} s with {CONC} clients: "
              f"{len(ok) / wall:.0f} registrations/s, p50 {lat[len(lat) // 2] * 1000:.1f} ms, "
              f"p99 {lat[int(len(lat) * 0.99) - 1] * 1000:.1f} ms; {confirmed} confirmed (seats {SEATS}), "
              f"{len(positions)} waitlisted")
        if len(ok) != CLIENTS or confirmed != min(SEATS, CLIENTS) or positions != list(range(1, len(positions) + 1)):
            sys.exit(1)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
