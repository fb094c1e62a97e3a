#!/usr/bin/env bash
# Builds the npm package's module into bindings/wasm/pkg: the crate for wasm32 with the
# size-first `wasm-release` profile, then wasm-bindgen's `web` glue (ES modules that work in
# browsers, bundlers and Node, where js/index.js hands the glue the file's bytes; make-entry.mjs
# joins the two into pkg/index.js, the package's entry, one module to load). The producers
# section goes, and the name section after wasm-opt (a third of the file). Then binaryen's
# wasm-opt (npm `binaryen`, pinned in package.json: `npm install` here first) at -Os without
# inlining functions into their one caller: 2.8% off gzipped and 6.5% raw on this build (-O1
# took 1.5% and 3.8%). Raw size is what V8 validates at every start, gzipped what a page
# downloads: with that inlining -Os leaves the file 9% smaller raw but 2.6% larger gzipped. Debian's binaryen 108 breaks the externref table
# wasm-bindgen makes. Last, minify-names.mjs shortens the names of the module's imports and
# exports in it and in the glue (2.0 KB gzipped off). Source paths are remapped so the file
# names no build machine's directories.
# `OLMO_WASM_FEATURES=conformance` builds the test variant (the store conformance suite exported
# for the Node and Chromium tests; never published).
#
# The toolchain is the nightly pinned in .ci/nightly-toolchain (installed with its `rust-src`
# when missing), which rebuilds the standard library with the package (`-Zbuild-std`) at the
# profile's size-first settings and drops what no user sees (README "Size and speed"):
#   -Cpanic=immediate-abort  a panic is a bare trap: no panic hook, no message formatting.
#                            Nothing changes for JavaScript: with `panic = "abort"` and no panic
#                            hook installed, a panic already ended in an `unreachable` trap with
#                            the message written nowhere. Every failure users see is a typed
#                            error (`OlmoError` subclasses), which never goes through a panic.
#   -Zlocation-detail=none   no file, line and column per panic site (823 of them).
#   optimize_for_size        the standard library's size-first algorithms (sorts, formatting).
#   -Zfmt-debug=none         `{:?}` writes nothing: no message users see uses it (errors'
#                            `Display` writes every field out); the conformance variant's failure
#                            details do, so read those from a stable build.
# `OLMO_WASM_TOOLCHAIN=stable` (or any other non-nightly toolchain) builds without build-std, for
# machines without the nightly: the same code, 23 KB larger gzipped (over the size record).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
toolchain="${OLMO_WASM_TOOLCHAIN:-$(cat "$root/.ci/nightly-toolchain")}"
registry="${CARGO_HOME:-$HOME/.cargo}/registry/src"
# SIMD (WebAssembly's 128-bit vectors, in every browser since 2023 and Node 16.4): 16-byte
# copies and fills become one instruction each, 10.5 KB gzipped off (2.8%), no slower. The aes
# crate's compact (semi-fixsliced) software AES: 1.8 KB gzipped off, room-event decryption no slower.
# Without the multivalue feature wasm-bindgen returns results through the shadow stack instead of
# as several values: V8 before 12 (Node 20) has no generic JS-to-wasm wrapper for an export
# returning more than one value and compiles one with TurboFan per such signature (16 here) when
# the module is compiled. That took 3 ms of the 17 ms a fresh Node spends on import + init.
flags="--remap-path-prefix=$registry=crates"$'\x1f'"--remap-path-prefix=$root=olmo"$'\x1f'"-Ctarget-feature=+simd128,-multivalue"
flags+=$'\x1f'"--cfg=aes_backend_soft=\"compact\""
build_std=()
case "$toolchain" in
nightly*)
    if ! rustup component list --toolchain "$toolchain" --installed 2>/dev/null | grep -q '^rust-src'; then
        rustup toolchain install "$toolchain" --profile minimal --component rust-src
    fi
    library="$(rustc +"$toolchain" --print sysroot)/lib/rustlib/src/rust"
    flags+=$'\x1f'"--remap-path-prefix=$library=rust"$'\x1f'"-Zunstable-options"$'\x1f'"-Cpanic=immediate-abort"
    flags+=$'\x1f'"-Zlocation-detail=none"$'\x1f'"-Zfmt-debug=none"
    build_std=(-Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size)
    ;;
*)
    # The standard library comes prebuilt (at opt-level 3); its panic locations name
    # /rustc/<hash>/library, no machine's directories.
    ;;
esac
export CARGO_ENCODED_RUSTFLAGS="$flags"
cargo +"$toolchain" build --quiet "${build_std[@]}" -p olmo-wasm --lib --target wasm32-unknown-unknown \
    --profile wasm-release --features "${OLMO_WASM_FEATURES:-}"
wasm="${CARGO_TARGET_DIR:-$root/target}/wasm32-unknown-unknown/wasm-release/olmo_wasm.wasm"
wasm-bindgen --target web --remove-producers-section --out-dir "$here/pkg" --out-name olmo_wasm "$wasm"
node "$here/make-entry.mjs"
node "$here/order-names.mjs"
# The features are the ones the file uses (Rust's wasm32 defaults and SIMD, without multivalue), no
# others, so the optimiser cannot bring back multi-value returns or an instruction an engine lacks.
# --low-memory-unused lets it fold a constant added to an address into the access's offset
# (0.7 KB gzipped off): only an address computation that wraps past 4 GiB into the first 1 KiB
# could tell the difference, and Rust's code computes none (an access there would be out of
# bounds of any object). The target_features section (which features the compiler used, for
# linkers; engines ignore it) goes too. Last, the functions are sorted by name, then the names
# go: a generic's copies, a module's functions and a trait method's implementations, which share
# most of their code, land next to each other, inside gzip's 32 KB window (order-names.mjs gives
# them the names to sort by; 5.9 KB gzipped off in all, and the order of a module's functions
# changes nothing else).
node "$here/node_modules/binaryen/bin/wasm-opt" --enable-simd --enable-reference-types \
    --enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int \
    --enable-mutable-globals -Os --one-caller-inline-max-function-size 0 --low-memory-unused \
    --strip-target-features --reorder-functions-by-name --strip-debug \
    "$here/pkg/olmo_wasm_bg.wasm" -o "$here/pkg/olmo_wasm_bg.wasm"
node "$here/minify-names.mjs"
raw=$(stat -c %s "$here/pkg/olmo_wasm_bg.wasm")
gz=$(gzip -9 -c "$here/pkg/olmo_wasm_bg.wasm" | wc -c)
echo "olmo_wasm_bg.wasm: $raw bytes, $gz gzipped ($toolchain)"
