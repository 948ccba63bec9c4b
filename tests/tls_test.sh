#!/usr/bin/env bash
# amqps:// against a real broker:   tests/tls_test.sh SOURCE_DIR BUILD_DIR
#
# Makes a throwaway CA and certificates (tests/tls_certs.sh), starts a
# private node of its own with a TLS listener that demands a client
# certificate (tests/broker.sh with WARREN_BROKER_TLS and
# WARREN_BROKER_TLS_PEER=required), and checks:
#   - warren over amqps:// with ca_file, cert_file and key_file answers
#     calls, and its connections are TLS ones;
#   - a ca_file that did not sign the broker's certificate, and no client
#     certificate, are each refused with a line naming the cause, and the
#     worker waits a minute instead of retrying in a fast loop;
#   - a certificate for another host, an expired certificate (served by
#     `openssl s_server`) and a plain AMQP port are refused by warren-call
#     with the cause.
# Configs, logs and certificates stay in BUILD_DIR/test-tmp/tls.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 SOURCE_DIR BUILD_DIR" >&2; exit 64; }
src=$(cd "$1" && pwd) build=$(cd "$2" && pwd)
name=tls bin=$build/bin plugins=$build/lib/warren/plugins tmp=$build/test-tmp/tls
node=$build/test-broker-tls
# shellcheck source=tests/tls_lib.sh
. "$src/tests/tls_lib.sh"
rm -rf "$tmp"
mkdir -p "$tmp"
certs=$tmp/certs
server_pid=
cleanup() {
    stop_all
    [ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null || true
    "$src/tests/broker.sh" stop "$node" || true
}
trap cleanup EXIT

"$src/tests/tls_certs.sh" "$certs"
WARREN_BROKER_TLS=$certs WARREN_BROKER_TLS_PEER=required "$src/tests/broker.sh" start "$node"
amqps=$(cat "$node/amqps_uri")
amqp=$(cat "$node/uri")

# ---- calls over amqps:// with a client certificate ------------------------
write_conf good 2 tls.rpc "uri = $amqps" "ca_file = $certs/ca.pem" \
    "cert_file = $certs/client.pem" "key_file = $certs/client.key"
"$bin/warren" -c "$tmp/good.conf" --check >"$tmp/check.out" 2>&1 ||
    fail "--check refused the TLS config: $(cat "$tmp/check.out")"
grep -q "broker amqps://guest:\*\*\*@127.0.0.1:.* (TLS, CA $certs/ca.pem, client certificate" \
    "$tmp/check.out" || fail "--check does not describe the TLS broker: $(cat "$tmp/check.out")"
start_warren good
wait_log "$tmp/good.log" "consuming from 1 route" 2 90
out=$("$bin/warren-call" -u "$amqp" -q tls.rpc -t 30 echo '["over TLS"]' 2>"$tmp/call.out") ||
    fail "call to warren over amqps not answered: $(cat "$tmp/call.out")"
[ "$out" = '["over TLS"]' ] || fail "unexpected reply: $out"
# The same through warren-call's own amqps:// (and its client certificate).
out=$(WARREN_CACERT=$certs/ca.pem WARREN_CERT=$certs/client.pem WARREN_KEY=$certs/client.key \
    "$bin/warren-call" -u "$amqps" -q tls.rpc -t 30 echo '["both ends TLS"]' 2>"$tmp/call.out") ||
    fail "warren-call over amqps:// failed: $(cat "$tmp/call.out")"
[ "$out" = '["both ends TLS"]' ] || fail "unexpected reply: $out"
# The workers' connections are TLS ones, as the broker sees them.
"$src/tests/broker.sh" ctl "$node" list_connections ssl client_properties >"$tmp/connections.out"
tls_workers=$(grep -c "^true.*warren worker" "$tmp/connections.out" || true)
[ "$tls_workers" = 2 ] || fail "expected 2 TLS worker connections, got: $(cat "$tmp/connections.out")"
stop_warren good
echo "ok: 2 workers over amqps:// with a client certificate answered calls"

# ---- refused certificates: a clear line, no fast retry loop --------------
write_conf wrong_ca 1 tls.rpc "uri = $amqps" "ca_file = $certs/other-ca.pem" \
    "cert_file = $certs/client.pem" "key_file = $certs/client.key"
write_conf no_client_cert 1 tls.rpc "uri = $amqps" "ca_file = $certs/ca.pem"
start_warren wrong_ca
start_warren no_client_cert
wait_log "$tmp/wrong_ca.log" "does not verify" 1 90
wait_log "$tmp/no_client_cert.log" "it may want a client certificate" 1 90
# The usual backoff would have tried 5 more times in 10 s (0.1 s doubling).
sleep 10
for n in wrong_ca no_client_cert; do
    kill -0 "$(cat "$tmp/$n.pid")" || fail "warren $n exited instead of waiting: $(tail -n 5 "$tmp/$n.log")"
    tries=$(grep -cE "WARN: broker: .*(does not verify|want a client certificate)" "$tmp/$n.log" || true)
    [ "$tries" -le 2 ] || fail "$n: $tries connection attempts within about 10 s: a retry loop"
    grep -q "retrying in 60000 ms" "$tmp/$n.log" || fail "$n: no minute-long wait in the log"
    stop_warren "$n"
done
grep -q "TLS: the broker's certificate at 127.0.0.1:[0-9]* does not verify: .*ca_file must hold the CA" \
    "$tmp/wrong_ca.log" || fail "the unknown CA is not named: $(grep WARN "$tmp/wrong_ca.log")"
grep -q "a SSL error occurred.*: it may want a client certificate: set cert_file and key_file" \
    "$tmp/no_client_cert.log" || fail "no hint for the missing client certificate"
if grep -q "retrying in [0-9]\{1,4\} ms" "$tmp/no_client_cert.log"; then
    fail "a refused TLS client was retried soon: $(grep WARN "$tmp/no_client_cert.log")"
fi
echo "ok: an unknown CA and a missing client certificate are named, tried once a minute"

# ---- wrong host, expired, not TLS: warren-call says which -----------------
# call URI WANT: warren-call to URI trusting the test CA fails (69) with WANT.
call_fails() {
    local rc=0
    WARREN_CACERT=$certs/ca.pem "$bin/warren-call" -u "$1" -t 5 echo '[1]' >"$tmp/call.out" 2>&1 ||
        rc=$?
    [ "$rc" = 69 ] || fail "warren-call to $1: exit $rc, wanted 69: $(cat "$tmp/call.out")"
    grep -qF -- "$2" "$tmp/call.out" || fail "warren-call to $1: wanted '$2', got: $(cat "$tmp/call.out")"
}
# serve CERT: openssl s_server with CERT on a free loopback port ($port).
serve() {
    port=$(free_port)
    openssl s_server -quiet -accept "127.0.0.1:$port" -cert "$certs/$1.pem" -key "$certs/$1.key" \
        >"$tmp/s_server.out" 2>&1 </dev/null &
    server_pid=$!
    local deadline=$((SECONDS + 30))
    until ss -Htln "sport = :$port" | grep -q .; do
        [ "$SECONDS" -lt "$deadline" ] || fail "openssl s_server did not listen: $(cat "$tmp/s_server.out")"
        sleep 0.1
    done
}
unserve() {
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
}
serve wronghost
call_fails "amqps://guest:guest@127.0.0.1:$port/" "does not verify: IP address mismatch (certificate /CN=elsewhere.example)"
call_fails "amqps://guest:guest@localhost:$port/" "does not verify: hostname mismatch (certificate /CN=elsewhere.example)"
unserve
serve expired
call_fails "amqps://guest:guest@127.0.0.1:$port/" "does not verify: certificate has expired (certificate /CN=127.0.0.1)"
unserve
call_fails "amqps${amqp#amqp}" "failed: wrong version number (is that port a TLS listener?"
echo "ok: another host's certificate, an expired one and a plain port are each named"

check_sanitizers
echo "PASS tls"
