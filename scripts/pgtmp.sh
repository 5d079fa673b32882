#!/bin/sh
# pgtmp.sh — a private, throw-away PostgreSQL 15 cluster for tests.
#
#   eval "$(scripts/pgtmp.sh start)"   # exports DATABASE_URL and PGTMP_DIR
#   scripts/pgtmp.sh stop "$PGTMP_DIR"
#
# start: initdb in a fresh temp dir owned by the `postgres` user (the server
# refuses to run as root), listen on a free TCP port on 127.0.0.1 and on a
# unix socket in that dir, fsync off (test data only), trust auth (nothing
# but this machine can reach it), create database `temel`. Only the export
# lines go to stdout; on failure the server log goes to stderr, the dir is
# removed and the exit status is 1.
set -eu

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PGUSER_OS=postgres

die() {
    echo "pgtmp: $*" >&2
    exit 1
}

as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u "$PGUSER_OS" -- "$@"
    else
        "$@"
    fi
}

free_port() {
    /usr/bin/python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

start() {
    [ -x "$PGBIN/initdb" ] || die "$PGBIN/initdb not found (install postgresql-15)"
    dir=$(mktemp -d "${TMPDIR:-/tmp}/pgtmp.XXXXXX")
    trap 'rm -rf "$dir"' EXIT
    chmod 700 "$dir"
    if [ "$(id -u)" = 0 ]; then
        chown "$PGUSER_OS:" "$dir"
    fi
    if ! as_pg "$PGBIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync \
        >"$dir/initdb.log" 2>&1; then
        cat "$dir/initdb.log" >&2
        die "initdb failed"
    fi
    tries=0
    while :; do
        port=$(free_port)
        if as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 -s \
            -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
            start >/dev/null 2>&1; then
            break
        fi
        tries=$((tries + 1))
        if [ "$tries" -ge 5 ]; then
            cat "$dir/server.log" >&2 2>/dev/null || true
            die "server did not start"
        fi
        # port taken between choosing and binding: try another
        as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m immediate -s stop >/dev/null 2>&1 || true
    done
    if ! as_pg "$PGBIN/createdb" -h "$dir" -p "$port" -U postgres temel >/dev/null 2>&1; then
        as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m immediate -s stop >/dev/null 2>&1 || true
        die "createdb failed"
    fi
    trap - EXIT
    echo "export DATABASE_URL=postgres://postgres@127.0.0.1:$port/temel"
    echo "export PGTMP_DIR=$dir"
}

stop() {
    dir=${1:-${PGTMP_DIR:-}}
    [ -n "$dir" ] || die "usage: pgtmp.sh stop DIR"
    [ -f "$dir/data/PG_VERSION" ] || die "$dir is not a pgtmp dir"
    as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w -t 30 -s stop >/dev/null 2>&1 ||
        as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m immediate -s stop >/dev/null 2>&1 || true
    rm -rf "$dir"
}

case "${1:-}" in
start) start ;;
stop) stop "${2:-}" ;;
*) die "usage: pgtmp.sh start | stop DIR" ;;
esac
