"""The session's transaction state machine over the fake KV."""

from __future__ import annotations

import pytest

from crdb_py.sql.errors import SQLError
from crdb_py.sql.session import TxnState
from crdb_py.util.errors import CrdbError
from tests.sql.conftest import SyncSession


@pytest.fixture
def t(sess: SyncSession) -> SyncSession:
    sess.ex("CREATE TABLE t (k INT PRIMARY KEY, v INT)")
    sess.ex("INSERT INTO t VALUES (1, 10), (2, 20)")
    return sess


def state(s: SyncSession) -> TxnState:
    return s.s.state


def test_commit_makes_writes_visible_only_then(t: SyncSession) -> None:
    o = t.other()
    t.ex("BEGIN")
    assert state(t) == TxnState.OPEN
    t.ex("INSERT INTO t VALUES (3, 30)")
    assert t.rows("SELECT count(*) FROM t") == [(3,)]  # read your writes
    assert o.rows("SELECT count(*) FROM t") == [(2,)]  # nothing leaked before COMMIT
    t.ex("COMMIT")
    assert state(t) == TxnState.NO_TXN
    assert o.rows("SELECT count(*) FROM t") == [(3,)]


def test_rollback_discards(t: SyncSession) -> None:
    t.ex("BEGIN")
    t.ex("DELETE FROM t")
    t.ex("CREATE TABLE u (a INT)")
    t.ex("ROLLBACK")
    assert t.rows("SELECT count(*) FROM t") == [(2,)]
    with pytest.raises(SQLError) as ei:
        t.ex("SELECT * FROM u")
    assert ei.value.sqlstate == "42P01"


def test_error_aborts_txn_until_rollback(t: SyncSession) -> None:
    t.ex("BEGIN")
    t.ex("INSERT INTO t VALUES (5, 50)")
    with pytest.raises(SQLError):
        t.ex("INSERT INTO t VALUES (1, 0)")
    assert state(t) == TxnState.ABORTED
    with pytest.raises(SQLError) as ei:
        t.ex("SELECT 1")
    assert ei.value.sqlstate == "25P02"
    assert t.ex("COMMIT").tag == "ROLLBACK"  # COMMIT of an aborted txn rolls back
    assert t.rows("SELECT k FROM t ORDER BY k") == [(1,), (2,)]


def test_savepoints(t: SyncSession) -> None:
    t.ex("BEGIN")
    t.ex("INSERT INTO t VALUES (3, 30)")
    t.ex("SAVEPOINT a")
    t.ex("INSERT INTO t VALUES (4, 40)")
    t.ex("SAVEPOINT b")
    t.ex("UPDATE t SET v = 0")
    t.ex("ROLLBACK TO SAVEPOINT b")
    assert t.rows("SELECT k, v FROM t ORDER BY k") == [(1, 10), (2, 20), (3, 30), (4, 40)]
    t.ex("ROLLBACK TO a")
    assert t.rows("SELECT k FROM t ORDER BY k") == [(1,), (2,), (3,)]
    with pytest.raises(SQLError):  # a failed statement ...
        t.ex("INSERT INTO t VALUES (1, 1)")
    t.ex("ROLLBACK TO SAVEPOINT a")  # ... is recovered from by a savepoint
    assert state(t) == TxnState.OPEN
    t.ex("RELEASE SAVEPOINT a")
    with pytest.raises(SQLError) as ei:
        t.ex("ROLLBACK TO SAVEPOINT a")
    assert ei.value.sqlstate == "3B001"
    t.ex("COMMIT")
    assert t.rows("SELECT k FROM t ORDER BY k") == [(1,), (2,), (3,)]


def test_control_statement_errors(t: SyncSession) -> None:
    for sql, code in [("SAVEPOINT x", "25P01"), ("RELEASE x", "25P01")]:
        with pytest.raises(SQLError) as ei:
            t.ex(sql)
        assert ei.value.sqlstate == code
    t.ex("BEGIN")
    with pytest.raises(SQLError) as ei:
        t.ex("BEGIN")
    assert ei.value.sqlstate == "25001"
    t.ex("ROLLBACK")


def test_conflict_in_explicit_txn_is_40001(t: SyncSession) -> None:
    a, b = t, t.other()
    a.ex("BEGIN")
    b.ex("BEGIN")
    assert a.rows("SELECT v FROM t WHERE k = 1") == [(10,)]
    assert b.rows("SELECT v FROM t WHERE k = 1") == [(10,)]
    a.ex("UPDATE t SET v = v + 1 WHERE k = 1")
    b.ex("UPDATE t SET v = v + 1 WHERE k = 1")
    a.ex("COMMIT")
    with pytest.raises(CrdbError) as ei:
        b.ex("COMMIT")
    assert ei.value.sqlstate == "40001"
    assert state(b) == TxnState.NO_TXN
    assert a.rows("SELECT v FROM t WHERE k = 1") == [(11,)]  # no lost update


def test_cockroach_restart_savepoint(t: SyncSession) -> None:
    a, b = t, t.other()
    a.ex("BEGIN")
    a.ex("SAVEPOINT cockroach_restart")
    a.rows("SELECT v FROM t WHERE k = 2")
    b.ex("UPDATE t SET v = 99 WHERE k = 2")
    a.ex("UPDATE t SET v = 1 WHERE k = 1")
    with pytest.raises(CrdbError) as ei:
        a.ex("RELEASE SAVEPOINT cockroach_restart")
    assert ei.value.sqlstate == "40001"
    assert state(a) == TxnState.ABORTED
    a.ex("ROLLBACK TO SAVEPOINT cockroach_restart")  # restarts the txn in place
    assert a.rows("SELECT v FROM t WHERE k = 2") == [(99,)]
    a.ex("UPDATE t SET v = 1 WHERE k = 1")
    a.ex("RELEASE SAVEPOINT cockroach_restart")
    assert state(a) == TxnState.COMMIT_WAIT
    a.ex("COMMIT")
    assert b.rows("SELECT v FROM t ORDER BY k") == [(1,), (99,)]


def test_implicit_statement_retried(t: SyncSession) -> None:
    t.kv.fail_next_commits = 3
    t.ex("INSERT INTO t VALUES (7, 70)")
    assert t.s.retries == 3
    assert t.rows("SELECT v FROM t WHERE k = 7") == [(70,)]
    t.kv.fail_next_commits = 1000
    t.s.max_retries = 5
    with pytest.raises(CrdbError) as ei:
        t.ex("INSERT INTO t VALUES (8, 80)")
    assert ei.value.sqlstate == "40001"
    assert t.s.retries == 3 + 5  # gave up after max_retries
    t.kv.fail_next_commits = 0
    assert t.rows("SELECT count(*) FROM t WHERE k = 8") == [(0,)]


def test_write_skew_prevented(t: SyncSession) -> None:
    """G2-item: two txns each read both rows and write a different one."""
    a, b = t, t.other()
    a.ex("BEGIN")
    b.ex("BEGIN")
    assert a.rows("SELECT sum(v) FROM t") == [(30,)]
    assert b.rows("SELECT sum(v) FROM t") == [(30,)]
    a.ex("UPDATE t SET v = 0 WHERE k = 1")
    b.ex("UPDATE t SET v = 0 WHERE k = 2")
    a.ex("COMMIT")
    with pytest.raises(CrdbError) as ei:
        b.ex("COMMIT")
    assert ei.value.sqlstate == "40001"


def test_ddl_is_transactional_and_atomic(t: SyncSession) -> None:
    t.ex("INSERT INTO t VALUES (3, 10)")
    with pytest.raises(SQLError) as ei:  # the backfill finds a duplicate: nothing remains
        t.ex("CREATE UNIQUE INDEX bad ON t (v)")
    assert ei.value.sqlstate == "23505"
    assert [r[1] for r in t.rows("SHOW INDEXES FROM t")] == ["t_pkey"]
    t.ex("BEGIN")
    t.ex("CREATE TABLE n (a INT PRIMARY KEY)")
    t.ex("INSERT INTO n VALUES (1)")
    assert t.other().rows("SHOW TABLES") == [("t",)]
    t.ex("COMMIT")
    assert t.other().rows("SHOW TABLES") == [("n",), ("t",)]
    assert t.rows("SHOW TRANSACTION STATUS") == [("NoTxn",)]
