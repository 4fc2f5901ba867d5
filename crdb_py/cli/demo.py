"""`crdb-py demo`: a throwaway multi-node cluster with the SQL shell on top.

    crdb-py demo [--nodes 3] [--latency-ms D] [--empty]

Starts a real `LocalCluster` (one OS process per node, temporary stores,
each node serving PostgreSQL clients on its own port), loads a small bank
database unless ``--empty``, prints every node's connection URL and opens
`crdb-py sql` on node 1. Inside the shell:

    \\demo ls             nodes, their pids and URLs, up or down
    \\demo shutdown N     stop node N (SIGTERM; its store is kept)
    \\demo restart N      start node N again on the same store and ports
    \\demo add            start one more node that joins the cluster

If the shell's own node is shut down it moves to another live node. On
exit — ``\\q``, Ctrl+D, SIGTERM, SIGHUP, an error — every node is stopped and
the temporary directory removed (`LocalCluster.close`).
"""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType
from typing import TYPE_CHECKING

from crdb_py.localcluster import ClusterError, LocalCluster

if TYPE_CHECKING:
    from crdb_py.cli.repl import Shell

EXAMPLE_SCHEMA = (
    "CREATE TABLE accounts (id INT PRIMARY KEY, owner STRING NOT NULL, balance INT NOT NULL)",
    "CREATE TABLE transfers (id INT PRIMARY KEY, from_id INT NOT NULL, to_id INT NOT NULL, "
    "amount INT NOT NULL)",
    "INSERT INTO accounts VALUES (1, 'alice', 500), (2, 'bob', 300), (3, 'carol', 200), "
    "(4, 'dave', 0)",
    "INSERT INTO transfers VALUES (1, 1, 2, 100), (2, 2, 3, 50), (3, 3, 4, 25)",
)


class Demo:
    """The cluster behind a demo shell (also the shell's `DemoControl`)."""

    def __init__(self, nodes: int = 3, latency_ms: float = 0.0) -> None:
        self.cluster = LocalCluster(nodes=nodes, latency_ms=latency_ms, sync=False,
                                    log_level="WARNING", replication_factor=min(3, nodes))
        self.current = 0  # index of the node the shell is connected to

    def start(self) -> None:
        self.cluster.start()

    def close(self) -> None:
        self.cluster.close()

    def url(self, i: int) -> str:
        return self.cluster.sql_url(i)

    def load_example(self) -> None:
        import psycopg

        with psycopg.connect(self.url(0), autocommit=True, connect_timeout=15) as conn:
            for stmt in EXAMPLE_SCHEMA:
                conn.execute(stmt)

    def listing(self) -> str:
        lines = []
        for i in range(self.cluster.num_nodes):
            up = self.cluster.is_running(i)
            pid = self.cluster.pid(i)
            mark = " (shell)" if i == self.current else ""
            lines.append(f"node {i + 1}: {'up' if up else 'down'}"
                         f"{f' pid {pid}' if pid else ''}  {self.url(i)}{mark}")
        return "\n".join(lines) + "\n"

    def _node(self, args: list[str]) -> int:
        if len(args) != 2 or not args[1].isdigit():
            raise ValueError(f"usage: \\demo {args[0]} N")
        n = int(args[1])
        if not 1 <= n <= self.cluster.num_nodes:
            raise ValueError(f"no node {n}: the demo has nodes 1..{self.cluster.num_nodes}")
        return n - 1

    def demo_command(self, shell: Shell, args: list[str]) -> str:
        """`\\demo ...` inside the shell; returns what to print."""
        if not args or args[0] == "ls":
            return self.listing()
        try:
            if args[0] == "shutdown":
                i = self._node(args)
                if not self.cluster.is_running(i):
                    return f"node {i + 1} is already down\n"
                if sum(self.cluster.is_running(j) for j in range(self.cluster.num_nodes)) == 1:
                    raise ValueError("cannot shut down the last running node")
                self.cluster.stop(i)
                note = ""
                if i == self.current:
                    self.current = next(j for j in range(self.cluster.num_nodes)
                                        if self.cluster.is_running(j))
                    shell.connect(self.url(self.current))
                    note = f"; the shell moved to node {self.current + 1}"
                return f"node {i + 1} has been shut down{note}\n"
            if args[0] == "restart":
                i = self._node(args)
                self.cluster.restart(i)
                return f"node {i + 1} has been restarted: {self.url(i)}\n"
            if args[0] == "add":
                i = self.cluster.add_node()
                return f"node {i + 1} has been added: {self.url(i)}\n"
        except ClusterError as e:
            raise ValueError(str(e).splitlines()[0]) from e
        raise ValueError(f"unknown \\demo command {args[0]!r}: use ls, shutdown N, restart N, add")


def _raise_exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def run_demo(args: argparse.Namespace) -> int:
    from crdb_py.cli import repl

    if args.nodes < 1:
        print("error: --nodes must be at least 1", file=sys.stderr)
        return 1
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_exit)
    demo = Demo(args.nodes, args.latency_ms)
    try:
        print(f"# starting a {args.nodes}-node demo cluster in {demo.cluster.dir} ...", flush=True)
        try:
            demo.start()
            if not args.empty:
                demo.load_example()
        except (ClusterError, OSError) as e:
            print(f"error: the demo cluster did not start: {e}", file=sys.stderr)
            return 1
        print("#\n# The cluster is up. Connect with psql, psycopg or `crdb-py sql --url`:",
              flush=True)
        for i in range(demo.cluster.num_nodes):
            print(f"#   node {i + 1}: {demo.url(i)}")
        if not args.empty:
            print("#\n# Example database: tables accounts(id, owner, balance) and "
                  "transfers(id, from_id, to_id, amount).")
        print("# \\demo ls | shutdown N | restart N | add   manage nodes; \\q quits and cleans "
              "up.\n#", flush=True)
        return repl.run(demo.url(0), execute=args.execute, file=None, fmt=args.format,
                        stop_on_error=args.stop_on_error, echo=args.echo,
                        history=args.history or None, demo=demo)
    finally:
        demo.close()
