#!/bin/sh
# Regenerate src/schema.d.ts from the OpenAPI document of the temel binary
# (TEMEL_BIN, default build/temel). The document is the one `temel openapi`
# prints outside the test environment: no test-only routes.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${TEMEL_BIN:-$root/build/temel}
gen=${OPENAPI_TYPESCRIPT:-$root/tools/node/node_modules/.bin/openapi-typescript}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
env -i PATH="$PATH" HOME="${HOME:-/tmp}" TEMEL_ENV=development DATABASE_URL="sqlite://$tmp/unused.db" \
    "$bin" openapi > "$tmp/openapi.json"
"$gen" "$tmp/openapi.json" -o "$here/src/schema.d.ts" > /dev/null
echo "wrote $here/src/schema.d.ts ($(wc -l < "$here/src/schema.d.ts") lines)"
