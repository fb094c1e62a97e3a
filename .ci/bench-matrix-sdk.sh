#!/usr/bin/env bash
# The side-by-side benchmark against matrix-sdk-crypto (benches/matrix-sdk-compare), in quick
# mode: lints it, builds it and runs it once. Its own workspace, so the core's build, lock file
# and test run never see matrix-sdk-crypto. A cold build of it is long (about 10 CPU-minutes
# for the release build alone), which is why `.ci/run` calls this only when asked
# (OLMO_CI_MATRIX_SDK=1).
#
# matrix-sdk-crypto declares a newer rustc than the stable one here: --ignore-rust-version.
# SQLite comes bundled (olmo-sqlite's `bundled` feature applies to the one libsqlite3-sys both
# stores share), so no system SQLite package is needed.
set -euo pipefail
cd "$(dirname "$0")/../benches/matrix-sdk-compare"
cargo fmt -- --check
cargo clippy --quiet --ignore-rust-version --all-targets -- -D warnings
OLMO_BENCH_QUICK=1 cargo bench --quiet --ignore-rust-version --bench machine
