#!/usr/bin/env bash
# The Kotlin suite: installs its toolchain if missing (the Kotlin compiler from npm, with its
# stdlib and kotlinx-coroutines; JNA and Gson from Debian), generates the Kotlin bindings from
# the release cdylib, compiles them with the tests and runs them on the JVM. Ends with the
# suite's summary line.
set -euo pipefail
KOTLIN="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$KOTLIN/../../.." && pwd)"
# The wheel's cdylib when .ci/test-ffi.sh hands it over (no second release build), else ours.
LIB="${OLMO_FFI_LIB:-$REPO/target/release/libolmo_ffi.so}"
BUILD="$KOTLIN/build"
KOTLINC="$KOTLIN/node_modules/kotlin-compiler/bin/kotlinc"

if [ ! -f /usr/share/java/jna.jar ] || [ ! -f /usr/share/java/gson.jar ]; then
    apt-get install -y -qq libjna-java libgoogle-gson-java >/dev/null
fi
if [ ! -x "$KOTLINC" ]; then
    (cd "$KOTLIN" && npm ci --no-audit --no-fund --loglevel=error)
fi

if [ -z "${OLMO_FFI_LIB:-}" ]; then
    cargo build --quiet --release -p olmo-ffi
fi
rm -rf "$BUILD"
mkdir -p "$BUILD"
uniffi-bindgen generate --library "$LIB" --language kotlin --out-dir "$BUILD/generated" --no-format >/dev/null
CLASSPATH="/usr/share/java/jna.jar:/usr/share/java/gson.jar"
# The suspend store's coroutines (kotlinx-coroutines ships inside kotlin-compiler).
COROUTINES="$KOTLIN/node_modules/kotlin-compiler/lib/kotlinx-coroutines-core-jvm.jar"
"$KOTLINC" -nowarn -language-version 2.0 -cp "$CLASSPATH:$COROUTINES" -d "$BUILD/tests.jar" \
    "$BUILD"/generated/org/olmo/*.kt "$KOTLIN"/olmo/*.kt "$KOTLIN"/src/*.kt 2>&1 | grep -v '^warning:' || true
[ -f "$BUILD/tests.jar" ]
java -Djna.library.path="$(dirname "$LIB")" \
    -cp "$BUILD/tests.jar:$CLASSPATH:$KOTLIN/node_modules/kotlin-compiler/lib/kotlin-stdlib.jar:$COROUTINES" MainKt
