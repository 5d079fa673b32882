#!/usr/bin/python3
"""An email campaign to 10,000 recipients through a local SMTP sink — issue 12's marketing benchmark.

  DATABASE_URL=sqlite:///tmp/campaign-bench/temel.db bench/campaign.py
  DATABASE_URL=postgresql://... bench/campaign.py          (e.g. from scripts/pgtmp.sh)

Starts a real SMTP server (python3-aiosmtpd, in this process, on a free port) and `temel serve`
($TEMEL_BIN, default build/temel; 2 threads, rate limits off, TEMEL_MARKETING_DOMAIN_RATE=0 so the
per-domain pacing does not limit the run) against $DATABASE_URL (fresh). Registers a user, creates a
list and times POST /email-lists/{id}/subscribers with $BENCH_RECIPIENTS (default 10,000) addresses
in one request ($BENCH_IMPORTS times, on fresh lists; the median is printed). Then creates a campaign
(HTML with two tracked links and {{name}}) on the last list and times POST /campaigns/{id}/send until
the campaign is 'sent', checking that the sink received every recipient exactly once.
Prints the import time, the send wall time and messages/s."""
import collections
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N = int(os.environ.get("BENCH_RECIPIENTS", "10000"))
IMPORTS = int(os.environ.get("BENCH_IMPORTS", "3"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    def __init__(self, port):
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        self.token = None

    def call(self, method, path, body=None):
        h = {"Content-Type": "application/json"}
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        self.c.request(method, path, body=json.dumps(body) if body is not None else None, headers=h)
        r = self.c.getresponse()
        data = r.read()
        return r.status, (json.loads(data) if data else None)


def cpu_s(pid):
    """user + system CPU seconds of a process so far (load-independent, unlike wall time)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    url = os.environ.get("DATABASE_URL")
    if not url:
        sys.exit("DATABASE_URL is required")
    from aiosmtpd.controller import Controller

    got = collections.Counter()

    class Sink:
        async def handle_DATA(self, server, session, envelope):
            for rc in envelope.rcpt_tos:
                got[rc] += 1
            return "250 OK"

    smtp_port = free_port()
    ctl = Controller(Sink(), hostname="127.0.0.1", port=smtp_port)
    ctl.start()
    work = tempfile.mkdtemp(prefix="campaign-bench-")
    port = free_port()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root"),
           "DATABASE_URL": url, "HOST": "127.0.0.1", "PORT": str(port), "TEMEL_ENV": "test",
           "TEMEL_THREADS": "2", "TEMEL_LOG_LEVEL": "warn", "TEMEL_MAIL_URL": f"smtp://127.0.0.1:{smtp_port}",
           "TEMEL_MAIL_FROM": "Bench <bench@temel.test>", "TEMEL_MARKETING_DOMAIN_RATE": "0",
           "TEMEL_MARKETING_BASE_URL": "https://mail.temel.test", "TEMEL_JOB_POLL_MS": "50"}
    for cls in ("READ", "WRITE", "AUTH", "EMAIL"):
        env[f"TEMEL_RATE_LIMIT_{cls}"] = "100000000/60"
    binary = os.path.abspath(os.environ.get("TEMEL_BIN", os.path.join(ROOT, "build", "temel")))
    log = open(os.path.join(work, "server.log"), "wb")
    proc = subprocess.Popen([binary, "serve"], cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        c = Client(port)
        for _ in range(200):
            try:
                if c.call("GET", "/health/live")[0] == 200:
                    break
            except OSError:
                c = Client(port)
            time.sleep(0.05)
        st, body = c.call("POST", "/api/v1/auth/register", {"email": "bench@example.com",
                                                            "password": "campaign bench password 1",
                                                            "name": "bench"})
        assert st == 201, body
        c.token = body["access_token"]
        subs = [{"email": f"user{i}@d{i % 100}.example.org", "name": f"Kullanıcı {i}"} for i in range(N)]
        times, cpus = [], []
        for _ in range(IMPORTS):
            st, lst = c.call("POST", "/api/v1/email-lists", {"name": "bench", "double_opt_in": False})
            assert st == 201, lst
            body = json.dumps({"subscribers": subs})
            c0, t0 = cpu_s(proc.pid), time.monotonic()
            c.c.request("POST", f"/api/v1/email-lists/{lst['id']}/subscribers", body=body,
                        headers={"Content-Type": "application/json", "Authorization": "Bearer " + c.token})
            r = c.c.getresponse()
            st, out = r.status, json.loads(r.read())
            times.append(time.monotonic() - t0)
            cpus.append(cpu_s(proc.pid) - c0)
            assert st == 200 and out["imported"] == N, out
        st, camp = c.call("POST", "/api/v1/campaigns", {
            "list_id": lst["id"], "name": "bench", "subject": "Merhaba {{name}}",
            "text": "Merhaba {{name}}\n{{unsubscribe_url}}\n",
            "html": '<p>Merhaba {{name}}</p><a href="https://shop.example.com/a">A</a>'
                    '<a href="https://shop.example.com/b">B</a>'})
        assert st == 201, camp
        c0, t0 = cpu_s(proc.pid), time.monotonic()
        st, out = c.call("POST", f"/api/v1/campaigns/{camp['id']}/send")
        assert st == 202, out
        while True:
            st, cur = c.call("GET", f"/api/v1/campaigns/{camp['id']}")
            if cur["status"] == "sent":
                break
            time.sleep(0.1)
        wall, cpu = time.monotonic() - t0, cpu_s(proc.pid) - c0
        st, stats = c.call("GET", f"/api/v1/campaigns/{camp['id']}/stats")
        want = {s["email"] for s in subs}
        once = sum(1 for e in want if got[e] == 1)
        print(f"engine: {url.split(':')[0]}")
        print(f"import of {N} subscribers in one request: median {statistics.median(times) * 1000:.0f} ms "
              f"(runs: {', '.join(f'{t * 1000:.0f}' for t in times)} ms; server CPU "
              f"{', '.join(f'{t * 1000:.0f}' for t in cpus)} ms)")
        print(f"campaign to {N} recipients: {wall:.2f} s, {N / wall:.0f} messages/s; "
              f"server CPU {cpu:.2f} s ({N / cpu:.0f} messages per CPU-second); "
              f"delivered {stats['delivered']}, exactly once at the sink: {once}/{N}")
        print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        if once != N:
            sys.exit("FAILED: not every recipient received exactly one message")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        ctl.stop()
        log.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
