#!/usr/bin/env bash
# Builds the kafkajs test client into the empty directory $1: the sources, then `npm ci` from
# package-lock.json (npm's own cache makes a rebuild cheap).  lz4 and zstd-napi compile their
# native parts with node-gyp against the installed Node's headers, so none are downloaded.
set -euo pipefail
out="$1"
here="$(cd "$(dirname "$0")" && pwd)"
cp "$here/package.json" "$here/package-lock.json" "$here/scenario.js" "$out/"
if [ -z "${npm_config_nodedir:-}" ] && [ -f /usr/include/node/node.h ]; then
    export npm_config_nodedir=/usr
fi
cd "$out"
npm ci --no-audit --no-fund --loglevel=error
# the native codecs load (a failed node-gyp build shows here, not in a test)
node -e "require('lz4'); require('zstd-napi').compress(Buffer.from('x'))"
