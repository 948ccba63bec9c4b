#!/usr/bin/env bash
# The install layout and the README's plugin example, end to end:
#   tests/install_test.sh SOURCE_DIR BUILD_DIR BROKER_DIR
# installs the build into a temp prefix, checks every file the README
# promises is there, builds the README's greet.c exactly as printed with
# the installed pkg-config file, and has the *installed* warren (default
# plugin dir, nothing configured about paths) serve it to the installed
# warren-call through the test broker.
set -euo pipefail
src=$1 build=$2 broker=$3
prefix=$(mktemp -d /tmp/warren-install-XXXXXX)
pid=
cleanup() {
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$prefix"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$prefix" >/dev/null
for f in bin/warren bin/warren-call lib/warren/warren-worker lib/warren/plugins/echo.so lib/warren/plugins/time.so lib/warren/plugins/pkgstatus.so \
         lib/warren/plugins/test.so include/warren/plugin.h lib/pkgconfig/warren-plugin.pc \
         etc/warren/warren.conf lib/systemd/system/warren.service; do
    [ -e "$prefix/$f" ] || fail "$f not installed"
done
grep -q "^ExecStart=$prefix/bin/warren -c $prefix/etc/warren/warren.conf\$" \
    "$prefix/lib/systemd/system/warren.service" || fail "unit does not name the installed paths"
if command -v systemd-analyze >/dev/null; then
    systemd-analyze verify "$prefix/lib/systemd/system/warren.service" || fail "systemd-analyze verify"
fi

# The example config, with the installed (default) plugin dir.
"$prefix/bin/warren" -c "$prefix/etc/warren/warren.conf" --check | grep -q "OK: .* echo time" ||
    fail "--check of the installed example config"

# The README's plugin, extracted verbatim, built as the README says.
awk '/^```c$/{on=1; next} /^```$/{on=0} on' "$src/README.md" > "$prefix/greet.c"
grep -q WARREN_PLUGIN_DEFINE "$prefix/greet.c" || fail "no plugin example in README.md"
lines=$(grep -cv '^\s*$' "$prefix/greet.c")
[ "$lines" -le 25 ] || fail "the README plugin is $lines lines, not ~20"
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
# shellcheck disable=SC2046
cc -Wall -Wextra -Werror -shared -fPIC -o "$prefix/lib/warren/plugins/greet.so" "$prefix/greet.c" \
    $(pkg-config --cflags --libs warren-plugin)
chmod 0755 "$prefix/lib/warren/plugins/greet.so"

queue="install-test.$$"
cat > "$prefix/greet.conf" <<CONF
[broker]
uri = $(cat "$broker/uri")

[pool]
workers = 1

[plugins]
load = echo time greet

[plugin greet]
greeting = Hi

[route rpc]
queue = $queue
CONF
"$prefix/bin/warren" -c "$prefix/greet.conf" --check | grep -q " greet" || fail "--check does not list greet"
"$prefix/bin/warren" -c "$prefix/greet.conf" 2> "$prefix/warren.log" &
pid=$!
for _ in $(seq 1 300); do grep -q "ready:" "$prefix/warren.log" && break; sleep 0.1; done
grep -q "ready:" "$prefix/warren.log" || { cat "$prefix/warren.log"; fail "warren not ready"; }
out=$("$prefix/bin/warren-call" -u "$(cat "$broker/uri")" -q "$queue" greet '["Ada"]')
[ "$out" = '"Hi, Ada!"' ] || fail "greet answered $out"
kill -TERM "$pid"
wait "$pid" || fail "warren exited $?"
pid=
# Without its worker program warren says so and stops (exit 70), instead
# of restarting workers that cannot start.
mv "$prefix/lib/warren/warren-worker" "$prefix/lib/warren/warren-worker.aside"
rc=0
"$prefix/bin/warren" -c "$prefix/greet.conf" 2> "$prefix/noworker.log" || rc=$?
mv "$prefix/lib/warren/warren-worker.aside" "$prefix/lib/warren/warren-worker"
[ "$rc" = 70 ] || fail "warren without its worker program exited $rc, expected 70"
grep -q "cannot run the worker program .*warren-worker" "$prefix/noworker.log" ||
    fail "no clear error without the worker program: $(cat "$prefix/noworker.log")"
echo "install layout and README plugin: OK"
