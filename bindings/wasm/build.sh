#!/usr/bin/env bash
# Builds the npm package's module into bindings/wasm/pkg: the crate for wasm32 with the
# size-first `wasm-release` profile, then wasm-bindgen's `web` glue (ES modules that work in
# browsers, bundlers and Node, where js/index.js hands the glue the file's bytes). The name and
# producers sections go (a third of the file). wasm-opt is not run: binaryen 132's (npm) -O2, -Os
# and -Oz make the file 7-9% smaller raw but 7-8% larger gzipped, and gzipped is what a page
# downloads; its -O1 --duplicate-function-elimination takes 1.3% off gzipped (4% raw), not worth
# npm's 104 MB binaryen and 9 s a build in CI, and Debian's binaryen 108 breaks the externref
# table wasm-bindgen makes. Source paths in panic locations are remapped so the file names no
# build machine's directories. `OLMO_WASM_FEATURES=conformance` builds the test variant (the
# store conformance suite exported for the Node and Chromium tests; never published).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
registry="${CARGO_HOME:-$HOME/.cargo}/registry/src"
# SIMD (WebAssembly's 128-bit vectors, in every browser since 2023 and Node 16.4): 16-byte
# copies and fills become one instruction each, 10.5 KB gzipped off (2.8%), no slower. The aes
# crate's compact (semi-fixsliced) software AES: 1.8 KB gzipped off, room-event decryption no slower.
export CARGO_ENCODED_RUSTFLAGS="--remap-path-prefix=$registry=crates"$'\x1f'"--remap-path-prefix=$root=olmo"$'\x1f'"-Ctarget-feature=+simd128"$'\x1f'"--cfg=aes_backend_soft=\"compact\""
cargo build --quiet -p olmo-wasm --lib --target wasm32-unknown-unknown --profile wasm-release \
    --features "${OLMO_WASM_FEATURES:-}"
wasm="${CARGO_TARGET_DIR:-$root/target}/wasm32-unknown-unknown/wasm-release/olmo_wasm.wasm"
wasm-bindgen --target web --remove-name-section --remove-producers-section --out-dir "$here/pkg" --out-name olmo_wasm "$wasm"
raw=$(stat -c %s "$here/pkg/olmo_wasm_bg.wasm")
gz=$(gzip -9 -c "$here/pkg/olmo_wasm_bg.wasm" | wc -c)
echo "olmo_wasm_bg.wasm: $raw bytes, $gz gzipped"
