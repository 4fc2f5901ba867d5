"""`python -m crdb_py.jepsen`: run Jepsen workloads on a fresh LocalCluster.

    python -m crdb_py.jepsen --matrix                      # the full soak (make jepsen)
    python -m crdb_py.jepsen -w bank -n kill -s 2pc --ops 300
    python -m crdb_py.jepsen --client sql --matrix         # bank, list-append over SQL
    python -m crdb_py.jepsen --client sql -w bank -n split-lease -n coordinator-crash
    make jepsen JEPSEN_ARGS="--client sql --ops 300"      # the SQL matrix as a soak

Over SQL every nemesis applies: split-lease splits the run's table and
moves the leases of its ranges, coordinator-crash kills a child's SQL
transaction at its STAGING step; each statement is bounded by
``statement_timeout`` = the run's op timeout.

Histories, nemesis logs and per-run verdicts go under ``--results``; the
table is printed at the end; the exit status is 1 if any run is invalid.
`python -m crdb_py.jepsen.check` re-checks a saved history.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Sequence

from crdb_py.jepsen.runner import (
    NEMESIS_NAMES,
    SETTINGS,
    SQL_NEMESES,
    SQL_WORKLOADS,
    WORKLOAD_NAMES,
    RunSpec,
    full_matrix,
    run_matrix,
    table,
)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m crdb_py.jepsen", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--matrix", action="store_true", help="every workload x nemesis x setting")
    p.add_argument("-w", "--workload", action="append", choices=WORKLOAD_NAMES)
    p.add_argument("-n", "--nemesis", action="append", choices=NEMESIS_NAMES)
    p.add_argument("-s", "--setting", action="append", choices=tuple(SETTINGS))
    p.add_argument("--ops", type=int, default=300, help="operations per run")
    p.add_argument("--time-limit", type=float, default=40.0, help="seconds per run")
    p.add_argument("--final-timeout", type=float, default=30.0,
                   help="seconds to retry each final read")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--results", default=f"jepsen-results/{time.strftime('%Y%m%d-%H%M%S')}")
    p.add_argument("--no-sync", action="store_true", help="nodes do not fsync the raft log")
    p.add_argument("--client", choices=("kv", "sql"), default="kv",
                   help="run the workloads over the KV txn API or over SQL (bank, list-append)")
    a = p.parse_args(argv)
    if a.client == "sql" and a.matrix:
        a.workload = a.workload or list(SQL_WORKLOADS)
        a.nemesis = a.nemesis or list(SQL_NEMESES)
    if a.matrix:
        specs = full_matrix(ops=a.ops, time_limit=a.time_limit, seed=a.seed,
                            final_timeout=a.final_timeout,
                            workloads=a.workload or WORKLOAD_NAMES,
                            nemeses=a.nemesis or NEMESIS_NAMES,
                            settings=a.setting or tuple(SETTINGS))
    else:
        specs = [RunSpec(w, n, s, ops=a.ops, time_limit=a.time_limit, seed=a.seed,
                         final_timeout=a.final_timeout)
                 for w in (a.workload or ["bank"]) for n in (a.nemesis or ["none"])
                 for s in (a.setting or ["parallel+pipelining"])]
    specs = [dataclasses.replace(s, client=a.client) for s in specs]
    from rich.console import Console

    from crdb_py.localcluster import LocalCluster

    console = Console(width=max(Console().width, 130))
    with LocalCluster(nodes=a.nodes, sync=not a.no_sync) as cluster:
        results = run_matrix(specs, cluster, a.results, log=console.log)
    console.print(table(results))
    console.print(f"histories and verdicts: {a.results}")
    bad = [r for r in results if not r.valid]
    for r in bad:
        console.print(f"[red]{r.spec.name}[/red]: {r.history_path}\n{r.verdict.explanation}"
                      + (f"\n{r.error}" if r.error else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
