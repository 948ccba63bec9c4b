#!/usr/bin/env bash
# The benchmark's two programs against the suite's node:
#   tests/bench_gen_test.sh SOURCE_DIR BUILD_DIR BROKER_DIR
#
# warren-bare -P 2 (plain and --confirm) and warren (echo and test
# plugins; jsonrpc, raw and amqpbus routes), each driven by
# `warren-bench --connections 2 -c 8 --duration 1 --json`: calls > 0 and no
# wrong, duplicated, lost or error reply; --payload 65536 and --persistent
# once; --mix; --wait-consumers with --since-ns; --delete-queues.  And the checks can fail:
# a call outliving -t is lost (exit 2), a server killed mid-run loses
# calls, replies of another format are wrong or errors (exit 1).
# Logs and outputs stay in BUILD_DIR/test-tmp/bench_gen.
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 SOURCE_DIR BUILD_DIR BROKER_DIR" >&2; exit 64; }
src=$(cd "$1" && pwd) build=$(cd "$2" && pwd) broker=$3
name=bench_gen bin=$build/bin plugins=$build/lib/warren/plugins tmp=$build/test-tmp/bench_gen
# shellcheck source=tests/tls_lib.sh
. "$src/tests/tls_lib.sh"
rm -rf "$tmp"
mkdir -p "$tmp"
uri=$(cat "$broker/uri")
q=bench-gen.$$
trap stop_all EXIT

# bench OUT EXPECTED_RC ARGS...: warren-bench ARGS --json > $tmp/OUT.json;
# fails unless it exits EXPECTED_RC.
bench() {
    local out=$1 want=$2 rc=0
    shift 2
    "$bin/warren-bench" -u "$uri" "$@" --json >"$tmp/$out.json" 2>"$tmp/$out.err" || rc=$?
    [ "$rc" = "$want" ] ||
        fail "$out: warren-bench $* exited $rc, expected $want: $(cat "$tmp/$out.json" "$tmp/$out.err")"
}

# field OUT KEY: a field of $tmp/OUT.json (Debian's python3: no jq needed).
field() {
    /usr/bin/python3 -c 'import json, sys
v = json.load(open(sys.argv[1])).get(sys.argv[2])
print(str(v).lower() if isinstance(v, bool) else v)' "$tmp/$1.json" "$2"
}

# clean OUT: calls were made and every one answered correctly.
clean() {
    local k
    [ "$(field "$1" calls)" -gt 0 ] || fail "$1: no calls counted: $(cat "$tmp/$1.json")"
    for k in wrong duplicated lost errors; do
        [ "$(field "$1" "$k")" = 0 ] || fail "$1: $k is not 0: $(cat "$tmp/$1.json")"
    done
    echo "ok: $1: $(field "$1" calls) calls, $(field "$1" calls_per_s) calls/s, p99 $(field "$1" p99_ms) ms"
}

# start_bare NAME ARGS...: warren-bare -P 2 ARGS on queue $q.NAME, waited
# for until both processes consume.
start_bare() {
    local n=$1
    shift
    "$bin/warren-bare" -u "$uri" -q "$q.$n" -P 2 "$@" >"$tmp/$n.log" 2>&1 &
    started+=("$!")
    echo "$!" >"$tmp/$n.pid"
    wait_log "$tmp/$n.log" "^warren-bare: process [01] consuming$" 2 30
}

# stop_bare NAME: SIGTERM; it must exit 0.
stop_bare() {
    local pid rc=0
    pid=$(cat "$tmp/$1.pid")
    kill -TERM "$pid"
    wait "$pid" || rc=$?
    [ "$rc" = 0 ] || fail "warren-bare $1 exited $rc after SIGTERM: $(cat "$tmp/$1.log")"
}

# ---- warren-bare, plain and --confirm ---------------------------------------
start_bare plain --prefetch 4
bench bare-plain 0 -q "$q.plain" --connections 2 -c 8 --duration 1
clean bare-plain
bench bare-plain-64k 0 -q "$q.plain" --connections 2 -c 8 --duration 1 --payload 65536
clean bare-plain-64k
stop_bare plain

start_bare confirm --prefetch 4 --confirm
bench bare-confirm 0 -q "$q.confirm" --connections 2 -c 8 --duration 1
clean bare-confirm
bench bare-confirm-persistent 0 -q "$q.confirm" --connections 2 -c 8 --duration 1 --persistent
clean bare-confirm-persistent
stop_bare confirm

# --exec: each process a program of its own (for memory figures alike).
start_bare exec --prefetch 4 --confirm --exec
bench bare-exec 0 -q "$q.exec" --connections 2 -c 8 --duration 1
clean bare-exec
[ "$(pgrep -c -f -- "$q.exec.*--child")" -ge 2 ] || fail "warren-bare --exec: no child runs the program afresh"
stop_bare exec

# A server killed mid-run: what it held is never answered (nobody else
# consumes the queue), so the calls are lost and the run fails.
start_bare killed --queue-type classic
"$bin/warren-bench" -u "$uri" -q "$q.killed" --connections 2 -c 8 --duration 2 -t 4 --json \
    >"$tmp/bare-killed.json" 2>"$tmp/bare-killed.err" &
benchpid=$!
sleep 0.5
barepid=$(cat "$tmp/killed.pid")
# shellcheck disable=SC2046
kill -KILL "$barepid" $(pgrep -P "$barepid") 2>/dev/null || true
{ wait "$barepid"; } 2>/dev/null || true
rc=0
wait "$benchpid" || rc=$?
[ "$rc" = 2 ] || fail "bare-killed: warren-bench exited $rc, expected 2: $(cat "$tmp/bare-killed.err")"
[ "$(field bare-killed lost)" -gt 0 ] || fail "bare-killed: no lost calls: $(cat "$tmp/bare-killed.json")"
echo "ok: bare-killed: $(field bare-killed lost) calls lost when the server was killed"

# Usage and an unreachable broker.
rc=0
"$bin/warren-bare" --no-such-option >"$tmp/usage.out" 2>&1 || rc=$?
[ "$rc" = 64 ] || fail "warren-bare --no-such-option exited $rc, expected 64"
rc=0
"$bin/warren-bare" -u "amqp://guest:guest@127.0.0.1:$(free_port)/" -q "$q.x" >"$tmp/down.out" 2>&1 ||
    rc=$?
[ "$rc" = 69 ] || fail "warren-bare against no broker exited $rc, expected 69: $(cat "$tmp/down.out")"
echo "ok: warren-bare exits 64 on bad usage, 69 without a broker"

# ---- warren --------------------------------------------------------------
cat >"$tmp/warren.conf" <<EOF
[broker]
uri = $uri
[pool]
workers = 2
prefetch = 4
shutdown_timeout = 20
[plugins]
dir = $plugins
load = echo test
[route rpc]
queue = $q.rpc
[route raw]
queue = $q.raw
format = raw
method = echo
[route bus]
queue = $q.bus
format = amqpbus
method = echo
EOF
chmod 600 "$tmp/warren.conf"
since=$(date +%s%N)
start_warren warren
"$bin/warren-bench" -u "$uri" -q "$q.bus" --wait-consumers 2 -t 30 --since-ns "$since" \
    >"$tmp/wait.out" 2>&1 || fail "--wait-consumers: $(cat "$tmp/wait.out")"
grep -qE "^$q\.bus consumers=2 elapsed_ms=[0-9.]+ since_ms=[0-9.]+$" "$tmp/wait.out" ||
    fail "--wait-consumers printed: $(cat "$tmp/wait.out")"
echo "ok: --wait-consumers: $(cat "$tmp/wait.out")"

bench warren 0 -q "$q.rpc" --connections 2 -c 8 --duration 1
clean warren
bench warren-64k-persistent 0 -q "$q.rpc" --connections 2 -c 8 --duration 1 --payload 65536 \
    --persistent
clean warren-64k-persistent
bench warren-raw 0 -q "$q.raw" --format raw --connections 2 -c 8 --duration 1 --payload 16
clean warren-raw
bench warren-amqpbus 0 -q "$q.bus" --format amqpbus --connections 2 -c 8 --duration 1
clean warren-amqpbus
bench warren-mix 0 -q "$q.rpc" --connections 2 -c 8 --duration 1.5 --warmup 0.2 \
    --mix 50:test.sleep:[0.1]
clean warren-mix
[ "$(field warren-mix mix_calls)" -gt 0 ] || fail "warren-mix: no mix calls: $(cat "$tmp/warren-mix.json")"
awk -v p="$(field warren-mix mix_p50_ms)" 'BEGIN { exit !(p >= 100) }' ||
    fail "warren-mix: a 0.1 s sleep answered in $(field warren-mix mix_p50_ms) ms"
echo "ok: warren-mix: $(field warren-mix mix_calls) sleeps, p50 $(field warren-mix mix_p50_ms) ms"

# The checks can fail.  A call outliving -t is lost: exit 2.
bench warren-lost 2 -q "$q.rpc" -c 1 -n 1 -m test.sleep -p '[3]' -t 1
[ "$(field warren-lost lost)" = 1 ] || fail "warren-lost: $(cat "$tmp/warren-lost.json")"
echo "ok: a call outliving -t is counted lost"
# amqpbus requests to the raw route: echo answers [the whole body], not
# [q]: wrong.  JSON-RPC requests there: no JSON-RPC result: errors.
bench warren-wrong 1 -q "$q.raw" --format amqpbus -c 4 -n 20 --payload 65536
[ "$(field warren-wrong wrong)" = 20 ] || fail "warren-wrong: $(cat "$tmp/warren-wrong.json")"
bench warren-errors 1 -q "$q.raw" -c 4 -n 20
[ "$(field warren-errors errors)" = 20 ] || fail "warren-errors: $(cat "$tmp/warren-errors.json")"
echo "ok: wrong replies and error replies are counted, exit 1"
stop_warren warren

# Too few consumers in time: exit 2.
rc=0
"$bin/warren-bench" -u "$uri" -q "$q.nobody" --wait-consumers 1 -t 0.3 >"$tmp/wait-none.out" 2>&1 ||
    rc=$?
[ "$rc" = 2 ] || fail "--wait-consumers on a missing queue exited $rc, expected 2"
echo "ok: --wait-consumers times out with 2"

# --delete-queues (bench/run.sh's cleanup between runs): warren's raw
# queue, there with no consumers, is gone after it; so is a queue that
# never was, without an error.
"$bin/warren-bench" -u "$uri" -q "$q.raw" --wait-consumers 1 -t 0.3 >"$tmp/before-delete.out" 2>&1 || true
grep -q "0 consumer(s)" "$tmp/before-delete.out" ||
    fail "$q.raw is not there before --delete-queues: $(cat "$tmp/before-delete.out")"
"$bin/warren-bench" -u "$uri" --delete-queues "$q.raw" "$q.never-made" >"$tmp/delete.out" 2>&1 ||
    fail "--delete-queues: $(cat "$tmp/delete.out")"
"$bin/warren-bench" -u "$uri" -q "$q.raw" --wait-consumers 1 -t 0.3 >"$tmp/after-delete.out" 2>&1 || true
grep -q "no such queue" "$tmp/after-delete.out" ||
    fail "$q.raw is still there after --delete-queues: $(cat "$tmp/after-delete.out")"
rc=0
"$bin/warren-bench" --delete-queues >/dev/null 2>&1 || rc=$?
[ "$rc" = 64 ] || fail "--delete-queues with no queue exited $rc, expected 64"
echo "ok: --delete-queues deletes, and wants a name"
check_sanitizers
