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
