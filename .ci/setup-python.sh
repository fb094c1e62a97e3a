#!/usr/bin/env bash
# Creates/updates the Python venv used by the interop peers (tests/peers/libolm_peer.py,
# tests/peers/nio_peer.py, tests/peers/xeddsa_peer.py, tests/peers/omemo_peer.py).  Idempotent:
# reinstalls only when tests/peers/requirements.txt changed since the last successful install.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO/.venv"
REQS="$REPO/tests/peers/requirements.txt"
STAMP="$VENV/.peer-requirements.installed"
# Every peer's imports; the etree modules need the `[xml]` extras (xmlschema).
IMPORTS='import olm, nio.crypto, xeddsa, omemo, twomemo, oldmemo, twomemo.etree, oldmemo.etree'

if [ ! -x "$VENV/bin/python3" ]; then
    python3 -m venv "$VENV"
fi

if [ -f "$STAMP" ] && cmp -s "$REQS" "$STAMP" \
    && "$VENV/bin/python3" -c "$IMPORTS" >/dev/null 2>&1; then
    exit 0
fi

"$VENV/bin/python3" -m pip install --quiet --disable-pip-version-check -r "$REQS"
"$VENV/bin/python3" -c "$IMPORTS" # fail loudly if the install is unusable
cp "$REQS" "$STAMP"
