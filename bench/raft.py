"""Raft throughput in process: proposals committed per second, and messages
(steps) per commit, for 3- and 5-node groups on a zero-latency network.

Each node is a real `RawNode` over `DurableStorage` on a `MemEngine`, driven
by the simulator's Ready loop (persist in one batch, send, apply, advance);
no checkers, no trace. The network delivers instantly (`stabilize()` runs it
until quiet), so the numbers measure the core plus the Ready plumbing.

Modes (each commits `--proposals` proposals, `--window` at a time):
  single     propose one, run the group until it is applied, repeat
             (one proposal per Ready, one consensus round per proposal);
  pipelined  propose `window` one by one (a Ready and an append per
             proposal), then run until all are applied;
  batched    propose `window` in one proposal message (one Ready, one append
             per follower carrying them all), then run until applied.

"Steps per commit" = messages delivered / proposals committed; "readies per
commit" counts Ready objects processed on all nodes.

Usage: .venv/bin/python bench/raft.py [--quick] [--proposals N] [--window W]
       [--out DIR]      (writes DIR/raft.json and DIR/raft.png; default bench/out)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from crdb_py.sim.cluster import SimCluster
from crdb_py.sim.network import FaultConfig

MODES = ("single", "pipelined", "batched")


def _cluster(n: int, seed: int) -> tuple[SimCluster, int]:
    c = SimCluster(
        n,
        seed=seed,
        faults=FaultConfig(min_delay=0, max_delay=0),
        checkers=[],
        record_trace=False,
        compact_every=1000,
    )
    if not c.run_until(lambda: c._stable_leader() is not None, 2000):
        raise RuntimeError("no leader elected")
    c.stabilize()
    lead = c.leader()
    assert lead is not None
    return c, lead


def run_one(n: int, mode: str, proposals: int, window: int, seed: int = 1) -> dict[str, Any]:
    c, lead = _cluster(n, seed)
    sm = c.nodes[lead].sm
    assert sm is not None
    start_applied = sm.applied
    d0, r0 = c.delivered, c.readies
    payload = b"x" * 64
    done = 0
    t0 = time.perf_counter()
    while done < proposals:
        k = 1 if mode == "single" else min(window, proposals - done)
        if mode == "batched":
            if c.propose_many([payload] * k, lead) != k:
                raise RuntimeError("batch dropped")
        else:
            for _ in range(k):
                if not c.propose(payload, lead):
                    raise RuntimeError("proposal dropped")
        c.stabilize()
        done += k
    elapsed = time.perf_counter() - t0
    committed = sm.applied - start_applied
    if committed != proposals:
        raise RuntimeError(f"{committed} of {proposals} proposals applied at the leader")
    for node in c.nodes.values():  # every replica caught up
        assert node.sm is not None and node.sm.applied == sm.applied
    return {
        "nodes": n,
        "mode": mode,
        "proposals": proposals,
        "window": 1 if mode == "single" else window,
        "seconds": round(elapsed, 4),
        "commits_per_sec": round(committed / elapsed, 1),
        "steps_per_commit": round((c.delivered - d0) / committed, 3),
        "readies_per_commit": round((c.readies - r0) / committed, 3),
    }


def table(rows: list[dict[str, Any]]) -> str:
    out = [
        "| nodes | mode | window | proposals | commits/s | steps/commit | readies/commit |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        out.append(
            f"| {r['nodes']} | {r['mode']} | {r['window']} | {r['proposals']} | "
            f"{r['commits_per_sec']:,.0f} | {r['steps_per_commit']:.2f} | {r['readies_per_commit']:.2f} |"
        )
    return "\n".join(out)


def plot(rows: list[dict[str, Any]], path: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    sizes = sorted({r["nodes"] for r in rows})
    width = 0.8 / len(sizes)
    for k, n in enumerate(sizes):
        sub = [r for r in rows if r["nodes"] == n]
        xs = [MODES.index(r["mode"]) + k * width for r in sub]
        axes[0].bar(xs, [r["commits_per_sec"] for r in sub], width, label=f"{n} nodes")
        axes[1].bar(xs, [r["steps_per_commit"] for r in sub], width, label=f"{n} nodes")
    for ax, title in zip(axes, ("proposals committed / s", "messages per commit")):
        ax.set_xticks([i + width * (len(sizes) - 1) / 2 for i in range(len(MODES))])
        ax.set_xticklabels(MODES)
        ax.set_title(title)
        ax.legend()
    fig.suptitle("crdb-py raft, in-process, zero latency")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="raft throughput benchmark")
    ap.add_argument("--quick", action="store_true", help="a few hundred proposals (smoke test)")
    ap.add_argument("--proposals", type=int, default=None)
    ap.add_argument("--window", type=int, default=64)
    ap.add_argument(
        "--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")
    )
    a = ap.parse_args(argv)
    proposals = a.proposals or (200 if a.quick else 5000)
    rows = [run_one(n, mode, proposals, a.window) for n in (3, 5) for mode in MODES]
    print(table(rows))
    os.makedirs(a.out, exist_ok=True)
    meta = {"python": sys.version.split()[0], "quick": a.quick, "window": a.window}
    with open(os.path.join(a.out, "raft.json"), "w") as f:
        json.dump({"meta": meta, "results": rows}, f, indent=2)
    if plot(rows, os.path.join(a.out, "raft.png")):
        print(f"wrote {a.out}/raft.json and {a.out}/raft.png")
    else:
        print(f"wrote {a.out}/raft.json (matplotlib not available: no plot)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
