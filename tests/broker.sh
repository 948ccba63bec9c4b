#!/usr/bin/env bash
#
# A private RabbitMQ node for warren's integration tests and
# scripts/run-local.sh.
#
#   tests/broker.sh start DIR        start a node; DIR gets the handle files
#   tests/broker.sh stop DIR         stop it, remove its state and DIR (exit 0 if already gone)
#   tests/broker.sh ctl DIR ARGS...  run `rabbitmqctl ARGS...` against that node
#   tests/broker.sh restart DIR      stop the node, keeping its state (durable queues,
#                                    persistent messages), and start it again on the
#                                    same ports (for the fault tests)
#   tests/broker.sh halt DIR         stop the node but keep its state and DIR
#   tests/broker.sh resume DIR       start a halted node again, same name, ports and state
#
# WARREN_BROKER_PORT=N fixes the AMQP port instead of picking a free one.
# WARREN_BROKER_ERL_ARGS=... adds Erlang VM flags (e.g. "+sbwt none" to
# try the broker without its schedulers' busy wait, when profiling).
# For a cluster (tests/cluster.sh), two more knobs at start:
# WARREN_BROKER_EPMD_PORT=N makes the node use the epmd on that port (its
# peers' too: Erlang nodes find each other through one epmd) and leave it
# running when the node stops; WARREN_BROKER_COOKIE=TEXT is the Erlang
# cookie instead of a random one (cluster members must share it).
# WARREN_BROKER_TLS=CERTDIR adds a TLS listener on another free loopback
# port, with CERTDIR's ca.pem (the CA clients' certificates must chain to),
# server.pem and server.key (copied into the node's state dir); DIR/amqps_uri
# then names it.  WARREN_BROKER_TLS_PEER=required makes the node demand a
# client certificate (ssl_options.fail_if_no_peer_cert = true); without it
# the node asks for none.
#
# Why a private node: the tests must not depend on, or disturb, a broker
# that happens to run on the machine (another engineer's suite, the system
# service).  So everything is private: free loopback ports for AMQP, for
# Erlang distribution and for epmd (a private epmd means stopping the node
# can also stop its epmd without pulling the rug from under anyone else's
# nodes), a unique node name, an Erlang cookie of its own, and mnesia,
# logs, config, plugin list and crash dumps of its own.  Nothing listens
# beyond 127.0.0.1.
#
# Where it lives, and who runs it.  DIR is wherever the caller wants it,
# typically inside a checkout, and a checkout may sit anywhere: in /root or
# a 0700 /home/NAME (Debian 12's default), under a path with spaces.  So:
#   - The node runs as the invoking user, root included.  (Debian's
#     /usr/sbin wrappers would hand it to the rabbitmq user, who cannot
#     enter a 0700 home; we call the scripts they wrap instead.)
#   - Its whole state lives in a fresh `mktemp -d /tmp/warren-broker.XXXXXX`
#     (mode 0700, no spaces: RabbitMQ's scripts and Erlang's argument
#     passing are not safe with them), which is also the HOME of the server
#     and of rabbitmqctl: that is where both read the node's cookie, so the
#     cookie is private too.
#   - DIR holds only handles, so its path never reaches Erlang.
# stop removes the state dir and DIR.  A start that fails copies the logs
# into DIR and removes the state dir; `stop` then leaves DIR (now only
# logs) in place, so the logs survive the test fixture's cleanup and stay
# findable until the next start in DIR.
#
# After `start`, DIR holds:
#   uri       amqp://guest:guest@127.0.0.1:PORT/   (what the tests connect to)
#   amqp10_uri  amqp://guest:guest@127.0.0.1:PORT  (AMQP 1.0 clients: the
#             rabbitmq_amqp1_0 plugin answers on the same port)
#   amqps_uri amqps://guest:guest@127.0.0.1:TLSPORT/ (only with WARREN_BROKER_TLS)
#   node      the node name, e.g. warren-test-40123@localhost
#   state     the path of the state dir
#   env       the exported variables: `. DIR/env; HOME=$WARREN_BROKER_STATE
#             rabbitmqctl -n "$RABBITMQ_NODENAME" ...` reaches the node by
#             hand (or use `broker.sh ctl DIR ...`)
#   pid       the launcher's pid (session leader of what we started)
#   beam.pid  the Erlang VM's pid
#   server.log  the server's stdout and stderr
#   log       a link to the node's log dir (a copy of it after a failed start)
set -euo pipefail

readonly START_TIMEOUT=60 # seconds to wait for the node to boot
readonly STOP_TIMEOUT=30  # seconds to wait for it to go away
readonly STATE_PARENT=/tmp

die() {
    echo "broker.sh: $*" >&2
    exit 1
}

usage() {
    echo "usage: $0 start DIR | stop DIR | restart DIR | ctl DIR RABBITMQCTL-ARGS... | halt DIR | resume DIR" >&2
    exit 64
}

# The real scripts.  Debian's /usr/sbin/rabbitmq-server and rabbitmqctl are
# wrappers that switch to the rabbitmq user when run as root (and refuse to
# run as anyone else): use what they wrap when it is there.
if [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then
    SERVER=/usr/lib/rabbitmq/bin/rabbitmq-server
    CTL=/usr/lib/rabbitmq/bin/rabbitmqctl
else
    SERVER=$(command -v rabbitmq-server) ||
        die "rabbitmq-server not found (Debian: apt-get install rabbitmq-server, or run scripts/deps.sh)"
    CTL=$(command -v rabbitmqctl) || die "rabbitmqctl not found"
fi

# Is anything listening on 127.0.0.1:PORT (or on every address)?
listening() {
    ss -Htln "sport = :$1" 2>/dev/null | awk '{print $4}' |
        grep -Eq "^(127\.0\.0\.1|0\.0\.0\.0|\*|\[::\]|\[::ffff:127\.0\.0\.1\]):$1\$"
}

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
        if ! listening "$p"; then
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

# rabbitmqctl against the node described by the loaded env; HOME is the
# state dir, where the node's cookie is.
ctl() {
    HOME=${WARREN_BROKER_STATE:-$HOME} "$CTL" -q -n "$RABBITMQ_NODENAME" "$@"
}

# Is the node in DIR still running?  Either its launcher (the process we
# started, which waits for the server) or the Erlang VM (which may sit in
# a session of its own) counts.
node_alive() {
    local f pid
    for f in "$1/pid" "${WARREN_BROKER_STATE:-/nonexistent}/beam.pid"; do
        pid=$(cat "$f" 2>/dev/null) || continue
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            return 0
        fi
    done
    return 1
}

# A start failed: the node is gone; keep its logs in DIR (which then holds
# only logs: no env, so stop leaves it alone) and drop the state dir.
keep_failure_logs() {
    local dir=$1 state=$WARREN_BROKER_STATE
    rm -f "$dir/log" "$dir/env" "$dir/uri" "$dir/amqp10_uri" "$dir/amqps_uri" "$dir/node" "$dir/state" "$dir/pid" "$dir/beam.pid"
    if [ -d "$state/log" ]; then
        cp -r "$state/log" "$dir/log"
    fi
    local kept="$dir/server.log and $dir/log/"
    if [ -f "$state/erl_crash.dump" ]; then
        cp "$state/erl_crash.dump" "$dir/"
        kept="$dir/server.log, $dir/log/ and $dir/erl_crash.dump"
    fi
    rm -rf "$state"
    echo "broker.sh: the node's logs are kept in $kept" >&2
}

# Start the node once.  Returns 0 when it is up, 2 when it lost a race for
# one of its random ports (eaddrinuse: worth another try with fresh ones),
# and 1 on any other failure, after showing the server log.  A failed
# node's processes are stopped and its state dir removed; its logs stay in
# DIR.
start_once() {
    local dir=$1
    mkdir -p "$dir"
    rm -rf "$dir/log" "$dir/server.log" "$dir/erl_crash.dump"

    # A fixed port must be free: refuse at once rather than let the node
    # try, fail and leave the caller guessing.
    if [ -n "${WARREN_BROKER_PORT:-}" ] && listening "$WARREN_BROKER_PORT"; then
        local who
        who=$(ss -Htlnp "sport = :$WARREN_BROKER_PORT" 2>/dev/null |
            sed -n 's/.*users:((\("[^"]*"\),pid=\([0-9]*\).*/\1, pid \2/p' | head -n 1)
        echo "broker.sh: 127.0.0.1:$WARREN_BROKER_PORT is already in use${who:+ (by $who)}; cannot start a node there" >&2
        return 1
    fi

    local amqp_port dist_port epmd_port
    # WARREN_BROKER_PORT fixes the AMQP port (scripts/run-local.sh asks for
    # 5672, so clients' defaults reach the node); otherwise any free one.
    amqp_port=${WARREN_BROKER_PORT:-$(free_port)}
    dist_port=$(free_port)
    epmd_port=${WARREN_BROKER_EPMD_PORT:-$(free_port)}
    if [ "$amqp_port" = "$dist_port" ] || [ "$dist_port" = "$epmd_port" ] ||
        [ "$amqp_port" = "$epmd_port" ]; then
        return 2
    fi

    local node="warren-test-$amqp_port@localhost" state
    state=$(mktemp -d "$STATE_PARENT/warren-broker.XXXXXX") || die "cannot create a state dir in $STATE_PARENT"
    mkdir "$state/mnesia" "$state/log"
    # The pointer first: from here on, stop finds what to clean up (even if
    # we are interrupted during the start).
    echo "$state" >"$dir/state"

    # A cookie of its own, read by the server and rabbitmqctl from HOME.
    if [ -n "${WARREN_BROKER_COOKIE:-}" ]; then
        printf '%s' "$WARREN_BROKER_COOKIE" >"$state/.erlang.cookie"
    else
        od -An -N20 -tx1 /dev/urandom | tr -d ' \n' | tr a-f A-F >"$state/.erlang.cookie"
    fi
    chmod 400 "$state/.erlang.cookie"

    # One plugin, rabbitmq_amqp1_0 (the AMQP 1.0 clients' tests): in 3.x
    # it listens on no port of its own but answers AMQP 1.0 on the AMQP
    # port (the protocol header picks it), so still nothing listens beyond
    # AMQP.  Config files of our own so /etc/rabbitmq never leaks in.
    echo '[rabbitmq_amqp1_0].' >"$state/enabled_plugins"
    cat >"$state/rabbitmq.conf" <<'EOF2'
# Private node (tests/broker.sh).  guest may log in from anywhere: we
# only listen on 127.0.0.1 anyway.
loopback_users = none
# AMQP 1.0 clients (same port as AMQP 0-9-1) log in as guest, vhost /.
amqp1_0.default_user = guest
amqp1_0.default_vhost = /
EOF2
    : >"$state/rabbitmq-env.conf"
    # Quorum queues (warren's default) report their counts to list_queues
    # on each Ra tick, every 5 s by default: tick every 200 ms so the
    # tests' polls of messages_unacknowledged and consumers see the present.
    echo '[{rabbit, [{quorum_tick_interval, 200}]}].' >"$state/advanced.config"

    # TLS (WARREN_BROKER_TLS): the certificates are copied in, so their
    # path never reaches Erlang.
    local tls_port=
    if [ -n "${WARREN_BROKER_TLS:-}" ]; then
        tls_port=$(free_port)
        if [ "$tls_port" = "$amqp_port" ] || [ "$tls_port" = "$dist_port" ] ||
            [ "$tls_port" = "$epmd_port" ]; then
            rm -rf "$state" "$dir/state"
            return 2
        fi
        mkdir "$state/tls"
        cp "$WARREN_BROKER_TLS/ca.pem" "$WARREN_BROKER_TLS/server.pem" \
            "$WARREN_BROKER_TLS/server.key" "$state/tls/" ||
            die "WARREN_BROKER_TLS=$WARREN_BROKER_TLS: needs ca.pem, server.pem and server.key"
        local peer="verify = verify_none"
        if [ "${WARREN_BROKER_TLS_PEER:-}" = required ]; then
            peer="verify = verify_peer
ssl_options.fail_if_no_peer_cert = true"
        fi
        cat >>"$state/rabbitmq.conf" <<EOF2
# TLS (WARREN_BROKER_TLS)
listeners.ssl.default = 127.0.0.1:$tls_port
ssl_options.cacertfile = $state/tls/ca.pem
ssl_options.certfile = $state/tls/server.pem
ssl_options.keyfile = $state/tls/server.key
ssl_options.$peer
EOF2
    fi

    # Everything the server and rabbitmqctl need to find this node.  Written
    # to DIR/env as well, so stop, ctl and a human can reach it later.
    # (Only $state paths: no spaces, nothing to quote.)
    cat >"$dir/env" <<EOF2
export WARREN_BROKER_STATE=$state
export RABBITMQ_NODENAME=$node
export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
export RABBITMQ_NODE_PORT=$amqp_port
export RABBITMQ_DIST_PORT=$dist_port
export RABBITMQ_MNESIA_BASE=$state/mnesia
export RABBITMQ_LOG_BASE=$state/log
export RABBITMQ_PID_FILE=$state/beam.pid
export RABBITMQ_CONFIG_FILE=$state/rabbitmq.conf
export RABBITMQ_ADVANCED_CONFIG_FILE=$state/advanced.config
export RABBITMQ_CONF_ENV_FILE=$state/rabbitmq-env.conf
export RABBITMQ_ENABLED_PLUGINS_FILE=$state/enabled_plugins
export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}${WARREN_BROKER_ERL_ARGS:+ $WARREN_BROKER_ERL_ARGS}"
export ERL_CRASH_DUMP=$state/erl_crash.dump
export ERL_EPMD_ADDRESS=127.0.0.1
export ERL_EPMD_PORT=$epmd_port
export WARREN_BROKER_SHARED_EPMD=${WARREN_BROKER_EPMD_PORT:+1}
EOF2
    echo "amqp://guest:guest@127.0.0.1:$amqp_port/" >"$dir/uri"
    echo "amqp://guest:guest@127.0.0.1:$amqp_port" >"$dir/amqp10_uri"
    if [ -n "$tls_port" ]; then
        echo "amqps://guest:guest@127.0.0.1:$tls_port/" >"$dir/amqps_uri"
    fi
    echo "$node" >"$dir/node"
    ln -s "$state/log" "$dir/log"
    load_env "$dir"

    # setsid: the server gets a session of its own, so it survives our exit
    # and no terminal signal (Ctrl-C) reaches it: its owner stops it.  It
    # runs in the state dir, with that as HOME.
    (cd "$state" && HOME=$state exec setsid "$SERVER") >"$dir/server.log" 2>&1 </dev/null &
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
                rm -rf "$state" "$dir/state" "$dir/env"
                return 2
            fi
            echo "broker.sh: node $node exited during startup; server log:" >&2
            tail -n 40 "$dir/server.log" >&2 || true
            keep_failure_logs "$dir"
            return 1
        fi
        if ctl await_startup --timeout 5 >/dev/null 2>&1; then
            break
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "broker.sh: node $node not up within ${START_TIMEOUT}s; server log:" >&2
            tail -n 40 "$dir/server.log" >&2 || true
            kill_node "$dir"
            keep_failure_logs "$dir"
            return 1
        fi
        sleep 0.5
    done
    cp "$state/beam.pid" "$dir/beam.pid" 2>/dev/null || true
    echo "broker.sh: $node up, $(cat "$dir/uri") (state in $state)"
}

cmd_start() {
    local dir=$1 rc
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd) # absolute: ctl and stop must find it from anywhere
    if load_env "$dir" 2>/dev/null; then
        if node_alive "$dir"; then
            die "$dir: a node is already running there (stop it first: $0 stop '$dir')"
        fi
        cmd_stop "$dir" # the remains of a run that was killed
        mkdir -p "$dir"
    fi
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
    for f in "${WARREN_BROKER_STATE:-/nonexistent}/beam.pid" "$dir/beam.pid" "$dir/pid"; do
        pid=$(cat "$f" 2>/dev/null) || continue
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done

    # The private epmd daemonized itself out of our reach; it serves only
    # this node, so it goes too: ask it by its port, then make sure by the
    # pid listening there.
    if [ -n "${ERL_EPMD_PORT:-}" ] && [ -z "${WARREN_BROKER_SHARED_EPMD:-}" ]; then
        epmd -port "$ERL_EPMD_PORT" -kill >/dev/null 2>&1 || true
        for pid in $(ss -Htlnp "sport = :$ERL_EPMD_PORT" 2>/dev/null |
            sed -n 's/.*"epmd",pid=\([0-9]*\).*/\1/p' | sort -u); do
            kill "$pid" 2>/dev/null || true
        done
    fi
}

# Stop the node in DIR, remove its state dir and DIR.  A DIR without a node
# description is left alone when it holds a failed start's logs (they are
# kept for reading), removed when it is empty.
cmd_stop() {
    local dir=$1 state=
    [ -d "$dir" ] || return 0
    if load_env "$dir" 2>/dev/null; then
        kill_node "$dir"
        if [ -z "${WARREN_BROKER_STATE:-}" ]; then
            rm -rf "$dir" # the old layout: the node's state was in DIR
            return 0
        fi
        state=$WARREN_BROKER_STATE
    elif [ -f "$dir/state" ]; then
        state=$(cat "$dir/state") # interrupted before env was written
    fi
    case $state in
    "$STATE_PARENT"/warren-broker.*) rm -rf "$state" ;;
    esac
    rm -f "$dir/env" "$dir/uri" "$dir/amqp10_uri" "$dir/amqps_uri" "$dir/node" "$dir/state" "$dir/pid" "$dir/beam.pid"
    if [ -f "$dir/server.log" ] && [ ! -L "$dir/log" ]; then
        return 0 # a failed start's logs
    fi
    rm -f "$dir/log" "$dir/server.log"
    rmdir "$dir" 2>/dev/null || true
}

cmd_ctl() {
    local dir=$1
    shift
    load_env "$dir" || die "$dir: no node there (run: $0 start '$dir')"
    ctl "$@"
}

# Start a halted node again from DIR/env: the same name, ports, cookie and
# state (a cluster member comes back as itself and rejoins its peers).
cmd_resume() {
    local dir=$1 pid
    load_env "$dir" || die "$dir: no node there (run: $0 start '$dir')"
    node_alive "$dir" && die "$dir: the node is running"
    [ -d "$WARREN_BROKER_STATE" ] || die "$dir: its state dir $WARREN_BROKER_STATE is gone"
    (cd "$WARREN_BROKER_STATE" && HOME=$WARREN_BROKER_STATE exec setsid "$SERVER") \
        >>"$dir/server.log" 2>&1 </dev/null &
    pid=$!
    echo "$pid" >"$dir/pid"
    local deadline=$((SECONDS + START_TIMEOUT))
    until ctl await_startup --timeout 5 >/dev/null 2>&1; do
        if ! kill -0 "$pid" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
            echo "broker.sh: node $RABBITMQ_NODENAME did not come back; server log:" >&2
            tail -n 40 "$dir/server.log" >&2 || true
            return 1
        fi
        sleep 0.5
    done
    cp "$WARREN_BROKER_STATE/beam.pid" "$dir/beam.pid" 2>/dev/null || true
    echo "broker.sh: $RABBITMQ_NODENAME up again, $(cat "$dir/uri")"
}

# Stop the node in DIR as an operator would (`rabbitmqctl stop`: the
# connections are closed, the queues and persistent messages stay on
# disk), then start the same node again (cmd_resume), so clients
# reconnect to the URI they had.  Its epmd keeps running meanwhile.
cmd_restart() {
    local dir=$1 deadline
    load_env "$dir" || die "$dir: no node there (run: $0 start '$dir')"
    node_alive "$dir" || die "$dir: the node is not running"
    ctl stop >/dev/null 2>&1 || true
    deadline=$((SECONDS + STOP_TIMEOUT))
    while node_alive "$dir"; do
        [ "$SECONDS" -lt "$deadline" ] || die "node $RABBITMQ_NODENAME did not stop within ${STOP_TIMEOUT}s"
        sleep 0.2
    done
    cmd_resume "$dir"
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
restart)
    [ $# -eq 2 ] || usage
    cmd_restart "$2"
    ;;
halt)
    [ $# -eq 2 ] || usage
    load_env "$2" || die "$2: no node there"
    kill_node "$2"
    ;;
resume)
    [ $# -eq 2 ] || usage
    cmd_resume "$2"
    ;;
ctl)
    dir=$2
    shift 2
    cmd_ctl "$dir" "$@"
    ;;
*) usage ;;
esac
