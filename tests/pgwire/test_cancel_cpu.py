"""A CancelRequest stops a CPU-bound statement (a 4-way cross join) on the
real SQL adapter: the executor yields to the event loop every few rows, so
the server can read the request while the join runs."""

from __future__ import annotations

import threading
from collections.abc import Callable

import psycopg
import pytest
from psycopg import errors

from crdb_py.pgwire.sql_adapter import SQLAdapterBackend
from tests.pgwire.conftest import Running
from tests.sql.fake_kv import FakeKV

N = 300  # N**4 = 8.1e9 joined rows: the statement would never end on its own


@pytest.fixture
def sql(start_server: Callable[..., Running]) -> Running:
    return start_server(SQLAdapterBackend(FakeKV()))


def test_cancel_of_a_cross_join_over_psycopg(sql: Running) -> None:
    with psycopg.connect(sql.dsn(), autocommit=True, connect_timeout=10) as conn:
        conn.execute("CREATE TABLE t (k INT PRIMARY KEY, v INT)")
        conn.execute("INSERT INTO t VALUES " + ", ".join(f"({i}, {i % 7})" for i in range(N)))
        # cancel_safe, not cancel: libpq's blocking PQcancel holds the GIL, and the
        # server runs in this process.
        timer = threading.Timer(0.5, conn.cancel_safe)
        timer.start()
        try:
            with pytest.raises(errors.QueryCanceled) as ei:
                conn.execute("SELECT count(*) FROM t a, t b, t c, t d WHERE a.v + d.v > 100")
        finally:
            timer.cancel()
        assert ei.value.sqlstate == "57014"
        # the connection (and its session) stay usable
        assert conn.execute("SELECT count(*), sum(k) FROM t").fetchone() == (N, N * (N - 1) // 2)
        assert conn.execute("SELECT count(*) FROM t a, t b WHERE a.k = b.k").fetchone() == (N,)


def test_other_connections_are_served_during_a_cross_join(sql: Running) -> None:
    with psycopg.connect(sql.dsn(), autocommit=True, connect_timeout=10) as conn:
        conn.execute("CREATE TABLE t (k INT PRIMARY KEY)")
        conn.execute("INSERT INTO t VALUES " + ", ".join(f"({i})" for i in range(N)))
        answered: list[tuple[int, ...]] = []

        def other() -> None:
            try:
                with psycopg.connect(sql.dsn(), autocommit=True, connect_timeout=10) as c2:
                    row = c2.execute("SELECT count(*) FROM t").fetchone()
                    assert row is not None
                    answered.append(row)
            finally:
                conn.cancel_safe()  # once the other client got its answer (or gave up)

        th = threading.Thread(target=other)
        threading.Timer(0.3, th.start).start()
        with pytest.raises(errors.QueryCanceled):
            conn.execute("SELECT count(*) FROM t a, t b, t c, t d")
        th.join(30)
        assert answered == [(N,)]
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_cancel_inside_a_transaction_aborts_it(sql: Running) -> None:
    with psycopg.connect(sql.dsn(), connect_timeout=10) as conn:
        conn.execute("CREATE TABLE t (k INT PRIMARY KEY)")
        conn.execute("INSERT INTO t VALUES " + ", ".join(f"({i})" for i in range(N)))
        conn.commit()
        conn.execute("INSERT INTO t VALUES (-1)")
        timer = threading.Timer(0.5, conn.cancel_safe)
        timer.start()
        with pytest.raises(errors.QueryCanceled):
            conn.execute("SELECT count(*) FROM t a, t b, t c, t d")
        timer.cancel()
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
        conn.rollback()
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (N,)  # the INSERT is gone
