"""`crdb-py`: the command line.

    crdb-py start --store PATH|mem --listen-addr HOST:PORT [--join H:P,...]
    crdb-py init --host HOST:PORT
    crdb-py node status --host HOST:PORT [--format table|json]

`start` runs a node until SIGTERM/SIGINT, printing one line when it listens
and one when it is ready (``node 2 ready, listening on 127.0.0.1:26258``).
Start-up problems — a taken port, a store held by another process, join
addresses that never answer — are reported on stderr as ``error: ...`` with
exit code 1.

    crdb-py sql --url postgresql://root@HOST:SQLPORT/defaultdb | --host HOST:SQLPORT
                [-e STMT]... [-f FILE] [--format table|csv|tsv|json|records] [--stop-on-error]
    crdb-py demo [--nodes 3] [--latency-ms D] [--empty]

`sql` is the psql-like shell (`cli/repl.py`) over a node's PostgreSQL port
(`start --sql-addr`); `demo` starts a temporary LocalCluster, loads an example
database and opens the shell on it (`cli/demo.py`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

from crdb_py.util.errors import CrdbError

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="crdb-py", description="crdb-py: a CockroachDB-style database")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND")

    s = sub.add_parser("start", help="start a node")
    s.add_argument("--store", default="crdb-data", help="store directory, or 'mem' (in-memory)")
    s.add_argument("--listen-addr", default="127.0.0.1:26257", help="HOST:PORT to serve on")
    s.add_argument(
        "--advertise-addr", default="", help="HOST:PORT other nodes dial (default: listen addr)"
    )
    s.add_argument("--join", default="", help="comma-separated HOST:PORT of cluster nodes")
    s.add_argument("--sql-addr", default="",
                   help="HOST:PORT for PostgreSQL clients (psql, psycopg); port 0 = any free one")
    s.add_argument("--sql-auth", choices=("loopback-trust", "trust", "scram"),
                   default="loopback-trust",
                   help="PostgreSQL client authentication: trust loopback clients (default), "
                        "trust everyone, or always ask for a SCRAM-SHA-256 password")
    s.add_argument("--sql-cert", default="",
                   help="PEM certificate (chain) for TLS on the SQL port; with --sql-key")
    s.add_argument("--sql-key", default="", help="PEM private key of --sql-cert")
    s.add_argument("--sql-require-tls", action="store_true",
                   help="refuse SQL clients that do not use TLS (needs --sql-cert)")
    s.add_argument(
        "--join-timeout", type=float, default=30.0,
        help="give up if no --join address answers for this many seconds",
    )
    s.add_argument("--pid-file", help="write the pid here once listening")
    s.add_argument("--ready-file", help="write JSON {node_id, address, pid} here once ready")
    s.add_argument("--raft-tick-interval", type=float, default=0.1)
    s.add_argument("--lease-duration", type=float, default=3.0)
    s.add_argument("--range-max-bytes", type=int, default=64 << 20)
    s.add_argument("--replication-factor", type=int, default=3)
    s.add_argument("--no-sync", action="store_true", help="do not fsync raft log writes")
    s.add_argument("--max-offset-ms", type=float, default=500.0)
    s.add_argument("--clock-offset-ms", type=float, default=0.0,
                   help="testing: shift this node's physical clock (clock-skew nemesis)")
    s.add_argument("--liveness-timeout", type=float, default=2.0)
    s.add_argument("--log-level", default="WARNING")

    i = sub.add_parser("init", help="bootstrap a new cluster (once)")
    i.add_argument("--host", required=True, help="HOST:PORT of a started node")
    i.add_argument("--timeout", type=float, default=15.0, help="wait this long for the node")

    n = sub.add_parser("node", help="node commands")
    nsub = n.add_subparsers(dest="node_cmd", metavar="SUBCOMMAND")
    st = nsub.add_parser("status", help="the cluster's nodes, liveness, ranges and leases")
    st.add_argument("--host", required=True, help="HOST:PORT of any node")
    st.add_argument("--format", choices=("table", "json"), default="table")
    st.add_argument("--timeout", type=float, default=10.0)

    q = sub.add_parser("sql", help="the SQL shell (psql-like) over the PostgreSQL wire protocol")
    q.add_argument("--url", help="postgresql://USER@HOST:PORT/DB (a node's --sql-addr)")
    q.add_argument("--host", help="HOST:PORT of a node's SQL address (--sql-addr)")
    q.add_argument("--user", "-u", default="root")
    q.add_argument("--database", "-d", default="defaultdb")
    _shell_args(q)
    q.add_argument("-e", "--execute", action="append", default=[],
                   help="run these statements and exit (repeatable)")
    q.add_argument("-f", "--file", help="run the statements in FILE ('-' = stdin) and exit")

    d = sub.add_parser("demo", help="start a temporary multi-node cluster and open the SQL shell")
    d.add_argument("--nodes", type=int, default=3)
    d.add_argument("--latency-ms", type=float, default=0.0,
                   help="one-way delay injected on every node-to-node link")
    d.add_argument("--empty", action="store_true", help="do not load the example database")
    _shell_args(d)
    d.add_argument("-e", "--execute", action="append", default=[],
                   help="run these statements (and \\demo commands) and exit")
    args = p.parse_args(argv)
    if args.cmd is None or (args.cmd == "node" and args.node_cmd is None):
        p.print_help(sys.stderr)
        sys.exit(EXIT_USAGE)
    return args


def _shell_args(p: argparse.ArgumentParser) -> None:
    from crdb_py.cli.format import FORMATS

    p.add_argument("--format", choices=FORMATS, default="table", help="result format")
    p.add_argument("--stop-on-error", action="store_true",
                   help="scripts stop at the first failing statement (ON_ERROR_STOP)")
    p.add_argument("--echo", action="store_true", help="print each statement before running it")
    p.add_argument("--history", default=os.environ.get("CRDB_PY_HISTORY", "~/.crdb_py_history"),
                   help="history file of the interactive shell ('' = none)")


def _error(msg: str) -> int:
    print(f"error: {msg}", file=sys.stderr, flush=True)
    return EXIT_ERROR


def main(argv: Sequence[str] | None = None) -> int:
    # gRPC core logs its own copy of errors we report clearly (e.g. a taken
    # port) to stderr; keep it quiet unless the user asks for it.
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    args = _parse_args(argv)
    try:
        if args.cmd == "sql":
            return _sql(args)
        if args.cmd == "demo":
            from crdb_py.cli.demo import run_demo

            return run_demo(args)
        if args.cmd == "start":
            return asyncio.run(_start(args))
        if args.cmd == "init":
            return asyncio.run(_init(args))
        if args.cmd == "node":
            return asyncio.run(_node_status(args))
    except KeyboardInterrupt:
        return EXIT_ERROR
    return EXIT_USAGE


# ---- sql ------------------------------------------------------------------------------


def _sql(args: argparse.Namespace) -> int:
    from crdb_py.cli import repl

    if bool(args.url) == bool(args.host):
        _error("give either --url postgresql://... or --host HOST:PORT (a node's --sql-addr)")
        return EXIT_USAGE
    url = args.url or f"postgresql://{args.user}@{args.host}/{args.database}?sslmode=disable"
    return repl.run(url, execute=args.execute, file=args.file, fmt=args.format,
                    stop_on_error=args.stop_on_error, echo=args.echo, history=args.history or None)


# ---- start ------------------------------------------------------------------------


def node_config_from_args(args: argparse.Namespace) -> Any:
    from crdb_py.server.node import NodeConfig

    return NodeConfig(
        store=args.store,
        listen_addr=args.listen_addr,
        advertise_addr=args.advertise_addr,
        join=tuple(a.strip() for a in args.join.split(",") if a.strip()),
        join_timeout=args.join_timeout,
        raft_tick_interval=args.raft_tick_interval,
        sync_writes=not args.no_sync,
        lease_duration=args.lease_duration,
        range_max_bytes=args.range_max_bytes,
        replication_factor=args.replication_factor,
        max_offset_ms=args.max_offset_ms,
        clock_offset_ms=args.clock_offset_ms,
        liveness_timeout=args.liveness_timeout,
        sql_addr=args.sql_addr,
        sql_auth=args.sql_auth,
        sql_cert=args.sql_cert,
        sql_key=args.sql_key,
        sql_require_tls=args.sql_require_tls,
    )


def _write_file(path: str, text: str) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _die_with_parent() -> None:
    """Honour CRDB_PY_DIE_WITH_PARENT=<pid> (set by LocalCluster): SIGKILL
    this process when that parent dies (Linux PR_SET_PDEATHSIG)."""
    want = os.environ.get("CRDB_PY_DIE_WITH_PARENT")
    if not want or not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if str(os.getppid()) != want:  # the parent died before prctl took effect
        os._exit(1)


def _sql_tls_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the SQL TLS flags (checked before anything starts)."""
    if bool(args.sql_cert) != bool(args.sql_key):
        return "--sql-cert and --sql-key go together"
    if args.sql_require_tls and not args.sql_cert:
        return "--sql-require-tls needs --sql-cert and --sql-key"
    if args.sql_cert and not args.sql_addr:
        return "--sql-cert needs --sql-addr (the SQL port to protect)"
    if args.sql_cert:
        from crdb_py.pgwire.server import make_tls_context

        try:
            make_tls_context(args.sql_cert, args.sql_key)
        except (OSError, ValueError) as e:  # ssl.SSLError is an OSError
            return f"cannot use --sql-cert {args.sql_cert} / --sql-key {args.sql_key}: {e}"
    return None


async def _start(args: argparse.Namespace) -> int:
    from crdb_py.server.node import Node

    _die_with_parent()
    problem = _sql_tls_problem(args)
    if problem:
        return _error(problem)

    logging.basicConfig(
        level=getattr(logging, args.log_level.upper(), logging.WARNING),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    node = Node(node_config_from_args(args))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await node.start()
    except CrdbError as exc:
        return _error(str(exc))
    try:
        if args.pid_file:
            _write_file(args.pid_file, f"{os.getpid()}\n")
        if not node.initialized:
            how = f"to join {', '.join(node.config.join)}" if node.config.join else "for `crdb-py init`"
            print(f"node listening on {node.address}; waiting {how}", flush=True)
        init = asyncio.ensure_future(node.wait_initialized())
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait({init, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if init.done():
            stopper.cancel()
            try:
                init.result()
            except CrdbError as exc:
                return _error(str(exc))
            sql = f"; SQL clients: postgresql://root@{node.sql_address}/defaultdb" \
                if node.sql_address else ""
            print(f"node {node.node_id} ready, listening on {node.address}{sql}", flush=True)
            if args.ready_file:
                _write_file(
                    args.ready_file,
                    json.dumps(
                        {
                            "node_id": node.node_id,
                            "address": node.address,
                            "pid": os.getpid(),
                            "cluster_id": node.ident.cluster_id if node.ident else "",
                            "sql_address": node.sql_address,
                        }
                    ),
                )
            await stop.wait()
        else:
            init.cancel()
        print(f"node {node.node_id} shutting down", flush=True)
        return EXIT_OK
    finally:
        await node.stop()


# ---- init ----------------------------------------------------------------------------


async def _retrying(fn: Any, timeout: float) -> Any:
    """Call `fn()` until it stops raising NodeUnavailableError, or time runs out."""
    from crdb_py.util.errors import NodeUnavailableError

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            return await fn()
        except (NodeUnavailableError, TimeoutError) as exc:
            if loop.time() >= deadline:
                raise NodeUnavailableError(0, f"no answer within {timeout:g}s: {exc}") from exc
            await asyncio.sleep(0.2)


async def _init(args: argparse.Namespace) -> int:
    from crdb_py.server.admin import AdminClient

    admin = AdminClient()
    try:
        resp = await _retrying(lambda: admin.bootstrap(args.host, timeout=args.timeout), args.timeout)
    except CrdbError as exc:
        return _error(f"cannot initialize the cluster via {args.host}: {exc}")
    finally:
        await admin.close()
    print(f"cluster initialized (cluster id {resp.cluster_id})", flush=True)
    return EXIT_OK


# ---- node status -----------------------------------------------------------------------


def status_rows(resp: Any) -> list[dict[str, Any]]:
    import datetime as dt

    rows = []
    for st in resp.nodes:
        started = (
            dt.datetime.fromtimestamp(st.started_at_nanos / 1e9, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
            if st.started_at_nanos
            else ""
        )
        rows.append(
            {
                "id": st.desc.node_id,
                "address": st.desc.address,
                "live": st.live,
                "ranges": sum(s.range_count for s in st.stores),
                "leases": sum(s.lease_count for s in st.stores),
                "leaders": sum(s.leader_count for s in st.stores),
                "started_at": started,
            }
        )
    return rows


async def _node_status(args: argparse.Namespace) -> int:
    from crdb_py.server.admin import AdminClient

    admin = AdminClient()
    try:
        resp = await _retrying(lambda: admin.status(args.host, timeout=args.timeout), args.timeout)
    except CrdbError as exc:
        return _error(f"cannot get node status from {args.host}: {exc}")
    finally:
        await admin.close()
    rows = status_rows(resp)
    if args.format == "json":
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    from rich.console import Console
    from rich.table import Table

    table = Table()
    for col in ("id", "address", "live", "ranges", "leases", "leaders", "started_at"):
        table.add_column(col, justify="right" if col in ("id", "ranges", "leases", "leaders") else "left")
    for r in rows:
        table.add_row(*(str(r[c]).lower() if c == "live" else str(r[c]) for c in r))
    Console(width=120).print(table)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
