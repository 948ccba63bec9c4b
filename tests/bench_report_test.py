#!/usr/bin/python3
"""bench/report.py's reading of the targets, on runs made up here:

    tests/bench_report_test.py SOURCE_DIR

median_interval against coverages counted by hand; and a report from
made-up echo runs, where one cell's median is below 0.95 on noise (two
rounds above) and another's is below in every round: the targets row must say
1 past the line beyond doubt, not 2, and not met."""
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(sys.argv[1], "bench"))
import report  # noqa: E402

failed = 0


def check(what, ok):
    global failed
    print("%s: %s" % ("ok" if ok else "FAILED", what))
    failed += not ok


# 5 values: only the lowest and the highest cover 90 % (1 - 2/32 = 93.75 %).
lo, hi, cov = report.median_interval([0.99, 0.90, 1.05, 0.97, 1.01])
check("5 rounds: lowest and highest, 93.75 %", (lo, hi) == (0.90, 1.05) and abs(cov - 0.9375) < 1e-9)
# 10 values: the second of each end (1 - 2 * 11/1024 = 97.9 %); the third
# would cover 89.1 %, under 90.
lo, hi, cov = report.median_interval(list(range(1, 11)))
check("10 rounds: second lowest and second highest, 97.9 %", (lo, hi) == (2, 9) and abs(cov - (1 - 22 / 1024)) < 1e-9)
check("one value: no interval", report.median_interval([1.0]) is None)
check("4 values: none covers 90 % (87.5 %)", report.median_interval([1, 2, 3, 4]) is None)
g = report.geomean_interval([[1.0, 1.0], [1.0, 1.0]])
check("cells at 1.0 together: 1.0 to 1.0", all(abs(x - 1.0) < 1e-12 for x in g))
g = report.geomean_interval([[0.5], [2.0], [1.0], [1.0]])
check("geometric mean of 0.5, 2, 1, 1 is 1, inside its interval", abs(g[0] - 1.0) < 1e-12 and g[1] < 1 < g[2])

# Made-up runs, 5 rounds: cell A's median 0.94 is below on noise (two
# rounds above the line, the highest 1.00); cell B is 0.90 in every round.
rounds = {"1x1/1/1": [1.00, 0.80, 0.94, 0.93, 0.98], "4x64/4/16": [0.90, 0.91, 0.89, 0.90, 0.92]}
with tempfile.TemporaryDirectory() as tmp:
    runs = os.path.join(tmp, "runs.jsonl")
    with open(runs, "w") as o:
        for cell, qs in rounds.items():
            for r, q in enumerate(qs, 1):
                for server, cps in (("warren", 1000.0 * q), ("bare-confirm", 1000.0)):
                    o.write(json.dumps({"part": "echo", "cell": cell, "server": server, "round": r,
                                        "started": True, "bench": {"calls_per_s": cps, "calls": 3000,
                                                                   "p99_ms": 1.0}}) + "\n")
    meta = os.path.join(tmp, "meta")
    with open(meta, "w") as o:
        o.write("rounds=5\nseconds=3\nclk_tck=100\n")
    out = os.path.join(tmp, "B.md")
    report.report(runs, meta, os.devnull, out, os.path.join(tmp, "plots"))
    with open(out) as f:
        row = [l for l in f if l.startswith("| warren echo throughput ≥ 0.95× bare-confirm")]
    check("a targets row for warren against bare-confirm", len(row) == 1)
    row = row[0] if row else ""
    check("2 of 2 cells below, 1 in every round, 1 beyond doubt, not met: " + row.strip(),
          "2 of 2 cells below, 1 of them in every round, 1 whose interval" in row and "**not met**" in row)
sys.exit(1 if failed else 0)
