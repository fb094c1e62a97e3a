#!/usr/bin/env bash
# The PostgreSQL store: installs PostgreSQL (Debian) if missing, then runs olmo-postgres's tests
# (the conformance suite, a two-process race, two bot workers on one database for the Matrix and
# the XMPP machine, every commit of a conversation failed in turn), each on a
# cluster it starts on 127.0.0.1 and stops. With CI set, a missing PostgreSQL fails the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup-postgres.sh
export CI="${CI:-true}"
cargo test -p olmo-postgres --all-targets --quiet
