#!/usr/bin/env bash
# The daemon under dynamic checkers, serving real calls from a private
# RabbitMQ node: integration tests (their Criterion binaries from the
# normal build) run against a warren that is
#   tsan      built with ThreadSanitizer (build-tsan/, -DWARREN_TSAN=ON):
#             the worker's AMQP thread and its runner thread; any race
#             report fails
#   valgrind  the normal build's warren (build-test/) under valgrind
#             memcheck, supervisor and every worker (--trace-children):
#             any error or definite leak fails
#
#   tests/daemon_check.sh [tsan] [valgrind]     (default: both)
#
# One broker (tests/broker.sh) serves both.  Reports are kept in
# /tmp/warren-tsan.XXXXXX/ (named when there are any) and
# build-test/valgrind/; the warrens' configs and logs
# in build-*/daemon-check-tmp/.  The test binaries come from build-test/,
# which this builds when needed (tests/run.sh has already built it).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

modes=("$@")
[ ${#modes[@]} -eq 0 ] && modes=(tsan valgrind)
# Which tests each mode runs (BINARY or BINARY:CRITERION-FILTER): what
# exercises the runner's handoff (1000 concurrent calls, kill -9 of a busy
# worker, a handler outliving heartbeats), and for valgrind bad input of
# every kind (deep nesting, huge numbers, invalid UTF-8, a 2 MB body) and
# one warren serving all three formats (not test_pool_spreads_work: it
# reads worker titles from /proc/PID/cmdline, which valgrind's command line
# fills).  Left out under TSan: sigterm_finishes_request_in_hand, whose
# wait_busy() polls rabbitmqctl (2 s a call on a loaded 2-core machine,
# slower still beside a TSan warren) for a 3 s window and, missing it,
# polls 200 times past the suite's 120 s timeout.
TSAN_TESTS=(test_pool_spreads_work "test_lifecycle:lifecycle/!(sigterm_finishes_request_in_hand)")
VALGRIND_TESTS=(test_bad_input "test_routes:routes/jsonrpc_raw_and_amqpbus_side_by_side")

jobs=$(nproc)
echo "=== daemon check: build-test (test binaries, the warren valgrind runs) ===" >&2
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWARREN_WERROR=ON >/dev/null
bins=()
for spec in "${TSAN_TESTS[@]}" "${VALGRIND_TESTS[@]}"; do bins+=("${spec%%:*}"); done
cmake --build build-test -j"$jobs" --target warren warren-worker warren-call plugin_echo plugin_time plugin_test \
    "${bins[@]}" >/dev/null

broker=$root/build-test/daemon-check-broker
tests/broker.sh start "$broker" >/dev/null
trap 'tests/broker.sh stop "$broker" >/dev/null || true' EXIT

failed=0

# Run test binaries NAMES... against warren WARREN_BIN (exported by the
# caller) with plugins from PLUGINS; temp files under TMP.
run_tests() {
    local plugins=$1 tmp=$2
    shift 2
    rm -rf "$tmp"
    for spec in "$@"; do
        local t=${spec%%:*} filter=()
        [ "$t" != "$spec" ] && filter=(--filter "${spec#*:}")
        echo "--- $spec" >&2
        if ! WARREN_TEST_BROKER_DIR=$broker WARREN_CALL_BIN=$root/build-test/bin/warren-call \
            WARREN_PLUGIN_DIR=$plugins WARREN_SOURCE_DIR=$root WARREN_TEST_TMPDIR=$tmp \
            "$root/build-test/bin/$t" --jobs 1 "${filter[@]}"; then
            echo "daemon check: $t failed; the warrens' logs are in $tmp" >&2
            failed=1
        fi
    done
}

for mode in "${modes[@]}"; do
    case $mode in
    tsan)
        echo "=== daemon check: ThreadSanitizer (build-tsan) ===" >&2
        cmake -S . -B build-tsan -DWARREN_TSAN=ON -DWARREN_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
            -DWARREN_WERROR=ON >/dev/null
        cmake --build build-tsan -j"$jobs" --target warren warren-worker plugin_echo plugin_time plugin_test >/dev/null
        # The reports' path goes into TSAN_OPTIONS, which splits on white
        # space: a dir of its own under /tmp, not the checkout's (its path
        # may hold spaces).  Kept, and named, only when there are reports.
        reports=$(mktemp -d /tmp/warren-tsan.XXXXXX)
        # Reports go to files (report.PID), not into warren's log, so
        # that none is missed; exitcode=0 so that a report does not also
        # change how a worker exits (the file is what fails the check);
        # handle_segv=0: test.crash's SIGSEGV is the worker's to die of.
        TSAN_OPTIONS="log_path=$reports/report halt_on_error=0 exitcode=0 second_deadlock_stack=1 handle_segv=0" \
            WARREN_BIN=$root/build-tsan/bin/warren \
            run_tests "$root/build-tsan/lib/warren/plugins" "$root/build-tsan/daemon-check-tmp" \
            "${TSAN_TESTS[@]}"
        if compgen -G "$reports/report.*" >/dev/null; then
            echo "daemon check: ThreadSanitizer reports (in $reports):" >&2
            cat "$reports"/report.* >&2
            failed=1
        else
            echo "daemon check: no ThreadSanitizer report" >&2
            rm -rf "$reports"
        fi
        ;;
    valgrind)
        echo "=== daemon check: valgrind memcheck (build-test) ===" >&2
        command -v valgrind >/dev/null || { echo "daemon check: valgrind is missing (scripts/deps.sh installs it)" >&2; exit 1; }
        logs=$root/build-test/valgrind
        rm -rf "$logs"
        mkdir -p "$logs"
        wrapper=$logs/warren-under-valgrind
        cat >"$wrapper" <<EOW
#!/bin/sh
exec valgrind --trace-children=yes --leak-check=full --errors-for-leak-kinds=definite \\
    --error-exitcode=99 --log-file="$logs/vg.%p.log" "$root/build-test/bin/warren" "\$@"
EOW
        chmod +x "$wrapper"
        WARREN_BIN=$wrapper run_tests "$root/build-test/lib/warren/plugins" \
            "$root/build-test/daemon-check-tmp" "${VALGRIND_TESTS[@]}"
        n=0
        for f in "$logs"/vg.*.log; do
            [ -e "$f" ] || continue
            n=$((n + 1))
            if ! grep -q 'ERROR SUMMARY: 0 errors' "$f"; then
                echo "daemon check: valgrind found errors or definite leaks, or the process did not finish: $f" >&2
                cat "$f" >&2
                failed=1
            fi
        done
        echo "daemon check: valgrind: $n processes checked (supervisors and workers)" >&2
        [ "$n" -gt 0 ] || { echo "daemon check: no valgrind log at all" >&2; failed=1; }
        ;;
    *)
        echo "usage: tests/daemon_check.sh [tsan] [valgrind]" >&2
        exit 64
        ;;
    esac
done
exit $failed
