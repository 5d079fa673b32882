#!/usr/bin/env bash
# bench/ai.sh — AI submit-to-settled throughput (jobs/s) with an instant fake provider, SQLite and PostgreSQL.
#
# For each engine: a fresh database, the fake provider (tests/api/fake_provider.py, answers at once),
# `temel serve` with its job runner (TEMEL_JOB_THREADS), one provider with two keys set up through the
# admin API, AI_USERS users with granted credit. The clock starts before the first POST /api/v1/ai/submit
# (AI_CONC concurrent clients, distinct prompts: no cache hits) and stops when every request is settled
# (succeeded, with its credit confirmed). Each job is the whole money path: reserve + enqueue + row in
# one transaction, claim, provider call over HTTP, store + confirm in one transaction, finish.
# Prints per engine: jobs, submit/s (HTTP accept rate) and jobs/s end to end (median of AI_ROUNDS).
#
# Usage: bench/ai.sh [sqlite] [postgres]       (default: both)
# Environment (optional):
#   AI_N=2000  AI_USERS=20  AI_CONC=32  AI_THREADS=4 (runner threads)  AI_ROUNDS=3
#   DATABASE_URL_PG (else scripts/pgtmp.sh starts a private cluster), TEMEL_BIN (default build/temel)
# Every process it starts is stopped on exit.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
BIN=${TEMEL_BIN:-$root/build/temel}
case "$BIN" in /*) ;; *) BIN=$PWD/$BIN ;; esac
N=${AI_N:-2000}
USERS=${AI_USERS:-20}
CONC=${AI_CONC:-32}
THREADS=${AI_THREADS:-4}
ROUNDS=${AI_ROUNDS:-3}
PY=/usr/bin/python3
engines=${*:-sqlite postgres}

tmp=$(mktemp -d /tmp/temel-bench-ai-XXXXXX)
pids=()
pg_started=""
cleanup() {
    for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ -n "$pg_started" ]; then "$root/scripts/pgtmp.sh" stop "$PGTMP_DIR" >/dev/null 2>&1 || true; fi
    [ -n "${AI_KEEP:-}" ] && echo "kept $tmp" >&2 || rm -rf "$tmp"
}
trap cleanup EXIT

free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_live() {
    for _ in $(seq 1 300); do
        curl -fs "http://127.0.0.1:$1/health/live" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "temel did not start (port $1)" >&2
    return 1
}

# The driver: set up, submit N concurrently, wait until all settled; prints "submit_us total_us".
driver() {
    $PY - "$@" <<'EOF'
import concurrent.futures, sys, time, uuid
import requests
port, fake_base, n, users, conc = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
base = f"http://127.0.0.1:{port}"
s = requests.Session()
def login(email, pw):
    r = s.post(base + "/api/v1/auth/login", json={"email": email, "password": pw}); r.raise_for_status()
    return {"Authorization": "Bearer " + r.json()["access_token"]}
adm = login("bench-admin@example.com", "bench admin password 1")
r = s.post(base + "/api/v1/admin/ai/providers", headers=adm, json={"name": "bench", "kind": "openai",
           "base_url": fake_base, "models": [{"name": "bench-model", "upstream": "u", "default": True}]})
r.raise_for_status()
pid = r.json()["id"]
for k in ("sk-bench-1", "sk-bench-2"):
    s.post(base + f"/api/v1/admin/ai/providers/{pid}/keys", headers=adm, json={"key": k}).raise_for_status()
hs = []
for i in range(users):
    r = s.post(base + "/api/v1/auth/register", json={"email": f"b{i}-{uuid.uuid4().hex[:8]}@example.com",
               "password": "correct horse battery staple", "name": "b"}); r.raise_for_status()
    h = {"Authorization": "Bearer " + r.json()["access_token"]}
    g = s.post(base + "/api/v1/admin/credits/grant", headers={**adm, "Idempotency-Key": str(uuid.uuid4())},
               json={"user_id": r.json()["user"]["id"], "amount": n, "reason": "bench"}); g.raise_for_status()
    hs.append(h)
tl = __import__("threading").local()
def one(i):
    if not hasattr(tl, "s"):
        tl.s = requests.Session()
    r = tl.s.post(base + "/api/v1/ai/submit", headers=hs[i % users],
                  json={"operation": "chat", "input": f"bench {i} {uuid.uuid4().hex}"})
    if r.status_code != 202:
        raise SystemExit(f"submit: {r.status_code} {r.text[:200]}")
t0 = time.monotonic()
with concurrent.futures.ThreadPoolExecutor(max_workers=conc) as ex:
    list(ex.map(one, range(n)))
t1 = time.monotonic()
while True:
    r = s.get(base + "/api/v1/admin/analytics/ai-usage", headers=adm); r.raise_for_status()
    t = r.json()["totals"]
    if t["succeeded"] + t["failed"] >= n:
        break
    time.sleep(0.01)
t2 = time.monotonic()
if t["failed"]:
    raise SystemExit(f"{t['failed']} jobs failed")
print(int((t1 - t0) * 1e6), int((t2 - t0) * 1e6))
EOF
}

run_once() {
    local url=$1 dir=$2
    local port fport; port=$(free_port); fport=$(free_port)
    mkdir -p "$dir"
    $PY "$root/tests/api/fake_provider.py" --port "$fport" >"$dir/fake.log" 2>&1 &
    local fake=$!; pids+=("$fake")
    (cd "$dir" && exec env DATABASE_URL="$url" TEMEL_ENV=test HOST=127.0.0.1 PORT="$port" TEMEL_LOG_LEVEL=warn \
        TEMEL_RATE_LIMIT_WRITE=1000000/60 TEMEL_RATE_LIMIT_READ=1000000/60 TEMEL_RATE_LIMIT_AI=1000000/60 \
        TEMEL_RATE_LIMIT_AUTH=1000000/60 TEMEL_OUTBOUND_ALLOW=127.0.0.1 TEMEL_JOB_THREADS="$THREADS" \
        TEMEL_JOB_POLL_MS=10 TEMEL_ADMIN_EMAIL=bench-admin@example.com \
        TEMEL_ADMIN_PASSWORD="bench admin password 1" "$BIN" serve >>"$dir/serve.log" 2>&1) &
    local serve=$!; pids+=("$serve")
    wait_live "$port"
    for _ in $(seq 1 100); do curl -fs -o /dev/null -X POST "http://127.0.0.1:$fport/_reset" && break; sleep 0.05; done
    driver "$port" "http://127.0.0.1:$fport/v1" "$N" "$USERS" "$CONC"
    for p in "$serve" "$fake"; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

printf '%-9s %6s %7s %5s %10s %10s\n' engine jobs threads conc "submit/s" "jobs/s"
for engine in $engines; do
    subs=(); tots=()
    for r in $(seq 1 "$ROUNDS"); do
        dir="$tmp/$engine-$r"
        if [ "$engine" = sqlite ]; then
            url="sqlite://$dir/bench.db"
        else
            if [ -z "${DATABASE_URL_PG:-}" ]; then
                eval "$("$root/scripts/pgtmp.sh" start)"
                DATABASE_URL_PG=$DATABASE_URL
                pg_started=1
            fi
            name="bench_ai_$$_$r"
            psql -q "$DATABASE_URL_PG" -c "CREATE DATABASE $name" >/dev/null
            url="${DATABASE_URL_PG%/*}/$name"
        fi
        read -r su tu < <(run_once "$url" "$dir")
        subs+=("$su"); tots+=("$tu")
        if [ "$engine" = postgres ]; then psql -q "$DATABASE_URL_PG" -c "DROP DATABASE $name WITH (FORCE)" >/dev/null; fi
    done
    s=$(printf '%s\n' "${subs[@]}" | median)
    t=$(printf '%s\n' "${tots[@]}" | median)
    printf '%-9s %6d %7d %5d %10d %10d\n' "$engine" "$N" "$THREADS" "$CONC" \
        $(( N * 1000000 / (s > 0 ? s : 1) )) $(( N * 1000000 / (t > 0 ? t : 1) ))
done
