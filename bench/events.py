#!/usr/bin/python3
"""POST /api/v1/events/{id}/register: N clients racing for one event (issue 12's registration bench).

  DATABASE_URL=sqlite:///tmp/events-bench/temel.db bench/events.py
  DATABASE_URL=postgresql://... bench/events.py            (e.g. from scripts/pgtmp.sh)

Starts `temel serve` ($TEMEL_BIN, default build/temel; 2 threads, rate limits off) on a free port
against $DATABASE_URL (fresh), then, untimed: signs in as the bootstrap admin, publishes one event
with $BENCH_SEATS seats (default 500) and a waitlist, and makes $BENCH_CLIENTS guest accounts
(default 1000). Timed: every client registers once, $BENCH_CONC at a time (default 32; one
keep-alive connection per client thread) — all on the same event row, the worst case. Prints
registrations/s over the wall time and p50/p99 latency, and checks that exactly $BENCH_SEATS are
confirmed and the rest waitlisted with positions 1..N without gaps."""
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import call, latency, serve, timed  # noqa: E402

ADMIN = ("events-bench@example.com", "events bench password 1")
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "1000"))
SEATS = int(os.environ.get("BENCH_SEATS", "500"))
CONC = int(os.environ.get("BENCH_CONC", "32"))


def main():
    with serve("temel-events-bench-", ADMIN) as srv:
        port = srv.port
        st, ev = call(port, "POST", "/api/v1/events", {"title": "Bench", "starts_at": "2099-01-01T10:00:00.000Z",
                                                         "status": "published", "capacity": SEATS, "waitlist": True},
                      srv.admin)
        assert st == 201, ev

        def guest(_):
            st, r = call(port, "POST", "/api/v1/auth/guest")
            assert st == 201, r
            return r["access_token"]

        t0 = time.monotonic()
        with ThreadPoolExecutor(8) as ex:
            tokens = list(ex.map(guest, range(CLIENTS)))
        print(f"setup: {CLIENTS} guest accounts in {time.monotonic() - t0:.1f} s", flush=True)

        res, wall, lat = timed(lambda t: call(port, "POST", f"/api/v1/events/{ev['id']}/register", {}, t), tokens,
                               CONC)
        ok = [r for st, r in res if st == 201]
        confirmed = sum(1 for r in ok if r["status"] == "confirmed")
        positions = sorted(r["waitlist_position"] for r in ok if r["status"] == "waitlisted")
        print(f"{srv.engine}: {len(ok)}/{CLIENTS} registrations 201 in {wall:.2f} s with {CONC} clients: "
              f"{len(ok) / wall:.0f} registrations/s, {latency(lat)}; {confirmed} confirmed (seats {SEATS}), "
              f"{len(positions)} waitlisted")
        if len(ok) != CLIENTS or confirmed != min(SEATS, CLIENTS) or positions != list(range(1, len(positions) + 1)):
            sys.exit(1)


if __name__ == "__main__":
    main()
