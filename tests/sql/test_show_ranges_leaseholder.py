"""SHOW RANGES FROM TABLE reports the range's actual leaseholder (asked of
the range, not a possibly empty or stale gateway cache)."""

from __future__ import annotations

import time
from typing import Any

import crdb_py


def rows(c: Any, sql: str) -> list[tuple[Any, ...]]:
    cur = c.cursor()
    cur.execute(sql)
    return cur.fetchall()


def test_embedded_every_range_has_leaseholder_1() -> None:
    c = crdb_py.connect()
    c.autocommit = True
    try:
        rows(c, "CREATE TABLE t (id INT PRIMARY KEY, v INT)")
        rows(c, "ALTER TABLE t SPLIT AT VALUES (5), (10)")
        got = rows(c, "SHOW RANGES FROM TABLE t")
        assert len(got) == 3
        assert [r[3] for r in got] == [1, 1, 1]
    finally:
        c.close()


def test_local_cluster_reports_transferred_lease() -> None:
    from crdb_py.localcluster import LocalCluster

    with LocalCluster(3) as lc:
        c = lc.connect()
        c.autocommit = True
        try:
            rows(c, "CREATE TABLE t (id INT PRIMARY KEY, v INT)")
            split = rows(c, "ALTER TABLE t SPLIT AT VALUES (100)")
            key = bytes.fromhex(split[0][0])
            deadline = time.monotonic() + 30
            got = rows(c, "SHOW RANGES FROM TABLE t")
            while time.monotonic() < deadline and not all(
                len(r[4].strip("{}").split(",")) == 3 for r in got
            ):  # wait for up-replication so another node can take the lease
                time.sleep(0.2)
                got = rows(c, "SHOW RANGES FROM TABLE t")
            assert len(got) == 2
            assert all(r[3] is not None for r in got)
            right = next(d for d in lc.ranges() if d.start_key == key)
            before = got[1][3]
            assert before == lc.node_id(lc.leaseholder(key))
            target = next(r.node_id for r in right.replicas if r.node_id != before)
            lc.kv().transfer_lease(key, target)
            seen = None
            while time.monotonic() < deadline:
                got = rows(c, "SHOW RANGES FROM TABLE t")
                seen = got[1][3]
                if seen == target:
                    break
                time.sleep(0.2)
            assert seen == target
            assert lc.node_id(lc.leaseholder(key)) == target
            assert got[1][2] == right.range_id
        finally:
            c.close()
