#!/usr/bin/env bash
# bench/runtime.sh — the runtime issue's workload (issue 10 item 6) on SQLite and on PostgreSQL, against
# nginx `return 200` and against pgbench running the SQL temel ran, in one run. Usage: bench/runtime.sh
# (or: make bench-runtime). Not a test: it prints numbers and never fails on them.
#
# For each engine it starts a fresh temel (temp dir; PostgreSQL: a private scripts/pgtmp.sh cluster),
# seeds it through the API (bench/runtime_seed.py: 10,000 products in the seven categories, 1,000 users
# registered, each with its own token), then runs wrk -t2 at each of BENCH_CONNS with bench/runtime.lua
# (a random user's token / category / page / product per request):
#   W0 GET /health/live           W1 GET /api/v1/products?category=<7>&page=1..10&limit=20
#   W2 GET /api/v1/users/me (JWT) W3 POST /api/v1/me/cart {product_id, quantity 1} (carts emptied first)
# References in the same run:
#   nginx    `return 200` on /health/live, measured next to each engine (W0, and the base of the
#            SQLite ratios);
#   pgbench  (PostgreSQL) the statements temel ran for one W1/W2/W3 request, captured from the server
#            log (log_statement=all), replayed with other users/products/pages by
#            bench/runtime_pgbench.py: pgbench -n -M prepared -j 2 -c <BENCH_PGBENCH_CONNS> -T ...;
#            the best tps of those is the database's own ceiling for that SQL.
# Then "W2 while logins run": W2 at the first of BENCH_CONNS while bench/runtime_logins.py does
# BENCH_LOGIN_RATE logins/s (argon2id), next to W2 alone.
# Prints one table (req/s, p50, p99, the ratio each target of the issue is defined by, met or not)
# and writes the raw results, the captured SQL and the uptime before/after to BENCH_OUT.
#
# Environment (all optional):
#   BENCH_SECONDS=10           each measured wrk / pgbench run
#   BENCH_WARMUP=2             seconds of wrk at 64 conns per workload before measuring (0: none)
#   BENCH_CONNS="64 256"       wrk connection counts (wrk -t BENCH_THREADS, 2)
#   BENCH_PGBENCH_CONNS="8 64" pgbench client counts
#   BENCH_PGBENCH_WORKLOADS="w1 w2 w3"  workloads replayed by pgbench
#   BENCH_ENGINES="sqlite postgres"
#   BENCH_WORKLOADS="w0 w1 w2 w3"
#   BENCH_PRODUCTS=10000 BENCH_USERS=1000
#   BENCH_LOGIN_RATE=20        logins/s of the login mode (0: skip it)
#   BENCH_BUILDS="temel=$TEMEL_BIN"   label=binary ...: builds to compare in one run on the same seeded
#                              databases, in this order (the first seeds and migrates: put the older first),
#                              e.g. "before=/work/wt/bench-before/build/temel after=build/temel"
#   BENCH_LABEL                a name for this run in the table header
#   BENCH_OUT=build/bench-runtime-<UTC time>.txt   raw results
#   BENCH_PERF=DIR             record `perf record -g` of temel during each measured run at the first
#                              of BENCH_CONNS into DIR/<engine>-<workload>.data
#   BENCH_KEEP=1               keep the temp dir (temel logs, seed, pgbench scripts)
#   DATABASE_URL_PG + PGTMP_DIR  use this running scripts/pgtmp.sh cluster instead of a new one
#                              (its server.log is read for the SQL capture; the database is reused)
#   TEMEL_BIN, NGINX_BIN, WRK_BIN, PGBIN (/usr/lib/postgresql/15/bin)
# Any TEMEL_* variable in the environment is passed to temel (e.g. TEMEL_DB_POOL, TEMEL_LOG_LEVEL).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

BENCH_SECONDS=${BENCH_SECONDS:-10}
BENCH_WARMUP=${BENCH_WARMUP:-2}
BENCH_CONNS=${BENCH_CONNS:-64 256}
BENCH_PGBENCH_CONNS=${BENCH_PGBENCH_CONNS:-8 64}
BENCH_PGBENCH_WORKLOADS=${BENCH_PGBENCH_WORKLOADS:-w1 w2 w3}
BENCH_THREADS=${BENCH_THREADS:-2}
BENCH_ENGINES=${BENCH_ENGINES:-sqlite postgres}
BENCH_WORKLOADS=${BENCH_WORKLOADS:-w0 w1 w2 w3}
BENCH_PRODUCTS=${BENCH_PRODUCTS:-10000}
BENCH_USERS=${BENCH_USERS:-1000}
BENCH_LOGIN_RATE=${BENCH_LOGIN_RATE:-20}
BENCH_LABEL=${BENCH_LABEL:-}
BENCH_PERF=${BENCH_PERF:-}
TEMEL_BIN=${TEMEL_BIN:-$root/build/temel}
BENCH_BUILDS=${BENCH_BUILDS:-temel=$TEMEL_BIN}
NGINX_BIN=${NGINX_BIN:-/usr/sbin/nginx}
WRK_BIN=${WRK_BIN:-/usr/bin/wrk}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PY=/usr/bin/python3
stamp=$(date -u +%Y%m%dT%H%M%SZ)
BENCH_OUT=${BENCH_OUT:-$root/build/bench-runtime-$stamp.txt}

is_uint() { case $1 in '' | *[!0-9]*) return 1 ;; *) return 0 ;; esac; }
for v in BENCH_SECONDS BENCH_WARMUP BENCH_THREADS BENCH_PRODUCTS BENCH_USERS BENCH_LOGIN_RATE; do
    is_uint "${!v}" || die "$v must be a non-negative integer, got '${!v}'"
done
[ "$BENCH_SECONDS" -gt 0 ] && [ "$BENCH_USERS" -gt 0 ] || die "BENCH_SECONDS and BENCH_USERS must be > 0"
for c in $BENCH_CONNS $BENCH_PGBENCH_CONNS; do is_uint "$c" && [ "$c" -gt 0 ] || die "bad connection count '$c'"; done
for e in $BENCH_ENGINES; do case $e in sqlite | postgres) ;; *) die "BENCH_ENGINES: unknown engine '$e'" ;; esac; done
for w in $BENCH_WORKLOADS; do case $w in w0 | w1 | w2 | w3) ;; *) die "BENCH_WORKLOADS: unknown '$w'" ;; esac; done
for spec in $BENCH_BUILDS; do
    case $spec in ?*=?*) ;; *) die "BENCH_BUILDS: expected label=path, got '$spec'" ;; esac
    [ -x "${spec#*=}" ] || die "no temel binary at ${spec#*=} (run make)"
done
[ -x "$WRK_BIN" ] || die "no wrk at $WRK_BIN (scripts/deps.sh)"
[ -x "$NGINX_BIN" ] || die "no nginx at $NGINX_BIN (scripts/deps.sh)"
case " $BENCH_ENGINES " in *" postgres "*)
    [ -x "$PGBIN/pgbench" ] && [ -x "$PGBIN/psql" ] || die "no pgbench/psql in $PGBIN (postgresql-15)" ;;
esac
case " $BENCH_ENGINES " in *" sqlite "*) command -v sqlite3 >/dev/null || die "sqlite3 is required (empties carts)" ;; esac
command -v curl >/dev/null || die "curl is required"
[ -z "$BENCH_PERF" ] || command -v perf >/dev/null || die "BENCH_PERF needs perf"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/temel-runtime.XXXXXX")
pids=()
pg_started=""
bench_on_exit='[ -z "$pg_started" ] || "$root/scripts/pgtmp.sh" stop "$pg_started"'
trap bench_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

raw=$tmp/raw # build engine workload conns target rps p50_us p99_us errors cpu_us_per_req
: >"$raw"
builds=""
for spec in $BENCH_BUILDS; do
    builds="$builds ${spec%%=*}=${spec#*=}@$(git -C "$(dirname "${spec#*=}")" rev-parse --short HEAD 2>/dev/null || echo "?")"
done
up_before=$(uptime)
busy=$(busy_pct)
note "machine: $up_before; CPU ${busy}% busy before the run"

export TEMEL_ADMIN_EMAIL=bench-admin@example.com TEMEL_ADMIN_PASSWORD='bench admin password 1'
temel_env=(HOST=127.0.0.1 TEMEL_RATE_LIMIT_READ=1000000000/1 TEMEL_RATE_LIMIT_WRITE=1000000000/1
    TEMEL_RATE_LIMIT_AUTH=1000000000/1 TEMEL_ACCESS_TTL_S=86400 TEMEL_JOB_THREADS=0
    TEMEL_JWT_SECRET=bench-runtime-jwt-secret-0123456789abcdef) # one secret: the seed's tokens serve every build

# ---- references and helpers ------------------------------------------------------------------
start_nginx "$tmp/nginx" /health/live

field() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

# wrk_run ENGINE WORKLOAD CONNS TARGET URL SEED_DIR PID [SECONDS]: one measured run, appended to raw
wrk_run() {
    local out line c0 c1 nreq cpu errs perf_pid=""
    c0=$(cpu_ticks "$7")
    if [ -n "$BENCH_PERF" ] && [ "$4" = temel ] && [ "$3" = "${BENCH_CONNS%% *}" ]; then
        mkdir -p "$BENCH_PERF"
        perf record -g -q -o "$BENCH_PERF/$1-$2.data" -p "$7" -- sleep "${8:-$BENCH_SECONDS}" 2>/dev/null &
        perf_pid=$!
    fi
    out=$(BENCH_WORKLOAD=$2 BENCH_SEED_DIR=$6 "$WRK_BIN" -t "$BENCH_THREADS" -c "$3" -d "${8:-$BENCH_SECONDS}s" \
        -s "$here/runtime.lua" "$5" 2>&1) || { echo "$out" >&2; die "wrk failed ($1 $2 c$3 $4)"; }
    [ -z "$perf_pid" ] || wait "$perf_pid" || true
    c1=$(cpu_ticks "$7")
    line=$(echo "$out" | grep '^WRK_RESULT ') || { echo "$out" >&2; die "no WRK_RESULT from wrk"; }
    nreq=$(field "$line" requests)
    cpu=$(awk -v d=$((c1 - c0)) -v n="$nreq" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", (n > 0 ? d * 1e6 / hz / n : 0) }')
    errs=$(($(field "$line" err_connect) + $(field "$line" err_read) + $(field "$line" err_write) +
        $(field "$line" err_status) + $(field "$line" err_timeout)))
    echo "$build $1 $2 $3 $4 $(field "$line" rps) $(field "$line" p50_us) $(field "$line" p99_us) $errs $cpu" >>"$raw"
    note "$(printf '%-8s %-3s c=%-4s %-12s %9.0f req/s  p50 %7.2f ms  p99 %7.2f ms  cpu %6.1f us/req  errors %d' \
        "$1" "$2" "$3" "$4" "$(field "$line" rps)" "$(awk -v v="$(field "$line" p50_us)" 'BEGIN{print v/1000}')" \
        "$(awk -v v="$(field "$line" p99_us)" 'BEGIN{print v/1000}')" "$cpu" "$errs")"
}

psql_do() { "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -d "$pg_url" "$@" >/dev/null; }

# empty_carts ENGINE DB: every cart line goes (before each W3 run, temel idle)
empty_carts() {
    if [ "$1" = sqlite ]; then
        sqlite3 -cmd ".timeout 10000" "$2" "DELETE FROM catalog_cart_items" >/dev/null
    else
        psql_do -c "DELETE FROM catalog_cart_items" -c "VACUUM ANALYZE catalog_cart_items"
    fi
}

# pgbench_run WORKLOAD CONNS SCRIPT: pgbench with SCRIPT; p50/p99 from a 10 % sample log.
# pgbench's -T includes opening its connections (3-4 s for 64 on a busy 2-core machine) and its tps
# excludes that time, so -T gets BENCH_PGBENCH_CONNECT_S (8) more seconds.
pg_connect_s=${BENCH_PGBENCH_CONNECT_S:-8}
pgbench_run() {
    local out tps lat
    rm -f "$tmp"/pgblog*
    out=$(cd "$tmp" && "$PGBIN/pgbench" -n -M prepared -c "$2" -j 2 -T $((BENCH_SECONDS + pg_connect_s)) -l --log-prefix=pgblog \
        --sampling-rate=0.1 -f "$3" "$pg_url" 2>&1) ||
        { echo "$out" | grep -m 3 'error' >&2; note "pgbench $1 c$2 aborted (the tps below covers the clients until then)"; }
    tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -n 1)
    tps=${tps:-0}
    lat=$(cat "$tmp"/pgblog* 2>/dev/null | awk '{print $3}' | sort -n |
        awk '{a[NR] = $1} END { i = int(NR * 0.99); if (i < 1) i = 1; if (NR) printf "%d %d", a[int((NR + 1) / 2)], a[i]; else print "0 0" }')
    local failed
    failed=$(echo "$out" | sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p')
    echo "$build postgres $1 $2 pgbench $tps $lat ${failed:-0} -" >>"$raw"
    note "$(printf 'postgres %-3s c=%-4s %-12s %9.0f tps    p50 %7.2f ms  p99 %7.2f ms  failed %s' "$1" "$2" pgbench "$tps" \
        "$(awk -v v="${lat% *}" 'BEGIN{print v/1000}')" "$(awk -v v="${lat#* }" 'BEGIN{print v/1000}')" "${failed:-0}")"
}

# capture_sql URL SEED_DIR OUT_DIR: log one request of W1/W2/W3 and make the pgbench scripts of it
capture_sql() {
    local log=$pg_dir/server.log off tok pid
    tok=$(head -n 1 "$2/tokens")
    pid=$(head -n 1 "$2/products.ids")
    psql_do -c "ALTER SYSTEM SET log_statement = 'all'" -c "SELECT pg_reload_conf()"
    sleep 0.5
    off=$(stat -c %s "$log")
    psql_do -c "SELECT 'bench-capture:w1'"
    curl -fsS -o /dev/null "$1/api/v1/products?category=bakliyat&page=7&limit=20"
    psql_do -c "SELECT 'bench-capture:w2'"
    curl -fsS -o /dev/null -H "Authorization: Bearer $tok" "$1/api/v1/users/me"
    psql_do -c "SELECT 'bench-capture:w3'"
    curl -fsS -o /dev/null -H "Authorization: Bearer $tok" -H 'Content-Type: application/json' \
        -d "{\"product_id\":\"$pid\",\"quantity\":1}" "$1/api/v1/me/cart"
    psql_do -c "SELECT 'bench-capture:end'"
    psql_do -c "ALTER SYSTEM RESET log_statement" -c "SELECT pg_reload_conf()"
    tail -c +$((off + 1)) "$log" >"$3/capture.log"
    printf 'uid %s\nsid %s\nproduct %s\ncategory bakliyat\noffset 120\n' \
        "$(head -n 1 "$2/users.tsv" | cut -f1)" "$(head -n 1 "$2/users.tsv" | cut -f2)" "$pid" >"$3/capture.ids"
    local maxc=1 c
    for c in $BENCH_PGBENCH_CONNS; do [ "$c" -le "$maxc" ] || maxc=$c; done
    "$PY" "$here/runtime_pgbench.py" "$3/capture.log" "$2" "$3" "$3/capture.ids" "$maxc"
}

has() { case " $BENCH_WORKLOADS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# ---- one engine ---------------------------------------------------------------------------------
# start_temel ENGINE DIR DBURL BIN LOG: migrate and serve on a free port; sets url and spid
start_temel() {
    local port envs
    port=$(free_port)
    url=http://127.0.0.1:$port
    envs=(PORT="$port" DATABASE_URL="$3" TEMEL_DATA_DIR="$2" "${temel_env[@]}")
    env "${envs[@]}" "$4" migrate up >"$5.migrate" 2>&1 || { cat "$5.migrate" >&2; die "$1: $4 migrate up failed"; }
    env "${envs[@]}" "$4" serve >/dev/null 2>"$5" &
    spid=$!
    pids+=($spid)
    wait_http "temel ($1, $4)" $spid "$url/health/live" "$5"
}

engine_db() { if [ "$1" = sqlite ]; then echo "sqlite://$tmp/sqlite/temel.db"; else echo "$pg_url"; fi; }

# seed_engine ENGINE: the first build of BENCH_BUILDS migrates the engine's database and serves it
# while bench/runtime_seed.py fills it; run in the background, one per engine (argon2id of 1,000
# registrations dominates, seconds to minutes), so it cleans up its own server.
seed_engine() {
    local engine=$1 dir=$tmp/$1 spec=${BENCH_BUILDS%% *} t0=$SECONDS pids=()
    mkdir -p "$dir"
    trap '[ -z "${spid:-}" ] || stop_pid $spid' EXIT
    start_temel "$engine" "$dir" "$(engine_db "$engine")" "${spec#*=}" "$dir/seed-temel.log"
    note "$engine: seeding $BENCH_PRODUCTS products and $BENCH_USERS users through the API (${spec%%=*})"
    "$PY" "$here/runtime_seed.py" "$url" "$dir/seed" "$BENCH_PRODUCTS" "$BENCH_USERS" ||
        die "$engine: seeding failed (log: $dir/seed-temel.log)"
    note "$engine: seeded in $((SECONDS - t0)) s"
}

# run_engine ENGINE: the seeded database; every build in turn serves it (the first one migrated it,
# the later ones migrate it further: an older build comes first)
run_engine() {
    local engine=$1 dir=$tmp/$1 c w spec bin out dburl db=""
    mkdir -p "$dir"
    dburl=$(engine_db "$engine")
    [ "$engine" != sqlite ] || db=$dir/temel.db
    for spec in $BENCH_BUILDS; do
        build=${spec%%=*} bin=${spec#*=} out=$dir/$build
        mkdir -p "$out"
        start_temel "$engine" "$dir" "$dburl" "$bin" "$out/temel.log"
        if [ "$engine" = postgres ]; then
            psql_do -c "VACUUM ANALYZE"
            capture_sql "$url" "$dir/seed" "$out"
            mkdir -p "$tmp/sql/$build"
            cp "$out"/w?.sql.txt "$tmp/sql/$build/"
        fi

        for c in $BENCH_CONNS; do # the reference: W0 and the base of the SQLite ratios
            wrk_run "$engine" w0 "$c" nginx "$nginx_url" "$dir/seed" "$nginx_pid"
        done
        for w in $BENCH_WORKLOADS; do
            if [ "$BENCH_WARMUP" -gt 0 ]; then
                [ "$w" != w3 ] || empty_carts "$engine" "$db"
                BENCH_WORKLOAD=$w BENCH_SEED_DIR=$dir/seed "$WRK_BIN" -t "$BENCH_THREADS" -c 64 -d "${BENCH_WARMUP}s" \
                    -s "$here/runtime.lua" "$url" >/dev/null 2>&1 || true
            fi
            for c in $BENCH_CONNS; do
                [ "$w" != w3 ] || empty_carts "$engine" "$db"
                wrk_run "$engine" "$w" "$c" temel "$url" "$dir/seed" "$spid"
            done
            if [ "$engine" = postgres ] && [ "$w" != w0 ] && case " $BENCH_PGBENCH_WORKLOADS " in *" $w "*) true ;; *) false ;; esac; then
                [ "$w" != w3 ] || psql_do -f "$out/w3_setup.sql"
                for c in $BENCH_PGBENCH_CONNS; do
                    [ "$w" != w3 ] || empty_carts "$engine"
                    pgbench_run "$w" "$c" "$out/$w.sql"
                done
            fi
        done
        # last: an older build may still be hashing queued logins long after the loop stopped
        if has w2 && [ "$BENCH_LOGIN_RATE" -gt 0 ]; then
            c=${BENCH_CONNS%% *}
            "$PY" "$here/runtime_logins.py" "$url" "$dir/seed" "$BENCH_LOGIN_RATE" $((BENCH_SECONDS + 2)) \
                >"$out/logins.out" &
            local lpid=$!
            sleep 1
            wrk_run "$engine" w2+login "$c" temel "$url" "$dir/seed" "$spid"
            wait $lpid || die "$engine: login loop failed"
            echo "$build $engine: W2 c$c with $BENCH_LOGIN_RATE logins/s: $(cat "$out/logins.out")" >>"$tmp/logins"
            note "$engine: $(cat "$out/logins.out")"
        fi
        stop_pid $spid
    done
}

for engine in $BENCH_ENGINES; do
    if [ "$engine" = postgres ]; then
        if [ -n "${DATABASE_URL_PG:-}" ]; then
            [ -n "${PGTMP_DIR:-}" ] || die "DATABASE_URL_PG needs PGTMP_DIR (its server.log is read)"
            pg_url=$DATABASE_URL_PG pg_dir=$PGTMP_DIR
        else
            local_DATABASE_URL="" local_PGTMP_DIR=""
            eval "$("$root/scripts/pgtmp.sh" start | sed 's/^export /local_/')"
            [ -n "$local_DATABASE_URL" ] || die "scripts/pgtmp.sh start failed"
            pg_url=$local_DATABASE_URL pg_dir=$local_PGTMP_DIR pg_started=$local_PGTMP_DIR
        fi
    fi
done
seeders=()
for engine in $BENCH_ENGINES; do
    seed_engine "$engine" &
    seeders+=($!)
done
for p in "${seeders[@]}"; do wait "$p" || die "seeding failed"; done
for engine in $BENCH_ENGINES; do
    [ "$engine" != postgres ] || psql_do -c "VACUUM ANALYZE"
    run_engine "$engine"
done
up_after=$(uptime)

# ---- report ------------------------------------------------------------------------------------
report() {
    printf 'bench/runtime.sh%s — %s; builds:%s; wrk -t%s, %ss per run; pgbench -M prepared -j 2\n' \
        "${BENCH_LABEL:+ [$BENCH_LABEL]}" "$(date -u +%Y-%m-%dT%H:%MZ)" "$builds" "$BENCH_THREADS" "$BENCH_SECONDS"
    printf 'uptime before: %s\nuptime after:  %s\n' "$up_before" "$up_after"
    awk -v p99max=10 -v c64="${BENCH_CONNS%% *}" '
    { k = $1 SUBSEP $2 SUBSEP $3 SUBSEP $4 SUBSEP $5; rps[k] = $6; p50[k] = $7; p99[k] = $8; err[k] = $9; cpu[k] = $10
      if ($5 != "pgbench") order[++n] = k
      if ($5 == "pgbench" && $6 + 0 > ceil[$1 SUBSEP $2 SUBSEP $3]) ceil[$1 SUBSEP $2 SUBSEP $3] = $6 + 0
      if ($5 == "pgbench") pg[++m] = k }
    END {
      tgt["postgres", "w1"] = 0.8; tgt["postgres", "w2"] = 0.6; tgt["postgres", "w3"] = 0.5
      tgt["sqlite", "w1"] = 0.25; tgt["sqlite", "w2"] = 0.5; tgt["sqlite", "w3"] = 0.2
      printf "%-8s %-8s %-8s %5s %9s %8s %8s %6s %6s | %-13s %9s %6s %7s %s\n", "build", "engine", "workload", "conns",
        "req/s", "p50 ms", "p99 ms", "cpu/rq", "errors", "reference", "ref req/s", "ratio", "target", "met"
      for (i = 1; i <= n; i++) {
        k = order[i]; split(k, f, SUBSEP); b = f[1]; e = f[2]; w = f[3]; c = f[4]
        if (f[5] == "nginx") {
          printf "%-8s %-8s %-8s %5s %9.0f %8.2f %8.2f %6s %6d | (nginx return 200)\n", b, e, "nginx", c, rps[k],
            p50[k] / 1000, p99[k] / 1000, cpu[k], err[k]
          continue
        }
        base = w; sub(/\+login/, "", base)
        if (e == "postgres" && base != "w0") { ref = "pgbench best"; rr = ceil[b SUBSEP e SUBSEP base] }
        else { ref = "nginx c" c; rr = rps[b SUBSEP e SUBSEP "w0" SUBSEP c SUBSEP "nginx"] }
        ratio = rr > 0 ? rps[k] / rr : 0
        t = (e SUBSEP base) in tgt && w == base ? tgt[e, base] : 0
        met = t ? (ratio >= t ? "yes" : "NO") : "-"
        if ((base == "w2" || base == "w3") && c == c64)
          met = met " / p99<=" p99max "ms " (p99[k] / 1000 <= p99max ? "yes" : "NO")
        printf "%-8s %-8s %-8s %5s %9.0f %8.2f %8.2f %6s %6d | %-13s %9.0f %6.2f %7s %s\n", b, e, w, c, rps[k],
          p50[k] / 1000, p99[k] / 1000, cpu[k], err[k], ref, rr, ratio, t ? ">=" t : "-", met
      }
      for (i = 1; i <= m; i++) {
        k = pg[i]; split(k, f, SUBSEP)
        printf "%-8s %-8s %-8s %5s %9.0f %8.2f %8.2f %6s %6d | pgbench, the SQL that build ran (tps; failed tx)\n",
          f[1], f[2], f[3] " pgb", f[4], rps[k], p50[k] / 1000, p99[k] / 1000, "-", err[k]
      }
    }' "$raw"
    [ ! -s "$tmp/logins" ] || cat "$tmp/logins"
}
mkdir -p "$(dirname "$BENCH_OUT")"
{
    report
    echo
    echo "# raw: build engine workload conns target req/s p50_us p99_us errors server_cpu_us_per_req"
    cat "$raw"
    for f in "$tmp"/sql/*/*.txt; do
        [ -e "$f" ] || continue
        echo
        echo "# $(basename "$(dirname "$f")"): the SQL temel ran for one $(basename "$f" .sql.txt) request (PostgreSQL log), replayed by pgbench:"
        cat "$f"
    done
} >"$BENCH_OUT"
echo
report
note "raw results and captured SQL: $BENCH_OUT"
