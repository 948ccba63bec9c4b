#!/usr/bin/python3
"""BENCHMARKS.md and the plots from the runs bench/run.sh recorded.

    report.py report RUNS META FAILURES OUT PLOTDIR
    report.py max RUNS PART CELL

To write the report again from a finished run (after a change here):

    report.py report bench/plots/runs.jsonl bench/plots/runs.meta /dev/null BENCHMARKS.md bench/plots

RUNS holds one JSON object a line, one per run (see bench/run.sh: part,
cell, server, round, the load generator's --json object as "bench", peak
RSS and CPU ticks).  META is KEY=VALUE lines about the run and the machine,
FAILURES the checks that failed, one a line.  `report` writes the markdown
to OUT (keeping the text between <!-- profile --> and <!-- /profile --> of
the file already there) and the PNG plots to PLOTDIR with gnuplot; it exits
3 if a run's figures show a wrong, duplicated or lost call or an error
reply (warren-bench's exit status says so too: a second look).  `max` prints the lower
of warren's and warren-bare --confirm's median calls/s in that cell (exit 1
if either is missing): the 100 % of the latency-against-load runs.

Every figure is the median over the cell's rounds.  The throughput and
latency ratios of warren to a reference are the median of the per-round
ratios (warren's run over the reference's run of the same round, made
seconds apart); the other ratios are ratios of medians.  Standard library
only (Debian's /usr/bin/python3).
"""
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

SERVERS = ("warren", "warren-noconfirm", "bare-confirm", "bare", "pika")
# What is compared with what: warren with its reference loops, and warren
# with [pool] publisher_confirms = no (acked once the reply is written)
# with the loop that acks the same way.
PAIRS = (("warren", "bare-confirm"), ("warren", "bare"), ("warren-noconfirm", "bare"),
         ("warren", "pika"))
PROFILE_START = "<!-- profile -->"
PROFILE_END = "<!-- /profile -->"
PROFILE_PLACEHOLDER = ("(The lead's profiling findings go here: perf, callgrind, strace -c. "
                       "bench/run.sh keeps what stands between the markers.)")


def load_runs(path):
    runs = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                runs.append(json.loads(line))
            except ValueError as e:
                sys.stderr.write("report.py: %s:%d: not JSON (%s); skipped\n" % (path, n, e))
    return runs


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def median_interval(xs, level=0.90):
    """A distribution-free interval for the median of what XS sample: the
    k-th smallest and k-th largest of XS, for the largest k whose coverage
    (1 - 2 P(Binomial(n, 1/2) < k)) is still at least LEVEL; with 5 rounds
    that is the lowest and the highest (94 %), with 8 the second of each
    end (93 %), with 16 the fifth (92 %).  (lo, hi, coverage), or None
    when even the lowest and the highest do not cover LEVEL (4 values or
    fewer at 90 %)."""
    xs = sorted(x for x in xs if x is not None)
    n = len(xs)

    def coverage(k):
        return 1 - 2 * sum(math.comb(n, i) for i in range(k)) / 2.0 ** n

    if coverage(1) < level:  # 4 rounds or fewer
        return None
    k = 1
    while k + 1 <= n // 2 and coverage(k + 1) >= level:
        k += 1
    return xs[k - 1], xs[n - k], coverage(k)


# Student's t, 95th percentile, for 1 to 30 degrees of freedom (index 0
# unused; past 30, the last one, near the normal's 1.645).
T95 = (None, 6.314, 2.920, 2.353, 2.132, 2.015, 1.943, 1.895, 1.860, 1.833, 1.812,
       1.796, 1.782, 1.771, 1.761, 1.753, 1.746, 1.740, 1.734, 1.729, 1.725,
       1.721, 1.717, 1.714, 1.711, 1.708, 1.706, 1.703, 1.701, 1.699, 1.697)


def geomean_interval(cells):
    """The geometric mean over CELLS (lists of one cell's rounds' ratios)
    of each cell's geometric mean, and its 90 % interval from the spread
    between cells (Student's t): (mean, lo, hi), or None with fewer than 2
    cells."""
    logs = [statistics.mean(math.log(q) for q in qs) for qs in cells if qs]
    if len(logs) < 2:
        return None
    m = statistics.mean(logs)
    half = T95[min(len(logs) - 1, len(T95) - 1)] * statistics.stdev(logs) / math.sqrt(len(logs))
    return math.exp(m), math.exp(m - half), math.exp(m + half)


def bench_field(run, key):
    b = run.get("bench")
    if not isinstance(b, dict):
        return None
    v = b.get(key)
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


class Figures:
    """Per-run figures, and their medians per (part, cell, server)."""

    def __init__(self, runs, clk_tck, meta=None):
        self.runs = runs
        self.meta = meta or {}
        self.hz = float(clk_tck)
        self.cells = {}
        for r in runs:
            self.cells.setdefault((r.get("part"), r.get("cell"), r.get("server")), []).append(r)

    def per_call_us(self, run, ticks_key):
        calls = bench_field(run, "calls")
        ticks = run.get(ticks_key)
        if not calls or ticks is None:
            return None
        return ticks / self.hz / calls * 1e6

    def value(self, run, what):
        if what == "cpu_procs_us":
            return self.per_call_us(run, "cpu_procs_ticks")
        if what == "cpu_main_us":
            return self.per_call_us(run, "cpu_main_ticks")
        if what == "cpu_broker_us":
            return self.per_call_us(run, "cpu_broker_ticks")
        if what == "cpu_per_proc_us":  # what one of the N processes spends per call it answers
            return self.per_call_us(run, "cpu_procs_ticks")
        if what == "hwm_proc_kib":
            xs = run.get("hwm_procs_kib") or []
            return statistics.mean(xs) if xs else None
        if what == "hwm_main_kib":
            return run.get("hwm_main_kib") or None
        return bench_field(run, what)

    def med(self, part, cell, server, what):
        rs = self.cells.get((part, cell, server), [])
        return median(self.value(r, what) for r in rs if r.get("started"))

    def paired(self, part, cell, server, ref, what):
        """The median over the rounds of SERVER's WHAT over REF's in the
        same round.  The two runs of a round are seconds apart, so the
        machine's drift over the minutes of a cell cancels out of each
        ratio, which a ratio of medians taken from different rounds keeps."""
        return median(self.round_ratios(part, cell, server, ref, what))

    def round_ratios(self, part, cell, server, ref, what):
        """SERVER's WHAT over REF's, one ratio per round that has both."""
        def by_round(s):
            return {r.get("round"): self.value(r, what) for r in self.cells.get((part, cell, s), [])
                    if r.get("started")}
        a, b = by_round(server), by_round(ref)
        return [q for k in sorted(a) if k in b for q in [ratio(a[k], b[k])] if q is not None]

    def cell_names(self, part):
        seen = []
        for r in self.runs:
            if r.get("part") == part and r.get("cell") not in seen:
                seen.append(r.get("cell"))
        return seen

    def servers(self, part):
        return [s for s in SERVERS if any(k[0] == part and k[2] == s for k in self.cells)]


# --- Formatting ----------------------------------------------------------------

def num(x, digits=0):
    if x is None:
        return "–"
    if digits == 0:
        return "{:,.0f}".format(x)
    return "{:,.{}f}".format(x, digits)


def ms(x):
    if x is None:
        return "–"
    return "%.2f" % x if x < 10 else "%.1f" % x if x < 100 else "%.0f" % x


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def rx(x):
    return "–" if x is None else "%.2f×" % x


def pct(x):
    return "–" if x is None else "%.1f %%" % (100 * x)


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out) + "\n"


def lat3(f, part, cell, server):
    return "%s / %s / %s" % (ms(f.med(part, cell, server, "p50_ms")), ms(f.med(part, cell, server, "p99_ms")),
                             ms(f.med(part, cell, server, "p999_ms")))


def split_cell(cell):
    """echo cells are SHAPE/PROCESSES/PREFETCH."""
    parts = cell.split("/")
    return parts + [""] * (3 - len(parts))


def cell_key(part, cell):
    """[label, processes, prefetch] of an echo or big cell (big cells are
    WHAT/SHAPE/PROCESSES/PREFETCH)."""
    p = split_cell(cell)
    if part == "big" and len(p) >= 4:
        return ["%s %s" % (p[0], p[1]), p[2], p[3]]
    return p[:3]


# --- Sections --------------------------------------------------------------------

def throughput_tables(f, part, title, lead):
    cells = f.cell_names(part)
    if not cells:
        return "", []
    servers = f.servers(part)
    pairs = [(w, r) for w, r in PAIRS if w in servers and r in servers]
    head = ["payload, shape" if part == "big" else "shape", "processes", "prefetch"]
    rows, lrows, ratios = [], [], []
    for c in cells:
        key = cell_key(part, c)
        row = key[:3] + [num(f.med(part, c, s, "calls_per_s")) for s in servers]
        lrow = key[:3] + [lat3(f, part, c, s) for s in servers]
        for w, s in pairs:
            q = f.paired(part, c, w, s, "calls_per_s")
            row.append(rx(q))
            ratios.append((c, w, s, "calls_per_s", q))
        for w, s in pairs:
            q = f.paired(part, c, w, s, "p99_ms")
            lrow.append(rx(q))
            ratios.append((c, w, s, "p99_ms", q))
        rows.append(row)
        lrows.append(lrow)
    text = ("## %s\n\n%s\n\nCalls/s (median of the rounds; a ratio is the median of the rounds' "
            "ratios, each of two runs made seconds apart):\n\n" % (title, lead))
    text += table(head + servers + ["%s / %s" % p for p in pairs], rows)
    text += "\nLatency p50 / p99 / p99.9 (ms):\n\n"
    text += table(head + servers + ["p99 %s / %s" % p for p in pairs], lrows)
    return text + "\n", ratios


def ticks_per_run(meta):
    try:
        return "%.0f" % (float(meta["seconds"]) * float(meta.get("clk_tck", 100)))
    except (KeyError, ValueError):
        return "?"


def cpu_table(f, parts):
    rows = []
    for part in parts:
        for c in f.cell_names(part):
            key = cell_key(part, c)
            wp = f.med(part, c, "warren", "cpu_procs_us")
            wm = f.med(part, c, "warren", "cpu_main_us")
            bc = f.med(part, c, "bare-confirm", "cpu_procs_us")
            b = f.med(part, c, "bare", "cpu_procs_us")
            rows.append(key + [
                num(wp, 1), num(wm, 2), pct(ratio(wm, wp)), num(bc, 1), num(b, 1),
                rx(ratio(wp, bc)), rx(ratio(wp, b)),
                "%s / %s / %s" % (num(f.med(part, c, "warren", "cpu_broker_us"), 1),
                                  num(f.med(part, c, "bare-confirm", "cpu_broker_us"), 1),
                                  num(f.med(part, c, "bare", "cpu_broker_us"), 1))])
    if not rows:
        return ""
    text = ("## CPU per call\n\nMicroseconds of CPU (utime + stime from /proc/PID/stat, the "
            "process's own, children excluded) per counted call, over the counted part of each "
            "run, summed over the server's worker processes; the supervisor (warren's parent) "
            "apart; the broker (its Erlang VM) for the warren / bare-confirm / bare runs. "
            "Medians of the rounds.  CPU ticks are 10 ms: in a %s s run a process busy all the "
            "time counts %s of them.\n\n" % (f.meta.get("seconds", "?"), ticks_per_run(f.meta)))
    return text + table(["shape", "processes", "prefetch", "warren workers", "supervisor",
                         "supervisor / workers", "bare-confirm", "bare", "warren / bare-confirm",
                         "warren / bare", "broker (w / bc / b)"], rows) + "\n"


def memory_section(f):
    # The big cells one by one: a worker holds what its prefetch window
    # brought in, so 64 KiB at prefetch 16 is not 64 KiB at prefetch 1.
    groups = [("echo 16 B", "echo", None)]
    groups += [(c.replace("/", " ", 1), "big", c) for c in f.cell_names("big")]
    groups += [("10 ms handler", "sleep", None), ("mixed", "mix", None)]
    rows = []
    summary = {}
    for name, part, cell in groups:
        vals = {}
        for s in SERVERS:
            runs = [r for r in f.runs if r.get("part") == part and r.get("server") == s
                    and r.get("started") and cell in (None, r.get("cell"))]
            per = [f.value(r, "hwm_proc_kib") for r in runs]
            main = [f.value(r, "hwm_main_kib") for r in runs]
            vals[s] = (median(per), max([m for m in main if m] or [0]) or None)
        if vals["warren"][0] is None:
            continue
        summary[name] = vals
        mib = lambda k: None if k is None else k / 1024.0
        rows.append([name, num(mib(vals["warren"][0]), 2), num(mib(vals["warren"][1]), 2),
                     num(mib(vals["bare-confirm"][0]), 2), num(mib(vals["bare"][0]), 2),
                     rx(ratio(vals["warren"][0], vals["bare-confirm"][0])),
                     rx(ratio(vals["warren"][0], vals["bare"][0]))])
    if not rows:
        return "", summary
    text = ("## Memory\n\nPeak resident set (VmHWM from /proc/PID/status, read just before the "
            "stop), MiB: per worker process (the median over the runs of the mean over a run's "
            "workers), the supervisor's highest, and per warren-bare child process.  Shared pages "
            "(libc, librabbitmq, jansson) count in every process, as `ps` counts them.\n\n")
    text += table(["runs", "warren worker", "warren supervisor (max)", "bare-confirm process",
                   "bare process", "worker / bare-confirm", "worker / bare"], rows)
    return text + "\n", summary


def sleep_section(f):
    cells = f.cell_names("sleep")
    if not cells:
        return "", {}
    rows, got = [], {}
    for c in sorted(cells, key=int):
        n = int(c)
        r = f.med("sleep", c, "warren", "calls_per_s")
        ideal = n / 0.01
        got[n] = (r, ideal)
        rows.append([n, num(r), num(ideal), pct(ratio(r, ideal)), ms(f.med("sleep", c, "warren", "p50_ms")),
                     ms(f.med("sleep", c, "warren", "p99_ms"))])
    text = ("## 10 ms handler\n\nwarren with the test plugin's `test.sleep [0.01]`, prefetch 1, "
            "a window of twice the workers (4 connections): throughput against the ideal, "
            "workers / 10 ms.\n\n")
    return text + table(["workers", "calls/s", "ideal", "of ideal", "p50 ms", "p99 ms"], rows) + "\n", got


def mix_section(f):
    cells = f.cell_names("mix")
    if not cells:
        return ""
    modes = []
    for c in cells:
        if c.split("/")[0] not in modes:
            modes.append(c.split("/")[0])
    prefetches = []
    for c in cells:
        if c.split("/")[-1] not in prefetches:
            prefetches.append(c.split("/")[-1])
    head, rows = ["prefetch"], []
    for m in modes:
        what = "closed loop" if m == "closed" else "open loop, %s calls/s" % m.split("-", 1)[-1]
        head += ["%s: echo calls/s" % what, "echo p50 / p99 ms", "slow calls", "slow p50 / p99 ms"]
    for pf in prefetches:
        row = [pf]
        for m in modes:
            c = next((c for c in cells if c.split("/")[0] == m and c.split("/")[-1] == pf), None)
            def g(k):
                if k.startswith("mix_") and k != "mix_calls" and not f.med("mix", c, "warren", "mix_calls"):
                    return None  # no slow call counted: no percentiles
                return f.med("mix", c, "warren", k)
            row += [num(g("calls_per_s")), "%s / %s" % (ms(g("p50_ms")), ms(g("p99_ms"))), num(g("mix_calls")),
                    "%s / %s" % (ms(g("mix_p50_ms")), ms(g("mix_p99_ms")))]
        rows.append(row)
    text = ("## Mixed workload: the prefetch trade-off\n\nwarren, 4 workers, a window of 256 calls "
            "(4x64 closed loop, 1x256 open loop): 1 %% of the "
            "calls are `test.sleep [1]` (1 s), the rest `echo` 16 B.  The window "
            "exceeds workers × prefetch, so the prefetch decides how many echo calls a worker "
            "holds behind its slow call instead of leaving them to a free worker (fairness), "
            "against the round trip per message it saves (throughput, see the echo table).  "
            "Closed loop: the windows kept full; 4 workers can do about 4 / (1 %% × 1 s) = 400 "
            "calls/s, so nearly every call waits whatever the prefetch.  Open loop: calls offered "
            "at a fixed rate well below that (at 50 calls/s half a worker is asleep on average), "
            "so that an echo call waits mostly when the prefetch parked it behind a slow one.  Echo figures are the echo calls only; the slow calls apart "
            "(counted calls, after the warmup; %s s runs).\n\n" % f.meta.get("mix_seconds", "?"))
    return text + table(head, rows) + "\n"


def rate_section(f):
    cells = [c for c in f.cell_names("rate") if not c.endswith("/max")]
    if not cells:
        return "", []
    rows, series = [], []
    for c in cells:
        share, offered = c.split("/")[:2]
        w = lambda k: f.med("rate", c, "warren", k)
        b = lambda k: f.med("rate", c, "bare-confirm", k)
        rows.append([share, num(float(offered)), num(w("calls_per_s")), lat3(f, "rate", c, "warren"),
                     num(b("calls_per_s")), lat3(f, "rate", c, "bare-confirm"),
                     rx(ratio(w("p99_ms"), b("p99_ms")))])
        series.append((float(offered), [w("p50_ms"), w("p99_ms"), w("p999_ms"), b("p50_ms"), b("p99_ms"),
                                        b("p999_ms")]))
    text = ("## Latency against offered load\n\n4x64, 4 processes, open loop (`--rate`) at shares "
            "of the lower of warren's and warren-bare --confirm's measured maximum in the same "
            "shape; p50 / p99 / p99.9 in ms.\n\n")
    return text + table(["load", "offered calls/s", "warren achieved", "warren latency",
                         "bare-confirm achieved", "bare-confirm latency", "p99 warren / bare-confirm"],
                        rows) + "\n", series


def startup_values(runs):
    """warren-bench --wait-consumers --json: since_ms is the time from the
    instant taken just before warren's exec."""
    return [bench_field(r, "since_ms") for r in runs
            if r.get("part") == "startup" and r.get("bench_rc") == 0 and bench_field(r, "since_ms") is not None]


def startup_section(runs):
    vals = startup_values(runs)
    workers = next((r.get("workers") for r in runs if r.get("part") == "startup"), None)
    if workers is None:
        return "", None, None
    text = ("## Startup\n\n`warren` with %s workers and the broker up: from just before its exec to "
            "every worker consuming (`warren-bench --wait-consumers`), 3 runs: %s ms; median "
            "**%s ms**.\n\n" % (workers, ", ".join(ms(v) for v in vals) or "–", ms(median(vals))))
    return text, median(vals), workers


# --- Plots -------------------------------------------------------------------------

def gnuplot(script, plotdir):
    if not shutil.which("gnuplot"):
        sys.stderr.write("report.py: no gnuplot (apt-get install gnuplot-nox); plots skipped\n")
        return False
    r = subprocess.run(["gnuplot"], input=script, text=True, cwd=plotdir,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if r.returncode != 0:
        sys.stderr.write("report.py: gnuplot failed:\n%s\n" % r.stderr)
        return False
    return True


TERM = 'set terminal pngcairo size 900,560 font "DejaVu Sans,11"\nset grid\nset key top left\n'


def dat(v):
    return "NaN" if v is None else "%g" % v


def plots(f, plotdir, sleep_got, rate_series):
    made = []
    os.makedirs(plotdir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="warren-plots-")
    try:
        if sleep_got:
            p = os.path.join(tmp, "sleep.dat")
            with open(p, "w") as o:
                for n in sorted(sleep_got):
                    o.write("%d %s %s\n" % (n, dat(sleep_got[n][0]), dat(sleep_got[n][1])))
            if gnuplot(TERM + 'set output "sleep_workers.png"\n'
                       'set title "10 ms handler: throughput against workers"\n'
                       'set xlabel "workers"\nset ylabel "calls/s"\nset xtics (%s)\nset yrange [0:*]\n'
                       'plot "%s" using 1:2 with linespoints lw 2 pt 7 title "warren", '
                       '"" using 1:3 with lines dt 2 lw 2 title "ideal (workers / 10 ms)"\n'
                       % (", ".join(str(n) for n in sorted(sleep_got)), p), plotdir):
                made.append(("sleep_workers.png", "10 ms handler: calls/s against workers, with the ideal"))

        echo_cells = f.cell_names("echo")
        shapes = []
        for c in echo_cells:
            if split_cell(c)[0] not in shapes:
                shapes.append(split_cell(c)[0])
        if shapes:
            shape = "4x64" if "4x64" in shapes else shapes[-1]
            prefetches = sorted({split_cell(c)[2] for c in echo_cells if split_cell(c)[0] == shape}, key=int)
            procs = sorted({split_cell(c)[1] for c in echo_cells if split_cell(c)[0] == shape}, key=int)
            servers = [s for s in f.servers("echo")]
            p = os.path.join(tmp, "echo.dat")
            cols = [(s, pf) for pf in prefetches for s in servers]
            with open(p, "w") as o:
                for n in procs:
                    o.write(n + " " + " ".join(dat(f.med("echo", "%s/%s/%s" % (shape, n, pf), s, "calls_per_s"))
                                               for s, pf in cols) + "\n")
            colour = {"warren": "#c0392b", "warren-noconfirm": "#e67e22", "bare-confirm": "#2471a3", "bare": "#229954", "pika": "#7d3c98"}
            terms = []
            for i, (s, pf) in enumerate(cols):
                terms.append('%s using 1:%d with linespoints lw 2 pt 7 lc rgb "%s" dt %d title "%s, prefetch %s"'
                             % ('"%s"' % p if i == 0 else '""', i + 2, colour[s],
                                1 if pf == prefetches[-1] else 2, s, pf))
            if gnuplot(TERM + 'set output "echo_processes.png"\n'
                       'set title "echo 16 B, %s: throughput against processes"\n'
                       'set xlabel "processes (warren workers, warren-bare children)"\nset ylabel "calls/s"\n'
                       'set xtics (%s)\nset yrange [0:*]\nset key outside right\n'
                       'plot %s\n' % (shape, ", ".join(procs), ", ".join(terms)), plotdir):
                made.append(("echo_processes.png", "echo 16 B, %s: calls/s against processes, warren and "
                             "warren-bare" % shape))

        if rate_series:
            p = os.path.join(tmp, "rate.dat")
            with open(p, "w") as o:
                for offered, vals in sorted(rate_series):
                    o.write("%g %s\n" % (offered, " ".join(dat(v) for v in vals)))
            names = ["warren p50", "warren p99", "warren p99.9", "bare-confirm p50", "bare-confirm p99",
                     "bare-confirm p99.9"]
            terms = []
            for i, n in enumerate(names):
                terms.append('%s using 1:%d with linespoints lw 2 pt %d lc rgb "%s" dt %d title "%s"'
                             % ('"%s"' % p if i == 0 else '""', i + 2, 7 if i < 3 else 5,
                                "#c0392b" if i < 3 else "#2471a3", [1, 2, 3][i % 3], n))
            if gnuplot(TERM + 'set output "latency_load.png"\n'
                       'set title "echo 16 B, 4x64, 4 processes: latency against offered load"\n'
                       'set xlabel "offered calls/s"\nset ylabel "ms"\nset logscale y\n'
                       'plot %s\n' % ", ".join(terms), plotdir):
                made.append(("latency_load.png", "latency percentiles against offered load, warren and "
                             "warren-bare --confirm"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return made


# --- Targets -----------------------------------------------------------------------

def targets(f, ratios, sleep_got, mem, startup_ms, startup_workers):
    rows = []

    def met(ok):
        return "–" if ok is None else ("met" if ok else "**not met**")

    # How many of the failing cells failed in every round: a median can
    # land past the line on noise, a cell below in every round did not.
    def every_round(cells, who, ref, what, bad):
        return sum(1 for c in cells
                   if all(bad(q) for q in f.round_ratios("echo", c, who, ref, what) or [None]))

    # A cell's median is a sample: with rounds that spread by +-10 % it
    # lands past the line now and then on noise alone.  What the rounds
    # show beyond doubt: the cells whose whole interval for the median
    # (median_interval) is past the line, and where the cells stand
    # together (geomean_interval).
    def evidence(cells, who, ref, what, side, line):
        sure = 0
        for c in cells:
            iv = median_interval(f.round_ratios("echo", c, who, ref, what))
            if iv and (iv[1] < line if side == "below" else iv[0] > line):
                sure += 1
        g = geomean_interval([f.round_ratios("echo", c, who, ref, what) for c in cells])
        return ("%d whose interval for the median (90 %% or more) lies wholly %s; the %d cells "
                "together (geometric mean) %s (90 %% interval %s–%s)"
                % (sure, side, len(cells), rx(g and g[0]), rx(g and g[1]), rx(g and g[2])))

    def subject(who):
        return "warren" if who == "warren" else "warren (publisher_confirms = no)"

    # Throughput >= 0.95x bare at every shape (echo cells; the issue's
    # reference is the plain bare loop; against --confirm too).
    target_pairs = (("warren", "bare"), ("warren", "bare-confirm"), ("warren-noconfirm", "bare"))
    for who, ref in target_pairs:
        qs = [(q, c) for c, w, s, k, q in ratios
              if (w, s) == (who, ref) and k == "calls_per_s" and q is not None]
        if qs:
            worst = min(qs)
            low = [c for q, c in qs if q < 0.95]
            always = every_round(low, who, ref, "calls_per_s", lambda q: q is not None and q < 0.95)
            rows.append(["%s echo throughput ≥ 0.95× %s, every shape / processes / prefetch"
                         % (subject(who), ref),
                         "lowest %s (%s); %d of %d cells below, %d of them in every round, %s"
                         % (rx(worst[0]), worst[1], len(low), len(qs), always,
                            evidence([c for q, c in qs], who, ref, "calls_per_s", "below", 0.95)),
                         met(not low)])
    for who, ref in target_pairs:
        qs = [(q, c) for c, w, s, k, q in ratios if (w, s) == (who, ref) and k == "p99_ms"
              and q is not None and split_cell(c)[0] in ("1x1", "4x64")]
        if qs:
            worst = max(qs)
            high = [c for q, c in qs if q > 1.10]
            always = every_round(high, who, ref, "p99_ms", lambda q: q is not None and q > 1.10)
            rows.append(["%s p99 ≤ 1.10× %s at 1x1 and 4x64" % (subject(who), ref),
                         "highest %s (%s); %d of %d cells above, %d of them in every round, %s"
                         % (rx(worst[0]), worst[1], len(high), len(qs), always,
                            evidence([c for q, c in qs], who, ref, "p99_ms", "above", 1.10)),
                         met(not high)])
    if 32 in sleep_got:
        r, ideal = sleep_got[32]
        q = ratio(r, ideal)
        rows.append(["10 ms handler, 32 workers: ≥ 90 % of 3,200 calls/s",
                     "%s calls/s = %s" % (num(r), pct(q)), met(None if q is None else q >= 0.90)])
    else:
        rows.append(["10 ms handler, 32 workers: ≥ 90 % of 3,200 calls/s", "not run", "–"])
    for name, vals in mem.items():
        for ref in ("bare", "bare-confirm"):
            q = ratio(vals["warren"][0], vals[ref][0])
            if q is not None:
                rows.append(["peak RSS per worker ≤ 1.25× a %s process (%s runs)" % (ref, name),
                             "%s (%s MiB)" % (rx(q), num(vals["warren"][0] / 1024.0, 2)), met(q <= 1.25)])
    sups = [v["warren"][1] for v in mem.values() if v["warren"][1]]
    if sups:
        rows.append(["supervisor peak RSS < 4 MiB (every run)", "%s MiB" % num(max(sups) / 1024.0, 2),
                     met(max(sups) < 4096)])
    # Pooled over every echo run: CPU ticks are 10 ms, and a single cell's
    # supervisor may have used one or two of them.
    echo = [r for r in f.runs if r.get("part") == "echo" and r.get("server") == "warren" and r.get("started")]
    main = sum(r.get("cpu_main_ticks") or 0 for r in echo)
    procs = sum(r.get("cpu_procs_ticks") or 0 for r in echo)
    if procs:
        sups = [(q, c) for c in f.cell_names("echo")
                for q in [ratio(f.med("echo", c, "warren", "cpu_main_us"), f.med("echo", c, "warren", "cpu_procs_us"))]
                if q is not None]
        worst = max(sups) if sups else (None, "–")
        rows.append(["supervisor CPU per call < 2 % of the workers' (echo runs)",
                     "%s over all echo runs (%d of %d ticks); highest cell %s (%s)"
                     % (pct(main / procs), main, procs, pct(worst[0]), worst[1]), met(main / procs < 0.02)])
    if startup_workers is not None:
        rows.append(["startup to every worker consuming < 1 s (16 workers)",
                     "%s ms with %s workers" % (ms(startup_ms), startup_workers),
                     met(None if startup_ms is None or startup_workers != 16 else startup_ms < 1000)])
    rows.append(["prefetch default chosen from the measurement", "see the mixed workload table",
                 "(the README's choice)"])
    return "## Targets\n\nFrom issue 8, read from this run.\n\n" + table(["target", "measured", ""], rows) + "\n"


# --- The whole report --------------------------------------------------------------

def old_profile(path):
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return None
    a, b = text.find(PROFILE_START), text.find(PROFILE_END)
    if a < 0 or b < a:
        return None
    return text[a + len(PROFILE_START):b].strip("\n")


def correctness(f, failures):
    bad = []
    total = 0
    for r in f.runs:
        b = r.get("bench")
        if not isinstance(b, dict):
            continue
        total += (b.get("calls") or 0) + (b.get("mix_calls") or 0)
        n = {k: b.get(k) or 0 for k in ("wrong", "duplicated", "lost", "errors")}
        if any(n.values()):
            bad.append("%s %s %s round %s: %s" % (r.get("part"), r.get("cell"), r.get("server"), r.get("round"),
                                                   ", ".join("%s %s" % (v, k) for k, v in n.items() if v)))
    text = "## Correctness\n\n"
    if not failures and not bad:
        text += ("Every run: every reply checked against its request; 0 wrong, 0 duplicated, 0 lost, "
                 "0 error replies (%s counted calls), and every server exited 0 on SIGTERM.\n\n" % num(total))
    else:
        text += "**Failed checks**:\n\n" + "".join("- %s\n" % x for x in list(failures) + bad) + "\n"
    return text, bad


def report(runs_path, meta_path, failures_path, out, plotdir):
    runs = load_runs(runs_path)
    meta = {}
    with open(meta_path) as fm:
        for line in fm:
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                meta[k] = v
    with open(failures_path) as ff:
        failures = [l.strip() for l in ff if l.strip()]
    f = Figures(runs, meta.get("clk_tck", "100"), meta)

    echo_text, echo_ratios = throughput_tables(
        f, "echo", "Echo, 16 B",
        "JSON-RPC `echo` with a 16-character string; shapes are connections x calls in flight per "
        "connection; warren with N workers and prefetch P against `warren-bare -P N --prefetch P`, "
        "with `--confirm` (warren's semantics: a request is acked once its reply is confirmed) and "
        "without (the issue's reference loop, which acks once the reply is written); "
        "warren-noconfirm is warren with `[pool] publisher_confirms = no`, which acks as that "
        "loop does, and is compared with it.")
    big_text, _ = throughput_tables(f, "big", "64 KiB payloads and persistent messages",
                                    "4x16, 4 processes; 64 KiB strings echoed, or 16 B requests "
                                    "published persistent (delivery mode 2).")
    mem_text, mem = memory_section(f)
    sleep_text, sleep_got = sleep_section(f)
    rate_text, rate_series = rate_section(f)
    start_text, start_ms, start_workers = startup_section(runs)
    corr_text, bad = correctness(f, failures)
    made = plots(f, plotdir, sleep_got, rate_series)

    profile = old_profile(out)
    if profile is None:
        profile = PROFILE_PLACEHOLDER
    rel = os.path.relpath(plotdir, os.path.dirname(os.path.abspath(out)))

    doc = ["# Benchmarks\n\n"]
    doc.append("warren against `warren-bare`, the smallest correct rabbitmq-c echo loop (bench/bare.c), "
               "run in turns on one private RabbitMQ node; written by `bench/run.sh` (see README.md, "
               "\"Benchmark\"). Compare ratios from one run, not absolute figures across runs or machines.\n\n")
    if meta.get("quick") == "1":
        doc.append("**A smoke run (BENCH_QUICK=1): a few cells, 1 s each; the figures mean little.**\n\n")
    elif int(meta.get("rounds", 8)) < 5 or float(meta.get("seconds", 1.5)) < 1:
        doc.append("**A reduced run (%s round(s) of %s s; bench/run.sh's default is 8 of 1.5 s): the figures are "
                   "rough; run `bench/run.sh` for the real ones.**\n\n" % (meta.get("rounds"), meta.get("seconds")))
    doc.append("## How it was run\n\n")
    doc.append(table(["", ""], [
        ["command", "`%s`" % meta.get("command", "bench/run.sh")],
        ["date", meta.get("date", "?")],
        ["commit", "`%s`" % meta.get("commit", "?")],
        ["runs", "%s rounds%s, %s s counted after a %s s warmup (mixed workload: %s s), each run on a fresh "
                 "%s queue; %s runs in %s s" % (meta.get("rounds"),
                                               " (echo 1x1: %s)" % meta["rounds_1x1"] if "rounds_1x1" in meta else "",
                                               meta.get("seconds"), meta.get("warmup"),
                                               meta.get("mix_seconds"), meta.get("queue_type", "quorum"),
                                               len(runs), meta.get("elapsed_s"))],
        ["CPU", "%s, %s cores (shared by the broker, the load generator and the servers)"
                % (meta.get("cpu", "?"), meta.get("cores", "?"))],
        ["RAM", meta.get("ram", "?")],
        ["kernel", meta.get("kernel", "?")],
        ["RabbitMQ / Erlang", "%s / %s (Debian packages)" % (meta.get("rabbitmq", "?"), meta.get("erlang", "?"))],
        ["load average before / after", "%s / %s" % (meta.get("load_before", "?"), meta.get("load_after", "?"))],
    ]))
    doc.append("\n")
    doc.append(targets(f, echo_ratios, sleep_got, mem, start_ms, start_workers))
    doc.append(corr_text)
    for t in (echo_text, big_text, cpu_table(f, ("echo", "big")), mem_text, sleep_text, mix_section(f),
              rate_text, start_text):
        if t:
            doc.append(t)
    if made:
        doc.append("## Plots\n\n")
        for name, caption in made:
            doc.append("%s:\n\n![%s](%s/%s)\n\n" % (caption[0].upper() + caption[1:], caption, rel, name))
    doc.append("## Profile\n\n%s\n%s\n%s\n" % (PROFILE_START, profile, PROFILE_END))

    tmp = out + ".tmp"
    with open(tmp, "w") as o:
        o.write("".join(doc))
    os.replace(tmp, out)
    return 3 if bad else 0


def max_rate(runs_path, part, cell):
    f = Figures(load_runs(runs_path), 100)
    vals = [f.med(part, cell, s, "calls_per_s") for s in ("warren", "bare-confirm")]
    if any(v is None for v in vals):
        return 1
    print(int(min(vals)))
    return 0


def main(argv):
    if len(argv) == 7 and argv[1] == "report":
        return report(*argv[2:])
    if len(argv) == 5 and argv[1] == "max":
        return max_rate(*argv[2:])
    sys.stderr.write(__doc__)
    return 64


if __name__ == "__main__":
    sys.exit(main(sys.argv))
