"""`crdb_py.connect("host:port,...")`: the cluster's nodes are discovered from
whichever given address answers, so any node's address, in any order, works."""

from __future__ import annotations

import socket

import pytest

import crdb_py
from crdb_py.localcluster import LocalCluster


def _rows(conn: crdb_py.dbapi.Connection, sql: str) -> list[tuple[object, ...]]:
    cur = conn.cursor()
    cur.execute(sql)
    return cur.fetchall() if cur.description else []


def test_any_address_in_any_order_reaches_the_cluster() -> None:
    with LocalCluster(3) as lc:
        first = crdb_py.connect(",".join(reversed(lc.addresses)))
        first.autocommit = True
        _rows(first, "CREATE TABLE t (k INT PRIMARY KEY, v STRING)")
        _rows(first, "INSERT INTO t VALUES (1, 'a'), (2, 'b')")
        _rows(first, "ALTER TABLE t SPLIT AT VALUES (2)")
        for addr in lc.addresses:  # each node alone is enough
            c = crdb_py.connect(addr)
            c.autocommit = True
            assert _rows(c, "SELECT v FROM t ORDER BY k") == [("a",), ("b",)]
            ranges = _rows(c, "SHOW RANGES FROM TABLE t")
            assert len(ranges) == 2
            c.close()
        first.close()


def test_unreachable_addresses_fail_clearly() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(crdb_py.dbapi.OperationalError) as ei:
        crdb_py.connect(f"127.0.0.1:{port}")
    assert "cannot reach the cluster" in str(ei.value)
