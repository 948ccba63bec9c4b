# Shared by tests/tls_test.sh and tests/secrets_test.sh (sourced): start and
# stop warrens, wait for what their logs say, check for sanitizer reports.
# Needs: $name (the test's name), $bin, $plugins, $tmp.

fail() {
    echo "FAIL $name: $*" >&2
    exit 1
}

# wait_log FILE REGEX COUNT SECONDS: until FILE has COUNT lines matching
# REGEX; fails the test, showing the file, if that takes longer.
wait_log() {
    local file=$1 re=$2 count=$3 deadline=$((SECONDS + $4))
    while [ "$(grep -cE -- "$re" "$file" 2>/dev/null || true)" -lt "$count" ]; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "--- $file" >&2
            tail -n 30 "$file" >&2 || true
            fail "no $count line(s) matching '$re' in $file within $4 s"
        fi
        sleep 0.2
    done
}

# write_conf NAME WORKERS QUEUE [BROKER-LINES...]: $tmp/NAME.conf (mode 600).
write_conf() {
    local conf=$tmp/$1.conf workers=$2 queue=$3
    shift 3
    {
        echo "[broker]"
        printf '%s\n' "$@"
        printf '\n[pool]\nworkers = %s\nshutdown_timeout = 20\n' "$workers"
        printf '\n[plugins]\ndir = %s\nload = echo\n' "$plugins"
        printf '\n[route rpc]\nqueue = %s\n' "$queue"
    } >"$conf"
    chmod 600 "$conf"
}

# start_warren NAME [ARGS...]: warren -c $tmp/NAME.conf ARGS in the
# background, logging to $tmp/NAME.log; its pid in $warren_pid and in
# $tmp/NAME.pid.
declare -a started=()
start_warren() {
    local n=$1
    shift
    "$bin/warren" -c "$tmp/$n.conf" "$@" >"$tmp/$n.log" 2>&1 &
    warren_pid=$!
    echo "$warren_pid" >"$tmp/$n.pid"
    started+=("$warren_pid")
}

# stop_warren NAME: SIGTERM, then wait (60 s at most) for a clean exit 0.
stop_warren() {
    local pid rc deadline=$((SECONDS + 60))
    pid=$(cat "$tmp/$1.pid")
    kill -TERM "$pid" 2>/dev/null || fail "warren $1 (pid $pid) is not running"
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
        sleep 0.2
    done
    kill -0 "$pid" 2>/dev/null && fail "warren $1 (pid $pid) did not stop within 60 s"
    rc=0
    wait "$pid" || rc=$?
    [ "$rc" = 0 ] || fail "warren $1 exited with $rc after SIGTERM; see $tmp/$1.log"
}

# Stop whatever is still running (a failed test).
stop_all() {
    local pid
    for pid in "${started[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${started[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
}

# No sanitizer report in any log or output of this test.
check_sanitizers() {
    if grep -lE 'ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:' "$tmp"/*.log \
        "$tmp"/*.out 2>/dev/null; then
        fail "a sanitizer reported an error in the file(s) above"
    fi
}

# A free TCP port on 127.0.0.1.
free_port() {
    local py
    for py in /usr/bin/python3 python3; do
        if command -v "$py" >/dev/null 2>&1; then
            "$py" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
            return
        fi
    done
    echo $((20000 + RANDOM % 30000))
}
