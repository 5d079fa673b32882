#!/usr/bin/python3
"""Upload of one 50 MiB file (issue 13 item 5) to local disk and to S3, with the
server's resident memory sampled during the upload.

  bench/upload.py                      both backends (S3 = s3rver from tools/node)
  BENCH_MB=50 BENCH_BACKENDS=local BENCH_REPEAT=2 bench/upload.py

Starts `temel serve` ($TEMEL_BIN, default build/temel; SQLite, 2 threads, rate
limits off) on a free port, registers a user, then uploads $BENCH_MB MiB of CSV
text through the parts API (POST /files/uploads, then PUT parts of 8 MiB with
Content-Range — libh2o 2.2.5 buffers whole request bodies, 16 MiB at most, see
src/modules/files/upload.c) over one keep-alive connection, and downloads it
back to compare the SHA-256. A thread reads VmRSS of the server from
/proc/<pid>/status every 20 ms. Prints RSS before, peak during and after, the
upload's wall time and MiB/s, for each of $BENCH_REPEAT uploads (default 2) on one server.
The download may need more than the default TEMEL_REQUEST_TIMEOUT_MS for big files; the
environment is passed through."""
import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MB = int(os.environ.get("BENCH_MB", "50"))
BACKENDS = os.environ.get("BENCH_BACKENDS", "local,s3").split(",")
PART = 8 << 20
REPEAT = int(os.environ.get("BENCH_REPEAT", "2"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what):
    for _ in range(300):
        if proc.poll() is not None:
            sys.exit(f"{what} exited")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"{what} did not start")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Sampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop_ = pid, 0, False

    def run(self):
        while not self.stop_:
            self.peak = max(self.peak, rss_kib(self.pid))
            time.sleep(0.02)


def call(conn, method, path, body=None, headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    return r.status, r.read(), r


def run(backend, data):
    tmp = tempfile.mkdtemp(prefix=f"temel-upload-{backend}-")
    env = dict(os.environ, DATABASE_URL=f"sqlite://{tmp}/temel.db", HOST="127.0.0.1", PORT=str(free_port()),
               TEMEL_ENV="test", TEMEL_THREADS="2", TEMEL_LOG_LEVEL="warn", TEMEL_FILES_QUOTA_MB="1024",
               TEMEL_RATE_LIMIT_READ="1000000/60", TEMEL_RATE_LIMIT_WRITE="1000000/60",
               TEMEL_RATE_LIMIT_AUTH="1000000/60", TEMEL_DATA_DIR=f"{tmp}/data")
    s3 = None
    if backend == "s3":
        s3port = free_port()
        s3 = subprocess.Popen([f"{ROOT}/tools/node/node_modules/.bin/s3rver", "--address", "127.0.0.1", "--port",
                               str(s3port), "--directory", f"{tmp}/s3", "--configure-bucket", "bench", "--silent"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_port(s3port, s3, "s3rver")
        env.update(TEMEL_STORAGE_URL=f"s3://bench?endpoint=http://127.0.0.1:{s3port}&region=us-east-1",
                   AWS_ACCESS_KEY_ID="S3RVER", AWS_SECRET_ACCESS_KEY="S3RVER")
    srv = subprocess.Popen([os.environ.get("TEMEL_BIN", f"{ROOT}/build/temel"), "serve"], cwd=tmp, env=env,
                           stdout=open(f"{tmp}/server.log", "wb"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        port = int(env["PORT"])
        wait_port(port, srv, "temel")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        st, body, _ = call(conn, "POST", "/api/v1/auth/register",
                           json.dumps({"email": "bench@example.com", "password": "upload bench password 1",
                                       "name": "bench"}), {"Content-Type": "application/json"})
        assert st == 201, body
        auth = {"Authorization": "Bearer " + json.loads(body)["access_token"]}
        time.sleep(0.5)
        for i in range(REPEAT):
            upload_once(backend, srv, conn, auth, data, i)
    finally:
        for p in (srv, s3):
            if p and p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)


def upload_once(backend, srv, conn, auth, data, i):
    if True:
        before = rss_kib(srv.pid)
        sampler = Sampler(srv.pid)
        sampler.start()
        t0 = time.monotonic()
        st, body, _ = call(conn, "POST", "/api/v1/files/uploads",
                           json.dumps({"filename": "bench.csv", "size": len(data)}),
                           {**auth, "Content-Type": "application/json"})
        assert st == 201, body
        url = json.loads(body)["url"]
        for a in range(0, len(data), PART):
            b = min(a + PART, len(data)) - 1
            st, body, _ = call(conn, "PUT", url, data[a:b + 1],
                               {**auth, "Content-Range": f"bytes {a}-{b}/{len(data)}",
                                "Content-Type": "application/octet-stream"})
            assert st in (201, 202), (st, body)
        wall = time.monotonic() - t0
        time.sleep(0.3)
        sampler.stop_ = True
        sampler.join()
        after = rss_kib(srv.pid)
        f = json.loads(body)
        assert f["sha256"] == hashlib.sha256(data).hexdigest()
        # download back (local: streamed by h2o; S3: redirect to a presigned GET)
        st, body, r = call(conn, "GET", f["url"], headers=auth)
        if st == 302:
            loc = r.getheader("Location")
            hp = loc.split("/")[2]
            c2 = http.client.HTTPConnection(hp, timeout=300)
            st, body, _ = call(c2, "GET", "/" + loc.split("/", 3)[3])
        assert st == 200 and hashlib.sha256(body).hexdigest() == f["sha256"], st
        print(f"{backend:5s} #{i + 1}: {MB} MiB in {wall:.2f} s = {MB / wall:.1f} MiB/s; server RSS before {before / 1024:.1f} MiB,"
              f" peak during {sampler.peak / 1024:.1f} MiB (+{(sampler.peak - before) / 1024:.1f}),"
              f" after {after / 1024:.1f} MiB; download sha256 ok")


def main():
    line = b"".join(f"{i},row-{i:08d},zażółć gęślą jaźń ğüşıöç\n".encode() for i in range(1000))
    data = (line * ((MB << 20) // len(line) + 1))[: MB << 20]
    data = data[: data.rindex(b"\n") + 1]  # whole lines (valid UTF-8), padded to exactly MB MiB
    data += b"#" * ((MB << 20) - len(data) - 1) + b"\n"
    for b in BACKENDS:
        run(b, data)


if __name__ == "__main__":
    main()
