#!/usr/bin/env bash
# The WebAssembly package (bindings/wasm): installs the wasm32 target, the wasm-bindgen CLI of
# the version the crate pins, the npm packages (playwright-core, binaryen's wasm-opt) and Debian's Chromium (each skipped when
# present); lints the crate on stable and builds it (build.sh: with the pinned nightly, which
# it installs when missing); checks the gzipped .wasm against the size on record;
# runs the npm-pack test on that published build, then rebuilds with the `conformance` feature
# (the store suite exported; an incremental ~20 s) for the other Node tests and the browser tests
# in headless Chromium. Each runner ends with node's
# summary line. `bash .ci/test-wasm.sh bench` builds, then runs the benchmark beside
# @matrix-org/matrix-sdk-crypto-wasm instead (OLMO_BENCH_QUICK=1 for a smoke run).
set -euo pipefail
cd "$(dirname "$0")/.."
pkg=bindings/wasm

rustup target add wasm32-unknown-unknown >/dev/null 2>&1
pinned=$(sed -n 's/^wasm-bindgen = "=\(.*\)"$/\1/p' "$pkg/Cargo.toml")
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$pinned" ]; then
    # Not --locked: the CLI's own lock file does not build here, its unlocked resolution does.
    # --debug: it runs for seconds, and a debug build compiles in half the time of a release one.
    cargo install --quiet --debug wasm-bindgen-cli --version "$pinned"
fi
if [ ! -d "$pkg/node_modules/playwright-core" ] || [ ! -d "$pkg/node_modules/binaryen" ]; then
    (cd "$pkg" && npm install --no-audit --no-fund --silent)
fi
if ! command -v chromium >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

if [ "${1:-}" = bench ]; then
    bash "$pkg/build.sh"
    (cd "$pkg/bench" && npm install --no-audit --no-fund --silent && node bench.mjs)
    exit 0
fi
cargo clippy --quiet -p olmo-wasm --target wasm32-unknown-unknown --features conformance -- -D warnings
bash "$pkg/build.sh"
node "$pkg/tests/size-check.mjs"
(cd "$pkg" && node --test tests/package.test.mjs)
OLMO_WASM_FEATURES=conformance bash "$pkg/build.sh"
(cd "$pkg" && node --test $(ls tests/*.test.mjs | grep -v package.test))
(cd "$pkg" && node --test browser-tests/)
