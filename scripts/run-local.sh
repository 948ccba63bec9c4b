#!/usr/bin/env bash
# Set up and run warren in the foreground with the example config.
#
#   scripts/run-local.sh
#
# 1. installs the Debian packages it needs (scripts/deps.sh);
# 2. builds and installs warren under $PREFIX (default /usr/local), so that
#    `warren` and `warren-call` are on PATH and the plugins are in place;
# 3. uses the broker in $WARREN_URI if set, else a RabbitMQ (any AMQP 0-9-1
#    server) already listening on 127.0.0.1:5672, else starts a private
#    RabbitMQ node on 127.0.0.1:5672 with tests/broker.sh (its state in a
#    private temp dir, its handles in .run/broker, all removed when warren
#    exits; a failed start leaves its logs in .run/broker);
# 4. runs `warren -c $PREFIX/etc/warren/warren.conf` in the foreground until
#    Ctrl-C (or SIGTERM), then stops the private node.  The broker's
#    password goes to warren in a 0600 file, .run/broker-password
#    ([broker] password_file), never on its command line.
# Then, from a second terminal:   warren-call echo '["hi"]'
#
# Works from a checkout anywhere (a 0700 home, a path with spaces), as root
# or as a user with sudo (needed only for missing packages and a $PREFIX
# the user cannot write).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PREFIX=${PREFIX:-/usr/local}
readonly PORT=5672

die() {
    echo "run-local.sh: $*" >&2
    exit 1
}

scripts/deps.sh

# Who may write $PREFIX: we, or root through sudo.
INSTALL_AS=()
parent=$PREFIX
while [ ! -e "$parent" ]; do parent=$(dirname "$parent"); done
if [ ! -w "$parent" ] || { [ -e "$PREFIX" ] && [ ! -w "$PREFIX" ]; }; then
    command -v sudo >/dev/null ||
        die "cannot write $PREFIX and there is no sudo: run as root, or choose a prefix of your own (PREFIX=\$HOME/.local $(printf %q "$0"))"
    INSTALL_AS=(sudo)
fi

cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
"${INSTALL_AS[@]}" cmake --install build --prefix "$PREFIX" >/dev/null
echo "installed warren into $PREFIX" >&2
call=warren-call
[ "$(command -v warren-call 2>/dev/null)" = "$PREFIX/bin/warren-call" ] || call="'$PREFIX/bin/warren-call'"

broker_dir=
pid=
# shellcheck disable=SC2317 # reached through the EXIT trap
cleanup() {
    # Not to be cut short by a second Ctrl-C (ignored signals stay ignored
    # in the children too).
    trap '' INT TERM
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -f "$ROOT/.run/broker-password"
    [ -n "$broker_dir" ] || rmdir "$ROOT/.run" 2>/dev/null || true
    if [ -n "$broker_dir" ]; then
        echo "stopping the private RabbitMQ node" >&2
        "$ROOT/tests/broker.sh" stop "$broker_dir" || true
        rmdir "$ROOT/.run" 2>/dev/null || true # unless a failed start's logs are there
    fi
}
trap cleanup EXIT

# What answers on 127.0.0.1:PORT: "none" (nothing listens), "amqp" (an
# AMQP 0-9-1 server: it answers our protocol header with connection.start)
# or "other".  Bounded in time: something that accepts and stays silent
# (nc -l) is "other" after 3 s, not a hang.
probe() {
    # shellcheck disable=SC2016 # expanded by the inner bash
    timeout 5 bash -c '
        exec 3<>"/dev/tcp/127.0.0.1/$1" || { echo none; exit 0; }
        printf "AMQP\0\0\x09\x01" >&3
        hex=$(timeout 3 head -c 11 <&3 | od -An -tx1 | tr -d " \n")
        case $hex in
        010000????????000a000a) echo amqp ;;
        *) echo other ;;
        esac' _ "$1" 2>/dev/null || echo other
}

# What holds PORT, for the message (names only what ss may show us).
holder() {
    ss -Htlnp "sport = :$1" 2>/dev/null |
        sed -n 's/.*users:(("\([^"]*\)",pid=\([0-9]*\).*/\1, pid \2/p' | head -n 1
}

if [ -n "${WARREN_URI:-}" ]; then
    uri=$WARREN_URI
    echo "using the broker in WARREN_URI" >&2
else
    # A node an earlier run left behind (killed before it could clean up)
    # is ours: stop it rather than mistake it for someone's broker.
    if [ -f .run/broker/env ]; then
        echo "stopping the private node an earlier run left in .run/broker" >&2
        tests/broker.sh stop "$ROOT/.run/broker" || true
    fi
    case $(probe "$PORT") in
    amqp)
        uri=amqp://guest:guest@127.0.0.1:$PORT/
        echo "using the broker already listening on 127.0.0.1:$PORT" >&2
        ;;
    other)
        who=$(holder "$PORT")
        die "127.0.0.1:$PORT is taken by something that is not an AMQP broker${who:+ ($who)}.
Stop it, or point warren at your RabbitMQ:  WARREN_URI=amqp://USER:PASS@HOST:PORT/ $(printf %q "$0")"
        ;;
    none)
        echo "no broker configured: starting a private RabbitMQ node on 127.0.0.1:$PORT" >&2
        broker_dir=$ROOT/.run/broker
        if ! WARREN_BROKER_PORT=$PORT tests/broker.sh start "$broker_dir"; then
            broker_dir= # it cleaned up after itself; its logs stay
            die "the private RabbitMQ node did not start; its logs are in $ROOT/.run/broker/"
        fi
        uri=$(cat "$broker_dir/uri")
        ;;
    esac
fi

# The password leaves the URI for a file only we can read: a command line
# is visible to every user (ps).  It is percent-decoded, as in a URI.  The
# file stays while warren runs (a worker started later reads it too).
password_args=()
if [[ $uri =~ ^(amqps?://)([^:@/]*):([^@/]*)@(.*)$ ]]; then
    mkdir -p .run
    chmod 700 .run
    (
        umask 077
        encoded=${BASH_REMATCH[3]}
        encoded=${encoded//\\/\\\\} # a backslash stays one for %b
        printf '%b\n' "${encoded//%/\\x}" >.run/broker-password
    )
    uri=${BASH_REMATCH[1]}${BASH_REMATCH[2]}@${BASH_REMATCH[4]}
    password_args=(-o "broker.password_file=$ROOT/.run/broker-password")
fi

# The control socket: /run/warren exists under systemd only; here it sits
# in the checkout's .run (warren status -s ... talks to it).
mkdir -p .run
chmod 700 .run
sock="$ROOT/.run/warren.sock"
echo "starting warren (Ctrl-C stops it); try from another terminal:  $call echo '[\"hi\"]'" >&2
echo "  and:  '$PREFIX/bin/warren' status -s '$sock'" >&2
# Not exec: the trap must stop the private broker after warren exits.  On
# Ctrl-C the terminal signals warren itself (it stops gracefully); a
# SIGINT or SIGTERM sent to this script alone is passed on.
"$PREFIX/bin/warren" -c "$PREFIX/etc/warren/warren.conf" -o "broker.uri=$uri" \
    -o "pool.control_socket=$sock" "${password_args[@]}" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null || true' INT TERM
rc=0
while :; do
    # wait returns early (128+signal) when a trap runs: wait again until
    # warren has really gone, and report its own exit status.
    wait "$pid" && rc=0 || rc=$?
    kill -0 "$pid" 2>/dev/null || break
done
if [ "$rc" -gt 128 ]; then
    wait "$pid" && rc=0 || rc=$?
fi
pid=
exit "$rc"
