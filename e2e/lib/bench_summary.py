"""e2e/bench's summary: check every run against what its configuration must do, then print the
medians over rounds and what the webhook adds, as a ratio to what the null webhook adds.

    python3 e2e/lib/bench_summary.py RESULTS COUNT

RESULTS has one line per run: key=value pairs (round, config, row, creates, labeled, p50_ms,
p90_ms, p99_ms, max_ms, calls, excluded, max_connections, load1). Exits 1 if a run did not do what its
configuration means (a webhook called where none should be, a create left unlabeled, ...).
"""

import statistics
import sys

# (config, row) -> per create: (webhook calls, matchConditions exclusions, labeled): what the API
# server must have done. Deployments: the enforce mutate and validate entries are called; operator
# pods: the enforce Pod entry, and once the webhook has labeled a pod, the API server's
# reinvocation pass evaluates the entry's matchConditions again, which now exclude it; labeled pods
# come labeled, and the enforce Pod entry's matchConditions exclude them (when it exists).
EXPECTED = {
    ("off", "deployments"): (0, 0, 0),
    ("off", "operator"): (0, 0, 0),
    ("off", "labeled"): (0, 0, 1),
    ("null", "deployments"): (2, 0, 0),
    ("null", "operator"): (1, 0, 0),
    ("on", "deployments"): (2, 0, 1),
    ("on", "operator"): (1, 1, 1),
    ("on", "labeled"): (0, 1, 1),
    ("pods-off", "operator"): (0, 0, 0),
}

ROWS = {
    "deployments": "Deployments (vLLM, replicas 0)",
    "operator": "operator pods (controller: a PodClique)",
    "labeled": "labeled pods (controller: a ReplicaSet, workload label set)",
}


def read(path):
    runs = []
    for line in open(path):
        run = dict(kv.split("=", 1) for kv in line.split())
        for key in ("p50_ms", "p90_ms", "p99_ms", "max_ms", "load1"):
            run[key] = float(run[key])
        for key in ("creates", "labeled", "calls", "excluded", "max_connections"):
            run[key] = int(run[key])
        runs.append(run)
    return runs


def check(runs, count):
    bad = []
    for run in runs:
        expected = (count, *(n * count for n in EXPECTED[(run["config"], run["row"])]))
        seen = tuple(run[k] for k in ("creates", "calls", "excluded", "labeled"))
        if seen != expected:
            bad.append(
                f"round {run['round']} {run['config']} {run['row']}: creates, webhook calls,"
                f" exclusions, labeled {seen}; expected {expected}"
            )
    return bad


def main():
    runs, count = read(sys.argv[1]), int(sys.argv[2])
    bad = check(runs, count)
    for line in bad:
        print("FAIL", line)
    median = {}
    for (config, row) in EXPECTED:
        mine = [r for r in runs if (r["config"], r["row"]) == (config, row)]
        if mine:
            median[config, row] = {
                k: statistics.median(r[k] for r in mine) for k in ("p50_ms", "p99_ms", "load1")
            }
    loads = [r["load1"] for r in runs]
    rounds = len({r["round"] for r in runs})
    print(f"\nmedians of {rounds} rounds, {count} creates per run; 1-minute load average at the"
          f" runs' starts {min(loads):.1f}-{max(loads):.1f} (median {statistics.median(loads):.1f})")
    print(f"  {'row':60} {'config':9} {'p50 ms':>8} {'p99 ms':>8}")
    for (config, row), m in median.items():
        print(f"  {ROWS[row]:60} {config:9} {m['p50_ms']:8.2f} {m['p99_ms']:8.2f}")
    print("\nadded to a create over off (no webhook called), and the webhook's added latency as a multiple of the null one's:")
    for row in ("deployments", "operator"):
        off, null, on = (median[c, row] for c in ("off", "null", "on"))
        parts = []
        for p in ("p50_ms", "p99_ms"):
            added_null, added_on = null[p] - off[p], on[p] - off[p]
            ratio = f"{added_on / added_null:.2f}x" if added_null > 0 else "n/a (null adds nothing)"
            parts.append(f"{p[:3]} null {added_null:+.2f} ms, webhook {added_on:+.2f} ms: {ratio}"
                         f" (on/null total {on[p] / null[p]:.2f})")
        print(f"  {ROWS[row]}:\n    " + "\n    ".join(parts))
    for config, row in (("on", "labeled"), ("pods-off", "operator")):
        m, off = median[config, row], median["off", row]
        print(f"  {ROWS[row]}, {config} vs off: p50 {m['p50_ms'] - off['p50_ms']:+.2f} ms,"
              f" p99 {m['p99_ms'] - off['p99_ms']:+.2f} ms")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
