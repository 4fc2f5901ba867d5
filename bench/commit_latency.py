"""Commit latency: 2PC against parallel commits, with and without write
pipelining, on a real 3-node loopback cluster with injected latency.

What runs. A `LocalCluster` of three node processes (RocksDB, synced Raft
log) is pre-split into 16 bench ranges, ``cl/r00`` … ``cl/r15``. Every node
link gets a one-way delay *d* (``--latencies``, default 0, 1, 5 ms) from the
transport's `LatencyInjector` (`Admin.SetLinkFaults`), so one consensus round
(leader → follower → leader, plus the synced append) costs about 2d.

The workload. A transaction writes *W* fresh keys (``--writes``, default 1, 2,
4, 8, 16), one on each of W different ranges, in **one batch**, then calls
``commit()``; the DistSender sends a multi-range batch's parts concurrently.
Keys are fresh (per client and txn), so there is no contention and W=1 is not
a 1PC (the commit follows an earlier write). The four modes are the two
cluster settings ``kv.transaction.parallel_commits_enabled`` and
``kv.transaction.write_pipelining_enabled`` of the client's `DB`:

=============  =====================================================  =========
mode           critical path                                          rounds
=============  =====================================================  =========
2pc            writes (sync, 1 round) → EndTxn (1 round)              2
2pc+pipe       writes (async, 0) → proofs (≤1) → EndTxn (1)           2
parallel       writes (sync, 1) → EndTxn (nothing in flight: 1)       2
parallel+pipe  writes (async, 0) → proofs ‖ EndTxn STAGING (1)        1
=============  =====================================================  =========

Where the client sits (``--client``). ``near`` (default): the client is the
gateway beside node 1, which holds every bench range's lease — its link to
node 1 has no injected delay (only the real loopback gRPC hop), its links to
the other nodes get d. This is CockroachDB's deployment story (gateway and
leaseholder in one region, followers elsewhere). ``far``: the client's links
to every node get d and the leases are spread round-robin over the nodes, so
every client → leaseholder round trip costs 2d as well. The client is a
client-only gRPC transport wrapped in its own `LatencyInjector` in this
process (node id 0), under a `DistSender` and a `DB`.

The model. Before each d the benchmark measures a raw, non-transactional
single-key get (g: one client → leaseholder round trip, no consensus) and put
(p: a round trip plus one consensus round) against a bench range, and
composes the lower bounds from them (W ranges are reached in parallel, so
the bound does not depend on W):

* parallel+pipe: ``g + p`` — the pipelined writes return at proposal, the
  proofs and the STAGING record take one round, side by side;
* 2pc and parallel without pipelining: ``2p``;
* 2pc+pipe: ``max(2g, p) + p`` — the proofs arrive while the writes
  replicate and wait for them, then the EndTxn takes its round.

Latency is measured by sequential txns (one client, ``--txns`` per cell after
``--warmup`` unmeasured); throughput by ``--clients`` concurrent clients for
``--seconds`` per cell. Cells of the four modes are interleaved per (d, W), so
machine drift hits all of them alike. Each txn's consensus rounds come from
its `TxnTrace` (the coordinator's own accounting, `kvclient/txn/rounds.py`).

Usage: .venv/bin/python bench/commit_latency.py [--quick | --smoke]
       [--latencies 0,1,5] [--writes 1,2,4,8,16] [--txns N] [--warmup N]
       [--clients C] [--seconds S] [--client near|far] [--out DIR]
       (writes DIR/commit_latency.json and DIR/commit_latency.png; default bench/out)

See docs/design/benchmarks.md ("Commit latency") for method and results.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from crdb_py.kvclient.db import DB, Batch
from crdb_py.kvclient.txn.settings import (
    PARALLEL_COMMITS_ENABLED,
    WRITE_PIPELINING_ENABLED,
    TxnSettings,
)
from crdb_py.localcluster import LocalCluster

T = TypeVar("T")

PREFIX = b"cl/"
RANGES = 16
VALUE = b"v" * 32


@dataclass(frozen=True, slots=True)
class Mode:
    name: str
    parallel_commits: bool
    pipelining: bool


MODES = (
    Mode("2pc", False, False),
    Mode("2pc+pipe", False, True),
    Mode("parallel", True, False),
    Mode("parallel+pipe", True, True),
)


def range_start(r: int) -> bytes:
    return PREFIX + b"r%02d" % r


def txn_keys(w: int, client: int, seq: int) -> list[bytes]:
    """W fresh keys, one in each of the ranges 0..W-1."""
    return [range_start(r) + b"/c%02d/%09d" % (client, seq) for r in range(w)]


def model_ms(mode: str, get_ms: float, put_ms: float) -> float:
    """Lower bound of a txn's latency from the calibrated raw get and put."""
    if mode == "parallel+pipe":
        return get_ms + put_ms
    if mode == "2pc+pipe":
        return max(2 * get_ms, put_ms) + put_ms
    return 2 * put_ms


MODEL_ROUNDS = {"2pc": 2, "2pc+pipe": 2, "parallel": 2, "parallel+pipe": 1}


def pct(xs: list[float], p: float) -> float:
    """Nearest-rank percentile (nan for no samples)."""
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, int(p * len(s)))]


# ---- the client ----------------------------------------------------------------------------


class Client:
    """The bench client: its own loop thread, a client-only gRPC transport in
    a `LatencyInjector` (node id 0), a DistSender and a DB whose settings
    select the mode."""

    def __init__(self, nodes: dict[int, str]) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="bench-client", daemon=True
        )
        self.thread.start()
        self.settings = TxnSettings()
        self.nodes = dict(nodes)
        self.injector: Any = None
        self.db: DB = self.call(self._open(), 30)

    async def _open(self) -> DB:
        from crdb_py.kvclient.dist_sender import DistSender
        from crdb_py.localcluster import _ClientNodeSender, _StaticNodes
        from crdb_py.rpc.grpc_transport import GrpcTransport
        from crdb_py.rpc.latency import LatencyInjector

        grpc_t = GrpcTransport(0, None, None)
        for node_id, address in self.nodes.items():
            grpc_t.set_node_address(node_id, address)
        self.injector = LatencyInjector(grpc_t)
        ds = DistSender(_ClientNodeSender(self.injector), _StaticNodes(self.nodes))
        return DB(ds, settings=self.settings)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = 600.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def set_faults(self, d_ms: float, near_node_id: int | None) -> None:
        """Client links get d; with `near_node_id` that link gets none."""

        def apply() -> None:
            f = self.injector.faults
            f.set_latency(d_ms)
            for nid in self.nodes:
                f.set_link_latency(0, nid, None)
                f.set_link_latency(nid, 0, None)
            if near_node_id is not None:
                f.set_link_latency(0, near_node_id, 0.0)
                f.set_link_latency(near_node_id, 0, 0.0)

        self.loop.call_soon_threadsafe(apply)
        self.call(asyncio.sleep(0), 5)

    def set_mode(self, m: Mode) -> None:
        self.settings.set(PARALLEL_COMMITS_ENABLED, m.parallel_commits)
        self.settings.set(WRITE_PIPELINING_ENABLED, m.pipelining)

    async def _drain(self) -> None:
        """Let background work (explicit commits after parallel commits,
        async rollbacks) finish before the transport closes."""
        me = asyncio.current_task()
        rest = [t for t in asyncio.all_tasks() if t is not me]
        if rest:
            await asyncio.wait(rest, timeout=5.0)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.call(self._drain(), 10)
        with contextlib.suppress(Exception):
            self.call(self.injector.close(), 10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        with contextlib.suppress(Exception):
            self.loop.close()


# ---- measurements ---------------------------------------------------------------------------


MAX_RETRIES = 3  # a cell whose txns keep failing is reported as failed, not retried forever


async def one_txn(db: DB, keys: list[bytes]) -> tuple[float, int, str, int]:
    """Run one txn; (latency ms, consensus rounds, commit path, restarts)."""
    seen: list[Any] = []

    async def fn(txn: Any) -> None:
        seen.append(txn)
        b = Batch()
        for k in keys:
            b.put(k, VALUE)
        await txn.run(b)

    t0 = time.perf_counter()
    await db.run_txn(fn, max_retries=MAX_RETRIES)
    ms = (time.perf_counter() - t0) * 1e3
    tr = seen[-1].trace
    return ms, tr.rounds, tr.commit_path.value, tr.restarts + len(seen) - 1


async def calibrate(db: DB, n: int, ranges: int) -> dict[str, float]:
    """Median raw get and put (non-transactional, one key) over the bench ranges."""
    gets: list[float] = []
    puts: list[float] = []
    for i in range(n + 3):
        k = range_start(i % ranges) + b"/cal/%06d" % i
        t0 = time.perf_counter()
        await db.put(k, VALUE)
        t1 = time.perf_counter()
        await db.get(k)
        t2 = time.perf_counter()
        if i >= 3:
            puts.append((t1 - t0) * 1e3)
            gets.append((t2 - t1) * 1e3)
    return {"get_ms": statistics.median(gets), "put_ms": statistics.median(puts)}


_seq = itertools.count()


async def latency_cell(db: DB, w: int, txns: int, warmup: int) -> dict[str, Any]:
    lat: list[float] = []
    rounds: list[int] = []
    paths: dict[str, int] = {}
    restarts = 0
    failures: dict[str, int] = {}
    for i in range(warmup + txns):
        try:
            ms, r, path, rs = await one_txn(db, txn_keys(w, 0, next(_seq)))
        except Exception as e:  # reported per cell (see `failures`), never hidden
            if i >= warmup:
                why = f"{type(e).__name__}: {str(e)[:120]}"
                failures[why] = failures.get(why, 0) + 1
            continue
        if i >= warmup:
            lat.append(ms)
            rounds.append(r)
            paths[path] = paths.get(path, 0) + 1
            restarts += rs
    return {
        "txns": len(lat),
        "p50_ms": pct(lat, 0.5),
        "p90_ms": pct(lat, 0.9),
        "p99_ms": pct(lat, 0.99),
        "mean_ms": statistics.fmean(lat) if lat else float("nan"),
        "rounds": statistics.median(rounds) if rounds else float("nan"),
        "failed": sum(failures.values()),
        "failures": failures,
        "commit_paths": paths,
        "restarts": restarts,
    }


async def throughput_cell(db: DB, w: int, clients: int, seconds: float) -> dict[str, Any]:
    done = 0
    errors = 0
    t_end = time.perf_counter() + seconds

    async def client(c: int) -> None:
        nonlocal done, errors
        while time.perf_counter() < t_end:
            try:
                await one_txn(db, txn_keys(w, c + 1, next(_seq)))
                done += 1
            except Exception:
                errors += 1
                await asyncio.sleep(0.01)

    t0 = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(clients)))
    elapsed = time.perf_counter() - t0
    return {"clients": clients, "txns_per_sec": done / elapsed, "errors": errors}


# ---- cluster setup ---------------------------------------------------------------------------


def setup_cluster(c: LocalCluster, client_kind: str) -> tuple[dict[str, Any], int | None]:
    """Split the bench ranges and place their leases; returns (setup, near node id)."""
    admin = c.kv()
    for r in range(RANGES):
        admin.split(range_start(r))
    c.wait_for_replication(timeout=120)
    ids = [c.node_id(i) for i in range(c.num_nodes)]
    want = {r: ids[0] if client_kind == "near" else ids[r % len(ids)] for r in range(RANGES)}
    placed: dict[int, int] = {}
    for _attempt in range(20):
        for r in range(RANGES):
            if placed.get(r) == want[r]:
                continue
            with contextlib.suppress(Exception):
                admin.transfer_lease(range_start(r), want[r])
        time.sleep(0.3)
        placed = {}
        for r in range(RANGES):
            with contextlib.suppress(Exception):
                placed[r] = ids[c.leaseholder(range_start(r), timeout=5.0)]
        if placed == want:
            break
    setup = {
        "ranges": len(c.ranges()),
        "bench_ranges": RANGES,
        "leases_as_wanted": placed == want,
        "leaseholders": {range_start(r).decode(): placed.get(r) for r in range(RANGES)},
    }
    return setup, (ids[0] if client_kind == "near" else None)


# ---- output ----------------------------------------------------------------------------------


def table(rows: list[dict[str, Any]], calib: dict[str, dict[str, float]]) -> str:
    out = []
    for d in sorted({r["d_ms"] for r in rows}):
        cal = calib.get(str(d), {})
        out.append(
            f"\n### d = {d:g} ms (one-way)  —  raw get {cal.get('get_ms', float('nan')):.2f} ms, "
            f"raw put {cal.get('put_ms', float('nan')):.2f} ms (medians)\n"
        )
        out.append(
            "| W | mode | p50 ms | p90 ms | p99 ms | txn/s | rounds | model ms | p50/model "
            "| p50/2pc | failed |"
        )
        out.append("|---|---|---|---|---|---|---|---|---|---|---|")
        base = {r["w"]: r["p50_ms"] for r in rows if r["d_ms"] == d and r["mode"] == "2pc"}
        for r in rows:
            if r["d_ms"] != d:
                continue
            b = base.get(r["w"])
            rel = f"{r['p50_ms'] / b:.2f}×" if b else "–"
            tput = f"{r['txns_per_sec']:.0f}" if r.get("txns_per_sec") is not None else "–"
            out.append(
                f"| {r['w']} | {r['mode']} | {r['p50_ms']:.2f} | {r['p90_ms']:.2f} | "
                f"{r['p99_ms']:.2f} | {tput} | {r['rounds']:g} | {r['model_ms']:.2f} | "
                f"{r['p50_ms'] / r['model_ms']:.2f}× | {rel} | {r['failed']}/{r['failed'] + r['txns']} |"
            )
    return "\n".join(out)


def goals(rows: list[dict[str, Any]], d: float) -> dict[str, Any]:
    """The issue's three goals at one-way latency `d` (None when not measured)."""

    def p50(mode: str, w: int) -> float | None:
        for r in rows:
            if r["d_ms"] == d and r["mode"] == mode and r["w"] == w and r["txns"]:
                return float(r["p50_ms"])
        return None

    def model(mode: str, w: int) -> float | None:
        for r in rows:
            if r["d_ms"] == d and r["mode"] == mode and r["w"] == w:
                return float(r["model_ms"])
        return None

    ws = sorted({r["w"] for r in rows})
    out: dict[str, Any] = {"d_ms": d}
    a, b = p50("parallel+pipe", 1), p50("2pc", 1)
    out["pc_pipe_over_2pc_at_w1"] = None if a is None or b is None else round(a / b, 3)
    hi = p50("parallel+pipe", ws[-1]) if ws else None
    out["w_max"] = ws[-1] if ws else None
    out["pc_pipe_wmax_over_w1"] = None if a is None or hi is None else round(hi / a, 3)
    ratios = [
        p / m
        for w in ws
        if (p := p50("parallel+pipe", w)) is not None and (m := model("parallel+pipe", w))
    ]
    out["pc_pipe_worst_over_model"] = round(max(ratios), 3) if ratios else None
    out["met"] = {
        "w1_le_0.55x_2pc": out["pc_pipe_over_2pc_at_w1"] is not None
        and out["pc_pipe_over_2pc_at_w1"] <= 0.55,
        "wmax_le_1.3x_w1": out["pc_pipe_wmax_over_w1"] is not None
        and out["pc_pipe_wmax_over_w1"] <= 1.3,
        "within_1.2x_model": out["pc_pipe_worst_over_model"] is not None
        and out["pc_pipe_worst_over_model"] <= 1.2,
    }
    return out


def no_nan(x: Any) -> Any:
    """NaN (a cell without samples) as JSON null."""
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, dict):
        return {k: no_nan(v) for k, v in x.items()}
    if isinstance(x, list):
        return [no_nan(v) for v in x]
    return x


def plot(rows: list[dict[str, Any]], path: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    ds = sorted({r["d_ms"] for r in rows})
    fig, axes = plt.subplots(1, len(ds), figsize=(4.6 * len(ds), 4.0), squeeze=False)
    colors = {"2pc": "C3", "2pc+pipe": "C1", "parallel": "C0", "parallel+pipe": "C2"}
    for ax, d in zip(axes[0], ds):
        for m in MODES:
            pts = sorted((r["w"], r["p50_ms"], r["model_ms"]) for r in rows
                         if r["d_ms"] == d and r["mode"] == m.name)  # fmt: skip
            if not pts:
                continue
            ws = [p[0] for p in pts]
            ax.plot(ws, [p[1] for p in pts], "o-", color=colors[m.name], label=m.name)
            ax.plot(ws, [p[2] for p in pts], "--", color=colors[m.name], alpha=0.6)
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted({r["w"] for r in rows}))
        ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.set_ylim(bottom=0)
        ax.set_title(f"one-way latency d = {d:g} ms")
        ax.set_xlabel("keys written W (one range each)")
        ax.set_ylabel("median txn latency (ms)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(title="solid: measured, dashed: model", fontsize=8, title_fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# ---- main ------------------------------------------------------------------------------------


def floats(s: str) -> list[float]:
    return [float(x) for x in s.split(",") if x]


def ints(s: str) -> list[int]:
    return [int(x) for x in s.split(",") if x]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer txns per cell (< 3 minutes)")
    p.add_argument("--smoke", action="store_true", help="tiny run for tests (d 0,1; W 1,2)")
    p.add_argument("--latencies", type=floats, default=None, help="one-way ms, e.g. 0,1,5")
    p.add_argument("--writes", type=ints, default=None, help="keys per txn, e.g. 1,2,4,8,16")
    p.add_argument("--txns", type=int, default=None, help="measured sequential txns per cell")
    p.add_argument("--warmup", type=int, default=None, help="unmeasured txns per cell")
    p.add_argument("--clients", type=int, default=8, help="concurrent clients for throughput")
    p.add_argument("--seconds", type=float, default=None, help="throughput seconds per cell")
    p.add_argument("--client", choices=("near", "far"), default="near")
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "out"))
    a = p.parse_args(argv)
    if a.smoke:
        dflt = ([0.0, 1.0], [1, 2], 3, 1, 0.3)
    elif a.quick:
        dflt = ([0.0, 1.0, 5.0], [1, 2, 4, 8, 16], 15, 2, 0.6)
    else:
        dflt = ([0.0, 1.0, 5.0], [1, 2, 4, 8, 16], 60, 5, 2.0)
    a.latencies = a.latencies if a.latencies is not None else dflt[0]
    a.writes = a.writes if a.writes is not None else dflt[1]
    a.txns = a.txns if a.txns is not None else dflt[2]
    a.warmup = a.warmup if a.warmup is not None else dflt[3]
    a.seconds = a.seconds if a.seconds is not None else dflt[4]
    if max(a.writes) > RANGES or min(a.writes) < 1:
        p.error(f"--writes must be within 1..{RANGES}")
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    console = Console(stderr=True)
    rows: list[dict[str, Any]] = []
    calib: dict[str, dict[str, float]] = {}
    setup: dict[str, Any] = {}
    pids: list[int] = []
    t_start = time.perf_counter()
    client: Client | None = None
    cluster = LocalCluster(nodes=3)
    try:
        with console.status("starting a 3-node cluster and splitting 16 bench ranges ..."):
            cluster.start()
            pids = [p for p in (cluster.pid(i) for i in range(3)) if p is not None]
            setup, near = setup_cluster(cluster, a.client)
            client = Client({cluster.node_id(i): cluster.address(i) for i in range(3)})
        cells = [(d, w, m) for d in a.latencies for w in a.writes for m in MODES]
        with Progress(
            TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(), console=console,
        ) as progress:  # fmt: skip
            task = progress.add_task("cells", total=len(cells))
            cur_d: float | None = None
            for d, w, m in cells:
                if d != cur_d:
                    progress.update(task, description=f"d={d:g} ms: calibrating")
                    cluster.set_latency(d)
                    client.set_faults(d, near)
                    client.set_mode(MODES[-1])
                    db = client.db
                    client.call(calibrate(db, 3, RANGES))  # warm caches at this d
                    calib[str(d)] = client.call(calibrate(db, max(10, a.txns), min(RANGES, 4)))
                    cur_d = d
                progress.update(task, description=f"d={d:g} ms, W={w}, {m.name}")
                client.set_mode(m)
                lat = client.call(latency_cell(client.db, w, a.txns, a.warmup))
                thr = client.call(throughput_cell(client.db, w, a.clients, a.seconds))
                cal = calib[str(d)]
                rows.append({
                    "d_ms": d, "w": w, "mode": m.name, **lat,
                    "txns_per_sec": thr["txns_per_sec"], "throughput_clients": thr["clients"],
                    "throughput_errors": thr["errors"], "model_rounds": MODEL_ROUNDS[m.name],
                    "model_ms": model_ms(m.name, cal["get_ms"], cal["put_ms"]),
                })  # fmt: skip
                progress.advance(task)
    finally:
        if client is not None:
            client.close()
        cluster.close()
    elapsed = time.perf_counter() - t_start

    print(f"## Commit latency (client {a.client}; {a.txns} sequential txns per cell, "
          f"throughput: {a.clients} clients × {a.seconds:g} s)")  # fmt: skip
    print(table(rows, calib))
    gd = max(a.latencies)
    g = goals(rows, gd)
    print(f"\ngoals at d = {gd:g} ms: parallel+pipe / 2pc at W=1 = {g['pc_pipe_over_2pc_at_w1']} "
          f"(goal ≤ 0.55); W={g['w_max']} / W=1 = {g['pc_pipe_wmax_over_w1']} (goal ≤ 1.3); "
          f"worst p50 / model = {g['pc_pipe_worst_over_model']} (goal ≤ 1.2)")  # fmt: skip
    print(f"elapsed {elapsed:.0f} s")
    meta = {
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "args": {k: v for k, v in vars(a).items() if k != "out"},
        "client": a.client,
        "setup": setup,
        "calibration": calib,
        "server_pids": pids,
        "elapsed_s": round(elapsed, 1),
    }
    with open(os.path.join(a.out, "commit_latency.json"), "w") as f:
        json.dump(no_nan({"meta": meta, "results": rows, "goals": g}), f, indent=2)
    if plot(rows, os.path.join(a.out, "commit_latency.png")):
        print(f"wrote {a.out}/commit_latency.json and {a.out}/commit_latency.png")
    else:
        print(f"wrote {a.out}/commit_latency.json (matplotlib not available: no plot)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
