#!/usr/bin/env bash
# Installs the Synapse homeserver that the real-homeserver tests start on 127.0.0.1
# (tests/peers/synapse_server.py) into its own venv, .venv-synapse, so its pins never fight the
# interop peers' venv.  Idempotent: reinstalls only when the pinned version changed.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO/.venv-synapse"
SYNAPSE_VERSION="1.163.2"
STAMP="$VENV/.synapse.installed"

if [ ! -x "$VENV/bin/python3" ]; then
    python3 -m venv "$VENV"
fi

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$SYNAPSE_VERSION" ] \
    && "$VENV/bin/python3" -c 'import synapse.app.homeserver' >/dev/null 2>&1; then
    exit 0
fi

"$VENV/bin/python3" -m pip install --quiet --disable-pip-version-check \
    "matrix-synapse==$SYNAPSE_VERSION"
"$VENV/bin/python3" -c 'import synapse.app.homeserver' # fail loudly if the install is unusable
echo "$SYNAPSE_VERSION" >"$STAMP"
