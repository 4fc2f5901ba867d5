"""SHOW RANGES / SPLIT AT, SET / SHOW CLUSTER SETTING and EXPLAIN ANALYZE
over the real embedded store."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import crdb_py
from crdb_py.sql import cluster_settings

PC = "kv.transaction.parallel_commits_enabled"
WP = "kv.transaction.write_pipelining_enabled"


@pytest.fixture
def conn() -> Iterator[Any]:
    c = crdb_py.connect()
    c.autocommit = True
    try:
        yield c
    finally:
        c.close()


def rows(c: Any, sql: str) -> list[tuple[Any, ...]]:
    cur = c.cursor()
    cur.execute(sql)
    return cur.fetchall()


def info(c: Any, sql: str) -> dict[str, str]:
    out = {}
    for (line,) in rows(c, sql):
        k, _, v = line.partition(": ")
        if not line.startswith(" "):
            out[k] = v
    return out


def test_split_at_and_show_ranges(conn: Any) -> None:
    rows(conn, "CREATE TABLE t (id INT PRIMARY KEY, v INT)")
    before = rows(conn, "SHOW RANGES FROM TABLE t")
    assert len(before) == 1
    split = rows(conn, "ALTER TABLE t SPLIT AT VALUES (5), (10)")
    assert [p for _, p in split] == [f"/Table/{_tid(conn)}/1/5", f"/Table/{_tid(conn)}/1/10"]
    after = rows(conn, "SHOW RANGES FROM TABLE t")
    assert len(after) == 3
    assert after[0][1] == after[1][0] == f"/Table/{_tid(conn)}/1/5"
    assert after[1][1] == after[2][0] == f"/Table/{_tid(conn)}/1/10"
    assert len({r[2] for r in after}) == 3  # distinct range ids
    assert all(r[4] == "{1}" for r in after)
    rows(conn, "INSERT INTO t VALUES (1, 1), (5, 5), (12, 12)")
    assert rows(conn, "SELECT id FROM t ORDER BY id") == [(1,), (5,), (12,)]


def _tid(conn: Any) -> int:
    return int(rows(conn, "SHOW RANGES FROM TABLE t")[-1][0].split("/")[2])


def test_cluster_setting_roundtrip_and_effect(conn: Any) -> None:
    db = conn._backend.db
    assert rows(conn, f"SHOW CLUSTER SETTING {PC}") == [(True,)]
    rows(conn, f"SET CLUSTER SETTING {PC} = false")
    assert rows(conn, f"SHOW CLUSTER SETTING {PC}") == [(False,)]
    assert db.settings.get(PC) is False
    assert dict(rows(conn, "SHOW ALL CLUSTER SETTINGS")) == {
        PC: "false", WP: "true", "gc.ttlseconds": "90000",
        "server.time_until_store_dead": "300"}
    # another gateway's view: a stale local value is corrected from KV
    db.settings.set(PC, True)
    conn._backend.run(cluster_settings.refresh(db, force=True))
    assert db.settings.get(PC) is False
    rows(conn, f"SET CLUSTER SETTING {PC} TO 'on'")
    assert db.settings.get(PC) is True


def test_cluster_setting_errors(conn: Any) -> None:
    with pytest.raises(crdb_py.dbapi.Error) as ei:
        rows(conn, "SET CLUSTER SETTING kv.nope = true")
    assert ei.value.sqlstate == "42704"
    with pytest.raises(crdb_py.dbapi.Error) as ei:
        rows(conn, f"SET CLUSTER SETTING {PC} = maybe")
    assert ei.value.sqlstate == "22023"
    rows(conn, "BEGIN")
    with pytest.raises(crdb_py.dbapi.Error) as ei:
        rows(conn, f"SET CLUSTER SETTING {PC} = false")
    assert ei.value.sqlstate == "25001"
    rows(conn, "ROLLBACK")


def test_explain_analyze_commit_paths(conn: Any) -> None:
    rows(conn, "CREATE TABLE t (id INT PRIMARY KEY, v INT)")
    rows(conn, "ALTER TABLE t SPLIT AT VALUES (5)")
    one = info(conn, "EXPLAIN ANALYZE INSERT INTO t VALUES (1, 1)")
    assert one["rows"] == "1" and one["ranges touched"] == "1"
    assert one["commit path"] == "1pc" and one["consensus rounds"] == "1"
    assert one["pipelined writes"] == "0"  # writes and EndTxn in one 1PC batch
    par = info(conn, "EXPLAIN ANALYZE INSERT INTO t VALUES (2, 2), (7, 7)")
    assert par["ranges touched"] == "2"
    assert par["commit path"] == "parallel" and par["consensus rounds"] == "1"
    assert par["pipelined writes"] == "2"  # in flight beside the STAGING record
    rows(conn, f"SET CLUSTER SETTING {PC} = false")
    two = info(conn, "EXPLAIN ANALYZE INSERT INTO t VALUES (3, 3), (8, 8)")
    assert two["commit path"] == "2pc" and int(two["consensus rounds"]) == 2
    assert two["pipelined writes"] == "0"
    sel = info(conn, "EXPLAIN ANALYZE SELECT * FROM t")
    assert sel["rows"] == "5" and sel["commit path"] == "read-only"
    assert sel["consensus rounds"] == "0" and sel["ranges touched"] == "2"
    assert len(rows(conn, "SELECT * FROM t")) == 5  # the statements really ran


def test_explain_analyze_in_explicit_txn(conn: Any) -> None:
    rows(conn, "CREATE TABLE t (id INT PRIMARY KEY)")
    rows(conn, "BEGIN")
    r = info(conn, "EXPLAIN ANALYZE INSERT INTO t VALUES (1)")
    assert r["commit path"] == "not committed yet" and r["buffered writes"] == "1"
    rows(conn, "ROLLBACK")
    assert rows(conn, "SELECT * FROM t") == []


def test_show_create_table_round_trips(conn: Any) -> None:
    from crdb_py.sql.parse import split_statements

    rows(conn, "CREATE TABLE t (id INT PRIMARY KEY, name STRING NOT NULL DEFAULT 'x', "
               "v DECIMAL, u UUID UNIQUE, CHECK (v > 0))")
    rows(conn, "CREATE INDEX t_name ON t (name, v)")
    [(name, text)] = rows(conn, "SHOW CREATE TABLE t")
    assert name == "t" and "DEFAULT 'x'" in text and "CHECK (v > 0)" in text
    assert "PRIMARY KEY (id)" in text and "UNIQUE (u)" in text and "CREATE INDEX t_name" in text
    rows(conn, "CREATE DATABASE d2")
    rows(conn, "USE d2")
    for stmt in split_statements(text):
        rows(conn, stmt)
    assert rows(conn, "SHOW CREATE TABLE t") == [("t", text)]
    assert [r[1] for r in rows(conn, "SHOW INDEXES FROM t")] == ["t_pkey", "t_u_key", "t_name",
                                                                 "t_name"]
    with pytest.raises(crdb_py.dbapi.Error) as ei:
        rows(conn, "INSERT INTO t (id, v) VALUES (1, -1)")
    assert ei.value.sqlstate == "23514"
