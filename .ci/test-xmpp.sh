#!/usr/bin/env bash
# The live XMPP bot's tests: installs Prosody and the slixmpp persons' venv (.ci/setup-xmpp.sh,
# idempotent), then runs clients/xmpp's tests, the bot against a Prosody they start on
# 127.0.0.1, ending with the test runner's summary line. Without Prosody they fail under CI.
set -euo pipefail
cd "$(dirname "$0")/.."
export CI="${CI:-true}"
bash .ci/setup-xmpp.sh
cargo test --quiet -p olmo-xmpp-client --all-targets
