#!/usr/bin/env bash
# Run the whole test suite: the clang-format check, unit and integration tests (against private
# RabbitMQ nodes the suite starts and stops itself), first in a normal
# warning-free build, then again under AddressSanitizer and
# UndefinedBehaviorSanitizer; then the fuzz targets and the daemon under
# ThreadSanitizer and valgrind.
#
#   tests/run.sh
#
# Build trees: build-test/, build-asan/, build-fuzz/ and build-tsan/.  Exit status: nonzero if any
# build or test fails; a failure names the logs it left.  Works from a
# checkout anywhere (a 0700 home, a path with spaces): the broker's state
# lives in a private temp dir (see tests/broker.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
tests/clients/deps.sh # RabbitMQ clients in other languages, for the clients_* tests
if git rev-parse --git-dir >/dev/null 2>&1; then
    tests/format_check.sh
fi

jobs=$(nproc)
for variant in test asan; do
    dir=build-$variant
    flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DWARREN_WERROR=ON)
    select=()
    if [ "$variant" = asan ]; then
        flags+=(-DWARREN_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug)
        # The system tests (fault, cluster, clients, TLS setup: label
        # "system" in tests/CMakeLists.txt) ran in the normal build.
        select=(-LE system)
    fi
    echo "=== $variant build ===" >&2
    cmake -S . -B "$dir" "${flags[@]}" >/dev/null
    cmake --build "$dir" -j"$jobs"
    echo "=== $variant tests ===" >&2
    # Sanitizer reports fail the test that triggered them; leaks too.
    if ! ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        ctest --test-dir "$dir" --output-on-failure --timeout 900 "${select[@]}"; then
        cat >&2 <<EOF
=== $variant tests failed; what they left for reading ===
  $PWD/$dir/Testing/Temporary/LastTest.log   every test's full output
  $PWD/$dir/test-tmp/                        config and log of each warren under test
  $PWD/$dir/test-broker/                     the broker's logs, if it failed to start
rerun one suite:  ctest --test-dir $dir -R NAME --output-on-failure
EOF
        exit 1
    fi
done

# The benchmark's smoke (README "Benchmark"): bench/run.sh with a few cells
# of 1 s against the test build, about a minute; it fails on a wrong, lost
# or duplicated call or a server not exiting 0, never on a figure.
echo "=== bench smoke ===" >&2
BENCH_QUICK=1 BENCH_BUILD=build-test BENCH_OUT="$PWD/build-test/bench-smoke/BENCHMARKS.md" bench/run.sh

# Fuzzing, ThreadSanitizer and valgrind (README "Fuzzing and sanitizers"):
# each libFuzzer target for WARREN_FUZZ_SECONDS (default 30), then a TSan
# warren and a warren under valgrind serving integration tests.  About 3
# minutes on a 2-core machine.
echo "=== fuzz ===" >&2
tests/fuzz/run.sh "${WARREN_FUZZ_SECONDS:-30}"
echo "=== daemon check: ThreadSanitizer, valgrind ===" >&2
tests/daemon_check.sh

# The Debian package (README "Debian package"): built with dpkg-buildpackage,
# lintian-clean, installed with apt in a clean Debian 12 chroot, where
# `warren --check` and a real warren answering warren-call must work.  About
# 2 minutes cold, 75 s with the debootstrap cache (/var/cache/warren-deb-test).
# Needs root (debootstrap, chroot); skipped (77) when the mirror cannot be
# reached.
echo "=== Debian package ===" >&2
rc=0
tests/deb_test.sh || rc=$?
if [ "$rc" -eq 77 ]; then
    echo "Debian package test skipped (see above)" >&2
elif [ "$rc" -ne 0 ]; then
    exit "$rc"
fi
