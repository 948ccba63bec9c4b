#!/usr/bin/env bash
# tests/broker.sh from a checkout nobody else may enter, as a new user has
# it (`git clone` into /root or a 0700 /home/NAME), under a path with
# spaces:
#
#   tests/broker_private_dir_test.sh [BROKER_SH]     (default: next to this file)
#
# 1. start a node with DIR = <0700 dir>/private home/a b/broker, check it
#    answers rabbitmqctl and AMQP, listens on loopback only and has a cookie
#    of its own; stop it; nothing of it may be left (VM, epmd, state dir,
#    DIR);
# 2. as root, the same as an unprivileged user (nobody) in a 0700 dir of
#    its own, with a copy of broker.sh (the checkout may be out of its
#    reach, like /root);
# 3. WARREN_BROKER_PORT set to a port something else listens on: start
#    fails at once, saying so, and leaves nothing running.
set -euo pipefail

broker_sh=${1:-$(cd "$(dirname "$0")" && pwd)/broker.sh}
base=$(mktemp -d /tmp/warren-private-dir-test.XXXXXX)
chmod 700 "$base"
listener=
cleanup() {
    [ -n "$listener" ] && kill "$listener" 2>/dev/null
    # Whatever a failed check left behind (the helper's own stop, as
    # whoever ran it).
    local d
    for d in "$base/private home/a b/broker" "$base/nobody/x y/broker" "$base/taken/broker"; do
        [ -f "$d/env" ] || continue
        if [ -O "$d/env" ]; then
            "$broker_sh" stop "$d" >/dev/null 2>&1 || true
        else
            runuser -u nobody -- "$base/nobody/broker.sh" stop "$d" >/dev/null 2>&1 || true
        fi
    done
    rm -rf "$base"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# Is anything listening on 127.0.0.1:PORT?
listening() {
    ss -Htln "sport = :$1" | grep -q .
}

# Pids of live processes whose environment holds STRING (what the node
# and its epmd inherit from broker.sh).  Root sees all; others their own.
procs_with() {
    local f pid
    for f in /proc/[0-9]*/environ; do
        pid=${f#/proc/}
        pid=${pid%/environ}
        if [ "$pid" = "$$" ] || [ "$pid" = "$BASHPID" ]; then
            continue
        fi
        if grep -qzxF -- "$1" "$f" 2>/dev/null; then
            [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z ] || echo "$pid"
        fi
    done
}

# exercise AS BROKER_SH DIR: the whole start → use → stop → nothing-left
# round, running broker.sh as user AS ("" = the current user).
exercise() {
    local as=$1 sh=$2 dir=$3
    local run=()
    [ -n "$as" ] && run=(runuser -u "$as" --)
    local who=${as:-$(id -un)}

    "${run[@]}" "$sh" start "$dir" || fail "start as $who in '$dir'"
    local uri port node beam epmd_port state
    uri=$(cat "$dir/uri") || fail "no $dir/uri"
    node=$(cat "$dir/node") || fail "no $dir/node"
    port=${uri##*:}
    port=${port%%/*}
    # shellcheck disable=SC1091
    epmd_port=$(. "$dir/env" && echo "$ERL_EPMD_PORT")
    beam=$(cat "$dir/beam.pid" 2>/dev/null || true)
    state=$(cat "$dir/state" 2>/dev/null || true)
    [ -n "$(procs_with "RABBITMQ_NODENAME=$node")" ] || fail "procs_with finds no process of $node"

    # It answers: rabbitmqctl, and the AMQP handshake (the server's
    # connection.start frame names the product).
    "${run[@]}" "$sh" ctl "$dir" status >/dev/null || fail "ctl status as $who"
    "${run[@]}" "$sh" ctl "$dir" list_queues >/dev/null || fail "ctl list_queues as $who"
    local reply
    reply=$(
        exec 3<>"/dev/tcp/127.0.0.1/$port"
        printf 'AMQP\0\0\x09\x01' >&3
        timeout 2 cat <&3 >"$base/handshake" || true
        tr -c '[:alnum:]' ' ' <"$base/handshake"
    ) || true
    case $reply in
    *RabbitMQ*) ;;
    *) fail "no AMQP handshake on 127.0.0.1:$port (got: $reply)" ;;
    esac

    # Loopback only, and a cookie of its own (not the system broker's, not
    # the invoking user's).
    if [ -z "$beam" ] || ! kill -0 "$beam" 2>/dev/null; then
        fail "no live VM pid in $dir/beam.pid"
    fi
    local addrs
    addrs=$(ss -Htlnp | grep "pid=$beam," | awk '{print $4}')
    [ -n "$addrs" ] || fail "the VM listens nowhere?"
    if grep -qv '^127\.0\.0\.1:' <<<"$addrs"; then
        fail "the node listens beyond loopback: $addrs"
    fi
    local cookie
    cookie=$("${run[@]}" "$sh" ctl "$dir" eval 'erlang:get_cookie().') || fail "ctl eval as $who"
    for f in /var/lib/rabbitmq/.erlang.cookie ~/.erlang.cookie; do
        if [ -r "$f" ] && [ "$cookie" = "'$(cat "$f")'" ]; then
            fail "the node uses the cookie of $f"
        fi
    done

    "${run[@]}" "$sh" stop "$dir" || fail "stop as $who"
    ! kill -0 "$beam" 2>/dev/null || fail "the VM ($beam) still runs after stop"
    local left
    left=$(procs_with "RABBITMQ_NODENAME=$node")
    [ -z "$left" ] || fail "processes of $node still run after stop: $left"
    ! listening "$port" || fail "127.0.0.1:$port still listens after stop"
    ! listening "$epmd_port" || fail "the node's epmd (port $epmd_port) still runs after stop"
    [ -z "$state" ] || [ ! -e "$state" ] || fail "state dir $state left after stop"
    [ ! -e "$dir" ] || fail "$dir left after stop"
    echo "ok: node as $who in '$dir' started, answered, stopped, nothing left"
}

# 1. The invoking user, a 0700 dir with a space in its name, and a
#    space in DIR itself.
mkdir -p "$base/private home/a b"
chmod 700 "$base/private home"
exercise "" "$broker_sh" "$base/private home/a b/broker"

# 2. As root, an unprivileged user too.
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1 && command -v runuser >/dev/null; then
    mkdir -p "$base/nobody/x y"
    cp "$broker_sh" "$base/nobody/broker.sh"
    chown -R nobody: "$base/nobody"
    chmod 700 "$base/nobody"
    chmod 711 "$base" # nobody may pass through to its own dir, see nothing else
    exercise nobody "$base/nobody/broker.sh" "$base/nobody/x y/broker"
    chmod 700 "$base"
fi

# 3. A fixed AMQP port that something else (not RabbitMQ) holds: a clear
#    error, quickly, and nothing left running.
if command -v python3 >/dev/null; then
    py=python3
else
    py=
fi
if [ -n "$py" ]; then
    "$py" -c 'import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen()
print(s.getsockname()[1], flush=True)
time.sleep(600)' >"$base/taken.port" &
    listener=$!
    for _ in $(seq 50); do [ -s "$base/taken.port" ] && break; sleep 0.1; done
    taken=$(cat "$base/taken.port")
    [ -n "$taken" ] || fail "no listener for the taken-port case"
    start=$SECONDS
    if WARREN_BROKER_PORT=$taken timeout 60 "$broker_sh" start "$base/taken/broker" 2>"$base/taken.err"; then
        fail "start succeeded on a port something else holds"
    fi
    [ $((SECONDS - start)) -le 30 ] || fail "start took $((SECONDS - start)) s to give up on a taken port"
    grep -q "127.0.0.1:$taken" "$base/taken.err" ||
        fail "the error does not name 127.0.0.1:$taken: $(cat "$base/taken.err")"
    left=$(procs_with "RABBITMQ_NODE_PORT=$taken")
    [ -z "$left" ] || fail "a node for port $taken runs: $left"
    echo "ok: taken port $taken refused: $(head -n 1 "$base/taken.err")"
fi
# 4. A node that fails to boot (here: a config it cannot parse, in a copy
#    of broker.sh): start fails, nothing is left running, and its logs stay
#    in DIR, even after the stop a test fixture runs next.
grep -q '^loopback_users = none$' "$broker_sh" || fail "no config line to break in $broker_sh"
sed 's/^loopback_users = none$/loopback_users = = broken/' "$broker_sh" >"$base/bad-broker.sh"
chmod +x "$base/bad-broker.sh"
dir="$base/private home/failed start/broker"
if "$base/bad-broker.sh" start "$dir" 2>"$base/failed.err"; then
    fail "a node with a broken config started"
fi
grep -q "failed_to_prepare_configuration" "$dir/server.log" ||
    fail "no server log in '$dir' after a failed start: $(cat "$base/failed.err")"
grep -qF "kept in $dir/server.log" "$base/failed.err" || fail "start does not say where the logs are"
"$base/bad-broker.sh" stop "$dir" || fail "stop after a failed start"
[ -f "$dir/server.log" ] || fail "stop removed a failed start's log"
node=$(sed -n 's/^broker.sh: node \([^ ]*\) exited during startup.*/\1/p' "$base/failed.err")
[ -n "$node" ] || fail "start does not name the node that failed: $(cat "$base/failed.err")"
left=$(procs_with "RABBITMQ_NODENAME=$node")
[ -z "$left" ] || fail "a failed node's processes still run: $left"
echo "ok: failed start left its log in '$dir' and nothing running"

echo "broker private dir test: OK"
