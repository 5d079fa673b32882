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
import os
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import call, latency, serve, timed  # noqa: E402

ADMIN = ("orders-bench@example.com", "orders bench password 1")
CARTS = int(os.environ.get("BENCH_CARTS", "1000"))
PRODUCTS = int(os.environ.get("BENCH_PRODUCTS", "10"))
CONC = int(os.environ.get("BENCH_CONC", "32"))
STOCK = 1000000


def main():
    with serve("temel-orders-bench-", ADMIN) as srv:
        port = srv.port
        pids = []
        for i in range(PRODUCTS):
            st, p = call(port, "POST", "/api/v1/products", {"category": "bakliyat", "price": 1000 + i, "stock": STOCK,
                                                              "name": {"tr": f"Ürün {i}", "en": f"Product {i}"}},
                         srv.admin)
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

        codes, wall, lat = timed(lambda s: call(port, "POST", "/api/v1/orders", {"address_id": s[1]}, s[0])[0],
                                 shoppers, CONC)
        ok = codes.count(201)
        stock = 0
        for pid in pids:
            st, p = call(port, "GET", f"/api/v1/products/{pid}")
            stock += STOCK - p["stock"]
        print(f"{srv.engine}: {ok}/{CARTS} orders 201 in {wall:.2f} s with {CONC} clients: {ok / wall:.0f} orders/s, "
              f"{latency(lat)}; stock taken {stock} (must equal the orders)")
        if ok != CARTS or stock != ok:
            sys.exit(1)


if __name__ == "__main__":
    main()
