"""COPY FROM STDIN / TO STDOUT over the wire: psycopg's `cursor.copy()` and
psql's `\\copy`, text and CSV formats, NULLs and escapes, atomicity."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from crdb_py.pgwire.copy import CopyError, decode_rows, encode_row, parse
from crdb_py.pgwire.sql_adapter import SQLAdapterBackend
from tests.pgwire.conftest import Running
from tests.sql.fake_kv import FakeKV


@pytest.fixture
def r(start_server: Callable[..., Running]) -> Running:
    return start_server(SQLAdapterBackend(FakeKV()), auth="trust")


def _conn(r: Running) -> psycopg.Connection:
    c = psycopg.connect(r.dsn(), autocommit=True, connect_timeout=10)
    c.execute("CREATE TABLE t (k INT PRIMARY KEY, v STRING, d DATE, n DECIMAL)")
    return c


def test_copy_in_and_out_with_psycopg(r: Running) -> None:
    with _conn(r) as conn:
        with conn.cursor() as cur:
            with cur.copy("COPY t FROM STDIN") as cp:
                for i in range(1200):  # several INSERT batches
                    cp.write_row((i, f"v{i}" if i % 7 else None, "2024-01-02", "1.5"))
            assert cur.rowcount == 1200
        assert conn.execute("SELECT count(*), count(v) FROM t").fetchall() == [(1200, 1028)]
        assert conn.execute("SELECT v, d, n FROM t WHERE k = 1").fetchall()[0][0] == "v1"
        with conn.cursor() as cur:
            with cur.copy("COPY (SELECT k, v FROM t WHERE k < 3 ORDER BY k) TO STDOUT") as cp:
                got = list(cp.rows())
        assert got == [("0", None), ("1", "v1"), ("2", "v2")]


def test_copy_text_escapes_and_csv(r: Running) -> None:
    with _conn(r) as conn, conn.cursor() as cur:
        with cur.copy("COPY t (k, v) FROM STDIN") as cp:
            cp.write(b"1\ttab\\there\n2\tback\\\\slash\n3\t\\N\n")
        with cur.copy("COPY t (k, v) FROM STDIN WITH (FORMAT csv, HEADER)") as cp:
            cp.write(b'k,v\n4,"a,b"\n5,\n6,""\n7,"say ""hi"""\n')
        rows = conn.execute("SELECT k, v FROM t ORDER BY k").fetchall()
        assert rows == [(1, "tab\there"), (2, "back\\slash"), (3, None), (4, "a,b"), (5, None),
                        (6, ""), (7, 'say "hi"')]
        with cur.copy("COPY t (k, v) TO STDOUT WITH (FORMAT csv)") as cp:
            out = b"".join(bytes(b) for b in cp)
        assert out.decode().splitlines() == [
            "1,tab\there", "2,back\\slash", "3,", '4,"a,b"', "5,", '6,""', '7,"say ""hi"""']


def test_a_bad_row_loads_nothing(r: Running) -> None:
    with _conn(r) as conn, conn.cursor() as cur:
        with pytest.raises(psycopg.errors.UniqueViolation):
            with cur.copy("COPY t (k) FROM STDIN") as cp:
                cp.write(b"1\n2\n1\n")
        with pytest.raises(psycopg.errors.InvalidTextRepresentation):
            with cur.copy("COPY t (k) FROM STDIN") as cp:
                cp.write(b"1\nnot-a-number\n")
        with pytest.raises(psycopg.Error) as ei:
            with cur.copy("COPY t (k, v) FROM STDIN") as cp:
                cp.write(b"1\tx\textra\n")
        assert ei.value.sqlstate == "22P04"
        assert conn.execute("SELECT count(*) FROM t").fetchall() == [(0,)]
        # inside a transaction the rows commit with it
        conn.autocommit = False
        with cur.copy("COPY t (k) FROM STDIN") as cp:
            cp.write(b"10\n11\n")
        conn.rollback()
        assert conn.execute("SELECT count(*) FROM t").fetchall() == [(0,)]
        with cur.copy("COPY t (k) FROM STDIN") as cp:
            cp.write(b"10\n11\n")
        conn.commit()
        assert conn.execute("SELECT count(*) FROM t").fetchall() == [(2,)]


def test_psql_backslash_copy(r: Running, psql: str, tmp_path: Path) -> None:
    with _conn(r):
        pass
    src = tmp_path / "in.csv"
    src.write_text("k,v\n1,one\n2,two\n")
    out = tmp_path / "out.tsv"
    env = dict(os.environ, PGCONNECT_TIMEOUT="10")
    script = (f"\\copy t (k, v) FROM '{src}' WITH (FORMAT csv, HEADER)\n"
              f"\\copy (SELECT k, v FROM t ORDER BY k) TO '{out}'\n")
    p = subprocess.run([psql, "-h", r.host, "-p", str(r.port), "-U", "root", "-d", "defaultdb",
                        "-v", "ON_ERROR_STOP=1"], input=script, env=env, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "COPY 2" in p.stdout
    assert out.read_text() == "1\tone\n2\ttwo\n"


@pytest.mark.parametrize("sql,state", [
    ("COPY t FROM '/etc/passwd'", "0A000"),
    ("COPY t FROM STDIN WITH (FORMAT binary)", "0A000"),
    ("COPY t FROM STDIN WITH (FORMAT xml)", "22023"),
    ("COPY t FROM STDIN WITH (DELIMITER '||')", "22023"),
    ("COPY t FROM STDIN HEADER", "0A000"),
    ("COPY t FROM STDIN WITH (COLOUR red)", "42601"),
])
def test_bad_copy_statements(sql: str, state: str) -> None:
    with pytest.raises(CopyError) as ei:
        parse(sql)
    assert ei.value.sqlstate == state


def test_round_trip_of_awkward_text() -> None:
    for spec in (parse("COPY t FROM STDIN"), parse("COPY t FROM STDIN CSV")):
        fields = ["a\tb", "line\nbreak", "back\\slash", "", None, 'q"uote', "c,omma"]
        line = encode_row(fields, spec)
        assert decode_rows(line, spec) == [fields]
