#!/bin/sh
# bench/login.sh — login latency (argon2id verify + session + tokens), p50/p90/p99 over N
# sequential logins against a fresh temel on SQLite (or DATABASE_URL=postgres://...).
#   bench/login.sh [N]        default N=100
set -eu
n=${1:-100}
here=$(cd "$(dirname "$0")" && pwd)
bin=${TEMEL_BIN:-$here/../build/temel}
dir=$(mktemp -d)
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
( cd "$dir" && exec env PORT="$port" HOST=127.0.0.1 DATABASE_URL="${DATABASE_URL:-sqlite://$dir/temel.db}" \
    TEMEL_DATA_DIR="$dir" TEMEL_LOG_LEVEL=warn TEMEL_RATE_LIMIT_AUTH=1000000/1 "$bin" serve 2>"$dir/temel.log" ) &
pid=$!
/usr/bin/python3 - "$port" "$n" <<'PY'
import json, sys, time, urllib.request
port, n = int(sys.argv[1]), int(sys.argv[2])
base = f"http://127.0.0.1:{port}"
for _ in range(100):
    try:
        urllib.request.urlopen(base + "/health/live", timeout=1); break
    except Exception:
        time.sleep(0.1)
def post(path, body):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    return urllib.request.urlopen(req, timeout=10)
import uuid
cred = {"email": f"login-bench-{uuid.uuid4().hex[:10]}@example.com", "password": "correct horse battery staple"}
post("/api/v1/auth/register", dict(cred, name="bench"))
times = []
for _ in range(n):
    t = time.perf_counter()
    post("/api/v1/auth/login", cred).read()
    times.append((time.perf_counter() - t) * 1000)
times.sort()
pct = lambda p: times[min(len(times) - 1, int(p / 100 * len(times)))]
print(f"login: n={n} p50={pct(50):.1f} ms p90={pct(90):.1f} ms p99={pct(99):.1f} ms")
PY
