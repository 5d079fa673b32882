# bench/lib.sh — shell pieces shared by bench/run.sh and bench/runtime.sh (sourced, bash).
# The caller sets $tmp (its temp dir) and the array pids=() of processes to stop on exit, and
# installs bench_cleanup as its EXIT trap.

die() { echo "bench: $*" >&2; exit 1; }
note() { echo "bench: $*" >&2; }

free_port() {
    /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# stop_pid PID: SIGTERM, then SIGKILL if it is still there after 5 s; reaps it
stop_pid() {
    local i
    kill -TERM "$1" 2>/dev/null || true
    for i in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$1" 2>/dev/null; then
        note "pid $1 did not stop on SIGTERM; killing"
        kill -KILL "$1" 2>/dev/null || true
    fi
    wait "$1" 2>/dev/null || true
}

# bench_cleanup: SIGTERM every pid of pids (SIGKILL after 5 s), run $bench_on_exit, remove $tmp
# unless BENCH_KEEP=1. Keeps the exit status.
bench_cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    for pid in "${pids[@]:-}"; do
        [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]:-}"; do
        [ -z "$pid" ] || stop_pid "$pid"
    done
    [ -z "${bench_on_exit:-}" ] || eval "$bench_on_exit" || true
    if [ "${BENCH_KEEP:-0}" = 1 ]; then
        note "kept $tmp"
    else
        rm -rf "$tmp"
    fi
    exit $rc
}

# wait_http NAME PID URL LOGFILE: poll URL until 2xx; fail clearly if the process dies or 10 s pass
wait_http() {
    local i
    for i in $(seq 100); do
        if ! kill -0 "$2" 2>/dev/null; then
            tail -n 20 "$4" >&2 2>/dev/null || true
            die "$1 exited during start-up (log above: $4)"
        fi
        curl -sf -o /dev/null --max-time 1 "$3" && return 0
        sleep 0.1
    done
    tail -n 20 "$4" >&2 2>/dev/null || true
    die "$1 did not answer $3 within 10 s"
}

# cpu_ticks PID: user+system CPU ticks of PID and its direct children (nginx workers), threads included
cpu_ticks() {
    local p t=0 v
    for p in "$1" $(ps -o pid= --ppid "$1" 2>/dev/null); do
        v=$(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null) || continue
        t=$((t + ${v:-0}))
    done
    echo $t
}

# busy_pct: share of CPU time the whole machine spent busy over one second
busy_pct() {
    local a b
    a=$(awk '/^cpu /{print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8}' /proc/stat)
    sleep 1
    b=$(awk '/^cpu /{print $2+$3+$4+$7+$8, $2+$3+$4+$5+$6+$7+$8}' /proc/stat)
    echo "$a $b" | awk '{d = $4 - $2; print (d > 0 ? int(100 * ($3 - $1) / d) : 0)}'
}

# start_nginx DIR PATH...: nginx `return 200 {"status":"ok"}` on each exact PATH (2 workers,
# reuseport, no access log, keep-alive without a request cap), in its own prefix DIR on a free
# port. Appends its pid to pids and sets nginx_url and nginx_pid.
start_nginx() {
    local dir=$1 port user="" p
    shift
    mkdir -p "$dir/logs" "$dir/tmp"
    port=$(free_port)
    [ "$(id -u)" = 0 ] && user="user nobody nogroup;"
    {
        cat <<EOF2
$user
worker_processes 2;
daemon off;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$port reuseport;
EOF2
        for p in "$@"; do
            printf '        location = %s { default_type application/json; return 200 %s; }\n' \
                "$p" "'{\"status\":\"ok\"}'"
        done
        echo "    }"
        echo "}"
    } >"$dir/nginx.conf"
    "$NGINX_BIN" -t -q -p "$dir" -e "$dir/logs/error.log" -c "$dir/nginx.conf" 2>"$dir/logs/test.log" ||
        { cat "$dir/logs/test.log" >&2; die "nginx rejected $dir/nginx.conf"; }
    "$NGINX_BIN" -p "$dir" -e "$dir/logs/error.log" -c "$dir/nginx.conf" >"$dir/logs/stdout.log" 2>&1 &
    nginx_pid=$!
    pids+=($nginx_pid)
    nginx_url=http://127.0.0.1:$port
    wait_http nginx $nginx_pid "$nginx_url/health/live" "$dir/logs/error.log"
}
