"""Nemeses: the faults injected into a LocalCluster while a workload runs.

A nemesis has two steps, `fault(ctx)` and `heal(ctx)`; the runner calls
them on a schedule (every `interval` seconds a fault, held for `duration`
seconds, then healed) from its own thread while the clients run, and calls
`heal_all(ctx)` at the end, unconditionally, before a quiet period and the
final reads. Every step is logged (`ctx.log`) to the run's
``*.nemesis.jsonl`` beside the history, so a failure can be read against
what the cluster was going through.

The nemeses (names as in `NEMESES`):

- ``none`` — no faults (the baseline);
- ``kill`` — SIGKILL a random minority node (one of three), restart it on
  heal (same store and port: it recovers from its durable Raft log);
- ``partition`` — isolate a random node at the transport level
  (`LocalCluster.isolate`: every link to and from it blocked), heal all;
- ``clock-skew`` — restart a random node with its physical clock shifted by
  up to ±`skew_fraction` of the max clock offset (``--clock-offset-ms``, a
  testing flag of `crdb-py start`), restart it unskewed on heal. Skew
  within the max offset must never break serializability: uncertainty
  intervals and lease safety are built for it;
- ``split-lease`` — split the workload's key range at a random key and move
  the lease of a random workload key to a random node, repeatedly. Over
  SQL (`ctx.sql` set) it acts on the workload's table instead: ``ALTER
  TABLE t SPLIT AT VALUES (k)`` at a random row, then ``SHOW RANGES FROM
  TABLE t`` and the lease of one of *those* ranges moves to another of its
  replicas (found by range id in the meta ranges; `ctx.kv` transfers it),
  and the table's ranges are read again so the log says where the lease
  landed;
- ``coordinator-crash`` — run one workload operation in a child process
  whose coordinator dies between STAGING and COMMITTED: the failpoint
  ``kvclient.txn.before_ack`` is armed with ``kill`` (the process exits at
  once after the parallel commit is implicitly committed, before anyone is
  told); for the settings without parallel commits (no STAGING), the child
  is SIGKILLed 0–30 ms into its operation instead. The operation is recorded in the history
  as its own process (`info` when the child died): whoever next meets the
  STAGING record must recover it (commit or abort), and the checker sees
  whether the outcome is consistent. Over SQL the child runs the operation
  as one SQL transaction through ``crdb_py.connect("host:port,...")`` on
  the run's tables, and the kill is armed one step earlier, at
  ``kvclient.txn.after_staging`` (the STAGING batch came back, nothing is
  decided yet on the client): a contended SQL commit is often pushed, and
  a pushed parallel commit falls back to an explicit commit after its
  refresh and never reaches ``before_ack``; killed at ``after_staging``
  the record stays STAGING whether or not a write was pushed, and recovery
  must tell the two apart. SQL buffers a transaction's writes and sends them with
  the COMMIT in one batch, so a transaction on one range commits in one
  phase and never stages: the first fault splits the table at every row
  (each row its own range), which makes every transfer, and every
  list-append transaction writing two keys, a parallel commit; and the
  child's operation is the first of up to ten the workload generates that
  writes two rows (reads and one-row writes would commit without staging
  and survive). A commit whose write meets a newer value (WriteTooOld, a
  hot key) refreshes and commits explicitly, without staging, and also
  survives: over SQL a fault runs up to `sql_attempts` (3) children, until
  one dies.

A fault is never left behind: a nemesis remembers what it broke and
`heal_all` undoes all of it (restarting dead or skewed nodes, healing
partitions) even after an exception.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from crdb_py.jepsen.history import History, Op

__all__ = [
    "NEMESES",
    "ClockSkew",
    "CoordinatorCrash",
    "Kill",
    "Nemesis",
    "NemesisContext",
    "NoNemesis",
    "Partition",
    "SplitLease",
]

FP_BEFORE_ACK = "kvclient.txn.before_ack"  # see crdb_py/kvclient/txn/committer.py
FP_AFTER_STAGING = "kvclient.txn.after_staging"


@dataclass
class NemesisContext:
    """What a nemesis may touch. `next_process` allocates history process ids."""

    cluster: Any  # crdb_py.LocalCluster
    kv: Any  # its SyncKV (splits, lease transfers)
    rng: random.Random
    history: History
    workload: Any
    client_prefix: bytes
    settings: tuple[bool, bool]  # (parallel_commits, write_pipelining)
    next_process: Callable[[], int]
    log_path: str | None = None
    max_offset_ms: float = 500.0
    sql: Any = None  # the run's SQLClient when the workload runs over SQL, else None
    events: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def log(self, what: str, **info: Any) -> None:
        ev = {"time": time.time(), "what": what, **info}
        with self._lock:
            self.events.append(ev)
            if self.log_path is not None:
                with open(self.log_path, "a") as fh:
                    fh.write(json.dumps(ev, default=repr) + "\n")

    def key(self, i: int) -> bytes:
        return b"%s%s/%09d" % (self.client_prefix, self.workload.key_kind.encode(), i)


class Nemesis(Protocol):
    name: str

    def fault(self, ctx: NemesisContext) -> None: ...

    def heal(self, ctx: NemesisContext) -> None: ...

    def heal_all(self, ctx: NemesisContext) -> None: ...


class NoNemesis:
    name = "none"

    def fault(self, ctx: NemesisContext) -> None:
        pass

    def heal(self, ctx: NemesisContext) -> None:
        pass

    def heal_all(self, ctx: NemesisContext) -> None:
        pass


def restart_node(ctx: NemesisContext, i: int) -> None:
    """`cluster.restart(i)`, tolerating its last step failing: right after a
    restart the cluster's admin channel to the node may still be in gRPC's
    reconnect backoff ("connection refused"), so pushing the link-fault
    table fails although the node is up. Push it again until it lands."""
    try:
        ctx.cluster.restart(i)
        return
    except Exception as e:
        if not ctx.cluster.is_running(i):
            raise
        ctx.log("restart-push-faults-retry", node=i, error=repr(e))
    last: Exception | None = None
    for _ in range(40):
        time.sleep(0.25)
        try:
            ctx.cluster.set_latency(ctx.cluster._faults.latency_ms)  # re-pushes the table
            return
        except Exception as e:
            last = e
    raise RuntimeError(f"node {i} restarted but never took its link-fault table") from last


def _minority(ctx: NemesisContext) -> int:
    return ctx.rng.randrange(ctx.cluster.num_nodes)


class Kill:
    """kill -9 a minority node; restart it on heal."""

    name = "kill"

    def __init__(self) -> None:
        self.dead: set[int] = set()

    def fault(self, ctx: NemesisContext) -> None:
        if self.dead:
            return
        i = _minority(ctx)
        ctx.cluster.kill(i)
        self.dead.add(i)
        ctx.log("kill", node=i)

    def heal(self, ctx: NemesisContext) -> None:
        for i in sorted(self.dead):
            restart_node(ctx, i)
            self.dead.discard(i)
            ctx.log("restart", node=i)

    def heal_all(self, ctx: NemesisContext) -> None:
        self.heal(ctx)
        for i in range(ctx.cluster.num_nodes):
            if not ctx.cluster.is_running(i):
                restart_node(ctx, i)
                ctx.log("restart", node=i)


class Partition:
    """Isolate a random node (transport-level partition); heal all links."""

    name = "partition"

    def fault(self, ctx: NemesisContext) -> None:
        i = _minority(ctx)
        ctx.cluster.isolate(i)
        ctx.log("isolate", node=i)

    def heal(self, ctx: NemesisContext) -> None:
        ctx.cluster.heal()
        ctx.log("heal")

    def heal_all(self, ctx: NemesisContext) -> None:
        self.heal(ctx)


class ClockSkew:
    """Restart a node with its clock shifted within the max offset."""

    name = "clock-skew"

    def __init__(self, skew_fraction: float = 0.4) -> None:
        self.skew_fraction = skew_fraction
        self.skewed: set[int] = set()

    def _restart(self, ctx: NemesisContext, i: int, offset_ms: float) -> None:
        # LocalCluster shares one argument list among its nodes; the extra
        # flag is added for this one restart only.
        args = ctx.cluster._node_args
        extra = ["--clock-offset-ms", f"{offset_ms:.1f}"] if offset_ms else []
        args.extend(extra)
        try:
            restart_node(ctx, i)
        finally:
            del args[len(args) - len(extra):]

    def fault(self, ctx: NemesisContext) -> None:
        if self.skewed:
            return
        i = _minority(ctx)
        bound = self.skew_fraction * ctx.max_offset_ms
        off = ctx.rng.uniform(-bound, bound)
        self._restart(ctx, i, off)
        self.skewed.add(i)
        ctx.log("skew", node=i, offset_ms=round(off, 1))

    def heal(self, ctx: NemesisContext) -> None:
        for i in sorted(self.skewed):
            self._restart(ctx, i, 0.0)
            self.skewed.discard(i)
            ctx.log("unskew", node=i)

    def heal_all(self, ctx: NemesisContext) -> None:
        self.heal(ctx)


class SplitLease:
    """Split the workload's keys at a random key; move a random lease."""

    name = "split-lease"

    def fault(self, ctx: NemesisContext) -> None:
        if ctx.sql is not None:
            self._fault_sql(ctx)
            return
        n = max(1, ctx.workload.key_range)
        at = ctx.key(ctx.rng.randrange(1, n + 1) if n > 1 else 0)
        try:
            ctx.kv.split(at)
            ctx.log("split", key=at.decode(errors="replace"))
        except Exception as e:
            ctx.log("split-failed", key=at.decode(errors="replace"), error=repr(e))
        key = ctx.key(ctx.rng.randrange(n))
        target = ctx.cluster.node_id(ctx.rng.randrange(ctx.cluster.num_nodes))
        try:
            ctx.kv.transfer_lease(key, target)
            ctx.log("lease", key=key.decode(errors="replace"), to=target)
        except Exception as e:
            ctx.log("lease-failed", key=key.decode(errors="replace"), to=target, error=repr(e))

    def _fault_sql(self, ctx: NemesisContext) -> None:
        table = ctx.sql.table_for(ctx.workload.name)
        k = ctx.rng.randrange(1, max(2, ctx.workload.key_range))
        try:
            ctx.log("split", table=table, key=ctx.sql.split_at(table, k))
        except Exception as e:
            ctx.log("split-failed", table=table, row=k, error=repr(e))
        try:
            ranges = ctx.sql.ranges(table)
            r = ctx.rng.choice(ranges)
            others = [n for n in r.replicas if n != r.lease_holder]
            to = ctx.rng.choice(others or list(r.replicas))
            key = range_start_key(ctx, r.range_id)
            ctx.kv.transfer_lease(key, to)
        except Exception as e:
            ctx.log("lease-failed", table=table, error=repr(e))
            return
        holder = None
        try:
            holder = next((x.lease_holder for x in ctx.sql.ranges(table)
                           if x.range_id == r.range_id), None)
        except Exception as e:
            ctx.log("show-ranges-failed", table=table, error=repr(e))
        ctx.log("lease", table=table, range_id=r.range_id, start=r.start_key,
                end=r.end_key, ranges=len(ranges), was=r.lease_holder, to=to, now=holder)

    def heal(self, ctx: NemesisContext) -> None:
        pass

    def heal_all(self, ctx: NemesisContext) -> None:
        pass


def writes_two_rows(op: Any) -> bool:
    """Whether a bank / list-append operation writes two or more rows (over
    SQL with a row per range, its commit is a parallel commit)."""
    if op.f == "transfer":
        return True
    if op.f == "txn":
        return len({k for f, k, _ in op.value if f == "append"}) >= 2
    return False


def range_start_key(ctx: NemesisContext, range_id: int) -> bytes:
    """The raw start key of range `range_id` (from the meta ranges): a key
    the range holds, to address it through KV."""
    for d in ctx.cluster.ranges():
        if d.range_id == range_id:
            return bytes(d.start_key)
    raise LookupError(f"range r{range_id} is not in meta")


class CoordinatorCrash:
    """One operation per fault in a child process that dies mid-commit."""

    name = "coordinator-crash"

    def __init__(self, child_timeout: float = 30.0, sql_attempts: int = 3) -> None:
        self.child_timeout = child_timeout
        self.sql_attempts = sql_attempts
        self.rows_split = False

    def _split_rows(self, ctx: NemesisContext) -> None:
        """Over SQL: every row of the workload's table in a range of its own
        (once per run), so that multi-row commits are parallel commits."""
        if self.rows_split:
            return
        table = ctx.sql.table_for(ctx.workload.name)
        for k in range(1, ctx.workload.key_range):
            ctx.sql.split_at(table, k)
        self.rows_split = True
        ctx.log("split-rows", table=table, rows=ctx.workload.key_range)

    def fault(self, ctx: NemesisContext) -> None:
        if ctx.sql is None:
            self._child(ctx, ctx.workload.generate(ctx.rng))
            return
        self._split_rows(ctx)
        for _ in range(self.sql_attempts):  # until one coordinator died
            op = ctx.workload.generate(ctx.rng)
            for _ in range(10):  # prefer an operation whose commit stages
                if writes_two_rows(op):
                    break
                op = ctx.workload.generate(ctx.rng)
            if self._child(ctx, op):
                return

    def _child(self, ctx: NemesisContext, op: Any) -> bool:
        """Run `op` in a child process, record it; True when the child died."""
        p = ctx.next_process()
        ctx.history.invoke(p, op.f, op.value, key=op.key)
        req: dict[str, Any] = {
            "nodes": {str(ctx.cluster.node_id(i)): ctx.cluster.address(i)
                      for i in range(ctx.cluster.num_nodes)},
            "prefix": ctx.client_prefix.decode(),
            "parallel": ctx.settings[0], "pipelining": ctx.settings[1],
            "workload": ctx.workload.name,
            "op": Op(0, "invoke", p, op.f, op.value, key=op.key).to_json(),
        }
        # Which settings stop at the failpoint: a KV operation stages only
        # with both on; a SQL commit (writes and EndTxn in one batch) stages
        # whenever parallel commits are on and its writes span ranges.
        stages = ctx.settings[0] and ctx.settings[1]
        failpoint = FP_BEFORE_ACK
        if ctx.sql is not None:
            req.update(client="sql", target=ctx.sql.target, suffix=ctx.sql.table_suffix,
                       autocommit=ctx.sql.autocommit,
                       statement_timeout_ms=ctx.sql.statement_timeout_ms)
            stages = ctx.settings[0]
            failpoint = FP_AFTER_STAGING
        env = dict(os.environ)
        env["CRDB_PY_FAILPOINTS"] = f"{failpoint}=kill"
        child = subprocess.Popen(
            [sys.executable, "-m", "crdb_py.jepsen.child"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True,
        )
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(json.dumps(req))
        child.stdin.close()
        # The child prints "connected" before it runs the operation. Without
        # parallel commits nothing stops at the failpoint: SIGKILL it a few
        # milliseconds into the operation instead.
        watchdog = threading.Timer(self.child_timeout, child.kill)
        watchdog.start()
        killer = threading.Timer(ctx.rng.uniform(0.0, 0.03), child.kill)
        try:
            ready = child.stdout.readline()
            if ready and not stages:
                killer.start()
            out = child.stdout.read()
            child.wait()
        finally:
            killer.cancel()
            watchdog.cancel()
        line = out.strip().splitlines()[-1] if out.strip() else ""
        if child.returncode == 0 and line:
            res = Op.from_json(line)
            if res.type == "ok":
                ctx.history.ok(p, res.value)
            elif res.type == "fail":
                ctx.history.fail(p, error=res.error)
            else:
                ctx.history.info(p, error=res.error)
            ctx.log("coordinator-survived", process=p, result=res.type)
            return False
        ctx.history.info(p, error=f"coordinator process died (exit {child.returncode})")
        ctx.log("coordinator-crash", process=p, exit=child.returncode)
        return True

    def heal(self, ctx: NemesisContext) -> None:
        pass

    def heal_all(self, ctx: NemesisContext) -> None:
        pass


NEMESES: dict[str, Callable[[], Any]] = {
    "none": NoNemesis,
    "kill": Kill,
    "partition": Partition,
    "clock-skew": ClockSkew,
    "split-lease": SplitLease,
    "coordinator-crash": CoordinatorCrash,
}
