#!/usr/bin/python3
"""Time GET /api/v1/jobs/recommendations at its caps (issue 9 item 7).

Starts build/temel (or $TEMEL_BIN) on a fresh SQLite database (or $DATABASE_URL), registers a user,
creates 10 resumes and 50 open jobs as large as a request body allows (64 KiB: resume summary
5,000 bytes + content 58,000 bytes, job description 50,000 bytes; ~115 KB a pair), then requests the recommendations N times in a row.
Prints min / median / p90 / max wall time in ms, and the server's CPU time per request (from
/proc/<pid>/stat, which a loaded machine does not inflate), over the requests after the first (the first also fills the
keyword cache of rows written before the cache existed; printed separately).

    bench/reco.py [N]              RECO_STALE=1: clear the stored profiles before the first request
"""
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N = int(sys.argv[1]) if len(sys.argv) > 1 else 20
WORDS = ("python go rust kubernetes docker postgresql linux api service data deploy scale cloud backend "
         "frontend react typescript every day run write tune team deliver build test review design "
         "geliştirme yazılım sistem veri analiz müşteri ürün performans güvenlik altyapı İstanbul ılık").split()


def text(n, rnd):
    out, size = [], 0
    while size < n - 12:
        w = rnd.choice(WORDS) + (str(rnd.randrange(500)) if rnd.random() < 0.3 else "")
        out.append(w)
        size += len(w.encode()) + 1
    return " ".join(out)  # at most n bytes


def main():
    tmp = tempfile.mkdtemp(prefix="temel-reco-")
    port = 20000 + os.getpid() % 20000
    env = {"PATH": os.environ["PATH"], "HOME": tmp, "LANG": "C.UTF-8", "TZ": "UTC",
           "DATABASE_URL": os.environ.get("DATABASE_URL", f"sqlite://{tmp}/temel.db"), "HOST": "127.0.0.1",
           "PORT": str(port), "TEMEL_ENV": "test", "TEMEL_THREADS": "2", "TEMEL_LOG_LEVEL": "warn",
           "TEMEL_RATE_LIMIT_READ": "1000000/60", "TEMEL_RATE_LIMIT_WRITE": "1000000/60",
           "TEMEL_RATE_LIMIT_AUTH": "1000000/60", "TEMEL_MAIL_URL": f"file://{tmp}/mail"}
    binary = os.environ.get("TEMEL_BIN", os.path.join(ROOT, "build", "temel"))
    log = open(os.path.join(tmp, "server.log"), "wb")
    proc = subprocess.Popen([binary, "serve"], cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        for _ in range(100):
            try:
                if requests.get(f"http://127.0.0.1:{port}/health/live", timeout=1).ok:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.1)
        s = requests.Session()
        r = s.post(base + "/auth/register", json={"email": f"reco-{uuid.uuid4().hex[:8]}@example.com",
                                                  "password": "correct horse battery staple", "name": "r"})
        r.raise_for_status()
        s.headers["Authorization"] = "Bearer " + r.json()["access_token"]
        rnd = random.Random(7)
        writes = []

        def post(path, body):  # UTF-8 on the wire: requests' json= would \u-escape and pass 64 KiB
            t = time.perf_counter()
            s.post(base + path, data=json.dumps(body, ensure_ascii=False).encode(),
                   headers={"Content-Type": "application/json"}).raise_for_status()
            writes.append((time.perf_counter() - t) * 1000)
        for i in range(10):
            post("/resumes", {"title": f"CV {i}", "summary": text(5000, rnd), "content": text(58000, rnd),
                              "skills": ["Go", "Python"]})
        for i in range(50):
            post("/jobs", {"title": f"Job {i}", "description": text(50000, rnd)})
        print(f"create (resume or job, ~60 KB): median {statistics.median(writes):.1f} ms")
        if os.environ.get("RECO_STALE") and env["DATABASE_URL"].startswith("sqlite://"):
            import sqlite3  # rows written before profiles existed: the first request builds them
            db = sqlite3.connect(env["DATABASE_URL"][len("sqlite://"):])
            for t in ("career_resumes", "career_jobs"):
                db.execute(f"UPDATE {t} SET ats_profile = NULL")
            db.commit()
            db.close()
        def cpu_ms():  # the server's user+system CPU time: stable on a loaded machine, unlike wall time
            f = open(f"/proc/{proc.pid}/stat").read().rsplit(")", 1)[1].split()
            return (int(f[11]) + int(f[12])) * 1000 / os.sysconf("SC_CLK_TCK")
        times = []
        for i in range(N + 1):
            if i == 1:
                cpu0 = cpu_ms()
            t = time.perf_counter()
            r = s.get(base + "/jobs/recommendations?limit=50")
            times.append((time.perf_counter() - t) * 1000)
            r.raise_for_status()
            assert r.json()["meta"]["total"] == 50, r.text[:300]
        cpu = (cpu_ms() - cpu0) / N
        rest = sorted(times[1:])
        print(f"first {times[0]:.1f} ms; then n={len(rest)} min {rest[0]:.1f} median {statistics.median(rest):.1f} "
              f"p90 {rest[int(len(rest) * 0.9) - 1]:.1f} max {rest[-1]:.1f} ms; server CPU {cpu:.1f} ms/request")
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
