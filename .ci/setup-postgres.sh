#!/usr/bin/env bash
# Installs PostgreSQL from Debian for the olmo-postgres tests, which start throwaway clusters of
# their own on 127.0.0.1 (stores/postgres/tests/cluster). Idempotent: skips when initdb is there.
set -euo pipefail

# openssl makes the test CA of the TLS test (postgresql pulls it in through ssl-cert).
if { ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; } \
    && command -v openssl >/dev/null 2>&1; then
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# The package's own cluster is not used; the tests run initdb themselves.
apt-get install -y -qq postgresql openssl >/dev/null
ls /usr/lib/postgresql/*/bin/initdb >/dev/null # fail loudly if the install is unusable
