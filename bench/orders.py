#!/usr/bin/python3
"""POST /api/v1/orders from 1,000 carts (one line each) — issue 11's order benchmark.

  DATABASE_URL=sqlite:///tmp/orders-bench/temel.db bench/orders.py
  DATABASE_URL=postgresql://... bench/orders.py            (e.g. from scripts/pgtmp.sh)

Starts `temel serve` ($TEMEL_BIN, default build/temel; 2 threads, rate limits off) on a free port
against $DATABASE_URL (fresh), then, untimed: signs in as the bootstrap admin, creates
$BENCH_PRODUCTS products (default 10, stock 1,000,000 each), registers $BENCH_CARTS users
(default 1000), gives each an address and a cart of one line (a random product, quantity 1).
Timed: every user posts POST /orders once, $BENCH_CONC at a time (default 32; one keep-alive
connection per client thread). Prints orders/s over the wall time, p50/p99 latency, and checks
that every order was 201 and that the stock went down by exactly the orders made."""
import http.client
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADMIN = ("orders-bench@example.com", "orders bench password 1")
CARTS = int(os.environ.get("BENCH_CARTS", "1000"))
PRODUCTS = int(os.environ.get("BENCH_PRODUCTS", "10"))
CONC = int(os.environ.get("BENCH_CONC", "32"))
STOCK = 1000000


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


def main():
    url = os.environ.get("DATABASE_URL")
    if not url:
        sys.exit("DATABASE_URL is required")
    port = free_port()
    d = tempfile.mkdtemp(prefix="temel-orders-bench-")
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
        pids = []
        for i in range(PRODUCTS):
            st, p = call(port, "POST", "/api/v1/products", {"category": "bakliyat", "price": 1000 + i, "stock": STOCK,
                                                              "name": {"tr": f"Ürün {i}", "en": f"Product {i}"}},
                         admin)
            assert st == 201, p
            pids.append(p["id"])

        def shopper(i):
            st, r = call(port, "POST", "/api/v1/auth/register",
                         {"email": f"shopper-{i}@example.com", "password": "correct horse battery staple",
                          "name": "shopper"})
            assert st == 201, r
            t = r["access_token"]
            st, a = call(port, "POST", "/api/v1/me/addresses", {"full_name": "S", "line1": "L", "city": "C"}, t)
            assert st == 201, a
            st, c = call(port, "POST", "/api/v1/me/cart", {"product_id": random.choice(pids), "quantity": 1}, t)
            assert st == 201, c
            return t, a["id"]

        t0 = time.monotonic()
        with ThreadPoolExecutor(8) as ex:
            shoppers = list(ex.map(shopper, range(CARTS)))
        print(f"setup: {CARTS} shoppers with one-line carts in {time.monotonic() - t0:.1f} s", flush=True)

        lat = []
        lock = threading.Lock()

        def order(s):
            t, aid = s
            a = time.monotonic()
            st, r = call(port, "POST", "/api/v1/orders", {"address_id": aid}, t)
            b = time.monotonic()
            with lock:
                lat.append(b - a)
            return st

        _local.conn = None
        t0 = time.monotonic()
        with ThreadPoolExecutor(CONC) as ex:
            codes = list(ex.map(order, shoppers))
        wall = time.monotonic() - t0
        lat.sort()
        ok = codes.count(201)
        stock = 0
        for pid in pids:
            st, p = call(port, "GET", f"/api/v1/products/{pid}")
            stock += STOCK - p["stock"]
        engine = "postgres" if url.startswith("postgres") else "sqlite"
        print(f"{engine}: {ok}/{CARTS} orders 201 in {wall:.2f} s with {CONC} clients: {ok / wall:.0f} orders/s, "
              f"p50 {lat[len(lat) // 2] * 1000:.1f} ms, p99 {lat[int(len(lat) * 0.99) - 1] * 1000:.1f} ms; "
              f"stock taken {stock} (must equal the orders)")
        if ok != CARTS or stock != ok:
            sys.exit(1)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
