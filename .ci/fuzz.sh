#!/usr/bin/env bash
# Smoke-fuzz every cargo-fuzz target for a short time, starting from the committed seeds.
#
#   .ci/fuzz.sh                      # every target, 20 s each
#   FUZZ_SECONDS=300 .ci/fuzz.sh olm_session_decrypt
#
# Needs the nightly pinned in .ci/nightly-toolchain (the one the npm package's .wasm is built
# with, so CI installs one nightly) and cargo-fuzz; installs both if missing. The corpus lives in a
# temporary directory; a crash leaves its input in fuzz/artifacts/<target>/ (copy it to
# fuzz/regressions/<target>/ so tests/fuzz_corpus.rs replays it) and fails the script.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

seconds="${FUZZ_SECONDS:-20}"
max_len="${FUZZ_MAX_LEN:-4096}"

nightly="$(cat .ci/nightly-toolchain)"
if ! rustup toolchain list | grep -q "^$nightly"; then
    echo "== installing $nightly"
    rustup toolchain install "$nightly" --profile minimal --component rust-src
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    start=$SECONDS
    cargo install cargo-fuzz --locked
    echo "== cargo-fuzz installed in $((SECONDS - start)) s"
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +"$nightly" fuzz list)
fi

start=$SECONDS
cargo +"$nightly" fuzz build
echo "== built ${#targets[@]} targets in $((SECONDS - start)) s"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

summary=()
for target in "${targets[@]}"; do
    corpus="$work/corpus/$target"
    mkdir -p "$corpus"
    for dir in "fuzz/seeds/$target" "fuzz/regressions/$target"; do
        if [ -d "$dir" ]; then
            find "$dir" -maxdepth 1 -type f ! -name '.*' -exec cp {} "$corpus/" \;
        fi
    done
    log="$work/$target.log"
    echo "== fuzzing $target for ${seconds} s ($(find "$corpus" -type f | wc -l) seeds)"
    start=$SECONDS
    status=0
    (cargo +"$nightly" fuzz run "$target" "$corpus" -- \
        -max_total_time="$seconds" -max_len="$max_len" -print_final_stats=1) \
        >"$log" 2>&1 || status=$?
    elapsed=$((SECONDS - start))
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    corpus_size="$(find "$corpus" -type f | wc -l)"
    line="$(printf '%-22s %12s execs in %3s s, corpus %s' "$target" "${execs:-?}" "$elapsed" "$corpus_size")"
    echo "== $line"
    if [ "$status" -ne 0 ]; then
        tail -n 60 "$log"
        if grep -q 'Test unit written to' "$log"; then
            echo "== $target FOUND A CRASH; the input is under fuzz/artifacts/$target/." \
                "Copy it to fuzz/regressions/$target/ so tests/fuzz_corpus.rs replays it."
        else
            echo "== $target failed (exit $status) without a crash input (build error?)"
        fi
        exit "$status"
    fi
    summary+=("$line")
done

echo "== executions per target"
printf '%s\n' "${summary[@]}"
