"""The split-lease and coordinator-crash nemeses over SQL, and the SQL statement timeout.

On a real 3-node LocalCluster: split-lease must split the run's *table*
and move leases of the ranges `SHOW RANGES FROM TABLE` lists for it (a
nemesis that does nothing, or acts on other keys, fails here);
coordinator-crash must kill a child process's SQL transaction at its
STAGING step, record it as `info`, and leave an outcome that recovery
decides. Then bounded runs of bank and list-append under each must come
out valid, and the autocommit client (the planted bug) must still be
flagged under them. The statement timeout (`RunSpec.op_timeout`) is set on
every connection, and a timed-out statement or COMMIT is `info`.
"""

from __future__ import annotations

import random

import pytest

import crdb_py
from crdb_py.jepsen.client import DefiniteFailure, classify
from crdb_py.jepsen.history import History, load, operations
from crdb_py.jepsen.nemesis import (
    CoordinatorCrash,
    NemesisContext,
    SplitLease,
    range_start_key,
)
from crdb_py.jepsen.runner import NEMESIS_NAMES, SQL_NEMESES, RunResult, RunSpec, run
from crdb_py.jepsen.sql_client import SQLClient
from crdb_py.jepsen.workloads import BankWorkload
from crdb_py.localcluster import LocalCluster
from crdb_py.util import failpoints


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(nodes=3, sync=False) as c:
        yield c


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("jepsen-sql-nemeses"))


def _target(cluster: LocalCluster) -> str:
    by_id = {cluster.node_id(i): cluster.address(i) for i in range(cluster.num_nodes)}
    return ",".join(by_id[n] for n in sorted(by_id))


def _bank_client(cluster: LocalCluster, suffix: str) -> SQLClient:
    target = _target(cluster)
    c = SQLClient(lambda: crdb_py.connect(target), table_suffix=suffix, target=target)
    c.create_tables()
    c.bank_setup({a: 100 for a in range(5)})
    return c


def _ctx(cluster: LocalCluster, client: SQLClient, workload: object, seed: int) -> NemesisContext:
    pids = iter(range(1000))
    return NemesisContext(cluster=cluster, kv=cluster.kv(), rng=random.Random(seed),
                          history=History(), workload=workload, client_prefix=b"unused/",
                          settings=(True, True), next_process=pids.__next__, sql=client)


def _ok(r: RunResult) -> None:
    ops = operations(load(r.history_path).ops)
    assert r.counts["ops"] == len(ops) > 0
    assert r.counts["ok"] > 0, f"nothing succeeded: {r.counts}"
    infos = [o.complete.error for o in ops if o.status == "info"][:5]
    assert r.valid, f"{r.history_path}\n{r.verdict.explanation}\n{r.error or ''}\n{infos}"
    assert r.nemesis_events[-1]["what"] == "heal-all"


def test_every_nemesis_runs_over_sql() -> None:
    assert set(SQL_NEMESES) == set(NEMESIS_NAMES)


# ---- the nemeses on their own, against the table's ranges --------------------------


def test_split_lease_splits_the_table_and_moves_its_ranges_leases(cluster) -> None:
    client = _bank_client(cluster, "_sl")
    try:
        table = client.accounts
        before = client.ranges(table)
        ctx = _ctx(cluster, client, BankWorkload(), seed=3)
        nem = SplitLease()
        for _ in range(4):
            nem.fault(ctx)
        after = client.ranges(table)
        assert len(after) > len(before), (before, after)
        splits = [e for e in ctx.events if e["what"] == "split"]
        assert splits and all(e["table"] == table for e in splits), ctx.events
        # every split key is now a boundary of one of the table's ranges
        assert {e["key"] for e in splits} <= {r.start_key for r in after}
        assert all(e["key"].startswith("/Table/") for e in splits)
        leases = [e for e in ctx.events if e["what"] == "lease"]
        assert len(leases) == 4, ctx.events
        ids = {r.range_id for r in after}
        for e in leases:
            assert e["range_id"] in ids, (e, after)  # only the table's ranges
            assert e["to"] != e["was"]
        # the lease really moved: ask the cluster itself, not SHOW RANGES
        last = leases[-1]
        holder = cluster.leaseholder(range_start_key(ctx, last["range_id"]))
        assert cluster.node_id(holder) == last["to"]
        assert client.read_balances() == {a: 100 for a in range(5)}
    finally:
        client.close()


def test_coordinator_crash_kills_a_sql_txn_at_staging_and_recovery_decides(cluster) -> None:
    client = _bank_client(cluster, "_cc")
    try:
        w = BankWorkload(read_fraction=0.0)  # transfers only: each one stages
        ctx = _ctx(cluster, client, w, seed=4)
        nem = CoordinatorCrash()
        nem.fault(ctx)
        assert [e["what"] for e in ctx.events] == ["split-rows", "coordinator-crash"], ctx.events
        assert ctx.events[1]["exit"] == 137  # os._exit at the failpoint, not a timer
        assert len(client.ranges(client.accounts)) >= 5  # one row per range
        (op,) = operations(ctx.history.ops)
        assert op.status == "info" and "coordinator process died" in (op.complete.error or "")
        # whoever reads next meets the STAGING record and recovers it: the
        # transfer happened entirely or not at all
        after = client.read_balances()
        v = op.invoke.value
        moved = {a: 100 for a in range(5)}
        moved[v["from"]] -= v["amount"]
        moved[v["to"]] += v["amount"]
        assert after in ({a: 100 for a in range(5)}, moved), (after, v)
    finally:
        client.close()


# ---- bounded runs: valid, and the planted bug still flagged -------------------------


@pytest.mark.parametrize("workload,nemesis,seed", [
    ("bank", "split-lease", 11),
    ("list-append", "split-lease", 12),
    ("bank", "coordinator-crash", 13),
    ("list-append", "coordinator-crash", 14),
])
def test_sql_run_under_nemesis_is_valid(cluster, results_dir, workload, nemesis, seed) -> None:
    # a crashed coordinator's rows stay locked until its record expires
    # (seconds): the crash runs are shorter
    spec = RunSpec(workload, nemesis, "parallel+pipelining", ops=10_000,
                   time_limit=7 if nemesis == "split-lease" else 5,
                   concurrency=3, nemesis_interval=0.5, nemesis_duration=0.5, seed=seed,
                   client="sql", final_timeout=20)
    r = run(spec, cluster, results_dir)
    _ok(r)
    what = [e["what"] for e in r.nemesis_events]
    if nemesis == "split-lease":
        assert "split" in what and "lease" in what, what
        table = r.nemesis_events[0]["table"]
        assert table.startswith("accounts_" if workload == "bank" else "lists_")
    else:
        assert "split-rows" in what and "coordinator-crash" in what, what
        died = {e["process"] for e in r.nemesis_events if e["what"] == "coordinator-crash"}
        ops = {o.process: o for o in operations(load(r.history_path).ops)}
        assert all(ops[p].status == "info" for p in died)


@pytest.mark.parametrize("nemesis", ["split-lease", "coordinator-crash"])
def test_sql_autocommit_bank_is_flagged_under_nemesis(cluster, results_dir, nemesis) -> None:
    spec = RunSpec("bank", nemesis, "parallel+pipelining", ops=150, time_limit=8,
                   concurrency=4, nemesis_interval=0.5, nemesis_duration=0.5, seed=21,
                   client="sql", broken="no-txn")
    r = run(spec, cluster, results_dir)
    assert r.error is None, r.error
    assert not r.verdict.valid, "statement-at-a-time transfers lost no money?"
    assert r.verdict.anomalies.get("wrong-total", 0) > 0, r.verdict.anomalies
    assert any(e["what"] in ("split", "split-rows") for e in r.nemesis_events)


@pytest.mark.slow
@pytest.mark.parametrize("setting", ["2pc", "2pc+pipelining", "parallel", "parallel+pipelining"])
@pytest.mark.parametrize("nemesis", ["split-lease", "coordinator-crash"])
@pytest.mark.parametrize("workload", ["bank", "list-append"])
def test_sql_nemesis_matrix(cluster, results_dir, workload, nemesis, setting) -> None:
    spec = RunSpec(workload, nemesis, setting, ops=300, time_limit=30, concurrency=4,
                   seed=31, client="sql")
    _ok(run(spec, cluster, results_dir))


# ---- statement timeout ---------------------------------------------------------------


def test_statement_timeout_is_set_on_every_connection_and_is_info() -> None:
    root = crdb_py.connect(None)
    c = SQLClient(root.new_session, table_suffix="_st", statement_timeout_ms=300)
    fp = "kvserver.replica.after_propose"
    try:
        c.create_tables()
        c.bank_setup({0: 10, 1: 5})
        for _ in range(2):  # the first connection and its replacement
            cur = c._conn().cursor()
            cur.execute("SHOW statement_timeout")
            assert cur.fetchall() == [("300",)]
            c._drop()
        failpoints.enable(fp, "sleep(1)")  # every write's consensus takes 1 s
        try:
            with pytest.raises(Exception) as ei:
                c.transfer(0, 1, 3)
        finally:
            failpoints.disable(fp)
        # the deadline hit the COMMIT: it may have committed (40003), never `fail`
        assert getattr(ei.value, "sqlstate", None) == "40003", repr(ei.value)
        assert classify(ei.value) == "info" and not isinstance(ei.value, DefiniteFailure)
        timeouts, balances = [], None
        for _ in range(100):  # reads wait on the abandoned commit's intents meanwhile
            try:
                balances = c.read_balances()
                break
            except Exception as e:
                timeouts.append(e)
        assert all(getattr(e, "sqlstate", None) == "57014" and classify(e) == "info"
                   for e in timeouts), timeouts
        assert balances in ({0: 10, 1: 5}, {0: 7, 1: 8}), balances
    finally:
        c.close()
        root.close()


def test_runner_passes_op_timeout_as_statement_timeout(results_dir) -> None:
    from crdb_py.jepsen.runner import _sql_client

    c = _sql_client(RunSpec("bank", client="sql", op_timeout=2.5), None, True, True)
    try:
        assert c.statement_timeout_ms == 2500
        cur = c._conn().cursor()
        cur.execute("SHOW statement_timeout")
        assert cur.fetchall() == [("2500",)]
    finally:
        c.close()
