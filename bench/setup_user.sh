#!/bin/sh
# BENCH_SETUP hook: register a fresh user on $BENCH_URL and print its Authorization header.
#   BENCH_SETUP=bench/setup_user.sh BENCH_SCENARIOS=me bench/run.sh
set -eu
email="bench-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')@example.com"
curl -fsS -X POST "$BENCH_URL/api/v1/auth/register" -H 'Content-Type: application/json' \
    -d "{\"email\":\"$email\",\"password\":\"correct horse battery staple\",\"name\":\"bench\"}" |
    /usr/bin/python3 -c 'import json,sys; print("Authorization: Bearer " + json.load(sys.stdin)["access_token"])'
