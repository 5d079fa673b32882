#!/bin/sh
# Run every libFuzzer target for N seconds over its committed corpus.
# New inputs go to a temp dir (the committed corpus is never modified).
# usage: tests/fuzz/run.sh BUILD_DIR SECONDS
set -eu
build=$1
secs=${2:-30}
here=$(cd "$(dirname "$0")" && pwd)
for t in query json jwt filter multipart dotenv rfc3339; do
    work=$(mktemp -d)
    printf 'fuzz_%s: %ss ... ' "$t" "$secs"
    if "$build/tests/fuzz/fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$work/" "$work" "$here/corpus/$t" >"$work/log" 2>&1; then
        echo "ok ($(grep -o 'stat::number_of_executed_units: [0-9]*' "$work/log" | awk '{print $2}') runs)"
        rm -rf "$work"
    else
        echo "FAILED"
        tail -40 "$work/log"
        echo "artifacts in $work"
        exit 1
    fi
done
