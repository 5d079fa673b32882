#!/bin/sh
# Run the black-box API suite against build/temel (or $TEMEL_BIN) for one engine.
#   tests/api/run.sh sqlite|postgres [pytest args...]
# postgres: uses $DATABASE_URL_PG if set, else a private cluster via scripts/pgtmp.sh.
# ASan+UBSan build: TEMEL_BIN=build-asan/temel TEMEL_ASAN=1 tests/api/run.sh sqlite
set -eu
engine=${1:-}
case "$engine" in
    sqlite|postgres) shift ;;
    *) echo "usage: $0 sqlite|postgres [pytest args...]" >&2; exit 2 ;;
esac
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
TEMEL_TEST_DB=$engine
export TEMEL_TEST_DB
# Without a test path among the arguments, run the whole directory.
target=tests/api
for a in "$@"; do
    case "$a" in
        tests/api/*|*.py|*.py::*) target= ;;
    esac
done
# The Debian interpreter: it has python3-pytest, -requests, -psycopg2, -hypothesis.
# shellcheck disable=SC2086
exec /usr/bin/python3 -m pytest -c tests/api/pytest.ini --rootdir tests/api $target "$@"
