#!/usr/bin/env bash
# Installs what the live XMPP bot's tests need: Prosody (Debian package; the tests start it on
# 127.0.0.1 with their own config, never as a service) and slixmpp, slixmpp-omemo and
# python-omemo with twomemo in a venv of their own, .venv-xmpp. Idempotent.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO/.venv-xmpp"
PINS="slixmpp==1.17.0 slixmpp-omemo==2.2.0 omemo==2.1.0 twomemo[xml]==2.1.0 oldmemo[xml]==2.1.0"
STAMP="$VENV/.xmpp.installed"

if ! command -v prosody >/dev/null 2>&1; then
    # Keep apt from starting Prosody as a system service: the tests own their servers.
    # The policy file is removed afterwards, so later installs (PostgreSQL) behave as usual.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prosody >/dev/null
fi

if [ ! -x "$VENV/bin/python3" ]; then
    python3 -m venv "$VENV"
fi
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$PINS" ]; then
    exit 0
fi
# shellcheck disable=SC2086
"$VENV/bin/python3" -m pip install --quiet --disable-pip-version-check $PINS
"$VENV/bin/python3" -c 'import slixmpp, slixmpp_omemo, omemo, twomemo, oldmemo'
echo "$PINS" >"$STAMP"
