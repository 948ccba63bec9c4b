#!/usr/bin/env bash
# `warren plugin-call` against the build tree's plugins: results, errors,
# and the loader's refusals with their exit statuses, no broker.
#   tests/plugin_call_test.sh WARREN_BIN PLUGIN_DIR TEST_PLUGIN_DIR
set -euo pipefail
warren=$1 plugins=$2 tplugins=$3
tmp=$(mktemp -d /tmp/warren-plugin-call-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# expect STATUS STDOUT_PATTERN|EMPTY STDERR_PATTERN|'' -- ARGS...
expect() {
    local want=$1 out_re=$2 err_re=$3 rc=0
    shift 4
    "$warren" plugin-call "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
    [ "$rc" -eq "$want" ] || fail "plugin-call $*: exit $rc, not $want: $(cat "$tmp/out" "$tmp/err")"
    if [ "$out_re" = EMPTY ]; then
        [ ! -s "$tmp/out" ] || fail "plugin-call $*: printed $(cat "$tmp/out")"
    else
        grep -Eq -- "$out_re" "$tmp/out" || fail "plugin-call $*: stdout $(cat "$tmp/out") !~ $out_re"
    fi
    [ -z "$err_re" ] || grep -Eq -- "$err_re" "$tmp/err" || fail "plugin-call $*: stderr $(cat "$tmp/err") !~ $err_re"
}

expect 0 '^\{"result":\["hi",2\]\}$' '' -- "$plugins/echo.so" echo '["hi", 2]'
expect 0 '^\{"result":null\}$' '' -- "$plugins/echo.so" echo
expect 0 '^\{"result":-1\}$' '' -- "$plugins/echo.so" echo -1
expect 0 '^  "result": \{$' '' -- --pretty "$plugins/echo.so" echo '{"a": 1}'
expect 0 '"route":"plugin-call","body":"\[7\]"' '' -- "$plugins/test.so" test.message '[7]'
expect 1 '^\{"error":\{"code":1001,.*"data":' '' -- "$plugins/test.so" test.fail '[]'
expect 1 '"code":-32601' 'unknown method' -- "$plugins/echo.so" nosuch '[]'
# init() with --set: a permanent failure is 78, a temporary one 75.
expect 78 EMPTY 'plugin test: init failed: temporary_init_failures needs counter_file' -- \
    --set temporary_init_failures=1 "$plugins/test.so" test.first '[1]'
expect 75 EMPTY 'init failed temporarily' -- --set temporary_init_failures=1 \
    --set "counter_file=$tmp/count" "$plugins/test.so" test.first '[1]'
expect 0 '^\{"result":1\}$' '' -- --set temporary_init_failures=1 \
    --set "counter_file=$tmp/count" "$plugins/test.so" test.first '[1]'
# The loader's refusals, worded as --check words them.
expect 78 EMPTY 'built for plugin ABI 2\.0, warren supports 1\.x' -- "$tplugins/bad_abi.so" x '[]'
expect 78 EMPTY 'does not export the symbol warren_plugin' -- "$tplugins/no_symbol.so" x '[]'
cp "$plugins/echo.so" "$tmp/echo.so"
chmod 0775 "$tmp/echo.so"
expect 78 EMPTY 'group- or world-writable' -- "$tmp/echo.so" echo '[]'
# Usage.
expect 64 EMPTY 'expected PLUGIN and METHOD' -- "$plugins/echo.so"
expect 64 EMPTY 'not valid JSON' -- "$plugins/echo.so" echo '[1'
expect 64 EMPTY 'must be named NAME.so' -- ./echo echo '[]'
expect 64 EMPTY 'expected KEY=VALUE' -- --set nokey "$plugins/echo.so" echo '[]'
echo "plugin-call: OK"
