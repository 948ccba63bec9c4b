#!/usr/bin/env bash
# Unchanged clients in other languages against the installed warren:
#   tests/clients_test.sh SOURCE_DIR BUILD_DIR BROKER_DIR LANGUAGE
# LANGUAGE is a directory of tests/clients/: python-pika, python-kombu,
# java, go, ruby, node, python-proton or c-proton (the last two speak
# AMQP 1.0, through the broker's rabbitmq_amqp1_0 plugin).
#
# Installs the build into a temp prefix, builds the out-of-tree plugin
# tests/clients/fib/fib.c from the installed SDK only (as a user would),
# starts the installed warren (2 workers) with three routes -- JSON-RPC,
# the RPC tutorial's raw `fib` queue and a broadcast `warren.status` --
# runs that language's clients exactly as written and checks what they
# print.  The python-pika run also starts a second warren on the same
# broker and checks the broadcast gets one reply from each.
#
# Compiled clients (Java classes, Go binaries) and Node's node_modules are
# kept in BUILD_DIR/clients/LANGUAGE and rebuilt only when their sources
# change.  Configs, logs and client outputs stay in
# BUILD_DIR/test-tmp/clients-LANGUAGE until the next run.
#
# Exit 77 (ctest: skipped) when the language's toolchain or client library
# is missing (tests/clients/deps.sh installs them), with the reason.
set -euo pipefail
[ $# -eq 4 ] || { echo "usage: $0 SOURCE_DIR BUILD_DIR BROKER_DIR LANGUAGE" >&2; exit 64; }
src=$(cd "$1" && pwd) build=$(cd "$2" && pwd) broker=$3 lang=$4
clients=$src/tests/clients
skip() { echo "SKIP clients_$lang: $*" >&2; exit 77; }
fail() { echo "FAIL clients_$lang: $*" >&2; exit 1; }

# ---- the toolchain, or a skip that says what is missing -----------------
py=/usr/bin/python3 # Debian's python, whatever python3 is first on PATH
java_cp=/usr/share/java/amqp-client.jar:/usr/share/java/slf4j-api.jar:/usr/share/java/slf4j-simple.jar
gopath=/usr/share/gocode
case $lang in
python-pika)
    [ -x $py ] || skip "no $py"
    $py -c 'import pika' 2>/dev/null || skip "$py cannot import pika (apt-get install python3-pika)" ;;
python-kombu)
    [ -x $py ] || skip "no $py"
    $py -c 'import kombu' 2>/dev/null || skip "$py cannot import kombu (apt-get install python3-kombu)" ;;
java)
    command -v javac >/dev/null || skip "no javac (apt-get install default-jdk-headless)"
    command -v java >/dev/null || skip "no java (apt-get install default-jdk-headless)"
    for jar in ${java_cp//:/ }; do
        [ -r "$jar" ] || skip "no $jar (apt-get install librabbitmq-client-java)"
    done ;;
go)
    command -v go >/dev/null || skip "no go (apt-get install golang-go)"
    [ -d $gopath/src/github.com/rabbitmq/amqp091-go ] ||
        skip "no amqp091-go in $gopath (apt-get install golang-github-rabbitmq-amqp091-go-dev)" ;;
ruby)
    command -v ruby >/dev/null || skip "no ruby (apt-get install ruby)"
    ruby -e 'require "bunny"' 2>/dev/null || skip "ruby cannot require bunny (apt-get install ruby-bunny)" ;;
node)
    command -v node >/dev/null || skip "no node (apt-get install nodejs)"
    command -v npm >/dev/null || skip "no npm (apt-get install npm)" ;;
python-proton)
    [ -x $py ] || skip "no $py"
    $py -c 'import proton' 2>/dev/null || skip "$py cannot import proton (apt-get install python3-qpid-proton)" ;;
c-proton)
    command -v cc >/dev/null || skip "no cc (apt-get install gcc)"
    pkg-config --exists libqpid-proton jansson 2>/dev/null ||
        skip "no libqpid-proton or jansson for pkg-config (apt-get install libqpid-proton11-dev libjansson-dev pkg-config)" ;;
*)
    echo "$0: unknown language '$lang' (one of: python-pika python-kombu java go ruby node python-proton c-proton)" >&2
    exit 64 ;;
esac

# ---- the clients, built once per build tree --------------------------------
out=$build/clients/$lang
mkdir -p "$out"
# True when any file in tests/clients/LANG is newer than the stamp (or
# there is no stamp yet).
stale() { [ ! -e "$out/stamp" ] || [ -n "$(find "$clients/$lang" -newer "$out/stamp" -print -quit)" ]; }
case $lang in
java)
    if stale; then
        rm -rf "$out/classes"
        javac -cp "$java_cp" -d "$out/classes" "$clients"/java/*.java
        touch "$out/stamp"
    fi ;;
go)
    if stale; then
        # Debian packages Go libraries as GOPATH sources: build in GOPATH
        # mode, offline, with the build cache in the build tree.
        for prog in rpc_client jsonrpc_client; do
            GO111MODULE=off GOPATH=$gopath GOCACHE=$out/cache GOFLAGS='' \
                go build -o "$out/$prog" "$clients/go/$prog.go"
        done
        touch "$out/stamp"
    fi ;;
node)
    # The committed package-lock.json pins amqplib; npm ci installs exactly
    # that, again only when the lock changed.
    cp "$clients"/node/*.js "$out/"
    if ! cmp -s "$clients/node/package-lock.json" "$out/package-lock.json" ||
        [ ! -d "$out/node_modules/amqplib" ]; then
        cp "$clients/node/package.json" "$clients/node/package-lock.json" "$out/"
        (cd "$out" && npm ci --no-audit --no-fund --loglevel=error) ||
            fail "npm ci of amqplib in $out"
    fi ;;
c-proton)
    if stale; then
        # shellcheck disable=SC2046
        cc -Wall -Wextra -Werror -o "$out/rpc_client" "$clients/c-proton/rpc_client.c" \
            $(pkg-config --cflags --libs libqpid-proton jansson)
        touch "$out/stamp"
    fi ;;
esac

# ---- warren, installed, with the fib plugin built from the SDK -------------
prefix=$(mktemp -d /tmp/warren-clients-XXXXXX)
tmp=$build/test-tmp/clients-$lang
rm -rf "$tmp"
mkdir -p "$tmp"
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do
        kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
    rm -rf "$prefix"
}
trap cleanup EXIT

cmake --install "$build" --prefix "$prefix" >/dev/null
plugins=$prefix/lib/warren/plugins
# shellcheck disable=SC2046
cc -Wall -Wextra -Werror -shared -fPIC -o "$tmp/fib.so" "$clients/fib/fib.c" \
    $(PKG_CONFIG_PATH=$prefix/lib/pkgconfig pkg-config --cflags --libs warren-plugin)
install -m 0755 "$tmp/fib.so" "$plugins/fib.so"

# Broker URI without the trailing slash: per the AMQP URI spec
# "amqp://host:port/" names the vhost "" (the Java client takes it so),
# "amqp://host:port" the default vhost "/".
uri=$(cat "$broker/uri")
export WARREN_URI=${uri%/}
# The AMQP 1.0 clients' URI (tests/broker.sh writes it; the same port).
WARREN_AMQP10_URI=$(cat "$broker/amqp10_uri" 2>/dev/null) || WARREN_AMQP10_URI=${uri%/}
export WARREN_AMQP10_URI
# The AMQP 1.0 clients also call test.message (what warren saw of their
# message, headers included) on the JSON-RPC route.
load="echo fib"
case $lang in *-proton) load="echo fib test" ;; esac
# Names unique to this run, so other tests on the same broker (ctest -j)
# neither take these requests nor answer this broadcast.
export WARREN_QUEUE=warren.rpc.$lang.$$ RPC_QUEUE=rpc_queue.$lang.$$ STATUS_KEY=SERVER_STATUS.$lang.$$
cat > "$tmp/warren.conf" <<CONF
[broker]
uri = $uri

[pool]
workers = 2

[plugins]
dir = $plugins
load = $load

[route rpc]
queue = $WARREN_QUEUE

[route tutorial]
queue = $RPC_QUEUE
format = raw
method = fib

[route status]
broadcast = yes
exchange = amq.topic
bindings = $STATUS_KEY
format = raw
method = warren.status
CONF

# start_warren N: the installed warren as instance N, logging to
# $tmp/warrenN.log; sets $pid.
start_warren() {
    local log=$tmp/warren$1.log
    "$prefix/bin/warren" -c "$tmp/warren.conf" 2> "$log" &
    pid=$!
    pids+=("$pid")
    for _ in $(seq 1 300); do
        grep -q "ready:" "$log" && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    cat "$log" >&2
    fail "warren $1 not ready (log: $log)"
}

# check NAME PATTERN COMMAND...: run one client (60 s at most: the
# tutorials' clients wait for ever), keep its output in $tmp/NAME.out, and
# fail unless it exits 0 and prints a line matching the extended regex
# PATTERN.
check() {
    local name=$1 want=$2 rc=0
    shift 2
    (cd "$tmp" && timeout 60 "$@") > "$tmp/$name.out" 2>&1 || rc=$?
    if [ $rc -ne 0 ] || ! grep -qE -- "$want" "$tmp/$name.out"; then
        echo "--- $name printed:" >&2
        cat "$tmp/$name.out" >&2
        echo "--- warren log:" >&2
        cat "$tmp"/warren*.log >&2
        [ $rc -eq 0 ] || fail "$name exited $rc"
        fail "$name printed no line matching: $want"
    fi
    echo "$lang $name: $(grep -E -- "$want" "$tmp/$name.out" | head -1)"
}

start_warren 1
warren1=$pid
# what the fib clients must print, and the echo clients
fib30='\[\.\] Got 832040$'
echoed='\[\.\] Got \["hi",42\]$'

case $lang in
python-pika)
    check rpc_client "$fib30" $py "$clients/python-pika/rpc_client.py"
    check jsonrpc_client "$echoed" $py "$clients/python-pika/jsonrpc_client.py"
    start_warren 2
    warren2=$pid
    check status_client '^ \[x\] 2 servers answered$' $py "$clients/python-pika/status_client.py" 3
    # One reply per instance: the two supervisors we started, each once.
    got=$($py - "$tmp/status_client.out" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    if line.startswith(' [.] '):
        status = json.loads(line[5:])
        print(status.get('supervisor_pid', 'error: %s' % json.dumps(status.get('error', status))))
PY
    )
    [ "$(sort <<< "$got" | tr '\n' ' ')" = "$(printf '%s\n' "$warren1" "$warren2" | sort | tr '\n' ' ')" ] || {
        cat "$tmp/status_client.out" >&2
        fail "status replies: [$(tr '\n' ' ' <<< "$got")], not one each from supervisors $warren1 and $warren2"
    } ;;
python-kombu)
    check rpc_client '^ \[\.\] Got 832040$' $py "$clients/python-kombu/rpc_client.py"
    check jsonrpc_client "$echoed" $py "$clients/python-kombu/jsonrpc_client.py" ;;
java)
    check RPCClient "^ \[\.\] Got '832040'$" java -cp "$out/classes:$java_cp" RPCClient
    # The tutorial asks for fib(0) .. fib(31): every answer must be right.
    want=$(a=0 b=1; for _ in $(seq 0 31); do echo " [.] Got '$a'"; t=$((a + b)); a=$b; b=$t; done)
    [ "$(grep -F ' [.] Got ' "$tmp/RPCClient.out")" = "$want" ] || fail "RPCClient: fib(0..31) not all right"
    check JsonRpcCall '^ \[\.\] Got \{.*"result":\["hi",42\].*\}$' java -cp "$out/classes:$java_cp" JsonRpcCall ;;
go)
    check rpc_client "$fib30" "$out/rpc_client"
    check jsonrpc_client "$echoed" "$out/jsonrpc_client" ;;
ruby)
    check rpc_client '^ \[\.\] Got 832040$' ruby "$clients/ruby/rpc_client.rb"
    check jsonrpc_client '^ \[\.\] Got \["hi",42\]$' ruby "$clients/ruby/jsonrpc_client.rb" ;;
node)
    check rpc_client '^ \[\.\] Got 832040$' node "$out/rpc_client.js" 30
    check jsonrpc_client '^ \[\.\] Got \["hi",42\]$' node "$out/jsonrpc_client.js" ;;
python-proton | c-proton)
    # One client, one call per run: the JSON-RPC echo as an amqp-value
    # string, as an amqp-value binary and as a data section; test.message
    # (the application property probe=x1 must reach the handler); the
    # tutorial's fib of the AMQP int 30; and, with a second warren, a
    # broadcast every instance answers once.
    if [ "$lang" = python-proton ]; then
        client=("$py" "$clients/python-proton/rpc_client.py")
    else
        client=("$out/rpc_client")
    fi
    fails=()
    # soft NAME PATTERN ARGS...: check, but go on to the next call on
    # failure (the reasons all end up in the log), failing at the end.
    soft() { (check "$@") || fails+=("$1"); }
    soft echo_string '^ \[\.\] Got \{.*"result": ?\["hi", ?42\]' "${client[@]}" echo-string
    soft echo_binary '^ \[\.\] Got \{.*"result": ?\["hi", ?42\]' "${client[@]}" echo-binary
    soft echo_data '^ \[\.\] Got \{.*"result": ?\["hi", ?42\]' "${client[@]}" echo-data
    soft message '^ \[\.\] probe="x1"$' "${client[@]}" message
    soft fib '^ \[\.\] Got 832040$' "${client[@]}" fib
    start_warren 2
    soft status '^ \[x\] 2 servers answered$' "${client[@]}" status 3
    [ ${#fails[@]} -eq 0 ] || fail "calls that failed: ${fails[*]} (outputs in $tmp)" ;;
esac

# A clean stop of every warren we started.
for p in "${pids[@]}"; do
    kill -TERM "$p"
    wait "$p" || fail "warren (pid $p) exited $? on SIGTERM"
done
pids=()
# Under ASan/UBSan a report in warren's log fails the test too.
if grep -lE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$tmp"/warren*.log >&2; then
    fail "sanitizer report in warren's log (above)"
fi
echo "clients_$lang: OK"
