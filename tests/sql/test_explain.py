"""Golden EXPLAIN output: the index and KV spans each statement reads, and
the KV writes it would make (`pytest --rewrite` regenerates the files)."""

from __future__ import annotations

import pathlib

import pytest

from tests.sql.conftest import SyncSession

DATA = pathlib.Path(__file__).parent / "testdata" / "explain"

SCHEMA = [
    "CREATE TABLE t (a INT PRIMARY KEY, b STRING, c INT, UNIQUE (b))",
    "CREATE INDEX t_c ON t (c)",
    "CREATE TABLE comp (x INT, y STRING, z DECIMAL, PRIMARY KEY (x, y))",
    "INSERT INTO t VALUES (1, 'one', 10), (2, 'two', 20)",
]

CASES = {
    "point_lookup": "SELECT * FROM t WHERE a = 1",
    "in_list": "SELECT * FROM t WHERE a IN (3, 1, 2)",
    "pk_range": "SELECT * FROM t WHERE a > 1 AND a <= 10",
    "pk_open_range": "SELECT * FROM t WHERE a < 5",
    "full_scan": "SELECT * FROM t WHERE b LIKE 'o%'",
    "unique_index": "SELECT a FROM t WHERE b = 'two'",
    "secondary_range": "SELECT a FROM t WHERE c BETWEEN 5 AND 15",
    "is_null": "SELECT a FROM t WHERE c IS NULL",
    "composite_prefix": "SELECT * FROM comp WHERE x = 7",
    "composite_point": "SELECT * FROM comp WHERE x = 7 AND y = 'k'",
    "composite_range": "SELECT * FROM comp WHERE x = 7 AND y >= 'a' AND y < 'c'",
    "join": "SELECT * FROM t JOIN comp ON t.a = comp.x WHERE t.a = 1",
    "insert": "INSERT INTO t VALUES (3, 'three', 30)",
    "update": "UPDATE t SET c = 11 WHERE a = 1",
    "delete": "DELETE FROM t WHERE c = 20",
    "inexact_constant": "SELECT * FROM t WHERE a = 1.5",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_explain(name: str, sess: SyncSession, rewrite: bool) -> None:
    for s in SCHEMA:
        sess.ex(s)
    sql = CASES[name]
    before = sess.rows("SELECT * FROM t ORDER BY a")
    got = "\n".join(r[0] for r in sess.rows("EXPLAIN " + sql))
    text = f"{sql}\n----\n{got}\n"
    path = DATA / f"{name}.txt"
    if rewrite or not path.exists():
        if not rewrite:
            pytest.fail(f"missing golden file {path}; run with --rewrite")
        path.write_text(text)
    assert text == path.read_text()
    assert sess.rows("SELECT * FROM t ORDER BY a") == before  # EXPLAIN wrote nothing
