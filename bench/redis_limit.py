#!/usr/bin/python3
"""Shared rate-limit accuracy: 3 `temel serve` instances on one redis-server, one client
address, a READ budget of B requests per 60 s; C concurrent clients send R requests in
total, spread over the instances. Prints allowed/B with Redis and, for contrast, without
(each instance then has its own local budget).

usage: bench/redis_limit.py [--budget 300] [--requests 1200] [--clients 12] [--rounds 3]
(build/temel, redis-server from the Debian package; SQLite files in a temp dir — the limit
does not touch the database)"""
import argparse
import concurrent.futures
import itertools
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from urllib.error import HTTPError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ITEM = "/api/v1/_test/items/0190a6c2-7b7a-7cc1-8d5e-3f2b1a0c9e11"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=15):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on {port}")


def get(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{ITEM}", timeout=10) as r:
            return r.status
    except HTTPError as e:
        return e.code


def run(budget, total, clients, redis_url, tmp):
    procs, ports = [], []
    for i in range(3):
        port = free_port()
        env = {"PATH": os.environ["PATH"], "HOME": tmp, "TEMEL_ENV": "test", "HOST": "127.0.0.1",
               "PORT": str(port), "DATABASE_URL": f"sqlite://{tmp}/i{i}-{port}.db", "TEMEL_THREADS": "2",
               "TEMEL_LOG_LEVEL": "warn", "TEMEL_RATE_LIMIT_READ": f"{budget}/60", "TEMEL_JOB_THREADS": "0"}
        if redis_url:
            env["REDIS_URL"] = redis_url
        procs.append(subprocess.Popen([f"{ROOT}/build/temel", "serve"], cwd=tmp, env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        ports.append(port)
    for p in ports:
        wait_port(p)
    rr = itertools.cycle(ports)
    order = [next(rr) for _ in range(total)]
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(clients) as ex:
        codes = list(ex.map(get, order))
    dt = time.monotonic() - t0
    for p in procs:
        p.terminate()
        p.wait()
    return codes.count(200), codes.count(429), dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=int, default=300)
    ap.add_argument("--requests", type=int, default=1200)
    ap.add_argument("--clients", type=int, default=12)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="temel-bench-redis-")
    rport = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--dir", tmp], stdout=subprocess.DEVNULL)
    wait_port(rport)
    try:
        print(f"budget {a.budget}/60 s, {a.requests} requests, {a.clients} clients, 3 instances")
        for r in range(a.rounds):
            subprocess.run(["redis-cli", "-p", str(rport), "FLUSHALL"], stdout=subprocess.DEVNULL, check=True)
            ok, refused, dt = run(a.budget, a.requests, a.clients, f"redis://127.0.0.1:{rport}/0", tmp)
            print(f"round {r + 1} redis: allowed {ok} ({ok / a.budget:.3f}× budget), 429 {refused}, "
                  f"{a.requests / dt:.0f} req/s")
        ok, refused, dt = run(a.budget, a.requests, a.clients, None, tmp)
        print(f"without redis: allowed {ok} ({ok / a.budget:.3f}× budget), 429 {refused}")
    finally:
        redis.terminate()
        redis.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
