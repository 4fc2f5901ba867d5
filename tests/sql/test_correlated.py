"""Correlated subqueries (EXISTS / IN / scalar, in WHERE and the select list),
checked against sqlite3."""

from __future__ import annotations

import sqlite3

import pytest

from tests.sql.conftest import SyncSession

SETUP = [
    "CREATE TABLE a (id INT PRIMARY KEY, x INT, y INT)",
    "CREATE TABLE b (id INT PRIMARY KEY, x INT, z INT)",
    "INSERT INTO a VALUES (1, 1, 10), (2, 2, 20), (3, NULL, 30), (4, 4, 40), (6, 2, 60)",
    "INSERT INTO b VALUES (1, 1, 100), (2, 2, 200), (3, 3, 300), (5, NULL, 500), (7, 2, 700)",
]
QUERIES = [
    "SELECT id FROM a WHERE EXISTS (SELECT 1 FROM b WHERE b.x = a.x)",
    "SELECT id FROM a WHERE NOT EXISTS (SELECT 1 FROM b WHERE b.x = a.x)",
    "SELECT id, (SELECT max(z) FROM b WHERE b.x = a.x) FROM a",
    "SELECT id FROM a WHERE y * 10 < (SELECT sum(z) FROM b WHERE b.x = a.x)",
    "SELECT id FROM a WHERE x IN (SELECT x FROM b WHERE b.z > a.y * 10)",
    "SELECT a.id, (SELECT count(*) FROM b WHERE b.id > a.id) FROM a WHERE a.id > 1",
    "SELECT id FROM a WHERE EXISTS (SELECT 1 FROM b WHERE b.x = a.x AND "
    "EXISTS (SELECT 1 FROM a AS a2 WHERE a2.id = b.id AND a2.y < a.y * 10))",
    "SELECT id FROM a AS o WHERE y = (SELECT max(y) FROM a WHERE a.x = o.x)",
]


@pytest.fixture
def both(sess: SyncSession) -> tuple[SyncSession, sqlite3.Connection]:
    lite = sqlite3.connect(":memory:")
    for s in SETUP:
        sess.ex(s)
        lite.execute(s)
    return sess, lite


@pytest.mark.parametrize("q", QUERIES)
def test_correlated_matches_sqlite(both: tuple[SyncSession, sqlite3.Connection], q: str) -> None:
    sess, lite = both
    assert sorted(sess.rows(q), key=repr) == sorted(lite.execute(q).fetchall(), key=repr), q


def test_correlated_errors(both: tuple[SyncSession, sqlite3.Connection]) -> None:
    sess, _ = both
    for q, code in [("SELECT id FROM a WHERE EXISTS (SELECT 1 FROM b WHERE b.x = nope)", "42703"),
                    ("UPDATE a SET y = 0 WHERE EXISTS (SELECT 1 FROM b WHERE b.x = a.x)", "0A000"),
                    ("SELECT id, (SELECT z FROM b WHERE b.x = a.x) FROM a", "21000")]:
        with pytest.raises(Exception) as ei:
            sess.rows(q)
        assert getattr(ei.value, "sqlstate", "") == code, q
    assert sess.rows("SELECT y FROM a ORDER BY id") == [(10,), (20,), (30,), (40,), (60,)]
