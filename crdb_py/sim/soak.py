"""Run many seeded fault schedules and summarize: ``python -m crdb_py.sim.soak``.

Each seed draws a random schedule (`random_schedule`) for a 3- or 5-node
cluster, runs it with every checker on, heals, and requires liveness. Seeds
vary the core's configuration too: every third sends one entry per append
message, every fourth runs without pre-vote and check-quorum, and every
second also adds and removes voters. The
first violation is printed with its seed and schedule (a reproducible bug
report: `run_schedule(n, seed, schedule)` replays it) and the exit status
is 1.

    python -m crdb_py.sim.soak --seeds 2000
    python -m crdb_py.sim.soak --seeds 200 --start 5000 --nodes 5
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter

from crdb_py.sim.checkers import InvariantViolation
from crdb_py.sim.schedule import random_schedule, run_schedule

__all__ = ["main", "soak"]


def soak(
    seeds: int,
    start: int = 0,
    nodes: tuple[int, ...] = (3, 5),
    length: int = 30,
    verbose: bool = False,
) -> dict[str, object]:
    t0 = time.perf_counter()
    totals: Counter[str] = Counter()
    failures: list[dict[str, object]] = []
    for seed in range(start, start + seeds):
        rng = random.Random(seed)
        n = nodes[seed % len(nodes)]
        schedule = random_schedule(rng, n, length, membership=seed % 2 == 0)
        # every third seed: one entry per append message; every fourth: plain
        # raft elections (no pre-vote, no check-quorum)
        small = 1 if seed % 3 == 2 else None
        plain = seed % 4 == 3
        try:
            r = run_schedule(
                n,
                seed,
                schedule,
                max_size_per_msg=small,
                pre_vote=not plain,
                check_quorum=not plain,
            )
        except InvariantViolation as e:
            failures.append({"seed": seed, "nodes": n, "error": str(e), "schedule": repr(schedule)})
            if verbose:
                print(f"seed {seed} (n={n}) FAILED: {e}\n  schedule: {schedule!r}", file=sys.stderr)
            continue
        totals["runs"] += 1
        totals["steps"] += r.steps
        totals["proposed"] += r.proposed
        totals["applied"] += r.applied
        totals["leader_terms"] += r.leaders
        totals["delivered"] += r.delivered
        for k, v in r.stats.items():
            totals[k] += v
        if verbose and seed % 100 == 0:
            print(f"seed {seed}: ok ({r.steps} steps)", file=sys.stderr)
    return {
        "seeds": seeds,
        "start": start,
        "passed": totals["runs"],
        "failed": len(failures),
        "failures": failures[:10],
        "totals": dict(totals),
        "seconds": round(time.perf_counter() - t0, 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=2000)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--nodes", type=int, action="append", help="cluster size(s); default 3 and 5")
    ap.add_argument("--length", type=int, default=30, help="actions per schedule")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args(argv)
    res = soak(a.seeds, a.start, tuple(a.nodes or (3, 5)), a.length, a.verbose)
    t = res["totals"]
    assert isinstance(t, dict)
    print(
        f"soak: {res['seeds']} seeds from {res['start']}: {res['passed']} passed, "
        f"{res['failed']} failed in {res['seconds']} s"
    )
    keys = ("steps", "proposed", "applied", "leader_terms", "delivered", "dropped", "cut")
    keys += ("duplicated", "snapshots", "crashes", "voters_added", "voters_removed")
    print("  " + " ".join(f"{k}={t.get(k, 0)}" for k in keys))
    failures = res["failures"]
    assert isinstance(failures, list)
    for f in failures:
        print(f"  FAIL seed={f['seed']} n={f['nodes']}: {f['error']}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
