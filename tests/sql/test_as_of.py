"""AS OF SYSTEM TIME and SET TRANSACTION over the embedded store."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

import crdb_py
from crdb_py.sql.historical import HIGH_PRIORITY, txn_modes


@pytest.fixture
def cur() -> Iterator[Any]:
    c = crdb_py.connect()
    c.autocommit = True
    try:
        yield c.cursor()
    finally:
        c.close()


def q(cur: Any, sql: str) -> list[tuple[Any, ...]]:
    cur.execute(sql)
    return cur.fetchall()


def _hlc(cur: Any) -> str:
    ts = cur.connection._backend.db.clock.now()
    return f"{ts.wall_time}.{ts.logical:010d}"


def test_as_of_system_time_reads_the_past(cur: Any) -> None:
    q(cur, "CREATE TABLE t (id INT PRIMARY KEY, v INT)")
    q(cur, "INSERT INTO t VALUES (1, 1)")
    t1 = _hlc(cur)
    time.sleep(0.05)
    q(cur, "UPDATE t SET v = 2 WHERE id = 1")
    q(cur, "INSERT INTO t VALUES (2, 2)")
    assert q(cur, f"SELECT v FROM t AS OF SYSTEM TIME '{t1}'") == [(1,)]
    assert q(cur, "SELECT v FROM t ORDER BY id") == [(2,), (2,)]
    q(cur, "BEGIN AS OF SYSTEM TIME '-0s'")
    assert q(cur, "SELECT count(*) FROM t") == [(2,)]
    q(cur, "COMMIT")
    q(cur, "BEGIN")
    q(cur, f"SET TRANSACTION AS OF SYSTEM TIME '{t1}'")
    assert q(cur, "SELECT id, v FROM t") == [(1, 1)]
    with pytest.raises(crdb_py.dbapi.Error) as ei:
        q(cur, "DELETE FROM t")
    assert ei.value.sqlstate == "25006"
    q(cur, "ROLLBACK")
    assert len(q(cur, "SELECT * FROM t")) == 2


def test_as_of_errors(cur: Any) -> None:
    q(cur, "CREATE TABLE t (id INT PRIMARY KEY)")
    for bad in ("'+1s'", "'nonsense'", "'2999-01-01 00:00:00'"):
        with pytest.raises(crdb_py.dbapi.Error) as ei:
            q(cur, f"SELECT * FROM t AS OF SYSTEM TIME {bad}")
        assert ei.value.sqlstate == "22023", bad
    q(cur, "BEGIN")
    q(cur, "SELECT * FROM t")
    with pytest.raises(crdb_py.dbapi.Error) as ei:
        q(cur, "SET TRANSACTION AS OF SYSTEM TIME '-1s'")
    assert ei.value.sqlstate == "25001"
    q(cur, "ROLLBACK")


def test_read_only_and_priority(cur: Any) -> None:
    q(cur, "CREATE TABLE t (id INT PRIMARY KEY)")
    q(cur, "BEGIN READ ONLY")
    with pytest.raises(crdb_py.dbapi.Error) as ei:
        q(cur, "INSERT INTO t VALUES (1)")
    assert ei.value.sqlstate == "25006"
    q(cur, "ROLLBACK")
    q(cur, "BEGIN")
    q(cur, "SET TRANSACTION PRIORITY HIGH")
    assert cur.connection.session._txn.coord.txn.meta.priority == HIGH_PRIORITY
    q(cur, "INSERT INTO t VALUES (1)")
    q(cur, "COMMIT")
    assert q(cur, "SELECT * FROM t") == [(1,)]
    assert txn_modes("ISOLATION LEVEL SERIALIZABLE, READ WRITE") == (None, None, False)
    assert txn_modes(" TRANSACTION AS OF SYSTEM TIME '-5s' PRIORITY LOW") == ("'-5s'", 0, None)
