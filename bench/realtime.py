#!/usr/bin/python3
"""Realtime scale checks (issue 13 item 5) — a benchmark, not a test.

  bench/realtime.py                      (sqlite, fresh database in a temp dir)
  BENCH_IDLE=10000 BENCH_FANOUT=1000 BENCH_ROUNDS=30 BENCH_PROCS=4 bench/realtime.py

Starts `temel serve` ($TEMEL_BIN, default build/temel, an absolute path; TEMEL_THREADS=$BENCH_THREADS (2),
TEMEL_MAX_CONNECTIONS 20000, rate limits off) on a free port, raises the soft open-files limit to
the hard one, then:
  1. idle: $BENCH_IDLE WebSocket clients (spread over $BENCH_PROCS client processes, raw sockets on
     asyncio) connect, authenticate (access tokens of 10 users) and subscribe to user:<id>; the
     server's VmRSS (/proc/<pid>/status) is read before and after, once every client is ready.
  2. fan-out: $BENCH_FANOUT of those clients also subscribe to events:<id> of one public event; $BENCH_ROUNDS times,
     the admin publishes {"t": time.time()} there (POST /admin/realtime/broadcast) and every
     subscriber records arrival - t on its own clock (same host: one system clock). Prints p50/p99/
     max of publish-to-receive over every delivery, and the count (every subscriber must get every
     round). t is taken before the POST is sent, so the admin route's own work (authentication, the
     audit row's commit) is inside; the POST's round trip is printed next to it.
     The fan-out subscribers are read by one epoll loop per client process (receive_raw: a regex over
     the bytes, no asyncio, no JSON), so little client time is inside the latency; the idle clients
     stay on asyncio and answer pings.
BENCH_PERF=<file>: `perf record -g` on the server during the fan-out (perf report -i <file>)."""
import asyncio
import base64
import json
import multiprocessing as mp
import os
import re
import select
import resource
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IDLE = int(os.environ.get("BENCH_IDLE", "10000"))
FANOUT = int(os.environ.get("BENCH_FANOUT", "1000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "30"))
PROCS = int(os.environ.get("BENCH_PROCS", "4"))
THREADS = os.environ.get("BENCH_THREADS", "2")
ADMIN = ("rt-bench@example.com", "realtime bench password 1")
USERS = 10


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(port, method, path, body=None, token=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=json.dumps(body).encode() if body is not None else None)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"null")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1])
    return 0


def mask(payload):
    key = os.urandom(4)
    n = len(payload)
    head = bytes([0x81, 0x80 | n]) if n < 126 else bytes([0x81, 0x80 | 126]) + struct.pack("!H", n)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class Client:
    """One raw WebSocket connection: handshake, auth, subscribe; answers pings; records event arrivals."""

    async def open(self, port, token, channels):
        self.r, self.w = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        self.w.write((f"GET /api/v1/realtime HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        head = await self.r.readuntil(b"\r\n\r\n")
        assert b" 101 " in head.split(b"\r\n")[0], head
        self.w.write(mask(json.dumps({"type": "auth", "token": token}).encode()))
        assert (await self.frame())["type"] == "ready"
        for ch in channels:
            self.w.write(mask(json.dumps({"type": "subscribe", "channel": ch}).encode()))
            assert (await self.frame())["type"] == "subscribed"

    async def frame(self):
        while True:
            b0, b1 = await self.r.readexactly(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", await self.r.readexactly(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", await self.r.readexactly(8))[0]
            payload = await self.r.readexactly(n)
            op = b0 & 0x0F
            if op == 9:  # ping → pong (masked, empty or echoed payload)
                key = os.urandom(4)
                self.w.write(bytes([0x8A, 0x80 | len(payload)]) + key +
                             bytes(b ^ key[i % 4] for i, b in enumerate(payload)))
            elif op == 1:
                return json.loads(payload)
            elif op == 8:
                raise ConnectionError("closed by the server")

    async def listen(self, lat, rounds):
        got = 0
        while got < rounds:
            m = await self.frame()
            if m.get("event") == "bench":
                lat.append(time.time() - m["data"]["t"])
                got += 1


def receive_raw(socks, rounds):
    """The fan-out subscribers' receiving, off asyncio: one epoll over their sockets, and a frame's only work
    is a regex over the bytes (asyncio's per-frame cost on 2 shared cores was most of the measured latency)."""
    ep = select.epoll()
    by_fd = {s.fileno(): s for s in socks}
    tail = dict.fromkeys(by_fd, b"")
    for fd in by_fd:
        ep.register(fd, select.EPOLLIN)
    pat = re.compile(rb'"t":([0-9.eE+-]+),"round":[0-9]+')
    lat, want, deadline = [], rounds * len(socks), time.monotonic() + 600
    while len(lat) < want and time.monotonic() < deadline:
        for fd, _ in ep.poll(1):
            now = time.time()
            data = tail[fd] + by_fd[fd].recv(65536)
            end = 0
            for m in pat.finditer(data):
                lat.append(now - float(m.group(1)))
                end = m.end()
            tail[fd] = data[end:][-512:]
    return lat


def worker(idx, port, tokens, n_idle, n_fan, fan_channel, ready_q, go_ev, out_q):
    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)

    async def main():
        clients = []
        sem = asyncio.Semaphore(100)

        failed = [0]
        fan_socks, idle = [], []

        async def one(i):
            async with sem:
                tok, uid = tokens[i % len(tokens)]
                chans = [f"user:{uid}"] + ([fan_channel] if i < n_fan else [])
                for attempt in range(5):  # a loaded machine may drop a handshake: retry, and count it
                    c = Client()
                    try:
                        await c.open(port, tok, chans)
                        break
                    except (OSError, asyncio.IncompleteReadError, AssertionError):
                        failed[0] += 1
                        await asyncio.sleep(0.2 * (attempt + 1))
                else:
                    raise RuntimeError(f"client {i} could not connect 5 times")
                clients.append((i, c))
                # from now on it reads: answers the server's pings like a live client
                if i < n_fan:  # read by receive_raw: asyncio stops reading it
                    c.w.transport.pause_reading()
                    fan_socks.append(socket.socket(fileno=os.dup(c.w.get_extra_info("socket").fileno())))
                else:
                    idle.append(asyncio.create_task(c.listen([], 1 << 30)))
        await asyncio.gather(*(one(i) for i in range(n_idle)))
        ready_q.put(failed[0])
        loop = asyncio.get_running_loop()
        lat = await loop.run_in_executor(None, receive_raw, fan_socks, ROUNDS)
        for t in idle:
            t.cancel()
        out_q.put(lat)
        await loop.run_in_executor(None, go_ev.wait)  # keep the connections until the parent is done
    asyncio.run(main())


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    binary = os.environ.get("TEMEL_BIN", os.path.join(ROOT, "build", "temel"))
    tmp = tempfile.mkdtemp(prefix="rt-bench-")
    port = free_port()
    env = dict(os.environ, DATABASE_URL=os.environ.get("DATABASE_URL", f"sqlite://{tmp}/temel.db"),
               HOST="127.0.0.1", PORT=str(port), TEMEL_ENV="development", TEMEL_THREADS=THREADS,
               TEMEL_SECRET_KEY="bench-secret-key-0123456789abcdef0123456789",
               TEMEL_MAX_CONNECTIONS="20000", TEMEL_ADMIN_EMAIL=ADMIN[0], TEMEL_ADMIN_PASSWORD=ADMIN[1],
               TEMEL_RATE_LIMIT_READ="100000000/60", TEMEL_RATE_LIMIT_WRITE="100000000/60",
               TEMEL_RATE_LIMIT_AUTH="100000000/60", TEMEL_LOG_LEVEL="warn",
               # receive_raw's sockets never answer the server's pings (and asyncio stops reading them once
               # connected): at the default 30 s the server dropped a fan-out subscriber paused for two pings
               # (the 10,000-client connect phase alone takes ~37 s), so no ping during the run unless asked
               TEMEL_REALTIME_PING_MS=os.environ.get("TEMEL_REALTIME_PING_MS", "3600000"))
    log = open(os.path.join(tmp, "server.log"), "wb")
    srv = subprocess.Popen([binary, "serve"], cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(300):
            try:
                http(port, "GET", "/health/live")
                break
            except OSError:
                time.sleep(0.1)
        adm = http(port, "POST", "/api/v1/auth/login", {"email": ADMIN[0], "password": ADMIN[1]})["access_token"]
        tokens = []
        for i in range(USERS):
            r = http(port, "POST", "/api/v1/auth/register",
                     {"email": f"rt-bench-{i}-{os.getpid()}@example.com", "password": "bench user password 1",
                      "name": f"bench {i}"})
            tokens.append((r["access_token"], r["user"]["id"]))
        ev = http(port, "POST", "/api/v1/events", {"title": "realtime bench", "status": "published",
                                                    "starts_at": "2030-01-01T10:00:00.000Z"}, adm)
        fan_channel = f"events:{ev['id']}"
        rss0 = rss_kib(srv.pid)
        ready_q, out_q, go_ev = mp.Queue(), mp.Queue(), mp.Event()
        per = [IDLE // PROCS + (1 if i < IDLE % PROCS else 0) for i in range(PROCS)]
        fan = [FANOUT // PROCS + (1 if i < FANOUT % PROCS else 0) for i in range(PROCS)]
        t0 = time.monotonic()
        procs = [mp.Process(target=worker, args=(i, port, tokens, per[i], fan[i], fan_channel, ready_q, go_ev, out_q))
                 for i in range(PROCS)]
        for p in procs:
            p.start()
        retries = sum(ready_q.get(timeout=900) for _ in procs)
        t_conn = time.monotonic() - t0
        time.sleep(2)
        rss1 = rss_kib(srv.pid)
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30).read().decode()
        open_ws = [ln for ln in metrics.splitlines() if ln.startswith('temel_realtime_connections{transport="websocket"}')]
        print(f"idle: {IDLE} clients connected+authenticated+subscribed in {t_conn:.1f} s ({retries} handshakes "
              f"retried); {open_ws[0]}")
        print(f"idle: server VmRSS {rss0 / 1024:.1f} MiB before, {rss1 / 1024:.1f} MiB with the clients "
              f"({(rss1 - rss0) / IDLE:.2f} KiB per connection)")
        perf = None
        if os.environ.get("BENCH_PERF"):  # profile the server during the fan-out: perf report -i $BENCH_PERF
            perf = subprocess.Popen(["perf", "record", "-g", "-o", os.environ["BENCH_PERF"], "-p", str(srv.pid)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1)
        posts = []
        for r in range(ROUNDS):
            t = time.time()
            http(port, "POST", "/api/v1/admin/realtime/broadcast",
                 {"channel": fan_channel, "event": "bench", "data": {"t": t, "round": r}}, adm)
            posts.append(time.time() - t)
            time.sleep(0.3)
        if perf:
            perf.send_signal(2)
            perf.wait(timeout=60)
        posts.sort()
        lat = []
        for _ in procs:
            lat += out_q.get(timeout=900)
        go_ev.set()
        for p in procs:
            p.join(timeout=60)
        lat.sort()
        n = len(lat)
        print(f"fan-out: {ROUNDS} publishes to {FANOUT} subscribers of one channel: {n} deliveries "
              f"(expected {ROUNDS * FANOUT}); publish-to-receive p50 {lat[n // 2] * 1000:.1f} ms, "
              f"p99 {lat[int(n * 0.99)] * 1000:.1f} ms, max {lat[-1] * 1000:.1f} ms; the POST itself: p50 "
              f"{posts[len(posts) // 2] * 1000:.1f} ms")
        print(f"server VmRSS at the end {rss_kib(srv.pid) / 1024:.1f} MiB; log {tmp}/server.log")
    finally:
        srv.terminate()
        try:
            srv.wait(timeout=30)
        except subprocess.TimeoutExpired:
            srv.kill()


if __name__ == "__main__":
    main()
