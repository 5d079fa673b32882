#!/bin/sh
# Install the Node.js tools temel's tests use (never part of the server): the
# OpenAPI linter, openapi-typescript + tsc for the TypeScript client, s3rver (a
# real S3 implementation; it parses SigV4 but does not check signatures, so the
# tests reach it through tools/node/sigv4-proxy.js, which checks them with AWS's
# @smithy/signature-v4 + @smithy/hash-node, dev dependencies) and
# playwright-core (drives Debian's chromium). Versions are pinned by
# tools/node/package-lock.json; `npm ci` runs only when the lock file changed
# since the last install.
set -eu
cd "$(dirname "$0")/../tools/node"
if ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ]; then
        echo "node-deps.sh: npm is missing (run as root to install nodejs and npm)" >&2
        exit 1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nodejs npm >/dev/null
fi
stamp=node_modules/.temel-lock
if [ -f "$stamp" ] && cmp -s package-lock.json "$stamp"; then
    exit 0
fi
npm ci --no-audit --no-fund --loglevel=error >/dev/null
cp package-lock.json "$stamp"
