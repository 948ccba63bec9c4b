#!/usr/bin/env bash
#
# warren against the hand-written Python consumer it replaces, side by side
# in one run on one private broker.
#
#   bench/run.sh
#
# Environment: BENCH_CALLS (calls per scenario, default 20000),
# BENCH_WINDOW (calls in flight, default 64), BENCH_QUICK=1 (2000 calls: a
# smoke run), BENCH_TIMEOUT (seconds per scenario, default 60).
#
# Scenarios, each on a fresh queue, all with method echo:
#   python x1        bench/baseline_consumer.py, 1 process      (prefetch 1)
#   warren x1        warren, 1 worker                            (prefetch 1)
#   python x4        bench/baseline_consumer.py, 4 processes    (prefetch 1)
#   warren x4        warren, 4 workers                           (prefetch 1)
#   warren x4 pf4    warren, 4 workers, prefetch 4: what the prefetch=1
#                    default costs
# Baseline and warren alternate so slow drift on a shared machine hits both.
#
# Why one script: the figures only mean something relative to each other,
# measured on the same machine, broker and load generator within minutes;
# so it builds (build-bench/, Release), starts its own broker on loopback,
# runs everything, and stops what it started, also on failure or Ctrl-C.
# It prints a table; it writes no results file.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

calls=${BENCH_CALLS:-20000}
[ "${BENCH_QUICK:-0}" = 1 ] && calls=${BENCH_CALLS:-2000}
window=${BENCH_WINDOW:-64}
timeout=${BENCH_TIMEOUT:-60}
readonly READY_TIMEOUT=30 # seconds for a server to start consuming
readonly STOP_TIMEOUT=30  # seconds for a server to exit after SIGTERM
readonly PY=/usr/bin/python3 # Debian's, which python3-pika is for
build=$root/build-bench

for v in calls window timeout; do
    case ${!v} in
    '' | *[!0-9]* | 0) echo "bench/run.sh: $v must be a positive integer, got '${!v}'" >&2; exit 64 ;;
    esac
done

# --- Dependencies and build ---------------------------------------------------

scripts/deps.sh
if ! "$PY" -c 'import pika' 2>/dev/null; then
    echo "bench/run.sh: installing python3-pika for the baseline" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-pika
fi
echo "=== build ($build, Release) ===" >&2
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)" --target warren warren-bench plugin_echo >/dev/null

# --- Cleanup: whatever we started goes, however we leave ----------------------

work=$(mktemp -d /tmp/warren-bench-XXXXXX)
chmod 755 "$work" # the broker runs as the rabbitmq user and must reach its dir
started=()        # pids of the servers of the scenario under way
failed=0

cleanup() {
    local pid
    for pid in "${started[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true # warren's workers follow their supervisor
    done
    tests/broker.sh stop "$work/broker" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- Helpers ------------------------------------------------------------------

# wait_ready FILE PATTERN COUNT PID...: wait until FILE holds COUNT lines
# matching PATTERN, while all PIDs live.  Fails (with FILE shown) otherwise.
wait_ready() {
    local file=$1 pattern=$2 count=$3 pid seen
    shift 3
    local deadline=$((SECONDS + READY_TIMEOUT))
    while :; do
        seen=$(grep -c -- "$pattern" "$file" 2>/dev/null || true)
        [ "${seen:-0}" -ge "$count" ] && return 0
        for pid in "$@"; do
            if ! kill -0 "$pid" 2>/dev/null; then
                echo "bench/run.sh: server $pid died before it was ready:" >&2
                tail -n 20 "$file" >&2 || true
                return 1
            fi
        done
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "bench/run.sh: not ready within ${READY_TIMEOUT}s:" >&2
            tail -n 20 "$file" >&2 || true
            return 1
        fi
        sleep 0.1
    done
}

# peak_rss_kib PID...: the sum of the PIDs' peak resident set sizes (VmHWM)
# in KiB.  Read at the end of the load, before the stop: the peak each
# process reached, without a sampler competing for the two cores.
peak_rss_kib() {
    local pid key val total=0
    for pid in "$@"; do
        [ -r "/proc/$pid/status" ] || continue
        while read -r key val _; do
            [ "$key" = VmHWM: ] && total=$((total + val))
        done <"/proc/$pid/status"
    done
    echo "$total"
}

# stop_all PID...: SIGTERM each, wait for all; fails unless each exits 0.
stop_all() {
    local pid rc ok=0 deadline=$((SECONDS + STOP_TIMEOUT))
    kill -TERM "$@" 2>/dev/null || true
    for pid in "$@"; do
        while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "bench/run.sh: $pid still running ${STOP_TIMEOUT}s after SIGTERM; killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
        rc=0
        wait "$pid" || rc=$?
        if [ "$rc" != 0 ]; then
            echo "bench/run.sh: server $pid exited with status $rc after SIGTERM" >&2
            ok=1
        fi
    done
    started=()
    return "$ok"
}

# abandon NAME: a scenario that could not start: its servers go now, and
# its row says FAILED.
abandon() {
    local pid
    for pid in "${started[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    started=()
    record "$1" FAILED
    return 1
}

# cpu_ticks PID...: user + system CPU the PIDs have used so far, in clock
# ticks (fields 14 and 15 of /proc/PID/stat, counted after the ")" that
# ends the command name, which may itself hold spaces).
cpu_ticks() {
    local pid stat total=0
    local -a f
    for pid in "$@"; do
        [ -r "/proc/$pid/stat" ] || continue
        stat=$(<"/proc/$pid/stat")
        read -r -a f <<<"${stat##*) }"
        total=$((total + f[11] + f[12]))
    done
    echo "$total"
}

# measure NAME QUEUE PID...: load the server made of PIDs through QUEUE with
# warren-bench, whose line goes to the terminal and to $work/NAME.bench;
# write to $work/NAME.measure the servers' peak RSS (KiB) and the CPU ticks
# the servers and the broker used during the load.  Fails when the bench
# does.  Why CPU: on two shared cores, throughput alone cannot say who was
# the bottleneck; CPU per call can.
measure() {
    local name=$1 queue=$2 rc=0 srv brk
    shift 2
    srv=$(cpu_ticks "$@")
    brk=$(cpu_ticks "$beam")
    "$build/bin/warren-bench" -u "$uri" -q "$queue" -n "$calls" -c "$window" -m echo \
        -t "$timeout" --label "$name" >"$work/$name.bench" || rc=$?
    srv=$(($(cpu_ticks "$@") - srv))
    brk=$(($(cpu_ticks "$beam") - brk))
    echo "$(peak_rss_kib "$@") $srv $brk" >"$work/$name.measure"
    cat "$work/$name.bench"
    if [ "$rc" != 0 ]; then
        echo "bench/run.sh: $name: warren-bench exited with status $rc" >&2
        return 1
    fi
}

# record NAME STATUS: one row into $work/results, from what measure left:
#   name status calls/s p50 p99 rss_mib wall_s server_cpu_s broker_cpu_s bench_cpu_s
# A failed scenario keeps whatever it measured ("-" for the rest).
record() {
    local name=$1 status=$2 word line='' rate=- p50=- p99=- wall=- bcpu=- rss=- srv=- brk=-
    [ -f "$work/$name.bench" ] && line=$(<"$work/$name.bench")
    for word in $line; do
        case $word in
        rate=*) rate=${word#rate=} rate=${rate%/s} ;;
        p50=*) p50=${word#p50=} p50=${p50%ms} ;;
        p99=*) p99=${word#p99=} p99=${p99%ms} ;;
        wall=*) wall=${word#wall=} wall=${wall%s} ;;
        cpu=*) bcpu=${word#cpu=} bcpu=${bcpu%s} ;;
        esac
    done
    [ -f "$work/$name.measure" ] && read -r rss srv brk <"$work/$name.measure"
    awk -v n="$name" -v st="$status" -v r="$rate" -v a="$p50" -v b="$p99" -v w="$wall" \
        -v m="$rss" -v s="$srv" -v k="$brk" -v c="$bcpu" -v hz="$(getconf CLK_TCK)" '
        function f(x, d, fmt) { return x == "-" ? "-" : sprintf(fmt, x / d) }
        BEGIN { print n, st, r, a, b, f(m, 1024, "%.1f"), w, f(s, hz, "%.2f"), f(k, hz, "%.2f"), c }
    ' >>"$work/results"
}

# A warren scenario: NAME WORKERS PREFETCH.
run_warren() {
    local name=$1 workers=$2 prefetch=$3 queue="bench.$1.$$" log="$work/$1.log" pid ok=ok
    echo "=== $name: warren, $workers worker(s), prefetch $prefetch ===" >&2
    "$build/bin/warren" -c "$work/warren.conf" -o "pool.workers=$workers" \
        -o "pool.prefetch=$prefetch" -o "route.rpc.queue=$queue" 2>"$log" &
    pid=$!
    started=("$pid")
    wait_ready "$log" "ready: " 1 "$pid" || abandon "$name" || return 1
    # The server is the supervisor and its workers (its children).
    # shellcheck disable=SC2046
    measure "$name" "$queue" "$pid" $(cat /proc/"$pid"/task/*/children) || ok=FAILED
    stop_all "$pid" || ok=FAILED
    record "$name" "$ok"
    [ "$ok" = ok ]
}

# A baseline scenario: NAME PROCESSES.
run_python() {
    local name=$1 n=$2 queue="bench.$1.$$" log="$work/$1.log" ok=ok
    echo "=== $name: Python baseline, $n process(es), prefetch 1 ===" >&2
    : >"$log"
    started=()
    for _ in $(seq 1 "$n"); do
        "$PY" bench/baseline_consumer.py "$uri" "$queue" >>"$log" 2>&1 &
        started+=("$!")
    done
    wait_ready "$log" "^ready" "$n" "${started[@]}" || abandon "$name" || return 1
    measure "$name" "$queue" "${started[@]}" || ok=FAILED
    stop_all "${started[@]}" || ok=FAILED
    record "$name" "$ok"
    [ "$ok" = ok ]
}

# --- The run ------------------------------------------------------------------

echo "=== broker ===" >&2
tests/broker.sh start "$work/broker" >&2
uri=$(<"$work/broker/uri")
beam=$(<"$work/broker/beam.pid") # the broker's Erlang VM, for its CPU use
case $uri in
amqp://*@127.0.0.1:*) ;;
*) echo "bench/run.sh: broker URI $uri is not on loopback" >&2; exit 1 ;;
esac

cat >"$work/warren.conf" <<EOF
# Generated by bench/run.sh; workers, prefetch and queue come with -o.
[broker]
uri = $uri

[pool]
shutdown_timeout = 10

[plugins]
dir = $build/lib/warren/plugins
load = echo

[route rpc]
queue = bench.unused
EOF

: >"$work/results"
run_python "python-x1" 1 || failed=1
run_warren "warren-x1" 1 1 || failed=1
run_python "python-x4" 4 || failed=1
run_warren "warren-x4" 4 1 || failed=1
run_warren "warren-x4-pf4" 4 4 || failed=1

# --- The table ----------------------------------------------------------------

echo
echo "warren bench: $calls calls per scenario, window $window, method echo," \
    "$(nproc) cores shared by broker, load generator and servers;" \
    "$(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD 2>/dev/null || echo '+dirty')," \
    "$(date -u +%Y-%m-%dT%H:%MZ)"
awk '
    {
        s = $1; order[n++] = s; status[s] = $2; rate[s] = $3; p50[s] = $4; p99[s] = $5
        rss[s] = $6; wall[s] = $7; srv[s] = $8; brk[s] = $9; gen[s] = $10
        # Server CPU per call: what each call cost the server, contention aside.
        us[s] = (srv[s] == "-" || rate[s] == "-" || rate[s] * wall[s] == 0) ? "-" : \
            sprintf("%.0f", srv[s] * 1e6 / (rate[s] * wall[s]))
    }
    function ratio(a, b) { return (a == "-" || b == "-" || b + 0 == 0) ? "-" : sprintf("%.2f", a / b) }
    function ratios(label, w, p) {
        printf "%-26s %8s %8s %8s %8s %11s\n", label, ratio(rate[w], rate[p]), ratio(p50[w], p50[p]),
            ratio(p99[w], p99[p]), ratio(rss[w], rss[p]), ratio(us[w], us[p])
    }
    END {
        printf "\n%-14s %9s %7s %7s %8s %7s %7s %7s %7s %11s\n", "scenario", "calls/s", "p50 ms",
            "p99 ms", "RSS MiB", "wall s", "CPU srv", "CPU brk", "CPU gen", "srv us/call"
        for (i = 0; i < n; i++) {
            s = order[i]
            printf "%-14s %9s %7s %7s %8s %7s %7s %7s %7s %11s%s\n", s, rate[s], p50[s], p99[s],
                rss[s], wall[s], srv[s], brk[s], gen[s], us[s],
                status[s] == "ok" ? "" : "   (" status[s] ")"
        }
        printf "\n%-26s %8s %8s %8s %8s %11s\n", "warren / python", "calls/s", "p50", "p99", "RSS",
            "srv us/call"
        if (("warren-x1" in rate) && ("python-x1" in rate))
            ratios("1 process", "warren-x1", "python-x1")
        if (("warren-x4" in rate) && ("python-x4" in rate))
            ratios("4 processes", "warren-x4", "python-x4")
        if (("warren-x4-pf4" in rate) && ("warren-x4" in rate))
            ratios("warren x4: prefetch 4 / 1", "warren-x4-pf4", "warren-x4")
    }' "$work/results"
cat <<'EOF'
RSS: peak (VmHWM), summed over the server's processes (warren: supervisor +
workers).  CPU: seconds used during the load by the server (srv), the broker's
Erlang VM (brk) and warren-bench (gen); srv us/call = server CPU per call.
Ratios: calls/s above 1, and latency, RSS and CPU per call below 1, favour
warren.
EOF

if [ "$failed" != 0 ]; then
    echo "bench/run.sh: some scenarios failed (see above)" >&2
    exit 1
fi
