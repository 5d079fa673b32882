#!/usr/bin/python3
"""bench/shutdown_late.py BIN [ROUNDS] — the rolling-restart case of issue 14 made frequent: per
round, one `temel serve` (SQLite), CLIENTS connections opened just before SIGTERM, each sending its
request 0.3-2.7 s later (a client descheduled between connect and send). Prints how many were
answered and how many lost (reset, or closed unanswered). A server that drops none: lost 0."""
import collections
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "api"))
from conftest import RawConn, Server  # noqa: E402

CLIENTS = 6


def one_round():
    tmp = tempfile.mkdtemp(prefix="temel-late-")
    s = Server(f"sqlite://{tmp}/temel.db").start()
    res = collections.Counter()

    def client():
        try:
            c = RawConn(s.port, timeout=30)
        except OSError:
            res["refused"] += 1
            return
        time.sleep(random.uniform(0.3, 2.7))
        ok = c.send(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            r = c.read_response() if ok else None
        except OSError:
            r = None
        res["answered" if r is not None and r.status == 200 else "lost"] += 1
        c.close()

    ts = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for t in ts:
        t.start()
        time.sleep(0.01)
    s.proc.send_signal(signal.SIGTERM)
    for t in ts:
        t.join()
    s.stop()
    s.cleanup()
    shutil.rmtree(tmp, ignore_errors=True)
    return res


def main():
    os.environ["TEMEL_BIN"] = os.path.abspath(sys.argv[1])
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    total = collections.Counter()
    for _ in range(rounds):
        total.update(one_round())
    print(f"{sys.argv[1]}: {rounds} rounds x {CLIENTS} clients: answered {total['answered']}, "
          f"lost {total['lost']}, refused {total['refused']}")


if __name__ == "__main__":
    main()
