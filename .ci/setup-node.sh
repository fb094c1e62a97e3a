#!/usr/bin/env bash
# Installs the Node.js interop peer's dependencies (tests/peers/libsignal: the real libsignal,
# @signalapp/libsignal-client pinned to 0.72.1 in package-lock.json).  Idempotent: runs `npm ci`
# only when node_modules is missing or package-lock.json changed since the last successful
# install, then checks that the native module loads.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PEER="$REPO/tests/peers/libsignal"
LOCK="$PEER/package-lock.json"
STAMP="$PEER/node_modules/.olmo-package-lock.installed"
CHECK="import('@signalapp/libsignal-client').then((S) => { S.PrivateKey.generate().getPublicKey(); })"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "setup-node: node and npm are needed for the libsignal interop peer" >&2
    exit 1
fi

cd "$PEER"

if [ -f "$STAMP" ] && cmp -s "$LOCK" "$STAMP" && node -e "$CHECK" >/dev/null 2>&1; then
    exit 0
fi

# The package's only install script echoes a hint; the native library ships prebuilt in the
# package (prebuilds/<platform>-<arch>/), loaded at run time by node-gyp-build.
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
node -e "$CHECK" # fail loudly if the install is unusable
cp "$LOCK" "$STAMP"
