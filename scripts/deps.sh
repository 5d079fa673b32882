#!/bin/sh
# Install the Debian 12 packages temel needs to build, test and benchmark.
# Idempotent and quiet: does nothing when everything is present. Run as root.
set -eu

PKGS="build-essential pkg-config meson ninja-build clang libclang-rt-14-dev
libh2o-evloop-dev libwslay-dev libssl-dev libjansson-dev libsqlite3-dev sqlite3 libpq-dev
libsodium-dev libcurl4-openssl-dev libcmocka-dev
libhiredis-dev libvips-dev libhpdf-dev libqrencode-dev libpng-dev libzip-dev fonts-dejavu-core
postgresql-15 postgresql-client-15 redis-server nginx-light wrk curl
python3 python3-pytest python3-requests python3-hypothesis python3-psycopg2 python3-websockets
python3-redis python3-aiosmtpd
poppler-utils unzip chromium"

missing=""
for p in $PKGS; do
    st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$st" = "installed" ] || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "deps.sh: missing packages:$missing (run as root to install)" >&2
    exit 1
fi
echo "deps.sh: installing$missing"
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
# shellcheck disable=SC2086
if ! { apt-get update -q && apt-get install -y -q --no-install-recommends $missing; } >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    exit 1
fi
rm -f "$log"
# Debian starts these services on install; temel's scripts run their own.
for s in nginx redis-server postgresql; do
    systemctl disable --now "$s" >/dev/null 2>&1 || service "$s" stop >/dev/null 2>&1 || true
done

