#!/usr/bin/env bash
# Instructions per operation of each side of the XMPP bench's core+commit rows, counted by
# callgrind (repeatable on a loaded machine), memory store, quick archive:
#   stores/sqlite/benches/xmpp/callgrind.sh <bench binary> [n]
# Each side runs n times in its own process; only the timed windows are counted (callgrind
# dumps before each clock read, see clock.rs). Prints machine / (core + commits x commit).
# ROWS="catch-up encrypt" counts those rows only. Each process has its own keys and hash
# seeds: a side's count moves by about 1% from one process to the next.
set -euo pipefail
bin=$(realpath "$1")
n=${2:-40}
out=$(mktemp -d)
count() { # row side n -> instructions in the timed windows
    local dir="$out/$1-$2-$3"
    mkdir -p "$dir"
    (cd "$dir" && OLMO_BENCH_QUICK=1 OLMO_BENCH_COUNT="$1:$2:$3" valgrind --tool=callgrind \
        --dump-instr=no --dump-before='*window_opens*' --dump-before='*window_closes*' \
        "$bin" --bench >log 2>&1)
    # Parts dumped before a window mark, in order: before the first opening, a window, between
    # windows, a window... (the linker may fold the two marks into one: count, not names).
    local k=0 sum=0 part total
    for part in $(ls "$dir"/callgrind.out.*.* | sort -V); do
        grep -q '^desc: Trigger: --dump-before=.*window_' "$part" || continue
        k=$((k + 1))
        total=$(grep -h '^totals:' "$part" | awk '{print $2}')
        [ $((k % 2)) -eq 0 ] && sum=$((sum + total))
    done
    echo "$sum"
}
printf '%-10s %14s %14s %14s %7s\n' row machine/op core/op commit/op ratio
for row in ${ROWS:-encrypt decrypt build catch-up}; do
    m=$(count "$row" machine "$n")
    core_n=$n
    [ "$row" = build ] && core_n=$((n * 10))
    c=$(count "$row" core "$core_n")
    k=$(count "$row" commit "$n")
    # Commits per machine operation: build makes 10, a catch-up one per message.
    case $row in
        build) per=10 ;;
        catch-up) per=$(grep -h 'commits per catch-up' "$out/$row-machine-$n/log" | awk '{print $NF}') ;;
        *) per=1 ;;
    esac
    awk -v r="$row" -v m="$m" -v c="$c" -v k="$k" -v n="$n" -v cn="$core_n" -v p="$per" \
        'BEGIN {mo = m / n; co = c / cn * (r == "build" ? 10 : 1); ko = k / n;
                printf "%-10s %14.0f %14.0f %14.0f %7.3f\n", r, mo, co, ko, mo / (co + p * ko)}'
done
rm -rf "$out"
