"""AS OF SYSTEM TIME after garbage collection: a read of collected history
fails with a clear error (BatchTimestampBeforeGCError, SQLSTATE 72000)
instead of returning a wrong answer; current reads are unchanged.

GC is forced on the embedded node with a tiny TTL (`GCQueue.run_now`)."""

from __future__ import annotations

import time

import pytest

import crdb_py


def _store(conn: crdb_py.dbapi.Connection):  # type: ignore[name-defined]
    return conn._backend._cluster.nodes[1].store


def _gc_all(conn: object, ttl: float) -> int:
    store = _store(conn)  # type: ignore[arg-type]

    async def run() -> int:
        n = 0
        for rid in list(store.replicas):
            info = await store.gc_queue.run_now(rid, ttl_seconds=ttl)
            n += info.versions_removed
        return n

    return conn._backend.run(run(), timeout=60)  # type: ignore[attr-defined]


def test_as_of_system_time_below_the_gc_threshold_is_a_clear_error() -> None:
    conn = crdb_py.connect()
    try:
        conn.autocommit = True
        cur = conn.cursor()
        cur.execute("CREATE TABLE t (k INT PRIMARY KEY, v STRING)")
        cur.execute("INSERT INTO t VALUES (1, 'old'), (2, 'two')")
        then = _store(conn).clock.now()
        cur.execute("UPDATE t SET v = 'new' WHERE k = 1")
        as_of = f"'{then.wall_time}.{then.logical}'"
        cur.execute(f"SELECT v FROM t AS OF SYSTEM TIME {as_of}")
        assert sorted(cur.fetchall()) == [("old",), ("two",)]  # history is there before GC
        time.sleep(0.05)
        assert _gc_all(conn, ttl=0.01) > 0
        cur.execute("SELECT k, v FROM t ORDER BY k")
        assert cur.fetchall() == [(1, "new"), (2, "two")]
        for ts in (as_of, "'-1h'"):
            with pytest.raises(crdb_py.dbapi.OperationalError) as ei:
                cur.execute(f"SELECT v FROM t AS OF SYSTEM TIME {ts}")
            assert ei.value.sqlstate == "72000", ei.value
            assert "must be after replica GC threshold" in str(ei.value)
    finally:
        conn.close()


def test_gc_ttl_is_a_cluster_setting() -> None:
    """`SET CLUSTER SETTING gc.ttlseconds` is what every store's GC queue reads."""
    conn = crdb_py.connect()
    try:
        conn.autocommit = True
        cur = conn.cursor()
        cur.execute("SHOW CLUSTER SETTING gc.ttlseconds")
        assert cur.fetchall() == [(90000,)]
        cur.execute("SET CLUSTER SETTING gc.ttlseconds = 7")
        cur.execute("SHOW CLUSTER SETTING gc.ttlseconds")
        assert cur.fetchall() == [(7,)]
        queue = _store(conn).gc_queue
        assert conn._backend.run(queue.ttl_seconds(), timeout=30) == 7.0  # type: ignore[attr-defined]
        for bad in ("-5", "'soon'", "1.5"):
            with pytest.raises(crdb_py.dbapi.DataError):
                cur.execute(f"SET CLUSTER SETTING gc.ttlseconds = {bad}")
        cur.execute("SHOW ALL CLUSTER SETTINGS")
        assert ("gc.ttlseconds", "7") in cur.fetchall()
    finally:
        conn.close()


def test_time_until_store_dead_is_a_cluster_setting() -> None:
    """`SET CLUSTER SETTING server.time_until_store_dead` reaches the stores,
    which decide from it when a node's replicas are replaced."""
    conn = crdb_py.connect()
    try:
        conn.autocommit = True
        cur = conn.cursor()
        cur.execute("SHOW CLUSTER SETTING server.time_until_store_dead")
        assert cur.fetchall() == [(300,)]
        cur.execute("SET CLUSTER SETTING server.time_until_store_dead = 7")
        store = _store(conn)
        conn._backend.run(store._read_store_dead_setting(), timeout=30)  # type: ignore[attr-defined]
        assert store.time_until_store_dead() == 7.0
    finally:
        conn.close()
