"""Several temel instances on one PostgreSQL database and one redis-server (the
Debian package on a free port), with no proxy: the client spreads requests
over the instances itself and retries a refused connection (an instance that
is restarting) on the next one — nothing else."""
import itertools
import signal
import subprocess
import time

import requests

from conftest import HTTP_TIMEOUT, Server, require_bin

ADMIN_EMAIL = "multi-admin@example.com"
ADMIN_PASSWORD = "multi admin password 1"
SHARED = {
    "TEMEL_JWT_SECRET": "m" * 48,
    "TEMEL_SECRET_KEY": "multi-instance-secret-key-0123456789abcdef",
    "TEMEL_ADMIN_EMAIL": ADMIN_EMAIL,
    "TEMEL_ADMIN_PASSWORD": ADMIN_PASSWORD,
    "TEMEL_REFRESH_REUSE_GRACE_MS": "0",
    "TEMEL_JOB_POLL_MS": "50",
    "TEMEL_JOB_THREADS": "1",
}
HIGH_LIMITS = {f"TEMEL_RATE_LIMIT_{c}": "1000000/60" for c in ("READ", "WRITE", "AUTH", "AI", "EMAIL")}


class Worker:
    """`temel worker` on the cluster's database."""

    def __init__(self, env, cwd):
        self.log_path = cwd / f"worker-{time.monotonic_ns()}.log"
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([require_bin(), "worker"], cwd=str(cwd), env=env, stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()
        return self.proc.returncode


class Cluster:
    def __init__(self, db_url, redis_url, n=3, env=None, worker=True):
        self.db_url = db_url
        self.env = dict(SHARED, REDIS_URL=redis_url, **(env or {}))
        self.servers = []
        for _ in range(n):  # one after another: the first migrates
            s = Server(db_url, env=self.env)
            s.start()
            self.servers.append(s)
        self.worker = Worker(self.servers[0].env, self.servers[0].dir) if worker else None
        self._rr = itertools.count()

    def urls(self):
        return [s.url("") for s in self.servers]

    def pick(self):
        return self.servers[next(self._rr) % len(self.servers)]

    def request(self, method, path, **kw):
        """One request to the next instance; a refused connection (restarting instance) goes to the
        one after it. Every other error is the caller's to see."""
        kw.setdefault("timeout", HTTP_TIMEOUT)
        last = None
        for _ in range(len(self.servers) * 20):
            s = self.pick()
            try:
                return requests.request(method, s.url(path), **kw)
            except requests.ConnectionError as e:
                if not _refused(e):
                    raise
                last = e
                time.sleep(0.02)
        raise last

    def restart(self, i):
        s = self.servers[i]
        assert s.stop() == 0, s.log_tail()
        s.proc = None
        s.start()

    def stop(self):
        problems = []
        if self.worker and self.worker.stop() != 0:
            problems.append("worker exit != 0")
        for s in self.servers:
            if s.alive() and s.stop() != 0:
                problems.append(f"server exit != 0\n{s.log_tail()}")
            if s.sanitizer_reports():
                problems.append(s.log_tail(200))
        return problems

    def cleanup(self):
        for s in self.servers:
            s.cleanup()


def _refused(e, depth=0):
    """True when the connection was refused (nothing was sent): the only error the client retries."""
    if e is None or depth > 8:
        return False
    if isinstance(e, ConnectionRefusedError):
        return True
    nxt = [getattr(e, "reason", None), e.__cause__, e.__context__]
    nxt += [a for a in getattr(e, "args", ()) if isinstance(a, BaseException)]
    return any(_refused(x, depth + 1) for x in nxt if x is not e)
