#!/usr/bin/env bash
# Set up and run warren in the foreground with the example config.
#
#   scripts/run-local.sh
#
# 1. installs the Debian packages it needs (scripts/deps.sh);
# 2. builds and installs warren under $PREFIX (default /usr/local), so that
#    `warren` and `warren-call` are on PATH and the plugins are in place;
# 3. uses the broker in $WARREN_URI if set, else one already listening on
#    127.0.0.1:5672, else starts a private RabbitMQ node on 127.0.0.1:5672
#    (data in .run/broker, stopped again when warren exits);
# 4. runs `warren -c $PREFIX/etc/warren/warren.conf` in the foreground.
# Then, from a second terminal:   warren-call echo '["hi"]'
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PREFIX=${PREFIX:-/usr/local}
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo

scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
$SUDO cmake --install build --prefix "$PREFIX" >/dev/null
echo "installed warren into $PREFIX" >&2

broker_dir=
cleanup() {
    if [ -n "$broker_dir" ]; then
        "$ROOT/tests/broker.sh" stop "$broker_dir" || true
    fi
}
trap cleanup EXIT

if [ -n "${WARREN_URI:-}" ]; then
    uri=$WARREN_URI
elif (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; then
    uri=amqp://guest:guest@127.0.0.1:5672/
    echo "using the broker already listening on 127.0.0.1:5672" >&2
else
    broker_dir=$ROOT/.run/broker
    echo "no broker configured: starting a private RabbitMQ node on 127.0.0.1:5672" >&2
    WARREN_BROKER_PORT=5672 tests/broker.sh start "$broker_dir"
    uri=$(cat "$broker_dir/uri")
fi

echo "starting warren; try from another terminal:  warren-call echo '[\"hi\"]'" >&2
# Not exec: the trap must stop the private broker after warren exits.
"$PREFIX/bin/warren" -c "$PREFIX/etc/warren/warren.conf" -o "broker.uri=$uri" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true' INT TERM
wait $pid || true
wait $pid 2>/dev/null || true
