#!/usr/bin/env bash
# Builds the npm package's module into bindings/wasm/pkg: the crate for wasm32 with the
# size-first `wasm-release` profile, then wasm-bindgen's `web` glue (ES modules that work in
# browsers, bundlers and Node, where js/index.js hands the glue the file's bytes). wasm-opt runs
# when the npm `binaryen` package is installed (node_modules/.bin/wasm-opt).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
cargo build --quiet -p olmo-wasm --lib --target wasm32-unknown-unknown --profile wasm-release
wasm="${CARGO_TARGET_DIR:-$root/target}/wasm32-unknown-unknown/wasm-release/olmo_wasm.wasm"
wasm-bindgen --target web --out-dir "$here/pkg" --out-name olmo_wasm "$wasm"
if [ -x "$here/node_modules/.bin/wasm-opt" ]; then
    "$here/node_modules/.bin/wasm-opt" -Oz --enable-bulk-memory --enable-nontrapping-float-to-int \
        --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue \
        "$here/pkg/olmo_wasm_bg.wasm" -o "$here/pkg/olmo_wasm_bg.wasm"
fi
raw=$(stat -c %s "$here/pkg/olmo_wasm_bg.wasm")
gz=$(gzip -9 -c "$here/pkg/olmo_wasm_bg.wasm" | wc -c)
echo "olmo_wasm_bg.wasm: $raw bytes, $gz gzipped"
