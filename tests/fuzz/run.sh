#!/usr/bin/env bash
# Build the libFuzzer targets (tests/fuzz/fuzz_*.c) with clang, ASan and
# UBSan in build-fuzz/, then run each for SECONDS (default 60).  Fails on
# any crash, leak, sanitizer report or timeout (an input running over 10 s),
# printing the reproducer's path and the command that replays it.
#
#   tests/fuzz/run.sh [SECONDS]
#
# Each target starts from its committed seeds (tests/fuzz/corpus/TARGET/)
# plus what earlier runs here found (build-fuzz/fuzz/TARGET/corpus/, kept
# between runs); reproducers go to build-fuzz/fuzz/TARGET/.  Replay one:
#   build-fuzz/tests/fuzz/TARGET FILE        (WARREN_FUZZ_VERBOSE=1 for the
#                                             logs and replies of fuzz_dispatch)
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds=${1:-60}
case $seconds in '' | *[!0-9]*) echo "usage: tests/fuzz/run.sh [SECONDS]" >&2; exit 64 ;; esac
targets=(fuzz_dispatch fuzz_config)
dir=build-fuzz

command -v clang >/dev/null || { echo "fuzz: clang is missing (scripts/deps.sh installs it)" >&2; exit 1; }
echo "=== fuzz build ($dir) ===" >&2
cmake -S . -B "$dir" -DCMAKE_C_COMPILER=clang -DWARREN_FUZZ=ON -DWARREN_TESTS=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$dir" -j"$(nproc)" --target "${targets[@]}" >/dev/null

failed=0
for t in "${targets[@]}"; do
    work=$dir/fuzz/$t
    mkdir -p "$work/corpus"
    rm -f "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* "$work"/slow-unit-*
    echo "=== fuzz $t: ${seconds}s ===" >&2
    # The first corpus dir receives what this run finds; the seeds are only read.
    if "$dir/tests/fuzz/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -max_len=8192 -print_final_stats=1 -dict="tests/fuzz/$t.dict" \
        -artifact_prefix="$work/" "$work/corpus" "tests/fuzz/corpus/$t" >"$work/log" 2>&1; then
        grep -E '^(Done|stat::number_of_executed_units|stat::new_units_added)' "$work/log" | tr '\n' ' ' >&2
        echo >&2
    else
        failed=1
        tail -n 60 "$work/log" >&2
        for f in "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*; do
            [ -e "$f" ] || continue
            echo "fuzz $t FAILED; reproducer: $PWD/$f" >&2
            echo "  replay: $PWD/$dir/tests/fuzz/$t $PWD/$f" >&2
        done
        echo "  full log: $PWD/$work/log" >&2
    fi
done
exit $failed
