"""The Jepsen runner: workload × nemesis × commit setting on a real LocalCluster.

One *run* (`run`) is:

1. a fresh KV client (`open_kv`, its own event-loop thread) with the two
   commit settings of the run (`SETTINGS`: 2PC, 2PC + pipelining,
   parallel commits, both), and a key prefix of its own, so runs can share
   a cluster;
2. `workload.setup`, then `concurrency` worker threads, each a Jepsen
   *process* running one operation at a time through the blocking facade
   (`SyncDB`), recording invoke and completion in the `History` (streamed
   to ``<results>/<run>.jsonl``). An operation that raised is `fail` only
   when the error proves it did not happen (`client.classify`), else
   `info` — and after an `info` the worker continues as a fresh process id
   (the old operation may still be in flight in the cluster);
3. meanwhile the nemesis thread: every `nemesis_interval` s a fault, held
   `nemesis_duration` s, then healed;
4. the run is bounded by `ops` (total invocations) and `time_limit`
   seconds, whichever comes first; then `heal_all` (always, even after an
   exception), a quiet period, and the workload's final reads (retried
   until one succeeds or `final_timeout` passes);
5. the workload's checker over the whole history.

`run_matrix` runs a list of specs on one cluster (restarting any node a
failed run left down) and `table` renders the results with rich: ops, ok,
failures, ambiguous (info), anomalies. `python -m crdb_py.jepsen` is the
command line; ``make jepsen`` runs the full matrix as a soak.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from crdb_py.jepsen.client import KVClient, NonTransactionalDB, classify
from crdb_py.jepsen.history import History, load, operations
from crdb_py.jepsen.nemesis import NEMESES, NemesisContext
from crdb_py.jepsen.workloads import WORKLOADS, Verdict

__all__ = [
    "NEMESIS_NAMES",
    "SQL_NEMESES",
    "SQL_WORKLOADS",
    "SETTINGS",
    "WORKLOAD_NAMES",
    "RunResult",
    "RunSpec",
    "full_matrix",
    "run",
    "run_matrix",
    "table",
]

# name -> (kv.transaction.parallel_commits_enabled, kv.transaction.write_pipelining_enabled)
SETTINGS: dict[str, tuple[bool, bool]] = {
    "2pc": (False, False),
    "2pc+pipelining": (False, True),
    "parallel": (True, False),
    "parallel+pipelining": (True, True),
}
WORKLOAD_NAMES = tuple(WORKLOADS)
NEMESIS_NAMES = tuple(NEMESES)
# The SQL client runs under every nemesis: split-lease splits the run's
# table (ALTER TABLE … SPLIT AT) and moves the leases of the ranges SHOW
# RANGES lists for it; coordinator-crash runs its operation as one SQL
# transaction in a child process (see crdb_py/jepsen/nemesis.py).
SQL_WORKLOADS = ("bank", "list-append")
SQL_NEMESES = ("none", "kill", "partition", "clock-skew", "split-lease", "coordinator-crash")


@dataclass(frozen=True, slots=True)
class RunSpec:
    workload: str
    nemesis: str = "none"
    setting: str = "parallel+pipelining"
    ops: int = 200
    time_limit: float = 30.0
    concurrency: int = 4
    seed: int = 0
    nemesis_interval: float = 1.0
    nemesis_duration: float = 2.0
    quiet: float = 1.0
    op_timeout: float = 10.0
    final_timeout: float = 30.0
    broken: str | None = None  # "no-txn": NonTransactionalDB (checker mutation tests)
    client: str = "kv"  # "kv": KVClient; "sql": SQLClient (bank, list-append)

    @property
    def name(self) -> str:
        b = f"-broken-{self.broken}" if self.broken else ""
        c = "" if self.client == "kv" else f"-{self.client}"
        return f"{self.workload}-{self.nemesis}-{self.setting}-s{self.seed}{c}{b}"


@dataclass(slots=True)
class RunResult:
    spec: RunSpec
    history_path: str
    counts: dict[str, int]
    verdict: Verdict
    duration: float
    nemesis_events: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None  # the runner itself failed (not an anomaly)

    @property
    def valid(self) -> bool:
        return self.verdict.valid and self.error is None

    def summary(self) -> dict[str, Any]:
        return {
            "run": self.spec.name, "spec": asdict(self.spec), "history": self.history_path,
            "counts": self.counts, "valid": self.valid, "anomalies": self.verdict.anomalies,
            "duration": round(self.duration, 2), "error": self.error,
            "nemesis_events": len(self.nemesis_events),
        }


def _counts(h: History) -> dict[str, int]:
    c = {"ops": 0, "ok": 0, "fail": 0, "info": 0}
    for o in operations(h.ops):
        c["ops"] += 1
        c[o.status] += 1
    return c


def run(spec: RunSpec, cluster: Any, results_dir: str,
        log: Callable[[str], None] | None = None) -> RunResult:
    """Run `spec` against the running `cluster` (see module docstring)."""
    from crdb_py.kvclient.txn.settings import PARALLEL_COMMITS_ENABLED, WRITE_PIPELINING_ENABLED
    from crdb_py.kvclient.txn.sync import SyncDB
    from crdb_py.localcluster import open_kv

    os.makedirs(results_dir, exist_ok=True)
    say = log or (lambda _s: None)
    parallel, pipelining = SETTINGS[spec.setting]
    workload = WORKLOADS[spec.workload]()
    if spec.nemesis not in NEMESES:
        raise ValueError(f"unknown nemesis {spec.nemesis!r}: one of {NEMESIS_NAMES}")
    nemesis = NEMESES[spec.nemesis]()
    prefix = b"jepsen/%s/%d/" % (spec.name.encode(), int(time.time() * 1000))
    hpath = os.path.join(results_dir, f"{spec.name}.jsonl")
    npath = os.path.join(results_dir, f"{spec.name}.nemesis.jsonl")
    for p in (hpath, npath):
        if os.path.exists(p):
            os.remove(p)
    if spec.broken not in (None, "no-txn"):
        raise ValueError(f"unknown broken mode {spec.broken!r}")
    kv: Any = None
    client: Any
    if spec.client == "sql":
        client = _sql_client(spec, cluster, parallel, pipelining)
    elif spec.client == "kv":
        kv = open_kv({cluster.node_id(i): cluster.address(i) for i in range(cluster.num_nodes)})
        kv.db.settings.set(PARALLEL_COMMITS_ENABLED, parallel)
        kv.db.settings.set(WRITE_PIPELINING_ENABLED, pipelining)
        db: Any = SyncDB(kv.db, kv._loop, timeout=spec.op_timeout)
        if spec.broken == "no-txn":
            db = NonTransactionalDB(db)
        client = KVClient(db, prefix)
    else:
        raise ValueError(f"unknown client {spec.client!r}")
    history = History(path=hpath)
    pids = itertools.count(0)
    pid_lock = threading.Lock()

    def next_process() -> int:
        with pid_lock:
            return next(pids)

    sql = client if spec.client == "sql" else None
    ctx = NemesisContext(
        cluster=cluster, rng=random.Random(spec.seed + 1), history=history,
        # over SQL the nemeses' KV work (lease transfers) goes through the
        # cluster's own client, which the cluster closes
        kv=kv if sql is None or cluster is None else cluster.kv(),
        workload=workload, client_prefix=prefix, settings=(parallel, pipelining),
        next_process=next_process, log_path=npath, sql=sql,
    )
    start = time.monotonic()
    deadline = start + spec.time_limit
    budget = itertools.count(0)
    stop = threading.Event()
    error: str | None = None

    def one(process: int, op: Any) -> bool:
        history.invoke(process, op.f, op.value, key=op.key)
        try:
            history.ok(process, workload.apply(client, op))
            return True
        except Exception as e:  # every outcome goes into the history
            if classify(e) == "fail":
                history.fail(process, error=repr(e))
                return True
            history.info(process, error=repr(e))
            return False

    def worker(wid: int) -> None:
        wrng = random.Random(spec.seed * 1000 + wid)
        process = next_process()
        while not stop.is_set() and time.monotonic() < deadline and next(budget) < spec.ops:
            if not one(process, workload.generate(wrng)):
                process = next_process()

    def nemesis_loop() -> None:
        while not stop.wait(spec.nemesis_interval) and time.monotonic() < deadline:
            try:
                nemesis.fault(ctx)
                if stop.wait(spec.nemesis_duration):
                    break
                nemesis.heal(ctx)
            except Exception as e:
                ctx.log("nemesis-error", error=repr(e))

    try:
        if spec.client == "sql":
            client.create_tables()
        workload.setup(client)
        say(f"{spec.name}: running")
        threads = [threading.Thread(target=worker, args=(i,), name=f"jepsen-w{i}", daemon=True)
                   for i in range(spec.concurrency)]
        nt = threading.Thread(target=nemesis_loop, name="jepsen-nemesis", daemon=True)
        for t in threads:
            t.start()
        nt.start()
        for t in threads:
            t.join(spec.time_limit + spec.op_timeout * 3 + 30)
        stop.set()
        nt.join(120)
    except Exception:
        error = traceback.format_exc()
    finally:
        stop.set()
        try:
            nemesis.heal_all(ctx)
            ctx.log("heal-all")
        except Exception:
            error = (error or "") + traceback.format_exc()
    time.sleep(spec.quiet)
    final_pid = next_process()
    for op in workload.final_ops():
        until = time.monotonic() + spec.final_timeout
        while True:
            if one(final_pid, op):
                break
            final_pid = next_process()
            if time.monotonic() > until:
                error = (error or "") + f"final {op.f} never succeeded"
                break
            time.sleep(0.5)
    history.close()
    (kv if kv is not None else client).close()
    try:
        verdict = workload.check(load(hpath))
    except Exception:
        verdict = Verdict("checker-crashed", False, {"checker-crashed": 1}, traceback.format_exc())
    res = RunResult(spec, hpath, _counts(history), verdict, time.monotonic() - start,
                    ctx.events, error)
    with open(os.path.join(results_dir, f"{spec.name}.result.json"), "w") as fh:
        json.dump({**res.summary(), "explanation": verdict.explanation}, fh, indent=1,
                  default=repr)
    say(f"{spec.name}: {'valid' if res.valid else 'INVALID'} {res.counts}")
    return res


def _sql_client(spec: RunSpec, cluster: Any, parallel: bool, pipelining: bool) -> Any:
    """A `SQLClient` on `cluster` (a LocalCluster), or on a fresh embedded
    in-memory database when `cluster` is None (nemesis "none" only); its
    tables are named after the run, so runs can share a cluster."""
    import re

    from crdb_py.jepsen.sql_client import SQLClient
    from crdb_py.kvclient.txn.settings import PARALLEL_COMMITS_ENABLED, WRITE_PIPELINING_ENABLED

    if spec.workload not in SQL_WORKLOADS:
        raise ValueError(f"the SQL client runs bank and list-append, not {spec.workload!r}")
    if spec.nemesis not in SQL_NEMESES:
        raise ValueError(f"the SQL client runs under {SQL_NEMESES}, not {spec.nemesis!r}")
    if cluster is None and spec.nemesis != "none":
        raise ValueError("the embedded SQL database (cluster=None) takes no nemesis")
    import crdb_py

    target: str | None = None
    if cluster is None:
        root = crdb_py.connect(None)
        connect: Callable[[], Any] = root.new_session
    else:
        # `crdb_py.connect("a,b,c")` takes the i-th address for node i+1, and
        # node ids follow join order, not LocalCluster indexes: list the
        # addresses in node-id order (as `LocalCluster.connect` does).
        by_id = {cluster.node_id(i): cluster.address(i) for i in range(cluster.num_nodes)}
        if sorted(by_id) != list(range(1, len(by_id) + 1)):
            raise ValueError(f"SQL runs need node ids 1..n, not {sorted(by_id)}")
        target = ",".join(by_id[n] for n in sorted(by_id))
        connect = lambda: crdb_py.connect(target)  # noqa: E731
        root = connect()
    root._backend.db.settings.set(PARALLEL_COMMITS_ENABLED, parallel)  # shared by sessions
    root._backend.db.settings.set(WRITE_PIPELINING_ENABLED, pipelining)
    suffix = "_" + re.sub(r"\W", "_", f"{spec.name}_{int(time.time() * 1000)}")
    client = SQLClient(connect, table_suffix=suffix, autocommit=spec.broken == "no-txn",
                       statement_timeout_ms=spec.op_timeout * 1000, target=target)
    client._open.append(root)  # closed with the client
    return client


def full_matrix(*, ops: int = 300, time_limit: float = 40.0, seed: int = 0,
                final_timeout: float = 30.0,
                workloads: Sequence[str] = WORKLOAD_NAMES,
                nemeses: Sequence[str] = NEMESIS_NAMES,
                settings: Sequence[str] = tuple(SETTINGS)) -> list[RunSpec]:
    return [RunSpec(w, n, s, ops=ops, time_limit=time_limit, seed=seed,
                    final_timeout=final_timeout)
            for w in workloads for n in nemeses for s in settings]


def run_matrix(specs: Iterable[RunSpec], cluster: Any, results_dir: str,
               log: Callable[[str], None] | None = None) -> list[RunResult]:
    """Run every spec on `cluster`, in order; a node a run left down is restarted."""
    out = []
    for spec in specs:
        for i in range(cluster.num_nodes):
            if not cluster.is_running(i):
                cluster.restart(i)
        cluster.heal()
        out.append(run(spec, cluster, results_dir, log))
    with open(os.path.join(results_dir, "summary.json"), "w") as fh:
        json.dump([r.summary() for r in out], fh, indent=1, default=repr)
    return out


def table(results: Sequence[RunResult]) -> Any:
    """A rich Table: one row per run."""
    from rich.table import Table

    t = Table(title="crdb-py jepsen")
    for col in ("workload", "nemesis", "setting", "ops", "ok", "fail", "info", "anomalies", "s"):
        t.add_column(col, justify="right" if col in ("ops", "ok", "fail", "info", "s") else "left")
    for r in results:
        an = ", ".join(f"{k}:{v}" for k, v in sorted(r.verdict.anomalies.items()))
        if r.error:
            an = (an + " " if an else "") + "RUNNER-ERROR"
        c = r.counts
        t.add_row(r.spec.workload + (f" ({r.spec.client})" if r.spec.client != "kv" else "")
                  + (f" [{r.spec.broken}]" if r.spec.broken else ""),
                  r.spec.nemesis, r.spec.setting, str(c["ops"]), str(c["ok"]),
                  str(c["fail"]), str(c["info"]), an or "none", f"{r.duration:.0f}")
    return t
