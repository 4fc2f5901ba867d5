"""The wire server over the real SQL session (crdb_py/pgwire/sql_adapter.py)."""

from __future__ import annotations

import datetime as dt
import subprocess
import uuid
from collections.abc import Callable
from decimal import Decimal

import psycopg
import pytest
from psycopg import errors

from crdb_py.pgwire import pgtypes as P
from crdb_py.pgwire.sql_adapter import SQLAdapterBackend, format_type, placeholder_count, type_oid
from crdb_py.sql import types as T
from tests.pgwire.conftest import Running
from tests.sql.fake_kv import FakeKV


@pytest.fixture
def sql(start_server: Callable[..., Running]) -> Running:
    return start_server(SQLAdapterBackend(FakeKV()))


def test_type_mapping() -> None:
    assert type_oid(T.T_INT) == P.INT8 and type_oid(T.SQLType(T.INT, 2)) == P.INT2
    assert type_oid(T.SQLType(T.STRING, 5)) == P.VARCHAR and type_oid(T.T_STRING) == P.TEXT
    assert type_oid(T.T_DECIMAL) == P.NUMERIC and type_oid(T.T_TIMESTAMPTZ) == P.TIMESTAMPTZ
    assert format_type("VARCHAR(5)") == "character varying(5)" and format_type("INT8") == "bigint"
    assert placeholder_count("SELECT $1, '$9', \"$8\", $2") == 2


def test_every_type_round_trips_through_psycopg(sql: Running) -> None:
    row = (1, 2, "héllo 'q'", Decimal("12.345"), 2.5, True, b"\x00\xffab",
           dt.date(2024, 2, 29), dt.datetime(2024, 1, 2, 3, 4, 5, 678000),
           dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC), uuid.UUID(int=7), "abc")
    with psycopg.connect(sql.dsn(), autocommit=True, connect_timeout=10) as conn:
        conn.execute("CREATE TABLE v (id INT PRIMARY KEY, s2 INT2, t STRING, d DECIMAL, f FLOAT, "
                     "b BOOL, by BYTES, dd DATE, ts TIMESTAMP, tz TIMESTAMPTZ, u UUID, vc VARCHAR(5))")
        conn.execute("INSERT INTO v VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", row)
        conn.execute("INSERT INTO v (id) VALUES (2)")
        got = conn.execute("SELECT * FROM v ORDER BY id").fetchall()
        assert got[0] == row
        assert got[1] == (2,) + (None,) * 11
        cur = conn.execute("SELECT * FROM v WHERE id = %s", (1,), binary=True)
        assert cur.fetchone() == row
        assert [d.type_code for d in cur.description][:3] == [P.INT8, P.INT2, P.TEXT]


def test_transactions_and_errors_through_the_real_session(sql: Running) -> None:
    with psycopg.connect(sql.dsn(), connect_timeout=10) as conn:
        conn.execute("CREATE TABLE kv (k INT PRIMARY KEY, v STRING)")
        conn.commit()
        conn.execute("INSERT INTO kv VALUES (%s, %s)", (1, "a"))
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        with pytest.raises(errors.UniqueViolation):
            conn.execute("INSERT INTO kv VALUES (%s, %s)", (1, "dup"))
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
        with pytest.raises(errors.InFailedSqlTransaction):
            conn.execute("SELECT 1")
        conn.rollback()
        assert conn.execute("SELECT count(*) FROM kv").fetchone() == (0,)
        conn.rollback()
        with conn.transaction():
            conn.execute("INSERT INTO kv VALUES (%s, %s), (%s, %s)", (1, "a", 2, "b"))
        with pytest.raises(errors.UndefinedTable):
            conn.execute("SELECT * FROM nope")
        conn.rollback()
        with pytest.raises(errors.SyntaxError):
            conn.execute("SELEC 1")
        conn.rollback()
        cur = conn.execute("UPDATE kv SET v = %s WHERE k = %s", ("z", 2))
        assert cur.rowcount == 1
        assert conn.execute("SELECT v FROM kv WHERE k = %s", (2,)).fetchone() == ("z",)


def test_psql_against_the_real_session(sql: Running, psql: str) -> None:
    script = ("CREATE TABLE accounts (id INT PRIMARY KEY, owner STRING NOT NULL, balance DECIMAL "
              "DEFAULT 0);\nCREATE INDEX accounts_owner_idx ON accounts (owner);\n"
              "INSERT INTO accounts (id, owner) VALUES (1, 'ann');\nSELECT * FROM accounts;\n"
              "\\l\n\\dt\n\\d accounts\n")
    p = subprocess.run([psql, "-X", "-v", "ON_ERROR_STOP=1", "-h", sql.host, "-p", str(sql.port),
                        "-U", "root", "-d", "defaultdb"],
                       input=script, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "  1 | ann   |       0" in out
    assert " defaultdb |" in out
    assert " public | accounts | table | root" in out
    assert " id      | bigint  |           | not null |" in out
    assert " balance | numeric |           |          | 0" in out
    assert '"accounts_pkey" PRIMARY KEY, btree (id)' in out
    assert '"accounts_owner_idx" btree (owner)' in out


def test_scram_with_a_verifier_lookup(start_server: Callable[..., Running]) -> None:
    from crdb_py.pgwire.scram import make_verifier

    stored = {"bob": make_verifier("pw-bob", iterations=1024)}
    asked: list[str] = []

    async def lookup(user: str) -> str | None:
        asked.append(user)
        return stored.get(user)

    r = start_server(SQLAdapterBackend(FakeKV(), lookup=lookup), auth="scram")
    with psycopg.connect(r.dsn(user="bob", password="pw-bob"), connect_timeout=10) as conn:
        assert conn.execute("SELECT 1 + 1").fetchone() == (2,)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(r.dsn(user="bob", password="nope"), connect_timeout=10)
    assert asked == ["bob", "bob"]


def test_named_prepared_statements_on_the_real_session(sql: Running) -> None:
    with psycopg.connect(sql.dsn(), autocommit=True, connect_timeout=10) as conn:
        conn.execute("CREATE TABLE p (k INT PRIMARY KEY, v STRING)")
        for i in range(6):  # psycopg prepares server-side after a few executions
            conn.execute("INSERT INTO p VALUES (%s, %s)", (i, f"v{i}"), prepare=i > 2)
        for i in range(6):
            cur = conn.execute("SELECT v FROM p WHERE k = %s", (i,), prepare=True)
            assert cur.fetchone() == (f"v{i}",)
            assert cur.description is not None and cur.description[0].name == "v"
        cur = conn.execute("INSERT INTO p VALUES (%s, %s) RETURNING k", (10, "x"))
        assert cur.fetchone() == (10,)


def test_describe_statement_of_a_parameterized_query(sql: Running) -> None:
    """Clients like pgx Describe a statement before binding: the columns come back."""
    from tests.pgwire.conftest import Wire, column_names, kinds

    w = Wire(sql.host, sql.port)
    w.startup()
    w.query("CREATE TABLE d (k INT PRIMARY KEY, v STRING)")
    w.parse("s", "SELECT v, k FROM d WHERE k = $1")
    w.describe("S", "s")
    msgs = w.sync()
    assert kinds(msgs) == "1tTZ"
    assert column_names(msgs[2][1]) == ["v", "k"]
    w.query("BEGIN")  # inside a transaction block the statement is not run: NoData
    w.parse("s2", "SELECT v FROM d WHERE k = $1")
    w.describe("S", "s2")
    msgs = w.sync()
    assert kinds(msgs) == "1tnZ" and msgs[-1][1] == b"T"
    w.close()


def test_connecting_to_a_missing_database(sql: Running) -> None:
    """CockroachDB's rule: the connection succeeds, statements say 3D000 until USE."""
    with psycopg.connect(sql.dsn(dbname="root"), autocommit=True, connect_timeout=10) as conn:
        with pytest.raises(errors.InvalidCatalogName):
            conn.execute("SELECT 1")
        conn.execute("CREATE DATABASE root")
        conn.execute("CREATE TABLE t (a INT PRIMARY KEY)")
        conn.execute("INSERT INTO t VALUES (1)")
        assert conn.execute("SELECT current_database()").fetchone() == ("root",)
        assert conn.execute("SELECT a FROM t").fetchall() == [(1,)]
