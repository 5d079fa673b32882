#!/usr/bin/python3
"""BENCH_SETUP hook for the catalog workloads W1 and W3 (bench/scenarios):

  BENCH_SETUP=bench/catalog_setup.py WRK_BIN=bench/wrk-catalog.sh BENCH_SCENARIOS="w1 w3" bench/run.sh

For the temel instance at $BENCH_URL: signs in as the bootstrap admin ($TEMEL_ADMIN_EMAIL /
$TEMEL_ADMIN_PASSWORD, which bench/run.sh also passes to temel), creates products through the API
until there are $BENCH_PRODUCTS (default 10000) spread over the seven seeded categories, registers
a shopper, writes the product ids to $BENCH_CATALOG_DIR/<port>.ids (for bench/catalog.lua) and prints
the shopper's "Authorization: Bearer ..." header (bench/run.sh sends it with every request).

bench/runtime_seed.py imports call(), seed_products() and product_ids() from here."""
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

CATEGORIES = ["sut-urunleri", "bakliyat", "et-urunleri", "salca-ve-ezmeler", "unlu-mamuller", "zeytinler",
              "diger-urunler"]
PASSWORD = "correct horse battery staple"


def call(base, method, path, body=None, token=None):
    req = urllib.request.Request(base + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json"})
    if token:
        req.add_header("Authorization", "Bearer " + token)
    for attempt in range(30):
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            # 503 + Retry-After: a full worker pool (argon2id of a registration on a loaded
            # machine) asks the client to come back; a seeder does as told
            if e.code != 503 or attempt == 29:
                raise
            time.sleep(float(e.headers.get("Retry-After") or 1))


def parallel(n, fn, threads=8):
    """Run fn(i) for i in 0..n-1 on `threads` threads; the first exception is raised again."""
    lock = threading.Lock()
    next_i, errors = [0], []

    def worker():
        while not errors:
            with lock:
                i = next_i[0]
                if i >= n:
                    return
                next_i[0] += 1
            try:
                fn(i)
            except Exception as e:  # noqa: BLE001 - reported by the caller
                errors.append(e)

    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise errors[0]


def admin_token(base):
    return call(base, "POST", "/api/v1/auth/login", {"email": os.environ["TEMEL_ADMIN_EMAIL"],
                                                     "password": os.environ["TEMEL_ADMIN_PASSWORD"]})["access_token"]


def seed_products(base, want):
    """Create products through the API until there are `want`, round-robin over CATEGORIES."""
    admin = admin_token(base)
    have = call(base, "GET", "/api/v1/products?limit=1")["meta"]["total"]

    def add(k):
        i = have + k
        call(base, "POST", "/api/v1/products", {
            "category": CATEGORIES[i % 7], "sku": f"BENCH-{i:06d}", "price": 990 + (i * 7919) % 90000,
            "stock": (i * 31) % 200,
            "name": {"tr": f"Ürün {i}", "en": f"Product {i}", "pl": f"Produkt {i}"},
            "description": {"tr": f"Deneme ürünü {i}", "en": f"Test product {i}", "pl": f"Produkt testowy {i}"}},
            admin)

    parallel(max(0, want - have), add)


def product_ids(base):
    ids, page = [], 1
    while True:
        r = call(base, "GET", f"/api/v1/products?limit=100&page={page}&skip_total=true")
        ids += [p["id"] for p in r["data"]]
        if not r["meta"]["has_more"]:
            return ids
        page += 1


def main():
    base = os.environ["BENCH_URL"]
    outdir = os.environ.get("BENCH_CATALOG_DIR", "/tmp/temel-bench-catalog")
    seed_products(base, int(os.environ.get("BENCH_PRODUCTS", "10000")))
    ids = product_ids(base)
    os.makedirs(outdir, exist_ok=True)
    port = urllib.parse.urlsplit(base).port
    with open(os.path.join(outdir, f"{port}.ids"), "w") as f:
        f.write("\n".join(ids) + "\n")
    shopper = call(base, "POST", "/api/v1/auth/register", {"email": f"shopper-{uuid.uuid4().hex[:10]}@example.com",
                                                           "password": PASSWORD, "name": "bench"})
    print(f"bench: {base}: {len(ids)} products", file=sys.stderr)
    print("Authorization: Bearer " + shopper["access_token"])


if __name__ == "__main__":
    main()
