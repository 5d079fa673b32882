#!/bin/sh
# WRK_BIN for bench/run.sh with the catalog workloads: wrk, with bench/catalog.lua in place of
# bench/report.lua (it loads report.lua and varies each request; see catalog.lua).
here=$(cd "$(dirname "$0")" && pwd)
n=$#
for a in "$@"; do
    case $a in */report.lua) a=$here/catalog.lua ;; esac
    set -- "$@" "$a"
done
shift "$n"
exec "${WRK_REAL_BIN:-/usr/bin/wrk}" "$@"
