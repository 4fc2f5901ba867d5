"""RIGHT / FULL joins and JOIN ... USING, checked against sqlite3 (>= 3.39)."""

from __future__ import annotations

import sqlite3

import pytest

from tests.sql.conftest import SyncSession

SETUP = [
    "CREATE TABLE a (id INT PRIMARY KEY, x INT, y INT)",
    "CREATE TABLE b (id INT PRIMARY KEY, x INT, z INT)",
    "INSERT INTO a VALUES (1, 1, 10), (2, 2, 20), (3, NULL, 30), (4, 4, 40), (6, 2, 60)",
    "INSERT INTO b VALUES (1, 1, 100), (2, 2, 200), (3, 3, 300), (5, NULL, 500)",
]
QUERIES = [
    "SELECT a.id, b.id FROM a RIGHT JOIN b ON a.x = b.x",
    "SELECT a.id, b.id FROM a FULL JOIN b ON a.x = b.x",
    "SELECT a.id, b.id FROM a FULL OUTER JOIN b ON a.x = b.x AND b.z > 150",
    "SELECT a.id, b.id FROM a RIGHT JOIN b ON a.x = b.x WHERE a.id IS NULL",
    "SELECT a.id, b.id FROM a RIGHT JOIN b ON a.x < b.x",
    "SELECT a.id, b.id FROM a FULL JOIN b ON a.x = b.x WHERE b.id > 1 OR a.id = 4",
    "SELECT a.id FROM a RIGHT JOIN b ON a.id = b.id WHERE a.id = 1",
    "SELECT a.id, b.id FROM a JOIN b ON a.id = b.id RIGHT JOIN a AS c ON c.id = b.id WHERE a.id IS NULL",
    "SELECT * FROM a JOIN b USING (x)",
    "SELECT x, a.id, b.id FROM a LEFT JOIN b USING (x)",
    "SELECT x, a.id, b.id FROM a RIGHT JOIN b USING (x)",
    "SELECT * FROM a JOIN b USING (id, x)",
    "SELECT count(*), sum(z) FROM a FULL JOIN b ON a.id = b.id",
]


@pytest.fixture
def both(sess: SyncSession) -> tuple[SyncSession, sqlite3.Connection]:
    lite = sqlite3.connect(":memory:")
    for s in SETUP:
        sess.ex(s)
        lite.execute(s)
    return sess, lite


@pytest.mark.skipif(sqlite3.sqlite_version_info < (3, 39), reason="sqlite3 without RIGHT/FULL JOIN")
@pytest.mark.parametrize("q", QUERIES)
def test_join_matches_sqlite(both: tuple[SyncSession, sqlite3.Connection], q: str) -> None:
    sess, lite = both
    got = sorted(sess.rows(q), key=repr)
    want = sorted(lite.execute(q).fetchall(), key=repr)
    assert got == want, q


def test_using_hides_one_copy(both: tuple[SyncSession, sqlite3.Connection]) -> None:
    sess, _ = both
    assert [c for c, _ in sess.ex("SELECT * FROM a JOIN b USING (x)").columns] == \
        ["id", "x", "y", "id", "z"]
    assert sess.rows("SELECT x FROM a JOIN b USING (x) ORDER BY x") == [(1,), (2,), (2,)]
    with pytest.raises(Exception) as ei:
        sess.rows("SELECT id FROM a JOIN b USING (x)")
    assert getattr(ei.value, "sqlstate", "") == "42702"
