#!/usr/bin/env bash
# The broker password kept out of sight, against the suite's node:
#   tests/secrets_test.sh SOURCE_DIR BUILD_DIR BROKER_DIR
#
# Creates a broker user whose password only warren is told, then starts
# warren with that password in [broker] password_file, in
# $WARREN_BROKER_PASSWORD, on the command line (-o broker.uri=...) and in
# a config file others can read.  Each time: calls are answered (so warren
# logged in as that user), and the password is in none of warren's log,
# --check output, warren.status reply, nor /proc/PID/cmdline of the
# supervisor and its workers.  The last two earn their warnings.
# Configs and logs stay in BUILD_DIR/test-tmp/secrets.
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 SOURCE_DIR BUILD_DIR BROKER_DIR" >&2; exit 64; }
src=$(cd "$1" && pwd) build=$(cd "$2" && pwd) broker=$3
name=secrets bin=$build/bin plugins=$build/lib/warren/plugins tmp=$build/test-tmp/secrets
# shellcheck source=tests/tls_lib.sh
. "$src/tests/tls_lib.sh"
rm -rf "$tmp"
mkdir -p "$tmp"
amqp=$(cat "$broker/uri") # amqp://guest:guest@127.0.0.1:PORT/
hostport=${amqp#amqp://guest:guest@}
hostport=${hostport%/}
user=warren-secret-$$
pass=pw-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
ctl() { "$src/tests/broker.sh" ctl "$broker" "$@"; }
cleanup() {
    stop_all
    ctl delete_user "$user" >/dev/null 2>&1 || true
}
trap cleanup EXIT
ctl add_user "$user" "$pass" >/dev/null
ctl set_permissions -p / "$user" ".*" ".*" ".*" >/dev/null

# not_in FILE...: the password is in none of them.
not_in() {
    local f
    for f in "$@"; do
        if grep -qF -- "$pass" "$f"; then
            fail "the password is in $f: $(grep -F -- "$pass" "$f" | head -n 3)"
        fi
    done
}

# serving NAME WORKERS: warren NAME is up, answers calls and warren.status,
# its workers are logged in as $user, and no process of it shows the
# password in its command line.
serving() {
    local n=$1 workers=$2 pid kids out
    wait_log "$tmp/$n.log" "consuming from 1 route" "$workers" 90
    out=$("$bin/warren-call" -u "$amqp" -q secrets.rpc -t 30 echo "[\"$n\"]" 2>"$tmp/$n.call.out") ||
        fail "$n: call not answered: $(cat "$tmp/$n.call.out")"
    [ "$out" = "[\"$n\"]" ] || fail "$n: unexpected reply $out"
    "$bin/warren-call" -u "$amqp" -q secrets.rpc -t 30 warren.status >"$tmp/$n.status.out" 2>&1 ||
        fail "$n: warren.status: $(cat "$tmp/$n.status.out")"
    ctl list_connections user client_properties >"$tmp/$n.connections.out"
    [ "$(grep -c "^$user.*warren worker" "$tmp/$n.connections.out" || true)" = "$workers" ] ||
        fail "$n: expected $workers worker connections as $user: $(cat "$tmp/$n.connections.out")"
    pid=$(cat "$tmp/$n.pid")
    kids=$(pgrep -P "$pid" || true)
    [ "$(echo "$kids" | wc -w)" = "$workers" ] || fail "$n: expected $workers workers, found: $kids"
    for p in $pid $kids; do
        tr '\0' ' ' <"/proc/$p/cmdline" >"$tmp/$n.cmdline.$p.out"
    done
    not_in "$tmp/$n".cmdline.*.out "$tmp/$n.status.out"
}

# ---- password_file ----------------------------------------------------------
printf '%s\n' "$pass" >"$tmp/password"
chmod 600 "$tmp/password"
write_conf file 2 secrets.rpc "uri = amqp://$user@$hostport/" "password_file = $tmp/password"
"$bin/warren" -c "$tmp/file.conf" --check >"$tmp/file.check.out" 2>&1 ||
    fail "--check: $(cat "$tmp/file.check.out")"
grep -q "broker amqp://$user@$hostport/, password from password_file" "$tmp/file.check.out" ||
    fail "--check does not say where the password is from: $(cat "$tmp/file.check.out")"
start_warren file
serving file 2
stop_warren file
not_in "$tmp/file.log" "$tmp/file.check.out"
echo "ok: password_file (calls answered as $user, the password shown nowhere)"

# ---- $WARREN_BROKER_PASSWORD ------------------------------------------------
write_conf env 2 secrets.rpc "uri = amqp://$user@$hostport/"
WARREN_BROKER_PASSWORD=$pass "$bin/warren" -c "$tmp/env.conf" --check >"$tmp/env.check.out" 2>&1 ||
    fail "--check: $(cat "$tmp/env.check.out")"
grep -q 'password from \$WARREN_BROKER_PASSWORD' "$tmp/env.check.out" ||
    fail "--check does not say where the password is from: $(cat "$tmp/env.check.out")"
WARREN_BROKER_PASSWORD=$pass start_warren env
serving env 2
stop_warren env
not_in "$tmp/env.log" "$tmp/env.check.out"
echo "ok: \$WARREN_BROKER_PASSWORD"

# ---- on the command line: scrubbed from the process list, warned about ------
write_conf argv 1 secrets.rpc "uri = amqp://nobody@$hostport/"
start_warren argv -o "broker.uri=amqp://$user:$pass@$hostport/"
serving argv 1
grep -q "WARN: a broker password was given on the command line" "$tmp/argv.log" ||
    fail "no warning about the password on the command line"
grep -q "broker amqp://$user:\*\*\*@$hostport/" "$tmp/argv.log" || fail "the URI is not shown masked"
stop_warren argv
not_in "$tmp/argv.log"
echo "ok: -o broker.uri with a password: masked in /proc/PID/cmdline and the log, warned about"

# ---- a config file others can read, with the password in its uri ------------
write_conf readable 1 secrets.rpc "uri = amqp://$user:$pass@$hostport/"
chmod 644 "$tmp/readable.conf"
"$bin/warren" -c "$tmp/readable.conf" --check >"$tmp/readable.check.out" 2>&1 ||
    fail "--check: $(cat "$tmp/readable.check.out")"
grep -q "WARN: $tmp/readable.conf:2: this file holds the broker password .*(mode 0644): chmod 600 $tmp/readable.conf, or move the password to \[broker\] password_file" \
    "$tmp/readable.check.out" || fail "no warning for a readable file: $(cat "$tmp/readable.check.out")"
start_warren readable
serving readable 1
grep -q "WARN: $tmp/readable.conf:2: this file holds the broker password" "$tmp/readable.log" ||
    fail "no warning at start"
stop_warren readable
chmod 600 "$tmp/readable.conf"
"$bin/warren" -c "$tmp/readable.conf" --check >"$tmp/private.check.out" 2>&1 ||
    fail "--check: $(cat "$tmp/private.check.out")"
if grep -q WARN "$tmp/private.check.out"; then
    fail "a warning for a file only its owner reads: $(cat "$tmp/private.check.out")"
fi
not_in "$tmp/readable.log" "$tmp/readable.check.out" "$tmp/private.check.out"
echo "ok: a readable config holding a password is warned about (not once it is chmod 600)"

check_sanitizers
echo "PASS secrets"
