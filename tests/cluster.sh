#!/usr/bin/env bash
#
# A private 3-node RabbitMQ cluster on loopback, for warren's failover
# tests.
#
#   tests/cluster.sh start DIR          start nodes 1-3, cluster them, wait for all three
#   tests/cluster.sh stop DIR           stop them all, remove their state and DIR
#   tests/cluster.sh stop-node DIR N    stop node N (1-3), keeping its state
#   tests/cluster.sh start-node DIR N   start node N again; it rejoins the cluster
#   tests/cluster.sh ctl DIR N ARGS...  rabbitmqctl ARGS against node N
#
# Each node is a tests/broker.sh node in DIR/N (its own AMQP and
# distribution ports, state dir, logs; see broker.sh), started with two
# knobs broker.sh has for this: one shared private Erlang cookie, and one
# shared epmd on a free loopback port (ERL_EPMD_ADDRESS=127.0.0.1: Erlang
# nodes find each other through epmd, so cluster members need the same
# one; it serves only these three nodes and `stop` kills it).  Nodes 2 and
# 3 join node 1 (join_cluster); start returns once cluster_status lists
# all three as running.
#
# After start, DIR holds 1/, 2/, 3/ (broker.sh handle dirs: uri, env,
# node, ...), uris (the three AMQP URIs, space-separated, on one line:
# what `-o broker.uri=` takes), cookie and epmd_port.
set -euo pipefail

readonly NODES=3
readonly CLUSTER_TIMEOUT=120 # seconds for the three to show as running

HERE=$(cd "$(dirname "$0")" && pwd)
BROKER=$HERE/broker.sh

die() {
    echo "cluster.sh: $*" >&2
    exit 1
}

usage() {
    echo "usage: $0 start DIR | stop DIR | stop-node DIR N | start-node DIR N | ctl DIR N ARGS..." >&2
    exit 64
}

# A free loopback port for the shared epmd (the kernel picks one).
free_port() {
    local py
    for py in python3 /usr/bin/python3; do
        if command -v "$py" >/dev/null 2>&1 &&
            "$py" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])' 2>/dev/null; then
            return 0
        fi
    done
    echo $((20000 + RANDOM % 30000))
}

# How many of the cluster's nodes node N sees running.
running_count() {
    "$BROKER" ctl "$1/$2" cluster_status --formatter json 2>/dev/null |
        grep -o '"running_nodes":\[[^]]*\]' | grep -o '@' | wc -l
}

wait_running() {
    local dir=$1 n=$2 deadline=$((SECONDS + CLUSTER_TIMEOUT))
    while [ "$(running_count "$dir" "$n")" != "$NODES" ]; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            "$BROKER" ctl "$dir/$n" cluster_status >&2 || true
            die "the cluster did not show $NODES running nodes within ${CLUSTER_TIMEOUT}s"
        fi
        sleep 1
    done
}

cmd_start() {
    local dir=$1 n
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [ -f "$dir/uris" ] || [ -d "$dir/1" ]; then
        for n in $(seq 1 $NODES); do
            if "$BROKER" ctl "$dir/$n" status >/dev/null 2>&1; then
                die "$dir: a cluster is running there (stop it first: $0 stop '$dir')"
            fi
        done
        cmd_stop "$dir" # the remains of a run that was killed
        mkdir -p "$dir"
    fi
    od -An -N20 -tx1 /dev/urandom | tr -d ' \n' | tr a-f A-F >"$dir/cookie"
    free_port >"$dir/epmd_port"
    export WARREN_BROKER_COOKIE WARREN_BROKER_EPMD_PORT
    WARREN_BROKER_COOKIE=$(cat "$dir/cookie")
    WARREN_BROKER_EPMD_PORT=$(cat "$dir/epmd_port")
    # One at a time: the first starts the shared epmd, and each start
    # picks its free ports without racing the others.
    for n in $(seq 1 $NODES); do
        "$BROKER" start "$dir/$n" || {
            cmd_stop "$dir"
            die "node $n did not start"
        }
    done
    for n in $(seq 2 $NODES); do
        if ! { "$BROKER" ctl "$dir/$n" stop_app &&
            "$BROKER" ctl "$dir/$n" join_cluster "$(cat "$dir/1/node")" &&
            "$BROKER" ctl "$dir/$n" start_app; }; then
            cmd_stop "$dir"
            die "node $n could not join node 1"
        fi
    done
    wait_running "$dir" 1
    local uris=
    for n in $(seq 1 $NODES); do
        uris="$uris${uris:+ }$(cat "$dir/$n/uri")"
    done
    echo "$uris" >"$dir/uris"
    echo "cluster.sh: $NODES nodes running: $uris"
}

cmd_stop() {
    local dir=$1 n port
    [ -d "$dir" ] || return 0
    for n in $(seq $NODES -1 1); do
        "$BROKER" stop "$dir/$n" || true
    done
    if port=$(cat "$dir/epmd_port" 2>/dev/null) && [ -n "$port" ]; then
        epmd -port "$port" -kill >/dev/null 2>&1 || true
        for pid in $(ss -Htlnp "sport = :$port" 2>/dev/null |
            sed -n 's/.*"epmd",pid=\([0-9]*\).*/\1/p' | sort -u); do
            kill "$pid" 2>/dev/null || true
        done
    fi
    rm -f "$dir/uris" "$dir/cookie" "$dir/epmd_port"
    rmdir "$dir" 2>/dev/null || true # left in place if a failed start kept logs
}

node_arg() {
    case $1 in
    [1-9]) [ "$1" -le $NODES ] || usage ;;
    *) usage ;;
    esac
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
stop-node)
    [ $# -eq 3 ] || usage
    node_arg "$3"
    "$BROKER" halt "$2/$3"
    echo "cluster.sh: node $3 ($(cat "$2/$3/node")) stopped"
    ;;
start-node)
    [ $# -eq 3 ] || usage
    node_arg "$3"
    "$BROKER" resume "$2/$3"
    ;;
ctl)
    [ $# -ge 4 ] || usage
    node_arg "$3"
    dir=$2 n=$3
    shift 3
    "$BROKER" ctl "$dir/$n" "$@"
    ;;
*) usage ;;
esac
