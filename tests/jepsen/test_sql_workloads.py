"""The M7 workloads (bank, list-append) through SQL (`SQLClient`) with their checkers.

On the embedded in-memory store and on a 3-node LocalCluster under a kill
nemesis; plus the planted bug (every statement in autocommit mode, no
transaction around a transfer) that the bank checker must flag, and the
error mapping (40001 after retries = `fail`, anything ambiguous = `info`).
"""

from __future__ import annotations

import pytest

import crdb_py
from crdb_py import dbapi
from crdb_py.jepsen.client import DefiniteFailure, classify
from crdb_py.jepsen.history import load, operations
from crdb_py.jepsen.runner import RunResult, RunSpec, run
from crdb_py.jepsen.sql_client import SQLClient, is_definite
from crdb_py.localcluster import LocalCluster
from crdb_py.util import errors


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("jepsen-sql"))


def _ok(r: RunResult) -> None:
    ops = operations(load(r.history_path).ops)
    assert r.counts["ops"] == len(ops) > 0
    assert r.counts["ok"] > 0, f"nothing succeeded: {r.counts}"
    for o in ops:
        if o.status == "fail":  # a fail is always a definite (retryable, rolled back) error
            assert "DefiniteFailure" in (o.complete.error or ""), o.complete.error
    infos = [o.complete.error for o in ops if o.status == "info"][:5]
    assert r.valid, f"{r.history_path}\n{r.verdict.explanation}\n{r.error or ''}\n{infos}"


# ---- the client on its own ----------------------------------------------------------


def test_sql_client_bank_and_list_append_semantics() -> None:
    root = crdb_py.connect(None)
    c = SQLClient(root.new_session, table_suffix="_t")
    try:
        c.create_tables()
        c.bank_setup({0: 10, 1: 5})
        assert c.read_balances() == {0: 10, 1: 5}
        assert c.transfer(0, 1, 7) is True
        assert c.transfer(0, 1, 4) is False  # would go negative: refused, nothing changes
        assert c.read_balances() == {0: 3, 1: 12}
        assert c.list_txn([["append", 1, 10], ["r", 1, None], ["r", 2, None]]) == \
            [["append", 1, 10], ["r", 1, [10]], ["r", 2, []]]
        c.list_txn([["append", 1, 11]])
        assert c.list_txn([["r", 1, None]]) == [["r", 1, [10, 11]]]
        # it really went through SQL: another session sees the rows
        cur = root.cursor()
        cur.execute("SELECT k, v FROM lists_t")
        assert [(k, v) for k, v in cur.fetchall()] == [(1, "[10, 11]")]
        root.commit()
    finally:
        c.close()
        root.close()


def _sql_error(code: str, cause: BaseException | None = None) -> dbapi.Error:
    e = dbapi.TransactionRollbackError("boom", code) if code.startswith("40") \
        else dbapi.OperationalError("boom", code)
    e.__cause__ = cause
    return e


def test_error_mapping_matches_classify() -> None:
    assert is_definite(_sql_error("40001"))
    assert not is_definite(_sql_error("40003"))
    assert not is_definite(_sql_error("08006"))
    assert not is_definite(_sql_error("40001", errors.AmbiguousResultError("lost")))
    assert not is_definite(TimeoutError())

    class Conn:  # a connection whose every statement fails with `err`
        opened = 0

        def __init__(self, err: BaseException) -> None:
            self.err, self.autocommit, self.closed = err, True, False
            Conn.opened += 1

        def cursor(self) -> Conn:
            return self

        def execute(self, *_a: object) -> None:
            raise self.err

        def close(self) -> None:
            self.closed = True

    for err, want in ((_sql_error("40001"), "fail"), (_sql_error("40003"), "info"),
                      (_sql_error("08006"), "info"), (RuntimeError("?"), "info")):
        Conn.opened = 0
        c = SQLClient(lambda err=err: Conn(err), autocommit=True)
        for _ in range(2):
            with pytest.raises(Exception) as ei:
                c.read_balances()
            assert classify(ei.value) == want, (err, ei.value)
            assert isinstance(ei.value, DefiniteFailure) == (want == "fail")
        # a definite failure keeps the session; an ambiguous one replaces it
        assert Conn.opened == (1 if want == "fail" else 2)


# ---- embedded store -----------------------------------------------------------------


@pytest.mark.parametrize("workload", ["bank", "list-append"])
def test_embedded_sql_workload_is_valid(workload: str, results_dir: str) -> None:
    spec = RunSpec(workload, "none", "parallel+pipelining", ops=150, time_limit=10,
                   concurrency=4, seed=5, quiet=0.1, client="sql")
    r = run(spec, None, results_dir)
    _ok(r)
    assert r.counts["ok"] >= 100


def test_embedded_sql_autocommit_bank_is_flagged(results_dir: str) -> None:
    spec = RunSpec("bank", "none", "parallel+pipelining", ops=150, time_limit=10,
                   concurrency=4, seed=6, quiet=0.1, client="sql", broken="no-txn")
    r = run(spec, None, results_dir)
    assert r.error is None, r.error
    assert not r.verdict.valid, "statement-at-a-time transfers lost no money?"
    assert r.verdict.anomalies.get("wrong-total", 0) > 0, r.verdict.anomalies


def test_sql_client_refuses_other_workloads_and_embedded_nemeses(results_dir: str) -> None:
    with pytest.raises(ValueError, match="SQL client"):
        run(RunSpec("register", client="sql", ops=1), None, results_dir)
    with pytest.raises(ValueError, match="unknown nemesis"):
        run(RunSpec("bank", "no-such-nemesis", client="sql", ops=1), None, results_dir)
    for nemesis in ("kill", "coordinator-crash"):
        with pytest.raises(ValueError, match="no nemesis"):
            run(RunSpec("bank", nemesis, client="sql", ops=1), None, results_dir)


# ---- 3-node cluster with a nemesis --------------------------------------------------


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(nodes=3, sync=False) as c:
        yield c


def test_cluster_sql_bank_under_kill(cluster, results_dir) -> None:
    spec = RunSpec("bank", "kill", "2pc", ops=10_000, time_limit=6, concurrency=4,
                   nemesis_interval=1.0, nemesis_duration=2.5, seed=1, client="sql")
    r = run(spec, cluster, results_dir)
    _ok(r)
    assert any(e["what"] == "kill" for e in r.nemesis_events)
    assert r.nemesis_events[-1]["what"] == "heal-all"
    assert all(cluster.is_running(i) for i in range(cluster.num_nodes))


def test_cluster_sql_list_append_under_kill(cluster, results_dir) -> None:
    spec = RunSpec("list-append", "kill", "2pc", ops=10_000, time_limit=6,
                   concurrency=3, nemesis_interval=1.0, nemesis_duration=2.5, seed=2,
                   client="sql", final_timeout=15)
    r = run(spec, cluster, results_dir)
    _ok(r)
    assert any(e["what"] == "kill" for e in r.nemesis_events)


def test_cluster_sql_autocommit_bank_is_flagged(cluster, results_dir) -> None:
    spec = RunSpec("bank", "none", "2pc", ops=120, time_limit=10, concurrency=4, seed=3,
                   client="sql", broken="no-txn")
    r = run(spec, cluster, results_dir)
    assert r.error is None, r.error
    assert not r.verdict.valid
    assert r.verdict.anomalies.get("wrong-total", 0) > 0, r.verdict.anomalies
