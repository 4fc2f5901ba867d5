"""`SET statement_timeout`: PostgreSQL's per-statement deadline.

A statement that runs past it fails with 57014 and leaves nothing behind;
inside BEGIN the transaction moves to Aborted; a statement whose commit was
under way when the deadline hit reports 40003 (its outcome is unknown).
"""

from __future__ import annotations

import asyncio

import pytest

from crdb_py.sql import errors as E
from crdb_py.sql.session import parse_duration_ms
from tests.sql.conftest import SyncSession
from tests.sql.fake_kv import FakeTxn


def _slow_table(sess: SyncSession) -> None:
    sess.ex("CREATE TABLE t (k INT PRIMARY KEY)")
    sess.ex("INSERT INTO t SELECT * FROM (VALUES " +
            ", ".join(f"({i})" for i in range(200)) + ") AS v")


SLOW = "SELECT count(*) FROM t a, t b, t c"  # 8 M rows: seconds, yielding as it goes


def test_duration_units() -> None:
    assert parse_duration_ms("250") == 250
    assert parse_duration_ms("2s") == 2000
    assert parse_duration_ms("1.5 min") == 90_000
    assert parse_duration_ms("0") == 0
    with pytest.raises(E.SQLError) as ei:
        parse_duration_ms("soon")
    assert ei.value.sqlstate == "22023"


def test_set_and_show(sess: SyncSession) -> None:
    assert sess.rows("SHOW statement_timeout") == [("0",)]
    sess.ex("SET statement_timeout = '3s'")
    assert sess.rows("SHOW statement_timeout") == [("3s",)]
    assert sess.s.statement_timeout == 3.0
    with pytest.raises(E.SQLError) as ei:
        sess.ex("SET statement_timeout = 'forever'")
    assert ei.value.sqlstate == "22023"
    assert sess.rows("SHOW statement_timeout") == [("3s",)]


def test_slow_statement_times_out(sess: SyncSession) -> None:
    _slow_table(sess)
    sess.ex("SET statement_timeout = 100")
    with pytest.raises(E.SQLError) as ei:
        sess.ex(SLOW)
    assert ei.value.sqlstate == "57014"
    assert "statement timeout" in str(ei.value)
    assert sess.rows("SELECT count(*) FROM t") == [(200,)]  # the session still works
    sess.ex("SET statement_timeout = 0")
    assert sess.rows("SELECT count(*) FROM t a, t b") == [(40_000,)]


def test_timeout_in_explicit_txn_aborts_it_and_keeps_nothing(sess: SyncSession) -> None:
    _slow_table(sess)
    sess.ex("SET statement_timeout = 100")
    sess.ex("BEGIN")
    sess.ex("INSERT INTO t VALUES (1000)")
    with pytest.raises(E.SQLError) as ei:
        sess.ex("INSERT INTO t SELECT a.k + 10000 FROM t a, t b, t c")
    assert ei.value.sqlstate == "57014"
    assert sess.s.txn_status == "Aborted"
    with pytest.raises(E.SQLError) as ei:
        sess.ex("SELECT 1")
    assert ei.value.sqlstate == "25P02"
    sess.ex("ROLLBACK")
    assert sess.rows("SELECT count(*) FROM t WHERE k >= 1000") == [(0,)]


def test_timeout_in_implicit_write_leaves_no_rows(sess: SyncSession) -> None:
    _slow_table(sess)
    sess.ex("SET statement_timeout = 100")
    with pytest.raises(E.SQLError) as ei:
        sess.ex("INSERT INTO t SELECT a.k + 10000 FROM t a, t b, t c")
    assert ei.value.sqlstate == "57014"
    assert sess.rows("SELECT count(*) FROM t") == [(200,)]


def test_timeout_during_commit_is_ambiguous(sess: SyncSession,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    sess.ex("CREATE TABLE t (k INT PRIMARY KEY)")
    real = FakeTxn.commit

    async def slow_commit(self: FakeTxn) -> None:
        if self.writes:
            await asyncio.sleep(0.5)
        await real(self)

    monkeypatch.setattr(FakeTxn, "commit", slow_commit)
    sess.ex("SET statement_timeout = 100")
    with pytest.raises(E.SQLError) as ei:
        sess.ex("INSERT INTO t VALUES (1)")
    assert ei.value.sqlstate == "40003"
    sess.ex("BEGIN")
    sess.ex("INSERT INTO t VALUES (2)")
    with pytest.raises(E.SQLError) as ei:
        sess.ex("COMMIT")
    assert ei.value.sqlstate == "40003"
    assert sess.s.txn_status == "NoTxn"


def test_rollback_is_never_cut_short(sess: SyncSession,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    sess.ex("CREATE TABLE t (k INT PRIMARY KEY)")
    real = FakeTxn.rollback
    done = []

    async def slow_rollback(self: FakeTxn) -> None:
        await asyncio.sleep(0.3)
        await real(self)
        done.append(self)

    monkeypatch.setattr(FakeTxn, "rollback", slow_rollback)
    sess.ex("SET statement_timeout = 100")
    sess.ex("BEGIN")
    sess.ex("INSERT INTO t VALUES (1)")
    sess.ex("ROLLBACK")
    assert sess.s.txn_status == "NoTxn" and done


@pytest.mark.parametrize("sql", [
    "UPDATE big SET v = v + 1",
    "UPDATE big SET v = v + 1 WHERE v >= 0",
    "DELETE FROM big",
    "INSERT INTO big2 SELECT k, v FROM big",
    "SELECT DISTINCT k FROM big ORDER BY k DESC",
])
def test_cancel_reaches_dml_loops(sess: SyncSession, sql: str) -> None:
    """A cancel (pgwire CancelRequest, statement_timeout) stops a long DML
    statement at its next yield point, and the statement leaves nothing."""
    _slow_table(sess)
    sess.ex("CREATE TABLE big (k INT PRIMARY KEY, v INT)")
    sess.ex("CREATE TABLE big2 (k INT PRIMARY KEY, v INT)")
    sess.ex("INSERT INTO big SELECT a.k * 200 + b.k, 0 FROM t a, t b WHERE b.k < 12")

    async def cancel_after_first_yield() -> None:
        task = asyncio.ensure_future(sess.s.execute(sql, []))
        await asyncio.sleep(0)  # the statement starts and runs to its first yield
        assert not task.done()
        sess.s.cancel()
        await task

    with pytest.raises(E.SQLError) as ei:
        sess.loop.run_until_complete(cancel_after_first_yield())
    assert ei.value.sqlstate == "57014"
    assert sess.rows("SELECT count(*), sum(v) FROM big") == [(2400, 0)]
    assert sess.rows("SELECT count(*) FROM big2") == [(0,)]


def test_time_zone_and_search_path(sess: SyncSession) -> None:
    """What drivers set and ask at connect time: UTC is accepted under its
    usual names, any other zone is refused (not silently ignored)."""
    assert sess.rows("SHOW timezone") == [("UTC",)]
    assert sess.rows("SHOW search_path") == [('"$user", public',)]
    for sql in ("SET TIME ZONE 'UTC'", "SET TIME ZONE utc", "SET timezone = 'Etc/UTC'",
                "SET TIME ZONE DEFAULT", "SET timezone TO '+00:00'"):
        sess.ex(sql)
        assert sess.rows("SHOW timezone") == [("UTC",)]
    for sql in ("SET TIME ZONE 'Europe/Paris'", "SET timezone = '+02'"):
        with pytest.raises(E.SQLError) as ei:
            sess.ex(sql)
        assert ei.value.sqlstate == "0A000"
