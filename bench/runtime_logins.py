#!/usr/bin/python3
"""Logins at a steady rate for bench/runtime.sh's "W2 p99 while logins run" mode:

  bench/runtime_logins.py URL SEED_DIR RATE SECONDS

Starts one POST /api/v1/auth/login every 1/RATE s (a user of SEED_DIR/users.tsv in turn, the
password bench/runtime_seed.py registered), each on its own thread so a slow login does not delay
the next one, for SECONDS. Prints one line: LOGINS n=.. ok=.. e503=.. other=.. p50_ms=.. p99_ms=.."""
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from catalog_setup import PASSWORD  # noqa: E402


def main():
    base, seed, rate, secs = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    emails = [line.split("\t")[2] for line in open(os.path.join(seed, "users.tsv")).read().splitlines()]
    lock = threading.Lock()
    lat, codes = [], {}

    def login(email):
        t0 = time.monotonic()
        req = urllib.request.Request(base + "/api/v1/auth/login", method="POST",
                                     data=json.dumps({"email": email, "password": PASSWORD}).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                r.read()
                code = r.status
        except urllib.error.HTTPError as e:
            code = e.code
        except OSError:
            code = 0
        with lock:
            lat.append(time.monotonic() - t0)
            codes[code] = codes.get(code, 0) + 1

    threads, start, i = [], time.monotonic(), 0
    while True:
        at = start + i / rate
        if at - start >= secs:
            break
        delay = at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        t = threading.Thread(target=login, args=(emails[i % len(emails)],))
        t.start()
        threads.append(t)
        i += 1
    for t in threads:
        t.join()
    lat.sort()
    pct = (lambda q: 1000 * lat[min(len(lat) - 1, int(q * len(lat)))]) if lat else (lambda q: 0)
    ok = codes.get(200, 0)
    print(f"LOGINS n={len(lat)} ok={ok} e503={codes.get(503, 0)} other={len(lat) - ok - codes.get(503, 0)} "
          f"p50_ms={pct(0.5):.1f} p99_ms={pct(0.99):.1f}")


if __name__ == "__main__":
    main()
