#!/usr/bin/env bash
#
# A private RabbitMQ node for warren's integration tests.
#
#   tests/broker.sh start DIR        start a node whose whole state lives in DIR
#   tests/broker.sh stop DIR         stop it and remove DIR (exit 0 if already gone)
#   tests/broker.sh ctl DIR ARGS...  run `rabbitmqctl ARGS...` against that node
#
# WARREN_BROKER_PORT=N fixes the AMQP port instead of picking a free one.
#
# Why a private node: the tests must not depend on, or disturb, a broker
# that happens to run on the machine (another engineer's suite, the system
# service).  So everything is private: free loopback ports for AMQP, for
# Erlang distribution and for epmd (a private epmd means stopping the node
# can also stop its epmd without pulling the rug from under anyone else's
# nodes), a unique node name, and mnesia, logs, config, plugin list and
# crash dumps all inside DIR.  Nothing listens beyond 127.0.0.1.
#
# After `start`, DIR holds:
#   uri       amqp://guest:guest@127.0.0.1:PORT/   (what the tests connect to)
#   node      the node name, e.g. warren-test-40123@localhost
#   env       the exported variables: `. DIR/env; rabbitmqctl -n "$(cat DIR/node)" ...`
#             reaches the node by hand (or use `broker.sh ctl DIR ...`)
#   pid       the launcher's pid (session leader of what we started)
#   beam.pid  the Erlang VM's pid (written by the node)
#   server.log, log/   the server's output and logs (shown when start fails)
#
# As root the node runs as the rabbitmq user (whose Erlang cookie rabbitmqctl
# then uses too), so DIR is handed to that user.  As anyone else it runs as
# the current user.
set -euo pipefail

readonly START_TIMEOUT=60 # seconds to wait for the node to boot
readonly STOP_TIMEOUT=30  # seconds to wait for it to go away

die() {
    echo "broker.sh: $*" >&2
    exit 1
}

usage() {
    echo "usage: $0 start DIR | stop DIR | ctl DIR RABBITMQCTL-ARGS..." >&2
    exit 64
}

# The real scripts.  Debian's /usr/sbin/rabbitmq-server and rabbitmqctl are
# wrappers that switch to the rabbitmq user through `su -c` (re-quoting our
# arguments for a shell) when run as root, and refuse to run as anyone
# else; we switch users ourselves instead, so use what they wrap when it
# is there.
if [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then
    SERVER=/usr/lib/rabbitmq/bin/rabbitmq-server
    CTL=/usr/lib/rabbitmq/bin/rabbitmqctl
else
    SERVER=$(command -v rabbitmq-server) || die "rabbitmq-server not found"
    CTL=$(command -v rabbitmqctl) || die "rabbitmqctl not found"
fi

# How to run a command as the node's owner: root hands the node to the
# rabbitmq user.  runuser keeps our environment (the RABBITMQ_* variables)
# but sets HOME, where the Erlang cookie lives.
RUNAS=()
if [ "$(id -u)" = 0 ] && id rabbitmq >/dev/null 2>&1; then
    RUNAS=(runuser -u rabbitmq --)
fi

# A free TCP port on 127.0.0.1: the kernel picks one for a socket bound to
# port 0.  (Racy in theory; a clash makes the start fail loudly, not hang.)
free_port() {
    local py p
    for py in python3 /usr/bin/python3; do
        if command -v "$py" >/dev/null 2>&1 &&
            p=$("$py" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])' 2>/dev/null); then
            echo "$p"
            return 0
        fi
    done
    # No python: probe random high ports with ss until one is not listening.
    for _ in $(seq 1 200); do
        p=$((20000 + RANDOM % 30000))
        if ! ss -Htln "sport = :$p" | grep -q .; then
            echo "$p"
            return 0
        fi
    done
    die "no free port found"
}

# Load DIR/env (the node's variables) into this shell.  Fails if there is no
# node description in DIR.
load_env() {
    [ -f "$1/env" ] || return 1
    # shellcheck disable=SC1091
    . "$1/env"
}

# rabbitmqctl against the node described by the loaded env.
ctl() {
    "${RUNAS[@]}" "$CTL" -q -n "$RABBITMQ_NODENAME" "$@"
}

# Is the node in DIR still running?  Either its launcher (the process we
# started, which waits for the server) or the Erlang VM (which may sit in
# a session of its own) counts.
node_alive() {
    local f pid
    for f in "$1/pid" "$1/beam.pid"; do
        pid=$(cat "$f" 2>/dev/null) || continue
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            return 0
        fi
    done
    return 1
}

# Start the node once.  Returns 0 when it is up, 2 when it lost a race for
# one of its ports (eaddrinuse: worth another try with fresh ones), and 1
# on any other failure, after showing the server log.  A failed node's
# processes are stopped; DIR stays for inspection (stop removes it).
start_once() {
    local dir=$1
    rm -rf "$dir"
    mkdir -p "$dir/mnesia" "$dir/log"

    local amqp_port dist_port epmd_port
    # WARREN_BROKER_PORT fixes the AMQP port (scripts/run-local.sh asks for
    # 5672, so clients' defaults reach the node); otherwise any free one.
    amqp_port=${WARREN_BROKER_PORT:-$(free_port)}
    dist_port=$(free_port)
    epmd_port=$(free_port)
    if [ "$amqp_port" = "$dist_port" ] || [ "$dist_port" = "$epmd_port" ] ||
        [ "$amqp_port" = "$epmd_port" ]; then
        return 2
    fi

    local node="warren-test-$amqp_port@localhost"

    # No plugins (fast boot, nothing listening beyond AMQP), and config
    # files of our own so /etc/rabbitmq never leaks in.
    echo '[].' >"$dir/enabled_plugins"
    cat >"$dir/rabbitmq.conf" <<'EOF2'
# Private test node (tests/broker.sh).  guest may log in from anywhere: we
# only listen on 127.0.0.1 anyway.
loopback_users = none
EOF2
    : >"$dir/rabbitmq-env.conf"

    # Everything the server and rabbitmqctl need to find this node.  Written
    # to DIR/env as well, so stop, ctl and a human can reach it later.
    cat >"$dir/env" <<EOF2
export RABBITMQ_NODENAME=$node
export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
export RABBITMQ_NODE_PORT=$amqp_port
export RABBITMQ_DIST_PORT=$dist_port
export RABBITMQ_MNESIA_BASE=$dir/mnesia
export RABBITMQ_LOG_BASE=$dir/log
export RABBITMQ_PID_FILE=$dir/beam.pid
export RABBITMQ_CONFIG_FILE=$dir/rabbitmq.conf
export RABBITMQ_ADVANCED_CONFIG_FILE=$dir/advanced.config
export RABBITMQ_CONF_ENV_FILE=$dir/rabbitmq-env.conf
export RABBITMQ_ENABLED_PLUGINS_FILE=$dir/enabled_plugins
export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
export ERL_EPMD_ADDRESS=127.0.0.1
export ERL_EPMD_PORT=$epmd_port
EOF2
    echo "amqp://guest:guest@127.0.0.1:$amqp_port/" >"$dir/uri"
    echo "$node" >"$dir/node"
    load_env "$dir"

    if [ ${#RUNAS[@]} -gt 0 ]; then
        # The node's owner must own its state and be able to reach DIR.
        chown -R rabbitmq: "$dir"
        "${RUNAS[@]}" test -w "$dir" ||
            die "$dir: not reachable by the rabbitmq user (check the parent directories' permissions)"
    fi

    # setsid: the server gets a session of its own, so it survives our exit
    # and no terminal signal reaches it.  It runs in DIR, where an
    # erl_crash.dump would land.
    (cd "$dir" && exec setsid "${RUNAS[@]}" "$SERVER") >"$dir/server.log" 2>&1 </dev/null &
    local pid=$!
    echo "$pid" >"$dir/pid"

    # await_startup waits for a node that is up; before the node has
    # registered with epmd it fails at once, hence the outer loop.
    local deadline=$((SECONDS + START_TIMEOUT))
    while :; do
        if ! kill -0 "$pid" 2>/dev/null; then
            kill_node "$dir"
            if grep -q eaddrinuse "$dir/server.log"; then
                echo "broker.sh: a port was taken meanwhile; trying others" >&2
                return 2
            fi
            echo "broker.sh: rabbitmq-server exited during startup; server log:" >&2
            tail -n 40 "$dir/server.log" >&2 || true
            return 1
        fi
        if ctl await_startup --timeout 5 >/dev/null 2>&1; then
            break
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "broker.sh: node $node not up within ${START_TIMEOUT}s; server log:" >&2
            tail -n 40 "$dir/server.log" >&2 || true
            kill_node "$dir"
            return 1
        fi
        sleep 0.5
    done
    echo "broker.sh: $node up, $(cat "$dir/uri")"
}

cmd_start() {
    local dir=$1 rc
    if node_alive "$dir"; then
        die "$dir: a node is already running there (stop it first)"
    fi
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd) # absolute: the node must find it from anywhere
    for _ in 1 2 3; do
        # In a subshell with errexit on: `start_once || ...` would switch
        # errexit off inside it.
        set +e
        (
            set -e
            start_once "$dir"
        )
        rc=$?
        set -e
        [ "$rc" = 2 ] || break
    done
    [ "$rc" = 0 ] || exit 1
}

# Stop the node described by the loaded env and DIR, and its private epmd.
# Fine if they are already gone.
kill_node() {
    local dir=$1 f pid
    # Ask politely first.
    if node_alive "$dir"; then
        ctl stop >/dev/null 2>&1 || true
        local deadline=$((SECONDS + STOP_TIMEOUT))
        while node_alive "$dir" && [ "$SECONDS" -lt "$deadline" ]; do
            sleep 0.2
        done
    fi
    # Whatever is left (a hung VM, the launcher) goes now.  The VM's port
    # helpers (erl_child_setup, inet_gethost) exit by themselves when the
    # VM is gone.
    for f in beam.pid pid; do
        pid=$(cat "$dir/$f" 2>/dev/null) || continue
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done

    # The private epmd daemonized itself out of our reach; it serves only
    # this node, so it goes too: ask it by its port, then make sure by the
    # pid listening there.
    if [ -n "${ERL_EPMD_PORT:-}" ]; then
        epmd -port "$ERL_EPMD_PORT" -kill >/dev/null 2>&1 || true
        for pid in $(ss -Htlnp "sport = :$ERL_EPMD_PORT" 2>/dev/null |
            sed -n 's/.*"epmd",pid=\([0-9]*\).*/\1/p' | sort -u); do
            kill "$pid" 2>/dev/null || true
        done
    fi
}

cmd_stop() {
    local dir=$1
    if load_env "$dir" 2>/dev/null; then
        kill_node "$dir"
    fi
    rm -rf "$dir"
}

cmd_ctl() {
    local dir=$1
    shift
    load_env "$dir" || die "$dir: no node there (run: $0 start $dir)"
    ctl "$@"
}

[ $# -ge 2 ] || usage
case $1 in
start)
    [ $# -eq 2 ] || usage
    cmd_start "$2"
    ;;
stop)
    [ $# -eq 2 ] || usage
    cmd_stop "$2"
    ;;
ctl)
    dir=$2
    shift 2
    cmd_ctl "$dir" "$@"
    ;;
*) usage ;;
esac
