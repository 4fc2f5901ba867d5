"""INTERVAL values over the wire: type OID 1186, text and binary formats, as
psycopg reads them into `datetime.timedelta`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import psycopg
import pytest

from crdb_py.pgwire.sql_adapter import SQLAdapterBackend
from tests.pgwire.conftest import Running
from tests.sql.fake_kv import FakeKV

CASES = [
    ("SELECT INTERVAL '1 day 2 hours'", dt.timedelta(days=1, hours=2)),
    ("SELECT INTERVAL '3 months 4 days 00:00:05.5'", dt.timedelta(days=94, seconds=5.5)),
    ("SELECT TIMESTAMP '2024-01-02 00:00:00' - TIMESTAMP '2024-01-01 12:00:00'",
     dt.timedelta(hours=12)),
    ("SELECT INTERVAL '-1 hour'", dt.timedelta(hours=-1)),
]


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_intervals_reach_psycopg(start_server: Callable[..., Running], binary: bool) -> None:
    r = start_server(SQLAdapterBackend(FakeKV()), auth="trust")
    with psycopg.connect(r.dsn(), autocommit=True, connect_timeout=10) as conn:
        for sql, want in CASES:
            cur = conn.execute(sql, binary=binary)
            assert cur.description[0].type_code == 1186
            assert cur.fetchall() == [(want,)], sql
