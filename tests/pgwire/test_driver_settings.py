"""What ORMs and drivers send right after connecting, over the wire."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest

from crdb_py.pgwire.sql_adapter import SQLAdapterBackend
from tests.pgwire.conftest import Running
from tests.sql.fake_kv import FakeKV


def test_connect_time_queries(start_server: Callable[..., Running]) -> None:
    r = start_server(SQLAdapterBackend(FakeKV()), auth="trust")
    with psycopg.connect(r.dsn(), autocommit=True, connect_timeout=10) as conn:
        assert conn.execute("SHOW search_path").fetchall() == [('"$user", public',)]
        assert conn.execute("SHOW standard_conforming_strings").fetchall() == [("on",)]
        assert conn.execute("select current_schema()").fetchall() == [("public",)]
        conn.execute("SET TIME ZONE 'UTC'")
        conn.execute("SET application_name = 'orm'")
        with pytest.raises(psycopg.errors.FeatureNotSupported):
            conn.execute("SET TIME ZONE 'America/New_York'")
        assert conn.execute("SELECT 1").fetchall() == [(1,)]  # the session is fine


def test_placeholders_without_spaces(start_server: Callable[..., Running]) -> None:
    """psycopg turns `%s,%s` into `$1,$2`, which sqlglot alone cannot tokenize."""
    r = start_server(SQLAdapterBackend(FakeKV()), auth="trust")
    with psycopg.connect(r.dsn(), autocommit=True, connect_timeout=10) as conn:
        conn.execute("CREATE TABLE t (k INT PRIMARY KEY, v STRING)")
        conn.execute("INSERT INTO t VALUES (%s,%s),(%s,%s)", (1, "a", 2, "b"))
        assert conn.execute("SELECT v FROM t WHERE k IN (%s,%s) ORDER BY k",
                            (1, 2)).fetchall() == [("a",), ("b",)]
        assert conn.execute("SELECT %s+%s", (2, 3)).fetchall() == [(5,)]
        assert conn.execute("SELECT '$1,$2' AS s, %s::STRING", ("x",)).fetchall() == [
            ("$1,$2", "x")]
