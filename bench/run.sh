#!/usr/bin/env bash
# bench/run.sh — HTTP throughput of temel against an nginx `return 200` reference.
#
# Starts temel (fresh temp dir, free port, SQLite) and nginx (private prefix, free port), warms both
# up, then runs wrk against each scenario of bench/scenarios at each connection count, alternating
# which target goes first, and prints one table: req/s, p50, p99 and the ratio temel/nginx.
# Every process it starts is stopped on exit. Usage: bench/run.sh   (or: make bench)
#
# Environment (all optional):
#   BENCH_SECONDS=10          duration of each measured wrk run
#   BENCH_WARMUP=3            seconds of wrk warm-up per target and scenario before measuring (0: none)
#   BENCH_CONNS="64 256"      connection counts
#   BENCH_THREADS=2           wrk threads
#   BENCH_ROUNDS=1            repeat the whole matrix; the table shows the median of the rounds
#   BENCH_SCENARIOS="live"    scenario names to run (default: every line of the scenario file)
#   BENCH_SCENARIO_FILE=bench/scenarios
#   BENCH_TEMEL_VARIANTS="TEMEL_LOG_LEVEL=info"
#                             space-separated temel variants to start side by side; each is a
#                             comma-separated list of VAR=VALUE, e.g.
#                             "TEMEL_LOG_LEVEL=info TEMEL_LOG_LEVEL=warn TEMEL_THREADS=1,TEMEL_LOG_LEVEL=warn"
#                             NAME=label sets the table label, BIN=path another temel binary (A/B of builds).
#                             Each variant logs (stderr, the access log at info) to a file in its temp dir.
#   BENCH_NGINX=1             0: no nginx reference (no ratio column)
#   BENCH_HEADERS             extra request headers for temel, one "Name: value" per line
#   BENCH_SETUP               shell command run once per temel instance after it is up, with
#                             BENCH_URL=http://127.0.0.1:PORT; each stdout line "Name: value" becomes a
#                             request header for that instance (e.g. log in and print a Bearer token)
#   BENCH_RAW=FILE            also write the raw per-run results there
#   BENCH_KEEP=1              keep the temp dir (logs, configs) and print its path
#   TEMEL_BIN, NGINX_BIN, WRK_BIN   override the binaries
# Any TEMEL_* variable already in the environment is passed to temel as well.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

BENCH_SECONDS=${BENCH_SECONDS:-10}
BENCH_WARMUP=${BENCH_WARMUP:-3}
BENCH_CONNS=${BENCH_CONNS:-64 256}
BENCH_THREADS=${BENCH_THREADS:-2}
BENCH_ROUNDS=${BENCH_ROUNDS:-1}
BENCH_SCENARIOS=${BENCH_SCENARIOS:-}
BENCH_SCENARIO_FILE=${BENCH_SCENARIO_FILE:-$here/scenarios}
BENCH_TEMEL_VARIANTS=${BENCH_TEMEL_VARIANTS:-TEMEL_LOG_LEVEL=info}
BENCH_NGINX=${BENCH_NGINX:-1}
BENCH_HEADERS=${BENCH_HEADERS:-}
BENCH_SETUP=${BENCH_SETUP:-}
TEMEL_BIN=${TEMEL_BIN:-$root/build/temel}
NGINX_BIN=${NGINX_BIN:-/usr/sbin/nginx}
WRK_BIN=${WRK_BIN:-/usr/bin/wrk}

is_uint() { case $1 in '' | *[!0-9]*) return 1 ;; *) return 0 ;; esac; }
for v in BENCH_SECONDS BENCH_WARMUP BENCH_THREADS BENCH_ROUNDS; do
    is_uint "${!v}" || die "$v must be a non-negative integer, got '${!v}'"
done
[ "$BENCH_SECONDS" -gt 0 ] && [ "$BENCH_ROUNDS" -gt 0 ] && [ "$BENCH_THREADS" -gt 0 ] ||
    die "BENCH_SECONDS, BENCH_ROUNDS and BENCH_THREADS must be > 0"
for c in $BENCH_CONNS; do is_uint "$c" && [ "$c" -gt 0 ] || die "BENCH_CONNS: bad count '$c'"; done

[ -x "$TEMEL_BIN" ] || die "no temel binary at $TEMEL_BIN (run make)"
[ -x "$WRK_BIN" ] || die "no wrk at $WRK_BIN (apt-get install wrk)"
[ "$BENCH_NGINX" = 0 ] || [ -x "$NGINX_BIN" ] || die "no nginx at $NGINX_BIN (apt-get install nginx-light)"
[ -r "$BENCH_SCENARIO_FILE" ] || die "no scenario file $BENCH_SCENARIO_FILE"
command -v curl >/dev/null || die "curl is required"
command -v python3 >/dev/null || die "python3 is required (free port lookup)"

# ---- scenarios -------------------------------------------------------------------------------
# parallel arrays: name, ref, method, path, body
sc_name=() sc_ref=() sc_method=() sc_path=() sc_body=()
while read -r name ref method path body; do
    case $name in '' | '#'*) continue ;; esac
    [ -n "$path" ] || die "$BENCH_SCENARIO_FILE: scenario '$name' needs: name ref method path [body]"
    if [ -n "$BENCH_SCENARIOS" ]; then
        case " $BENCH_SCENARIOS " in *" $name "*) ;; *) continue ;; esac
    fi
    case $body in
    @*)
        f=$here/${body#@}
        [ -r "$f" ] || die "scenario '$name': body file $f not readable"
        body=$(cat "$f")
        ;;
    esac
    sc_name+=("$name") sc_ref+=("$ref") sc_method+=("$method") sc_path+=("$path") sc_body+=("$body")
done <"$BENCH_SCENARIO_FILE"
[ ${#sc_name[@]} -gt 0 ] || die "no scenario selected (BENCH_SCENARIOS='$BENCH_SCENARIOS')"
for s in $BENCH_SCENARIOS; do
    found=0
    for n in "${sc_name[@]}"; do [ "$n" = "$s" ] && found=1; done
    [ $found = 1 ] || die "unknown scenario '$s' (see $BENCH_SCENARIO_FILE)"
done

# ---- process bookkeeping ---------------------------------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/temel-bench.XXXXXX")
pids=()
trap bench_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- targets ---------------------------------------------------------------------------------
# parallel arrays: label, base url, headers, server pid
tg_label=() tg_url=() tg_headers=() tg_pid=()

clk_tck=$(getconf CLK_TCK 2>/dev/null || echo 100)

start_ref() {
    local i paths=()
    for i in "${!sc_name[@]}"; do
        [ "${sc_ref[$i]}" = nginx ] && paths+=("${sc_path[$i]%%\?*}")
    done
    start_nginx "$tmp/nginx" "${paths[@]}"
    tg_label+=(nginx) tg_url+=("$nginx_url") tg_headers+=("") tg_pid+=("$nginx_pid")
}

# start_temel INDEX VARIANT
start_temel() {
    local dir=$tmp/temel$1 port label="" bin=$TEMEL_BIN vars=() kv hdrs all=()
    mkdir -p "$dir"
    port=$(free_port)
    IFS=, read -r -a all <<<"$2"
    for kv in "${all[@]}"; do
        case $kv in
        NAME=?*) label=${kv#NAME=} ;;
        BIN=?*) bin=${kv#BIN=} ;;
        [A-Z_]*=*) vars+=("$kv") ;;
        *) die "BENCH_TEMEL_VARIANTS: bad assignment '$kv' in '$2'" ;;
        esac
    done
    [ -x "$bin" ] || die "variant '$2': no executable $bin"
    [ -n "$label" ] || label="temel[$(IFS=,; echo "${vars[*]:-default}" | sed 's/TEMEL_//g')]"
    label=${label// /_}
    local envs=(PORT="$port" HOST=127.0.0.1 DATABASE_URL="sqlite://$dir/temel.db" TEMEL_DATA_DIR="$dir"
        TEMEL_RATE_LIMIT_READ=1000000000/1 "${vars[@]}")
    env "${envs[@]}" "$bin" migrate up >"$dir/migrate.log" 2>&1 ||
        { cat "$dir/migrate.log" >&2; die "$label: temel migrate up failed"; }
    env "${envs[@]}" "$bin" serve >"$dir/stdout.log" 2>"$dir/temel.log" &
    local spid=$!
    pids+=($spid)
    wait_http "$label" $spid "http://127.0.0.1:$port/health/live" "$dir/temel.log"
    hdrs=$BENCH_HEADERS
    if [ -n "$BENCH_SETUP" ]; then
        local out
        out=$(BENCH_URL="http://127.0.0.1:$port" sh -c "$BENCH_SETUP") || die "$label: BENCH_SETUP failed"
        hdrs=$(printf '%s\n%s' "$hdrs" "$out")
    fi
    tg_label+=("$label") tg_url+=("http://127.0.0.1:$port") tg_headers+=("$hdrs") tg_pid+=("$spid")
}

# Both servers and wrk share the machine's cores: anything else running skews the numbers.
if [ -r /proc/stat ]; then
    busy=$(busy_pct)
    [ "$busy" -lt 10 ] || note "warning: CPU already ${busy}% busy before the run; numbers will be low and noisy"
fi

[ "$BENCH_NGINX" = 0 ] || start_ref
vi=0
for variant in $BENCH_TEMEL_VARIANTS; do
    start_temel $vi "$variant"
    vi=$((vi + 1))
done
[ $vi -gt 0 ] || die "BENCH_TEMEL_VARIANTS is empty"

# ---- measuring -------------------------------------------------------------------------------
raw=$tmp/results   # round scenario conns label rps p50_us p99_us errors scenario_idx target_idx cpu_us_per_req
: >"$raw"

# run_wrk TARGET_INDEX SCENARIO_INDEX CONNS SECONDS → prints the WRK_RESULT line
run_wrk() {
    local t=$1 s=$2 out
    if [ "${sc_ref[$s]}" != nginx ] && [ "${tg_label[$t]}" = nginx ]; then return 1; fi
    out=$(WRK_METHOD="${sc_method[$s]}" WRK_BODY="${sc_body[$s]}" WRK_HEADERS="${tg_headers[$t]}" \
        "$WRK_BIN" -t "$BENCH_THREADS" -c "$3" -d "${4}s" -s "$here/report.lua" \
        "${tg_url[$t]}${sc_path[$s]}" 2>&1) || { echo "$out" >&2; die "wrk failed against ${tg_label[$t]}"; }
    echo "$out" | grep '^WRK_RESULT ' || { echo "$out" >&2; die "no WRK_RESULT line from wrk"; }
}

field() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

ntg=${#tg_label[@]}
if [ "$BENCH_WARMUP" -gt 0 ]; then
    for s in "${!sc_name[@]}"; do
        for ((t = 0; t < ntg; t++)); do run_wrk $t "$s" 64 "$BENCH_WARMUP" >/dev/null || true; done
    done
fi

for ((r = 1; r <= BENCH_ROUNDS; r++)); do
    k=$r # which target goes first flips from one step to the next and from one round to the next
    for s in "${!sc_name[@]}"; do
        for c in $BENCH_CONNS; do
            order=()
            for ((t = 0; t < ntg; t++)); do
                if [ $((k % 2)) = 0 ]; then order+=($t); else order=($t "${order[@]}"); fi
            done
            k=$((k + 1))
            for t in "${order[@]}"; do
                c0=$(cpu_ticks "${tg_pid[$t]}")
                line=$(run_wrk "$t" "$s" "$c" "$BENCH_SECONDS") || continue
                c1=$(cpu_ticks "${tg_pid[$t]}")
                nreq=$(field "$line" requests)
                cpu=$(awk -v d=$((c1 - c0)) -v n="$nreq" -v hz="$clk_tck" 'BEGIN { printf "%.2f", (n > 0 ? d * 1e6 / hz / n : 0) }')
                errs=$(($(field "$line" err_connect) + $(field "$line" err_read) + $(field "$line" err_write) +
                    $(field "$line" err_status) + $(field "$line" err_timeout)))
                rps=$(field "$line" rps) p50=$(field "$line" p50_us) p99=$(field "$line" p99_us)
                echo "$r ${sc_name[$s]} $c ${tg_label[$t]} $rps $p50 $p99 $errs $s $t $cpu" >>"$raw"
                note "$(printf 'round %d %-6s c=%-4s %-34s %10.0f req/s  p50 %6d us  p99 %6d us  cpu %5.2f us/req  errors %d' \
                    "$r" "${sc_name[$s]}" "$c" "${tg_label[$t]}" "$rps" "$p50" "$p99" "$cpu" "$errs")"
            done
        done
    done
done
[ -z "${BENCH_RAW:-}" ] || cp "$raw" "$BENCH_RAW"

# ---- table: median over rounds, ratio to nginx of the same scenario and connection count --------
echo
printf 'wrk -t%s, %ss per run, %s round(s), median shown; %s\n' "$BENCH_THREADS" "$BENCH_SECONDS" \
    "$BENCH_ROUNDS" "$(date -u +%Y-%m-%dT%H:%MZ)"
awk '
function median(key,   n, i, j, v, a) {
    n = split(vals[key], a, " ")
    for (i = 2; i <= n; i++) { v = a[i] + 0; for (j = i - 1; j >= 1 && a[j] + 0 > v; j--) a[j + 1] = a[j]; a[j + 1] = v }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
    k = $2 SUBSEP $3 SUBSEP $4
    if (!(k in seen)) { seen[k] = 1; order[++n] = k }
    vals[k "rps"] = vals[k "rps"] " " $5; vals[k "p50"] = vals[k "p50"] " " $6; vals[k "p99"] = vals[k "p99"] " " $7; vals[k "cpu"] = vals[k "cpu"] " " $11
    errs[k] += $8
}
END {
    printf "%-8s %-30s %6s %10s %8s %8s %6s %11s %6s\n", "scenario", "target", "conns", "req/s", "p50 ms", "p99 ms", "ratio", "cpu us/req", "errors"
    for (i = 1; i <= n; i++) {
        k = order[i]; split(k, f, SUBSEP)
        rps = median(k "rps"); ref = f[1] SUBSEP f[2] SUBSEP "nginx"
        ratio = (ref in seen && f[3] != "nginx") ? sprintf("%.2f", rps / median(ref "rps")) : "-"
        printf "%-8s %-30s %6s %10.0f %8.3f %8.3f %6s %11.2f %6d\n", f[1], f[3], f[2], rps,
            median(k "p50") / 1000, median(k "p99") / 1000, ratio, median(k "cpu"), errs[k]
    }
}' <(sort -s -k9,9n -k3,3n -k10,10n "$raw")
