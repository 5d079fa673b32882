#!/bin/sh
# bench/backup.sh — backup and restore time for a 1,000,000-row database, both engines (issue 14 item 3).
# Loads BENCH_ROWS rows into `jobs` (finished jobs with a ~60-byte payload, a result and four indexes
# to rebuild) on a freshly migrated database, then times, with the release build:
#   temel backup create --to DIR          (SQLite: online backup API; PostgreSQL: pg_dump -Fc)
#   temel backup verify FILE              (checksum + load into a scratch database + ledger + audit chain)
#   temel backup restore FILE --yes       (into a second, empty database)
# and checks the restored row count.
#   bench/backup.sh                      BENCH_ROWS=1000000 BENCH_ENGINES="sqlite postgres"
# PostgreSQL: $DATABASE_URL_PG's cluster, else a private one from scripts/pgtmp.sh (fsync off).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$here/..
bin=${TEMEL_BIN:-$root/build/temel}
rows=${BENCH_ROWS:-1000000}
engines=${BENCH_ENGINES:-sqlite postgres}
dir=$(mktemp -d)
pgtmp=
cleanup() {
    [ -n "$pgtmp" ] && "$root/scripts/pgtmp.sh" stop "$pgtmp" >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap cleanup EXIT
export TEMEL_ENV=development TEMEL_LOG_LEVEL=warn TEMEL_DATA_DIR="$dir/data" TEMEL_BACKUP_DIR="$dir/backups" \
    TEMEL_SECRET_KEY=bench-backup-secret-key-0123456789abcdef
now_ms() { date +%s%3N; }
timed() { # label command...: runs it, prints the wall time
    t0=$(now_ms)
    "$@" >"$dir/out" 2>"$dir/err" || { echo "$1 failed:"; cat "$dir/out" "$dir/err"; exit 1; }
    printf '  %-28s %8d ms\n' "$label" $(($(now_ms) - t0))
}

load_sql() { # the INSERT for one engine: $1 = sqlite | postgres
    if [ "$1" = sqlite ]; then
        echo "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $rows)
INSERT INTO jobs (id, kind, queue, priority, payload, state, attempt, max_attempts, timeout_ms, run_at, progress,
                  result, created_at, updated_at, started_at, finished_at)
SELECT printf('01900000-0000-7000-8000-%012d', i), 'mail.send', 'delivery', 1,
       json_object('to', 'user' || i || '@example.com', 'template', 'welcome'), 'succeeded', 1, 3, 30000,
       1735689600000 + i, 100, '{\"ok\":true}', 1735689600000 + i, 1735689600000 + i, 1735689600000 + i,
       1735689600000 + i FROM n;"
    else
        echo "INSERT INTO jobs (id, kind, queue, priority, payload, state, attempt, max_attempts, timeout_ms, run_at,
                  progress, result, created_at, updated_at, started_at, finished_at)
SELECT '01900000-0000-7000-8000-' || lpad(i::text, 12, '0'), 'mail.send', 'delivery', 1,
       json_build_object('to', 'user' || i || '@example.com', 'template', 'welcome')::text, 'succeeded', 1, 3,
       30000, to_timestamp((1735689600000 + i) / 1000.0), 100, '{\"ok\":true}',
       to_timestamp((1735689600000 + i) / 1000.0), to_timestamp((1735689600000 + i) / 1000.0),
       to_timestamp((1735689600000 + i) / 1000.0), to_timestamp((1735689600000 + i) / 1000.0)
FROM generate_series(1, $rows) AS i;"
    fi
}

count() { # url → rows in jobs
    case $1 in
    sqlite://*) sqlite3 "${1#sqlite://}" 'SELECT count(*) FROM jobs' ;;
    *) psql -qtA "$1" -c 'SELECT count(*) FROM jobs' ;;
    esac
}

echo "temel backup bench: $rows rows in jobs; $(nproc) cores; $(date -u +%FT%TZ); bin $bin"
for engine in $engines; do
    if [ "$engine" = sqlite ]; then
        src="sqlite://$dir/src.db"
        dst="sqlite://$dir/dst.db"
    else
        if [ -z "${DATABASE_URL_PG:-}" ]; then
            eval "$("$root/scripts/pgtmp.sh" start)"
            pgtmp=$PGTMP_DIR
            DATABASE_URL_PG=$DATABASE_URL
        fi
        base=${DATABASE_URL_PG%/*}
        psql -q "$DATABASE_URL_PG" -c 'DROP DATABASE IF EXISTS bench_backup_src' -c 'DROP DATABASE IF EXISTS bench_backup_dst' \
            -c 'CREATE DATABASE bench_backup_src' -c 'CREATE DATABASE bench_backup_dst' >/dev/null
        src="$base/bench_backup_src"
        dst="$base/bench_backup_dst"
    fi
    DATABASE_URL=$src "$bin" migrate up >/dev/null
    t0=$(now_ms)
    if [ "$engine" = sqlite ]; then
        load_sql sqlite | sqlite3 "$dir/src.db"
        bytes=$(stat -c %s "$dir/src.db")
    else
        load_sql postgres | psql -q "$src" >/dev/null
        psql -q "$src" -c 'VACUUM ANALYZE jobs' >/dev/null
        bytes=$(psql -qtA "$src" -c 'SELECT pg_database_size(current_database())')
    fi
    echo "$engine: $(count "$src") rows loaded in $(($(now_ms) - t0)) ms, database $((bytes / 1048576)) MiB"
    label="backup create"
    DATABASE_URL=$src timed "$bin" backup create --to "$dir/backups"
    file=$(sed -n 's/.*"file": "\(.*\)".*/\1/p' "$dir/out")
    echo "  copy: $file, $(($(stat -c %s "$dir/backups/$file") / 1048576)) MiB"
    label="backup verify"
    DATABASE_URL=$src timed "$bin" backup verify "$dir/backups/$file"
    label="backup restore (empty target)"
    DATABASE_URL=$dst timed "$bin" backup restore "$dir/backups/$file" --yes
    n=$(count "$dst")
    [ "$n" -ge "$rows" ] || { echo "restored $n rows, expected at least $rows"; exit 1; }
    echo "  restored rows: $n"
    rm -f "$dir/backups/$file" "$dir/backups/$file.manifest.json"
done
