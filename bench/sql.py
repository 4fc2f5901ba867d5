"""SQL latency and throughput: single-row INSERT and point SELECT.

What runs, in one process and one run, for each system: a table
``kv(k INT PRIMARY KEY, v STRING)``; one client issues ``--ops`` single-row
INSERTs (autocommit, parameterised) one after another, then the same number
of point SELECTs by primary key of keys it inserted. Each statement's latency
is measured; throughput is ops / elapsed for the sequential client.

Systems:

* ``crdb-embedded``: `crdb_py.connect()` (in-memory single node, the SQL
  layer in this process) three times: parse and plan caches on (the
  default); plan cache off (`PlanCache(capacity=0)`: parsed once, planned
  every time); both off (`StatementCache(capacity=0)` as well: every
  statement parsed by sqlglot and planned);
* ``crdb-3node``: a 3-node `LocalCluster` (real processes, synced RocksDB),
  SQL in this process over the KV API (`LocalCluster.connect()`), with and
  without the plan cache;
* ``sqlite3``: the standard library, a file database (default journal);
* ``postgres``: when PostgreSQL server binaries are installed
  (/usr/lib/postgresql/<v>/bin) and psycopg imports: a throwaway instance
  (initdb as user postgres in a temp dir, a free port, fsync on), stopped at
  the end.

Usage: .venv/bin/python bench/sql.py [--quick] [--ops N] [--no-cluster]
       [--no-postgres] [--out DIR]     (writes DIR/sql.{md,json,png})
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _stats(lat: list[float], elapsed: float) -> dict[str, float]:
    s = sorted(lat)
    return {"n": len(s), "p50_ms": 1e3 * s[len(s) // 2], "p99_ms": 1e3 * s[min(len(s) - 1, int(len(s) * 0.99))],
            "mean_ms": 1e3 * statistics.fmean(s), "ops_per_s": len(s) / elapsed}


def run_workload(execute: Callable[[str, tuple[Any, ...]], Any], ops: int, ph: str,
                 fetch: Callable[[Any], Any]) -> dict[str, dict[str, float]]:
    """`execute(sql, params)` runs one autocommit statement; `ph` the placeholder."""
    out = {}
    lat: list[float] = []
    t0 = time.perf_counter()
    for i in range(ops):
        a = time.perf_counter()
        execute(f"INSERT INTO kv (k, v) VALUES ({ph}, {ph})", (i, f"value-{i}"))
        lat.append(time.perf_counter() - a)
    out["insert"] = _stats(lat, time.perf_counter() - t0)
    lat = []
    t0 = time.perf_counter()
    for i in range(ops):
        a = time.perf_counter()
        r = fetch(execute(f"SELECT v FROM kv WHERE k = {ph}", (i,)))
        lat.append(time.perf_counter() - a)
        if not r or r[0][0] != f"value-{i}":
            raise RuntimeError(f"point select of {i} returned {r!r}")
    out["select"] = _stats(lat, time.perf_counter() - t0)
    return out


def bench_crdb(conn: Any, ops: int, *, parse_cache: bool = True,
               plan_cache: bool = True) -> dict[str, dict[str, float]]:
    from crdb_py.sql.parse import StatementCache
    from crdb_py.sql.plancache import PlanCache

    conn.autocommit = True
    if not parse_cache:
        conn.session.cache = StatementCache(capacity=0)
    if not plan_cache:
        conn.session.plans = PlanCache(capacity=0)
    cur = conn.cursor()
    cur.execute("DROP TABLE IF EXISTS kv")
    cur.execute("CREATE TABLE kv (k INT PRIMARY KEY, v STRING)")

    def ex(sql: str, p: tuple[Any, ...]) -> Any:
        cur.execute(sql, p)
        return cur

    return run_workload(ex, ops, "%s", lambda c: c.fetchall())


def bench_sqlite(ops: int, d: str) -> dict[str, dict[str, float]]:
    db = sqlite3.connect(os.path.join(d, "bench.sqlite"), isolation_level=None)
    db.execute("CREATE TABLE kv (k INTEGER PRIMARY KEY, v TEXT)")
    try:
        return run_workload(lambda s, p: db.execute(s, p), ops, "?", lambda c: c.fetchall())
    finally:
        db.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def postgres(d: str) -> Iterator[str]:
    """A throwaway PostgreSQL; yields a conninfo string."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        raise RuntimeError("PostgreSQL server binaries not installed")
    bindir = os.path.dirname(bins[-1])
    data = os.path.join(d, "pg")
    os.makedirs(data)
    shutil.chown(d, "postgres")
    shutil.chown(data, "postgres")
    as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    port = _free_port()
    subprocess.run([*as_pg, f"{bindir}/initdb", "-D", data, "-A", "trust", "-U", "postgres"],
                   check=True, capture_output=True)
    subprocess.run([*as_pg, f"{bindir}/pg_ctl", "-D", data, "-w", "-l", os.path.join(data, "log"),
                    "-o", f"-p {port} -k {d} -c listen_addresses=127.0.0.1", "start"],
                   check=True, capture_output=True)
    try:
        yield f"host=127.0.0.1 port={port} user=postgres dbname=postgres"
    finally:
        subprocess.run([*as_pg, f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "stop"],
                       capture_output=True)


def bench_postgres(ops: int, d: str) -> dict[str, dict[str, float]]:
    import psycopg

    with postgres(d) as dsn, psycopg.connect(dsn, autocommit=True) as c:
        c.execute("CREATE TABLE kv (k INT PRIMARY KEY, v TEXT)")
        return run_workload(lambda s, p: c.execute(s, p), ops, "%s", lambda cur: cur.fetchall())


def write_outputs(out: str, meta: dict[str, Any], results: dict[str, Any]) -> None:
    os.makedirs(out, exist_ok=True)
    lines = ["| system | op | p50 ms | p99 ms | ops/s |", "|---|---|---|---|---|"]
    for sysname, r in results.items():
        if "error" in r:
            lines.append(f"| {sysname} | — | skipped: {r['error']} | | |")
            continue
        for op, s in r.items():
            lines.append(f"| {sysname} | {op} | {s['p50_ms']:.3f} | {s['p99_ms']:.3f} | "
                         f"{s['ops_per_s']:.0f} |")
    md = "\n".join(lines) + "\n"
    with open(os.path.join(out, "sql.md"), "w") as f:
        f.write(md)
    with open(os.path.join(out, "sql.json"), "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=2)
    print(md)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not available: no plot")
        return
    ok = {k: v for k, v in results.items() if "error" not in v}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, op in zip(axes, ("insert", "select")):
        names = list(ok)
        ax.bar(names, [ok[n][op]["p50_ms"] for n in names])
        ax.set_yscale("log")
        ax.set_ylabel("p50 latency (ms, log)")
        ax.set_title(f"single-row {op}")
        ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "sql.png"), dpi=100)
    print(f"wrote {out}/sql.md, sql.json, sql.png")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="SQL point INSERT / SELECT benchmark")
    ap.add_argument("--quick", action="store_true", help="few ops, embedded + sqlite only")
    ap.add_argument("--ops", type=int, default=None)
    ap.add_argument("--no-cluster", action="store_true")
    ap.add_argument("--no-postgres", action="store_true")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "out"))
    a = ap.parse_args(argv)
    ops = a.ops or (50 if a.quick else 2000)
    import crdb_py

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="crdb-sql-bench-") as d:
        for name, parse, plan in (("crdb-embedded", True, True),
                                  ("crdb-embedded-noplancache", True, False),
                                  ("crdb-embedded-nocache", False, False)):
            c = crdb_py.connect()
            try:
                results[name] = bench_crdb(c, ops, parse_cache=parse, plan_cache=plan)
            finally:
                c.close()
        if not (a.quick or a.no_cluster):
            try:
                from crdb_py.localcluster import LocalCluster

                with LocalCluster(3) as lc:
                    for name, plan in (("crdb-3node", True), ("crdb-3node-noplancache", False)):
                        c = lc.connect()
                        try:
                            results[name] = bench_crdb(c, ops, plan_cache=plan)
                        finally:
                            c.close()
            except Exception as e:  # report, keep the other systems' numbers
                results["crdb-3node"] = {"error": f"{type(e).__name__}: {e}"[:200]}
        results["sqlite3"] = bench_sqlite(ops, d)
        if not (a.quick or a.no_postgres):
            try:
                results["postgres"] = bench_postgres(ops, d)
            except Exception as e:
                results["postgres"] = {"error": f"{type(e).__name__}: {e}"[:200]}
    meta = {"ops": ops, "quick": a.quick, "python": sys.version.split()[0],
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    write_outputs(a.out, meta, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
