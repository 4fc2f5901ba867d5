"""PEP 249 over the real embedded single-node store (Store on a MemEngine /
RocksDB, through the KV transaction coordinator)."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from decimal import Decimal

import pytest

import crdb_py
from crdb_py import dbapi


@pytest.fixture(scope="module")
def conn():
    c = crdb_py.connect()
    yield c
    c.close()


def test_module_globals() -> None:
    assert dbapi.apilevel == "2.0"
    assert dbapi.paramstyle == "format"
    assert dbapi.threadsafety == 1
    assert issubclass(dbapi.IntegrityError, dbapi.DatabaseError)
    assert issubclass(dbapi.DatabaseError, dbapi.Error)
    assert issubclass(dbapi.TransactionRollbackError, dbapi.OperationalError)


def test_roundtrip_types_and_placeholders(conn) -> None:
    cur = conn.cursor()
    cur.execute("CREATE TABLE ty (k INT PRIMARY KEY, f FLOAT, d DECIMAL, s STRING, b BYTES, "
                "bo BOOL, dt DATE, ts TIMESTAMP, tz TIMESTAMPTZ, u UUID)")
    row = (1, 1.25, Decimal("3.14"), "héllo", b"\x00\xff", True, dt.date(2024, 2, 29),
           dt.datetime(2024, 1, 2, 3, 4, 5, 600000),
           dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC), uuid.UUID(int=42))
    cur.execute("INSERT INTO ty VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", row)
    assert cur.rowcount == 1
    conn.commit()
    cur.execute("SELECT * FROM ty WHERE k = $1", (1,))
    assert cur.fetchone() == row
    assert [d[0] for d in cur.description] == ["k", "f", "d", "s", "b", "bo", "dt", "ts", "tz", "u"]
    assert cur.description[0][1] == "INT8"
    cur.execute("SELECT s FROM ty WHERE k = %(k)s AND s = %(s)s", {"k": 1, "s": "héllo"})
    assert cur.fetchall() == [("héllo",)]
    conn.commit()


def test_fetch_methods_and_executemany(conn) -> None:
    cur = conn.cursor()
    cur.execute("CREATE TABLE em (k INT PRIMARY KEY, v STRING)")
    cur.executemany("INSERT INTO em VALUES (%s, %s)", [(i, str(i)) for i in range(10)])
    assert cur.rowcount == 10
    conn.commit()
    cur.execute("SELECT k FROM em ORDER BY k")
    assert cur.fetchone() == (0,)
    assert cur.fetchmany(3) == [(1,), (2,), (3,)]
    assert list(cur) == [(i,) for i in range(4, 10)]
    assert cur.fetchone() is None
    conn.commit()


def test_errors_carry_sqlstate_and_roll_back(conn) -> None:
    cur = conn.cursor()
    cur.execute("CREATE TABLE er (k INT PRIMARY KEY)")
    conn.commit()
    for sql, cls, code in [
        ("SELEC 1", dbapi.ProgrammingError, "42601"),
        ("SELECT * FROM nope", dbapi.ProgrammingError, "42P01"),
        ("INSERT INTO er VALUES ('x')", dbapi.DataError, "22P02"),
        ("SELECT 1 / 0", dbapi.DataError, "22012"),
        ("SELECT array_agg(k) FROM er", dbapi.NotSupportedError, "0A000"),
    ]:
        with pytest.raises(cls) as ei:
            cur.execute(sql)
        assert ei.value.sqlstate == code, sql
        conn.rollback()
    cur.execute("INSERT INTO er VALUES (1)")
    with pytest.raises(dbapi.IntegrityError) as ei:
        cur.execute("INSERT INTO er VALUES (1)")
    assert ei.value.pgcode == "23505"
    with pytest.raises(dbapi.InternalError):  # txn is aborted now (25P02)
        cur.execute("SELECT 1")
    conn.rollback()
    cur.execute("SELECT count(*) FROM er")
    assert cur.fetchone() == (0,)
    conn.commit()


def test_with_block_commits_or_rolls_back(conn) -> None:
    conn.execute("CREATE TABLE wb (k INT PRIMARY KEY)")
    conn.commit()
    with conn:
        conn.execute("INSERT INTO wb VALUES (1)")
    with pytest.raises(RuntimeError), conn:
        conn.execute("INSERT INTO wb VALUES (2)")
        raise RuntimeError("boom")
    assert conn.execute("SELECT k FROM wb").fetchall() == [(1,)]
    conn.commit()


def test_run_transaction_retries_contention(conn) -> None:
    conn.execute("CREATE TABLE bank (id INT PRIMARY KEY, bal INT)")
    conn.execute("INSERT INTO bank VALUES (1, 100), (2, 100)")
    conn.commit()
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        c = conn.new_session()
        try:
            for _ in range(n):
                def transfer(cc: dbapi.Connection) -> None:
                    cur = cc.cursor()
                    cur.execute("SELECT bal FROM bank WHERE id = 1")
                    (b1,) = cur.fetchone()
                    cur.execute("UPDATE bank SET bal = %s WHERE id = 1", (b1 - 1,))
                    cur.execute("UPDATE bank SET bal = bal + 1 WHERE id = 2")
                crdb_py.run_transaction(c, transfer)
        except BaseException as e:  # surfaced below
            errors.append(e)
        finally:
            c.close()

    threads = [threading.Thread(target=worker, args=(8,)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert conn.execute("SELECT bal FROM bank ORDER BY id").fetchall() == [(76,), (124,)]
    conn.commit()


def test_autocommit_mode(conn) -> None:
    c = conn.new_session()
    try:
        c.autocommit = True
        c.execute("CREATE TABLE ac (k INT PRIMARY KEY)")
        c.execute("INSERT INTO ac VALUES (1)")
        assert not c.in_transaction
        other = conn.new_session()
        assert other.execute("SELECT k FROM ac").fetchall() == [(1,)]
        other.close()
    finally:
        c.close()


def test_durable_path_reopens(tmp_path) -> None:
    path = str(tmp_path / "db")
    c = crdb_py.connect(path)
    c.execute("CREATE TABLE dur (k INT PRIMARY KEY, v STRING)")
    c.execute("INSERT INTO dur VALUES (1, 'kept')")
    c.commit()
    c.close()
    c = crdb_py.connect(path)
    try:
        assert c.execute("SELECT v FROM dur").fetchall() == [("kept",)]
        c.commit()
    finally:
        c.close()


def test_closed_connection_raises() -> None:
    c = crdb_py.connect()
    c.close()
    with pytest.raises(dbapi.InterfaceError):
        c.cursor()


def test_write_skew_prevented_on_real_kv(conn) -> None:
    """G2-item through SQL on the real coordinator: two txns read both
    doctors on call and each takes a different one off; one must fail 40001."""
    conn.execute("CREATE TABLE oncall (id INT PRIMARY KEY, on_call BOOL)")
    conn.execute("INSERT INTO oncall VALUES (1, true), (2, true)")
    conn.commit()
    a, b = conn.new_session(), conn.new_session()
    try:
        assert a.execute("SELECT count(*) FROM oncall WHERE on_call").fetchone() == (2,)
        assert b.execute("SELECT count(*) FROM oncall WHERE on_call").fetchone() == (2,)
        a.execute("UPDATE oncall SET on_call = false WHERE id = 1")
        b.execute("UPDATE oncall SET on_call = false WHERE id = 2")
        outcomes = []
        for c in (a, b):
            try:
                c.commit()
                outcomes.append("ok")
            except dbapi.TransactionRollbackError as e:
                assert e.sqlstate == "40001"
                outcomes.append("retry")
        assert sorted(outcomes) == ["ok", "retry"]
        assert conn.execute("SELECT count(*) FROM oncall WHERE on_call").fetchone() == (1,)
        conn.commit()
    finally:
        a.close()
        b.close()
