#!/usr/bin/env bash
# bench/jobs.sh — enqueue-and-complete throughput of no-op jobs (jobs/s) on SQLite and PostgreSQL.
#
# For each engine: a fresh database, `temel serve` with TEMEL_ENV=test (for the test-only enqueue
# route and the test.noop kind) and TEMEL_JOB_THREADS=0, then the runner under test: either
# `temel worker` processes (MODE=worker) or the runner inside a second `temel serve` (MODE=serve).
# The clock starts before the first enqueue request and stops when every job has succeeded;
# enqueue is batches of up to 10,000 jobs per transaction through POST /api/v1/_test/jobs.
# Prints one line per engine: jobs, seconds, jobs/s (end to end) and the enqueue-only rate.
#
# Usage: bench/jobs.sh [sqlite] [postgres]       (default: both)
# Environment (optional):
#   JOBS_N=20000        jobs per run
#   JOBS_THREADS=2      runner threads per worker
#   JOBS_WORKERS=1      worker processes
#   JOBS_ROUNDS=3       runs per engine; the median is printed
#   DATABASE_URL_PG     an existing cluster (else scripts/pgtmp.sh starts a private one)
#   TEMEL_BIN           binary (default build/temel)
# Every process it starts is stopped on exit.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
BIN=${TEMEL_BIN:-$root/build/temel}
case "$BIN" in /*) ;; *) BIN=$PWD/$BIN ;; esac
N=${JOBS_N:-20000}
THREADS=${JOBS_THREADS:-2}
WORKERS=${JOBS_WORKERS:-1}
ROUNDS=${JOBS_ROUNDS:-3}
PY=/usr/bin/python3
engines=${*:-sqlite postgres}

tmp=$(mktemp -d /tmp/temel-bench-jobs-XXXXXX)
pids=()
pg_started=""
cleanup() {
    for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ -n "$pg_started" ]; then "$root/scripts/pgtmp.sh" stop "$PGTMP_DIR" >/dev/null 2>&1 || true; fi
    [ -n "${JOBS_KEEP:-}" ] && echo "kept $tmp" >&2 || rm -rf "$tmp"
}
trap cleanup EXIT

free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ns() { date +%s%N; }

wait_live() {
    for _ in $(seq 1 300); do
        curl -fs "http://127.0.0.1:$1/health/live" >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "temel did not start (port $1)" >&2
    return 1
}

succeeded() { curl -fs "http://127.0.0.1:$1/api/v1/_test/jobs/counts" | $PY -c 'import json,sys; print(json.load(sys.stdin)["succeeded"])'; }

# one run: prints "seconds enqueue_seconds"
run_once() {
    local url=$1 dir=$2
    local port; port=$(free_port)
    mkdir -p "$dir"
    local env=(DATABASE_URL="$url" TEMEL_ENV=test HOST=127.0.0.1 PORT="$port" TEMEL_LOG_LEVEL=warn
               TEMEL_RATE_LIMIT_WRITE=1000000/60 TEMEL_RATE_LIMIT_READ=1000000/60)
    (cd "$dir" && exec env "${env[@]}" TEMEL_JOB_THREADS=0 "$BIN" serve >>"$dir/serve.log" 2>&1) &
    local serve=$!; pids+=("$serve")
    wait_live "$port"
    local t0 t1 t2 left=$N batch
    t0=$(now_ns)
    while [ "$left" -gt 0 ]; do
        batch=$(( left > 10000 ? 10000 : left ))
        curl -fs -o /dev/null -H 'content-type: application/json' \
            -d "{\"kind\":\"test.noop\",\"count\":$batch}" "http://127.0.0.1:$port/api/v1/_test/jobs"
        left=$(( left - batch ))
    done
    t1=$(now_ns)
    local wp=()
    for i in $(seq 1 "$WORKERS"); do
        (cd "$dir" && exec env "${env[@]}" PORT="$(free_port)" TEMEL_JOB_THREADS="$THREADS" "$BIN" worker \
            >>"$dir/worker$i.log" 2>&1) &
        wp+=($!); pids+=($!)
    done
    while [ "$(succeeded "$port")" -lt "$N" ]; do sleep 0.02; done
    t2=$(now_ns)
    for p in "${wp[@]}" "$serve"; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    echo "$(( (t2 - t0) / 1000 )) $(( (t1 - t0) / 1000 )) $(( (t2 - t1) / 1000 ))"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

printf '%-9s %7s %7s %8s %10s %12s %12s\n' engine jobs threads workers "jobs/s" "enqueue/s" "drain/s"
for engine in $engines; do
    totals=(); enq=(); drain=()
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
            name="bench_jobs_$$_$r"
            psql -q "$DATABASE_URL_PG" -c "CREATE DATABASE $name" >/dev/null
            url="${DATABASE_URL_PG%/*}/$name"
        fi
        read -r tot en dr < <(run_once "$url" "$dir")
        totals+=("$tot"); enq+=("$en"); drain+=("$dr")
        if [ "$engine" = postgres ]; then psql -q "$DATABASE_URL_PG" -c "DROP DATABASE $name WITH (FORCE)" >/dev/null; fi
    done
    t=$(printf '%s\n' "${totals[@]}" | median)
    e=$(printf '%s\n' "${enq[@]}" | median)
    d=$(printf '%s\n' "${drain[@]}" | median)
    printf '%-9s %7d %7d %8d %10d %12d %12d\n' "$engine" "$N" "$THREADS" "$WORKERS" \
        $(( N * 1000000 / t )) $(( N * 1000000 / (e > 0 ? e : 1) )) $(( N * 1000000 / (d > 0 ? d : 1) ))
done
