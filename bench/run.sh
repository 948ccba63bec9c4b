#!/usr/bin/env bash
#
# warren against the best it could be: the bare rabbitmq-c loop
# (warren-bare), side by side, in turns, on one private broker; writes
# BENCHMARKS.md and the plots in bench/plots/.
#
#   bench/run.sh                 the full benchmark (about 60 minutes on 2 cores)
#   BENCH_QUICK=1 bench/run.sh   the smoke: a few cells, 1 round, 1 s each (about a minute);
#                                writes its report to a temp file, not BENCHMARKS.md
#
# Environment:
#   BENCH_SECONDS   seconds per measured run (default 1.5; 1 with BENCH_QUICK), after a
#                   BENCH_WARMUP (default 0.5) not counted
#   BENCH_MIX_SECONDS  seconds per run of the mixed workload (default 10; 2 with BENCH_QUICK)
#   BENCH_ROUNDS    rounds per cell (default 8; 1 with BENCH_QUICK; twice that in the echo
#                   cells of shape 1x1, the noisiest); figures are medians,
#                   warren's ratios to a reference the median of the rounds' ratios
#   BENCH_MIX_ROUNDS  rounds of each mixed-workload cell (default 5; 1 with BENCH_QUICK):
#                   its runs are long, and what it shows is a trade-off, not a ratio
#   BENCH_RATE_PREFETCH  prefetch of the latency-against-load runs (default 16)
#   BENCH_QUEUE_TYPE  classic (default) or quorum: every server's queue.  Classic
#                   by default because the broker then does the least per call, so
#                   what the servers themselves cost shows the most (warren's own
#                   default, quorum, costs the broker more and hides it)
#   BENCH_MIX_RATE  offered calls/s of the open-loop mixed workload (default 50)
#   BENCH_PIKA=1    also the pika consumer loop (bench/baseline_consumer.py) in the echo
#                   16 B cells, as a reference column
#   BENCH_OUT       where the report goes (default: BENCHMARKS.md and bench/plots/, or a
#                   temp file and dir with BENCH_QUICK)
#   BENCH_BUILD     an existing build tree to use as it is (no configure, no build);
#                   default: build and use build-bench/ (Release)
#   BENCH_ONLY      space-separated parts to run (echo big sleep mix rate startup);
#                   default all
#   BENCH_CELLS     space-separated echo cells to run, SHAPE/PROCESSES/PREFETCH
#                   (e.g. "1x16/4/16 4x16/1/1"): one cell measured again with more
#                   rounds; default every cell
#
# Why in turns: on a shared 2-core machine the figures drift over minutes;
# only figures taken within seconds of each other compare.  So each cell
# runs warren, warren-bare --confirm and warren-bare (and, in the echo
# cells, warren with publisher confirms off) one after another, then
# again, BENCH_ROUNDS times, each round starting with the next server (so
# none always goes first), each run on a fresh queue.  The report takes
# medians, and a ratio of warren to a reference is the median of the
# rounds' ratios: each compares two runs made seconds apart.  Every run is
# checked: a wrong, duplicated or lost call, an error reply, or a server
# that does not exit 0 on SIGTERM fails the script (after the report is
# written with what it has).
#
# What each run leaves: one JSON line in $work/runs.jsonl (the load
# generator's --json object, the servers' peak RSS, CPU ticks of the
# servers' processes and of the broker over the counted part of the load);
# bench/report.py turns those into the markdown and the plots.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

quick=${BENCH_QUICK:-0}
if [ "$quick" = 1 ]; then
    seconds=${BENCH_SECONDS:-1}
    mix_seconds=${BENCH_MIX_SECONDS:-2}
    rounds=${BENCH_ROUNDS:-1}
    mix_rounds=${BENCH_MIX_ROUNDS:-1}
else
    # Short runs, many rounds: a run's calls/s is off by about as much at
    # 12 s as at 1.5 s (5-14 %: the state the broker and the processes
    # settle into for the run, not the second-to-second noise), so the
    # rounds, not the seconds, make a median good (BENCHMARKS.md, "Profile").
    seconds=${BENCH_SECONDS:-1.5}
    mix_seconds=${BENCH_MIX_SECONDS:-10}
    rounds=${BENCH_ROUNDS:-8}
    mix_rounds=${BENCH_MIX_ROUNDS:-5}
fi
warmup=${BENCH_WARMUP:-0.5}
rate_prefetch=${BENCH_RATE_PREFETCH:-16}
mix_rate=${BENCH_MIX_RATE:-50}
queue_type=${BENCH_QUEUE_TYPE:-classic}
case $queue_type in classic | quorum) ;; *) echo "bench/run.sh: BENCH_QUEUE_TYPE must be classic or quorum" >&2; exit 64 ;; esac
pika=${BENCH_PIKA:-0}
only=${BENCH_ONLY:-echo big sleep mix rate startup}
echo_cells=${BENCH_CELLS:-}
readonly READY_TIMEOUT=30 # seconds for a server to start consuming
readonly STOP_TIMEOUT=30  # seconds for a server to exit after SIGTERM
readonly PY=/usr/bin/python3 # Debian's: stdlib for the report, python3-pika for BENCH_PIKA

die() {
    echo "bench/run.sh: $*" >&2
    exit 64
}
for v in seconds mix_seconds warmup; do
    [[ ${!v} =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "$v must be a number of seconds, got '${!v}'"
done
for v in rounds mix_rounds rate_prefetch mix_rate; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, got '${!v}'"
done
rounds_1x1=$((rounds * 2)) # the echo cells of shape 1x1: see "Echo" below
for p in $only; do
    case $p in echo | big | sleep | mix | rate | startup) ;; *) die "BENCH_ONLY: unknown part '$p'" ;; esac
done
wants() { [[ " $only " == *" $1 "* ]]; }
for c in $echo_cells; do
    [[ $c =~ ^(1x1|1x16|4x16|4x64)/[124]/(1|16)$ ]] ||
        die "BENCH_CELLS: '$c' is not an echo cell (SHAPE/PROCESSES/PREFETCH: 1x1 1x16 4x16 4x64 / 1 2 4 / 1 16)"
done
# wants_cell CELL: whether BENCH_CELLS (if set) names CELL.
wants_cell() { [ -z "$echo_cells" ] || [[ " $echo_cells " == *" $1 "* ]]; }

# --- Dependencies and build ---------------------------------------------------

scripts/deps.sh
if [ "$pika" = 1 ] && ! "$PY" -c 'import pika' 2>/dev/null; then
    echo "bench/run.sh: installing python3-pika for the pika column" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-pika >&2
fi
if [ -n "${BENCH_BUILD:-}" ]; then
    build=$(cd "$BENCH_BUILD" && pwd)
else
    build=$root/build-bench
    echo "=== build ($build, Release) ===" >&2
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$build" -j2 --target warren warren-worker warren-bench warren-bare plugin_echo \
        plugin_test >/dev/null
fi
[ -x "$build/lib/warren/warren-worker" ] || die "$build/lib/warren/warren-worker is missing"
for b in warren warren-bench warren-bare; do
    [ -x "$build/bin/$b" ] || die "$build/bin/$b is missing"
done
plugin_dir=$build/lib/warren/plugins
bench=$build/bin/warren-bench

# --- Cleanup: whatever we started goes, however we leave ----------------------

work=$(mktemp -d /tmp/warren-bench-XXXXXX)
chmod 755 "$work" # the broker's dir must be reachable whoever runs the node
started=()        # pids of the servers of the run under way
failures=()       # one line per failed check

cleanup() {
    local pid
    # Background jobs of a script ignore SIGINT: on Ctrl-C they go here.
    for pid in "${started[@]}"; do
        # shellcheck disable=SC2046
        kill -KILL $(children "$pid") "$pid" 2>/dev/null || true
    done
    tests/broker.sh stop "$work/broker" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
    echo "bench/run.sh: FAILED: $*" >&2
    failures+=("$*")
}

# --- /proc readers ------------------------------------------------------------

# hwm_kib PID: the peak resident set (VmHWM) of PID in KiB, 0 if gone.
# Read just before the stop: the peak the process reached, without a
# sampler competing for the two cores.
hwm_kib() {
    local key val
    if [ -r "/proc/$1/status" ]; then
        while read -r key val _; do
            [ "$key" = VmHWM: ] && { echo "$val"; return; }
        done <"/proc/$1/status"
    fi
    echo 0
}

# cpu_ticks PID...: user + system CPU the PIDs have used so far (their own,
# children excluded), in clock ticks: fields 14 and 15 of /proc/PID/stat,
# counted after the ")" that ends the command name (which may hold spaces).
cpu_ticks() {
    local pid stat total=0
    local -a f
    for pid in "$@"; do
        [ -r "/proc/$pid/stat" ] || continue
        stat=$(<"/proc/$pid/stat") || continue
        read -r -a f <<<"${stat##*) }"
        total=$((total + f[11] + f[12]))
    done
    echo "$total"
}

# children PID: the pids of PID's child processes.
children() {
    cat /proc/"$1"/task/*/children 2>/dev/null || true
}

# json_list WORD...: a JSON array of numbers.
json_list() {
    local IFS=,
    echo "[$*]"
}

# --- Servers ------------------------------------------------------------------

# wait_lines FILE PATTERN COUNT PID: wait until FILE holds COUNT lines
# matching PATTERN while PID lives.
wait_lines() {
    local file=$1 pattern=$2 count=$3 pid=$4 seen deadline=$((SECONDS + READY_TIMEOUT))
    while :; do
        seen=$(grep -c -- "$pattern" "$file" 2>/dev/null || true)
        [ "${seen:-0}" -ge "$count" ] && return 0
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "bench/run.sh: server $pid died before it was ready:" >&2
            tail -n 20 "$file" >&2 || true
            return 1
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "bench/run.sh: server $pid not ready within ${READY_TIMEOUT}s:" >&2
            tail -n 20 "$file" >&2 || true
            return 1
        fi
        sleep 0.05
    done
}

# write_conf FILE WORKERS PREFETCH QUEUE CONFIRMS: warren's config for one
# run (CONFIRMS: [pool] publisher_confirms, yes or no).
write_conf() {
    cat >"$1" <<EOF
# Written by bench/run.sh for one run.
[broker]
uri = $uri

[pool]
workers = $2
prefetch = $3
shutdown_timeout = 10
publisher_confirms = $5

[plugins]
dir = $plugin_dir
load = echo test

[log]
level = info

[route bench]
queue = $4
queue_type = $queue_type
EOF
}

# start_server SERVER WORKERS PREFETCH QUEUE LOG: start one server; sets
# srv_pid (what gets SIGTERM), srv_main (the supervisor or bare parent,
# whose CPU and RSS are reported apart, or "") and srv_procs (the worker
# processes).
start_server() {
    local server=$1 n=$2 prefetch=$3 queue=$4 log=$5 i
    srv_pid='' srv_main='' srv_procs=()
    case $server in
    warren | warren-noconfirm)
        local confirms=yes
        [ "$server" = warren-noconfirm ] && confirms=no
        write_conf "$work/$queue.conf" "$n" "$prefetch" "$queue" "$confirms"
        "$build/bin/warren" -c "$work/$queue.conf" 2>"$log" &
        srv_pid=$!
        started=("$srv_pid")
        wait_lines "$log" "ready: " 1 "$srv_pid" || return 1
        srv_main=$srv_pid
        # shellcheck disable=SC2207
        srv_procs=($(children "$srv_pid"))
        ;;
    bare | bare-confirm)
        local -a confirm=()
        [ "$server" = bare-confirm ] && confirm=(--confirm)
        # --exec: each process loads its own libraries, as warren's
        # workers do, so that peak RSS compares like with like.
        "$build/bin/warren-bare" -u "$uri" -q "$queue" -P "$n" --prefetch "$prefetch" \
            --queue-type "$queue_type" --exec "${confirm[@]}" 2>"$log" &
        srv_pid=$!
        started=("$srv_pid")
        wait_lines "$log" "consuming" "$n" "$srv_pid" || return 1
        srv_main=$srv_pid
        # shellcheck disable=SC2207
        srv_procs=($(children "$srv_pid"))
        ;;
    pika)
        # n separate processes, as people run them; a bash subshell holds
        # them so that one pid stands for the server.
        (
            pids=()
            for ((i = 0; i < n; i++)); do
                "$PY" bench/baseline_consumer.py "$uri" "$queue" "$prefetch" >>"$log" 2>&1 &
                pids+=("$!")
            done
            trap 'kill -TERM "${pids[@]}" 2>/dev/null' TERM
            rc=0
            for p in "${pids[@]}"; do
                while :; do # a trapped signal interrupts wait: wait again
                    st=0
                    wait "$p" || st=$?
                    kill -0 "$p" 2>/dev/null || break
                done
                [ "$st" = 0 ] || rc=1
            done
            exit "$rc"
        ) &
        srv_pid=$!
        started=("$srv_pid")
        wait_lines "$log" "^ready" "$n" "$srv_pid" || return 1
        # shellcheck disable=SC2207
        srv_procs=($(children "$srv_pid"))
        ;;
    esac
    [ "${#srv_procs[@]}" -eq "$n" ] || {
        echo "bench/run.sh: $server: expected $n worker processes, found ${#srv_procs[@]}" >&2
        return 1
    }
}

# stop_server: SIGTERM, wait; sets stop_rc to the exit status (KILLed
# after STOP_TIMEOUT: 137).
stop_server() {
    local deadline=$((SECONDS + STOP_TIMEOUT))
    stop_rc=0
    kill -TERM "$srv_pid" 2>/dev/null || true
    while kill -0 "$srv_pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
        sleep 0.05
    done
    if kill -0 "$srv_pid" 2>/dev/null; then
        echo "bench/run.sh: $srv_pid still running ${STOP_TIMEOUT}s after SIGTERM; killing it" >&2
        kill -KILL "$srv_pid" 2>/dev/null || true
    fi
    wait "$srv_pid" 2>/dev/null || stop_rc=$?
    started=()
}

# delete_queue QUEUE...: the run's queues go, so that hundreds of idle
# quorum queues do not weigh on the later runs.  Over AMQP (warren-bench
# --delete-queues, milliseconds), not rabbitmqctl (an Erlang VM started
# for each, 0.7 s of most of a core).
delete_queue() {
    "$bench" -u "$uri" --delete-queues "$@" >/dev/null ||
        echo "bench/run.sh: could not delete $*" >&2
}

nrun=0

# run PART CELL SERVER ROUND WORKERS PREFETCH [BENCH ARGS...]: one run:
# start SERVER on a fresh queue, load it with warren-bench for the counted
# seconds after the warmup, take CPU and RSS, stop it, append the record.
# The CPU window starts when the warmup ends and ends with the load.
run() {
    local part=$1 cell=$2 server=$3 round=$4 n=$5 prefetch=$6 queue log out bpid
    local brc=0 src limit cpu0_w cpu0_m cpu0_b cpu1_w cpu1_m cpu1_b hwm_m=0 hwm_w=() p dur=$seconds
    shift 6
    nrun=$((nrun + 1))
    queue="bench.$nrun.$part.$server"
    log="$work/$queue.log"
    out="$work/$queue.json"
    [ "$part" = mix ] && dur=$mix_seconds
    # warren-bench's --duration includes its --warmup.
    # -t: time for the outstanding calls after it; a lost call is known
    # only when it strikes.
    dur=$(awk -v a="$dur" -v b="$warmup" 'BEGIN { print a + b }')
    limit=$(awk -v a="$dur" 'BEGIN { print int(a + 30) }')
    printf '=== %-7s %-28s %-12s round %s ===\n' "$part" "$cell" "$server" "$round" >&2
    if ! start_server "$server" "$n" "$prefetch" "$queue" "$log"; then
        if [ -n "$srv_pid" ]; then
            # shellcheck disable=SC2046
            kill -KILL $(children "$srv_pid") "$srv_pid" 2>/dev/null || true
            wait "$srv_pid" 2>/dev/null || true
        fi
        started=()
        fail "$part $cell $server round $round: the server did not start"
        printf '{"part":"%s","cell":"%s","server":"%s","round":%s,"workers":%s,"prefetch":%s,"started":false}\n' \
            "$part" "$cell" "$server" "$round" "$n" "$prefetch" >>"$work/runs.jsonl"
        return 0
    fi
    "$bench" -u "$uri" -q "$queue" --duration "$dur" --warmup "$warmup" -t "$limit" --json \
        --label "$part/$cell/$server/$round" "$@" >"$out" 2>"$work/$queue.bench.err" &
    bpid=$!
    started+=("$bpid")
    sleep "$warmup"
    cpu0_w=$(cpu_ticks "${srv_procs[@]}")
    cpu0_m=$(cpu_ticks $srv_main)
    cpu0_b=$(cpu_ticks "$beam")
    wait "$bpid" || brc=$?
    started=("$srv_pid")
    cpu1_w=$(cpu_ticks "${srv_procs[@]}")
    cpu1_m=$(cpu_ticks $srv_main)
    cpu1_b=$(cpu_ticks "$beam")
    [ -n "$srv_main" ] && hwm_m=$(hwm_kib "$srv_main")
    for p in "${srv_procs[@]}"; do hwm_w+=("$(hwm_kib "$p")"); done
    stop_server
    src=$stop_rc
    [ -s "$out" ] || echo null >"$out"
    if [ "$brc" != 0 ]; then
        fail "$part $cell $server round $round: warren-bench exited with status $brc: $(tr '\n' ' ' <"$work/$queue.bench.err" | cut -c1-300)"
    fi
    if [ "$src" != 0 ]; then
        fail "$part $cell $server round $round: the server exited with status $src after SIGTERM"
        tail -n 5 "$log" >&2 || true
    fi
    printf '{"part":"%s","cell":"%s","server":"%s","round":%s,"workers":%s,"prefetch":%s,"started":true,"bench_rc":%s,"stop_rc":%s,"hwm_main_kib":%s,"hwm_procs_kib":%s,"cpu_procs_ticks":%s,"cpu_main_ticks":%s,"cpu_broker_ticks":%s,"bench":%s}\n' \
        "$part" "$cell" "$server" "$round" "$n" "$prefetch" "$brc" "$src" "$hwm_m" \
        "$(json_list "${hwm_w[@]}")" $((cpu1_w - cpu0_w)) $((cpu1_m - cpu0_m)) $((cpu1_b - cpu0_b)) \
        "$(tr -d '\n' <"$out")" >>"$work/runs.jsonl"
    if [ "${server%-noconfirm}" = warren ]; then
        delete_queue "$queue" "$queue.dead"
    else
        delete_queue "$queue"
    fi
    return 0
}

# cell PART CELL "SERVERS" WORKERS PREFETCH [BENCH ARGS...]: the servers
# in turns, BENCH_ROUNDS times (cell_rounds times when that is set).
cell() {
    local part=$1 name=$2 servers=$3 n=$4 prefetch=$5 r i nr=${cell_rounds:-$rounds}
    local -a order
    shift 5
    read -ra order <<<"$servers"
    for ((r = 1; r <= nr; r++)); do
        # Each round starts with the next server (A B C, B C A, C A B, ...),
        # so that none always runs first, or always after the same one.
        for ((i = 0; i < ${#order[@]}; i++)); do
            run "$part" "$name" "${order[(r - 1 + i) % ${#order[@]}]}" "$r" "$n" "$prefetch" "$@"
        done
    done
}

# shape_args CxW: warren-bench's --connections C -c W.
shape_args() {
    echo "--connections ${1%x*} -c ${1#*x}"
}

# --- The run ------------------------------------------------------------------

echo "=== broker ===" >&2
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
tests/broker.sh start "$work/broker" >&2
uri=$(<"$work/broker/uri")
beam=$(<"$work/broker/beam.pid") # the broker's Erlang VM, for its CPU use
case $uri in
amqp://*@127.0.0.1:*) ;;
*) echo "bench/run.sh: broker URI $uri is not on loopback" >&2; exit 1 ;;
esac
: >"$work/runs.jsonl"
t_start=$SECONDS

if [ "$quick" = 1 ]; then
    shapes="1x1 4x16" procs="2" prefetches="1 16" sleep_workers="8" mix_prefetches="16"
    startup_workers=4
else
    shapes="1x1 1x16 4x16 4x64" procs="1 2 4" prefetches="1 16" sleep_workers="8 16 32 64"
    mix_prefetches="1 4 16 64" startup_workers=16
fi
# warren-noconfirm: warren with [pool] publisher_confirms = no, which acks
# as the plain bare loop does (once the reply is written): its yardstick.
echo_servers="warren warren-noconfirm bare-confirm bare"
[ "$pika" = 1 ] && echo_servers+=" pika"

# Echo, 16 bytes: every shape, process count and prefetch.
if wants echo; then
    for shape in $shapes; do
        # One call in flight is the noisiest shape (a round trip, on a
        # machine shared with the broker): its rounds spread by +-10 %,
        # so twice the rounds, for a median good to the targets' 5 %.
        cell_rounds=$rounds
        [ "$shape" = 1x1 ] && cell_rounds=$rounds_1x1
        for n in $procs; do
            for pf in $prefetches; do
                wants_cell "$shape/$n/$pf" || continue
                # shellcheck disable=SC2046
                cell echo "$shape/$n/$pf" "$echo_servers" "$n" "$pf" $(shape_args "$shape") --payload 16
            done
        done
    done
    unset cell_rounds
fi

# 64 KiB payloads, and persistent messages: 4x16, 4 processes.
if wants big && [ "$quick" != 1 ]; then
    for pf in 1 16; do
        cell big "64KiB/4x16/4/$pf" "warren bare-confirm bare" 4 "$pf" --connections 4 -c 16 --payload 65536
    done
    cell big "persistent/4x16/4/16" "warren bare-confirm bare" 4 16 --connections 4 -c 16 --payload 16 --persistent
fi

# The 10 ms handler: throughput against the ideal workers / 10 ms, with a
# window of twice the workers (4 connections).
if wants sleep; then
    for n in $sleep_workers; do
        cell sleep "$n" warren "$n" 1 --connections 4 -c $((n / 2)) -m test.sleep -p '[0.01]'
    done
fi

# Mixed: 1% of calls sleep 1 s, the rest echo; 4 workers; the window
# (4x64) exceeds workers x prefetch, so that prefetch decides where the
# calls wait.  Closed loop (the windows kept full: throughput; 4 workers
# then spend nearly all their time in the slow calls, capacity about
# 4 / (1% x 1 s) = 400 calls/s) and open loop at BENCH_MIX_RATE (default
# 50 calls/s: half a worker asleep on average, all four rarely, so an echo
# call seldom waits unless the prefetch parked it behind a slow one).
if wants mix; then
    cell_rounds=$mix_rounds
    for pf in $mix_prefetches; do
        cell mix "closed/4x64/4/$pf" warren 4 "$pf" --connections 4 -c 64 --payload 16 --mix '10:test.sleep:[1]'
        [ "$quick" = 1 ] && continue
        # One connection: warren-bench spreads the mixed calls evenly over
        # each connection's own sequence, and at 50 calls/s four
        # connections would not reach their 100th call in a run.
        cell mix "open-$mix_rate/1x256/4/$pf" warren 4 "$pf" --connections 1 -c 256 --payload 16 \
            --mix '10:test.sleep:[1]' --rate "$mix_rate"
    done
    unset cell_rounds
fi

# Latency against offered load: 4x64, 4 processes, at shares of the lower
# of warren's and bare-confirm's measured maximum (the echo cell's median,
# else measured here).
if wants rate && [ "$quick" != 1 ]; then
    max_cell="4x64/4/$rate_prefetch"
    if ! "$PY" bench/report.py max "$work/runs.jsonl" echo "$max_cell" >/dev/null 2>&1; then
        cell rate "$max_cell/max" "warren bare-confirm" 4 "$rate_prefetch" --connections 4 -c 64 --payload 16
        max=$("$PY" bench/report.py max "$work/runs.jsonl" rate "$max_cell/max")
    else
        max=$("$PY" bench/report.py max "$work/runs.jsonl" echo "$max_cell")
    fi
    for pct in 25 50 75 90; do
        r=$((max * pct / 100))
        cell rate "$pct%/$r" "warren bare-confirm" 4 "$rate_prefetch" --connections 4 -c 64 --payload 16 --rate "$r"
    done
fi

# Startup: from just before warren's exec to every worker consuming, with
# the broker up.
if wants startup; then
    for ((r = 1; r <= 3; r++)); do
        nrun=$((nrun + 1))
        queue="bench.$nrun.startup"
        printf '=== startup %s workers round %s ===\n' "$startup_workers" "$r" >&2
        write_conf "$work/$queue.conf" "$startup_workers" 1 "$queue" yes
        brc=0 waited=''
        t0=$(date +%s%N)
        "$build/bin/warren" -c "$work/$queue.conf" 2>"$work/$queue.log" &
        srv_pid=$!
        started=("$srv_pid")
        waited=$("$bench" -u "$uri" --wait-consumers "$startup_workers" -q "$queue" --since-ns "$t0" -t 30 --json) || brc=$?
        stop_server
        src=$stop_rc
        [ "$brc" = 0 ] || fail "startup round $r: warren-bench --wait-consumers exited with status $brc"
        [ "$src" = 0 ] || fail "startup round $r: warren exited with status $src after SIGTERM"
        printf '{"part":"startup","cell":"%s","server":"warren","round":%s,"workers":%s,"bench_rc":%s,"stop_rc":%s,"bench":%s}\n' \
            "$startup_workers" "$r" "$startup_workers" "$brc" "$src" "${waited:-null}" >>"$work/runs.jsonl"
        delete_queue "$queue" "$queue.dead"
    done
fi

# --- The report ---------------------------------------------------------------

elapsed=$((SECONDS - t_start))
if [ -n "${BENCH_OUT:-}" ]; then
    out=$BENCH_OUT plots=$(dirname "$BENCH_OUT")/plots
elif [ "$quick" = 1 ]; then
    out=$(mktemp /tmp/warren-bench-quick-XXXXXX.md) plots=${out%.md}-plots
else
    out=$root/BENCHMARKS.md plots=$root/bench/plots
fi
mkdir -p "$plots"
cp "$work/runs.jsonl" "$plots/runs.jsonl" # the raw figures, for another look
printf '%s\n' "${failures[@]}" >"$work/failures"
{
    echo "command=$(env | grep -E '^BENCH_' | sort | tr '\n' ' ')bench/run.sh"
    echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit=$(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- . ':!BENCHMARKS.md' ':!bench/plots' 2>/dev/null || echo '+dirty')"
    echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
    echo "cores=$(nproc)"
    echo "ram=$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
    echo "kernel=$(uname -sr)"
    echo "rabbitmq=$(dpkg-query -W -f '${Version}' rabbitmq-server 2>/dev/null || echo '?')"
    echo "erlang=$(dpkg-query -W -f '${Version}' erlang-base 2>/dev/null || echo '?')"
    echo "load_before=$load_before"
    echo "load_after=$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "elapsed_s=$elapsed"
    echo "seconds=$seconds"
    echo "mix_seconds=$mix_seconds"
    echo "warmup=$warmup"
    echo "rounds=$rounds"
    echo "rounds_1x1=$rounds_1x1"
    echo "mix_rounds=$mix_rounds"
    echo "cells=${echo_cells:-all}"
    echo "queue_type=$queue_type"
    echo "quick=$quick"
    echo "clk_tck=$(getconf CLK_TCK)"
    echo "plots=$plots"
} >"$work/meta"
cp "$work/meta" "$plots/runs.meta" # with runs.jsonl: report.py can write the report again
rrc=0
"$PY" bench/report.py report "$work/runs.jsonl" "$work/meta" "$work/failures" "$out" "$plots" || rrc=$?
echo "bench/run.sh: report in $out, plots in $plots, raw runs in $plots/runs.jsonl (${elapsed}s)" >&2
case $rrc in
0) ;;
3) fail "the figures show wrong, duplicated or lost calls or error replies (see Correctness in $out)" ;;
*) fail "bench/report.py exited with status $rrc" ;;
esac

if [ "${#failures[@]}" -gt 0 ]; then
    echo "bench/run.sh: ${#failures[@]} check(s) failed:" >&2
    printf '  %s\n' "${failures[@]}" >&2
    exit 1
fi
