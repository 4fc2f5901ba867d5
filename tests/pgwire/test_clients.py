"""Real clients against the wire server: psycopg 3 and the psql binary."""

from __future__ import annotations

import subprocess
import threading
import time

import psycopg
import pytest
from psycopg import errors

from tests.pgwire.conftest import Running


def test_psycopg_parameterized_queries(srv: Running) -> None:
    with psycopg.connect(srv.dsn(), autocommit=True, connect_timeout=10) as conn:
        conn.execute("CREATE TABLE t (a int, b text)")
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO t VALUES (%s, %s)", [(1, "one"), (2, "it's two"), (3, None)])
            cur.execute("SELECT a, b FROM t WHERE a = %s", (2,))
            assert cur.fetchall() == [(2, "it's two")]
            assert [d.name for d in cur.description] == ["a", "b"]
            cur.execute("SELECT * FROM t")
            assert cur.fetchall() == [(1, "one"), (2, "it's two"), (3, None)]
            cur.execute("SELECT b FROM t WHERE a = %s", (3,), prepare=True)  # a named statement
            assert cur.fetchone() == (None,)
            cur.execute("SELECT b FROM t WHERE a = %s", (1,), prepare=True)
            assert cur.fetchone() == ("one",)
            cur.execute("SELECT a FROM t", binary=True)  # binary result format
            assert [r[0] for r in cur.fetchall()] == [1, 2, 3]


def test_psycopg_transactions(srv: Running) -> None:
    with psycopg.connect(srv.dsn(), connect_timeout=10) as conn:  # not autocommit: BEGIN implied
        conn.execute("CREATE TABLE t (a int)")
        conn.commit()
        conn.execute("INSERT INTO t VALUES (1)")
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        conn.rollback()
        assert conn.execute("SELECT * FROM t").fetchall() == []
        conn.rollback()
        with conn.transaction():
            conn.execute("INSERT INTO t VALUES (%s)", (5,))
        assert conn.execute("SELECT * FROM t").fetchall() == [(5,)]


def test_psycopg_errors_map_to_exception_classes(srv: Running) -> None:
    with psycopg.connect(srv.dsn(), connect_timeout=10) as conn:
        with pytest.raises(errors.UndefinedTable) as ei:
            conn.execute("SELECT * FROM nope")
        assert ei.value.sqlstate == "42P01"
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
        with pytest.raises(errors.InFailedSqlTransaction):
            conn.execute("SELECT 1")
        conn.rollback()
        with pytest.raises(errors.DivisionByZero):
            conn.execute("SELECT 1/0")
        conn.rollback()
        with pytest.raises(errors.SyntaxError):
            conn.execute("FROB")
        conn.rollback()
        assert conn.execute("SELECT %s", (9,)).fetchone() == (9,)


def test_psycopg_cancel(srv: Running) -> None:
    with psycopg.connect(srv.dsn(), autocommit=True, connect_timeout=10) as conn:
        # cancel_safe, not cancel: libpq's blocking PQcancel holds the GIL, and this
        # server runs in the same process.
        timer = threading.Timer(0.3, conn.cancel_safe)
        timer.start()
        t0 = time.monotonic()
        with pytest.raises(errors.QueryCanceled):
            conn.execute("SELECT pg_sleep(30)")
        assert time.monotonic() - t0 < 25  # it did not sleep to the end
        assert conn.execute("SELECT 2").fetchone() == (2,)


PSQL_SCRIPT = r"""
CREATE TABLE accounts (id int primary key, owner text not null, balance int);
INSERT INTO accounts VALUES (1, 'ann', 100), (2, 'bob', 50);
SELECT * FROM accounts;
\l
\dt
\d accounts
SELECT owner FROM accounts WHERE id = 2;
"""


def test_psql_script_with_backslash_commands(srv: Running, psql: str, tmp_path: object) -> None:
    p = subprocess.run(
        [psql, "-X", "-v", "ON_ERROR_STOP=1", "-h", srv.host, "-p", str(srv.port), "-U", "root",
         "-d", "defaultdb"],
        input=PSQL_SCRIPT, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "INSERT 0 2" in out
    assert " 1 | ann   |     100" in out and "(2 rows)" in out
    assert "List of databases" in out and "defaultdb" in out
    assert "List of relations" in out and " public | accounts | table | root" in out
    assert 'Table "public.accounts"' in out
    for line in (" id      | int8 |           | not null |", " owner   | text |           | not null |",
                 " balance | int8 |           |          |"):
        assert line in out, out
    assert '"accounts_pkey" PRIMARY KEY, btree (id)' in out
    assert " bob\n(1 row)" in out


def test_psql_reports_errors_with_sqlstate(srv: Running, psql: str) -> None:
    p = subprocess.run(
        [psql, "-X", "-v", "VERBOSITY=verbose", "-h", srv.host, "-p", str(srv.port), "-U", "root",
         "-d", "defaultdb", "-c", "SELECT * FROM nope", "-c", "SELECT 11"],
        capture_output=True, text=True, timeout=60)
    assert "ERROR:  42P01:" in p.stderr and 'relation "nope" does not exist' in p.stderr
    assert " 11" in p.stdout  # psql went on with the next command on the same connection
