#!/usr/bin/env bash
# bench/public_cache.sh — the anonymous product page (scenario pp) with and without the public read
# cache (issue 14), on SQLite and PostgreSQL, in one bench/run.sh run (nginx as the reference).
# Starts its own redis-server and PostgreSQL cluster (scripts/pgtmp.sh) on free ports and stops them.
# All four temel variants have REDIS_URL (the rate limiter asks Redis on every request in both), so
# the cache-on/cache-off ratio isolates the cache: TEMEL_PUBLIC_CACHE_TTL_S=60 against 0.
#   bench/public_cache.sh          (BENCH_* of bench/run.sh apply; BENCH_PRODUCTS, BENCH_HOT_PRODUCTS)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
# shellcheck source=bench/lib.sh
. "$here/lib.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/temel-pcbench.XXXXXX")
pids=()
pg_dir=
bench_on_exit='[ -z "$pg_dir" ] || "$root/scripts/pgtmp.sh" stop "$pg_dir" >/dev/null 2>&1'
trap bench_cleanup EXIT
port=$(free_port)
/usr/bin/redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$tmp" \
    --loglevel warning >"$tmp/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
eval "$("$root/scripts/pgtmp.sh" start)"
pg_dir=$PGTMP_DIR
export TEMEL_ADMIN_EMAIL=bench-admin@example.com TEMEL_ADMIN_PASSWORD='bench admin password 1' \
    TEMEL_RATE_LIMIT_WRITE=1000000000/1 TEMEL_RATE_LIMIT_AUTH=1000000/1
export BENCH_PRODUCTS=${BENCH_PRODUCTS:-1000} BENCH_SCENARIOS=${BENCH_SCENARIOS:-live pp}
export BENCH_SETUP=$here/catalog_setup.py WRK_BIN=$here/wrk-catalog.sh
r0=redis://127.0.0.1:$port/0 r1=redis://127.0.0.1:$port/1
export BENCH_TEMEL_VARIANTS="NAME=sqlite,REDIS_URL=$r0,TEMEL_PUBLIC_CACHE_TTL_S=0 \
NAME=sqlite+cache,REDIS_URL=$r0,TEMEL_PUBLIC_CACHE_TTL_S=60 \
NAME=postgres,DATABASE_URL=$DATABASE_URL,REDIS_URL=$r1,TEMEL_PUBLIC_CACHE_TTL_S=0 \
NAME=postgres+cache,DATABASE_URL=$DATABASE_URL,REDIS_URL=$r1,TEMEL_PUBLIC_CACHE_TTL_S=60"
unset DATABASE_URL
"$here/run.sh"
