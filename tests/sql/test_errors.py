"""Bad input gets a clear error with its SQLSTATE and never changes data."""

from __future__ import annotations

import pytest

from crdb_py.util.errors import CrdbError
from tests.sql.conftest import SyncSession

SETUP = [
    "CREATE TABLE t (k INT PRIMARY KEY, s VARCHAR(5) NOT NULL, i2 SMALLINT, d DATE, "
    "u UUID, b BOOL, x INT UNIQUE, CHECK (k >= 0))",
    "INSERT INTO t VALUES (1, 'a', 1, '2020-01-01', NULL, true, 1)",
]

CASES = [
    ("", None),
    ("garbage !!! (", "42601"),
    ("SELECT * FROM", "42601"),
    ("SELECT 'unterminated", "42601"),
    ("SELECT 1; SELECT 2", "42601"),
    ("SELECT * FROM nope", "42P01"),
    ("SELECT nope FROM t", "42703"),
    ("SELECT t2.k FROM t", "42703"),
    ("INSERT INTO nope VALUES (1)", "42P01"),
    ("INSERT INTO t (k) VALUES (2)", "23502"),
    ("INSERT INTO t VALUES (1, 'b', 1, NULL, NULL, NULL, 2)", "23505"),
    ("INSERT INTO t VALUES (2, 'b', 1, NULL, NULL, NULL, 1)", "23505"),
    ("INSERT INTO t VALUES (-1, 'b', 1, NULL, NULL, NULL, 3)", "23514"),
    ("INSERT INTO t VALUES (2, 'toolong', 1, NULL, NULL, NULL, 3)", "22001"),
    ("INSERT INTO t VALUES (2, 'b', 99999, NULL, NULL, NULL, 3)", "22003"),
    ("INSERT INTO t VALUES (99999999999999999999999, 'b', 1, NULL, NULL, NULL, 3)", "22003"),
    ("INSERT INTO t VALUES (2, 'b', 1, '2020-13-45', NULL, NULL, 3)", "22P02"),
    ("INSERT INTO t VALUES (2, 'b', 1, NULL, 'not-a-uuid', NULL, 3)", "22P02"),
    ("INSERT INTO t VALUES (2, 'b', 1, NULL, NULL, 'maybe', 3)", "22P02"),
    ("INSERT INTO t VALUES (2, 'b', 1, NULL, NULL, 5, 3)", "42804"),
    ("INSERT INTO t VALUES (2, 1, 1, NULL, NULL, NULL, 3)", "42804"),
    ("INSERT INTO t (k, k) VALUES (2, 2)", "42701"),
    ("UPDATE t SET s = NULL", "23502"),
    ("UPDATE t SET k = -5", "23514"),
    ("SELECT k / 0 FROM t", "22012"),
    ("SELECT k FROM t WHERE s = 1", "42883"),
    ("SELECT k FROM t WHERE k", "42804"),
    ("SELECT sum(k) FROM t WHERE sum(k) > 0", "42803"),
    ("SELECT frobnicate(k) FROM t", "42883"),
    ("SELECT (SELECT k FROM t UNION ALL SELECT k FROM t)", "21000"),
    ("SELECT k FROM t ORDER BY 9", "42P10"),
    ("SELECT $1", "08P01"),
    ("CREATE TABLE t (a INT)", "42P07"),
    ("CREATE TABLE n (a INT, a INT)", "42701"),
    ("CREATE TABLE n (a GEOMETRY)", "42704"),
    ("CREATE TABLE n (rowid INT)", "42701"),
    ("DROP TABLE nope", "42P01"),
    ("DROP DATABASE nope", "3D000"),
    ("DROP DATABASE defaultdb", "55006"),
    ("USE nope", "3D000"),
    ("COMMIT", None),
    ("ROLLBACK TO SAVEPOINT x", "25P01"),
    ("SELECT * FROM t FULL JOIN t AS u USING (k)", "0A000"),
    ("GRANT ALL ON t TO bob", "0A000"),
]


@pytest.mark.parametrize("sql,code", CASES, ids=[f"{i}" for i in range(len(CASES))])
def test_error(sess: SyncSession, sql: str, code: str | None) -> None:
    for s in SETUP:
        sess.ex(s)
    before = sess.rows("SELECT * FROM t ORDER BY k")
    if code is None:
        sess.ex(sql)
    else:
        with pytest.raises(CrdbError) as ei:
            sess.ex(sql)
        assert ei.value.sqlstate == code, f"{sql}: {ei.value}"
        assert str(ei.value)
    assert sess.rows("SELECT * FROM t ORDER BY k") == before


def test_placeholders(sess: SyncSession) -> None:
    sess.ex(SETUP[0])
    sess.ex("INSERT INTO t VALUES ($1, $2, 1, NULL, NULL, $3, $1)", 5, "p", False)
    sess.ex("INSERT INTO t (k, s) VALUES (%s, %s), (%s, %s)", 6, "q", 7, "r")
    assert sess.rows("SELECT k, s FROM t WHERE k >= %s ORDER BY k", 6) == [(6, "q"), (7, "r")]
    assert sess.rows("SELECT b, x FROM t WHERE k = $1 AND s = $2", 5, "p") == [(False, 5)]
    assert sess.rows("SELECT k FROM t WHERE s IN ($1, $2) ORDER BY k", "q", "p") == [(5,), (6,)]


def test_statement_cache_reuses_parses(sess: SyncSession) -> None:
    cache = sess.s.cache
    sess.ex(SETUP[0])
    h0 = cache.hits
    for i in range(5):
        sess.ex("INSERT INTO t (k, s) VALUES ($1, 'c')", 100 + i)
    assert cache.hits - h0 >= 4
    assert sess.rows("SELECT count(*) FROM t") == [(5,)]


TOKENS = ["SELECT", "INSERT", "INTO", "t", "VALUES", "(", ")", ",", "k", "s", "*", "FROM",
          "WHERE", "=", "1", "'x'", "NULL", "AND", "OR", "NOT", "IN", "GROUP", "BY", "ORDER",
          "LIMIT", "-", "+", "/", "%", "99999999999999999999999", "1.5e308", "true", "UPDATE",
          "SET", "DELETE", "CREATE", "TABLE", "INDEX", "ON", "JOIN", "LEFT", "::",
          "INT", "DATE", "UUID", "BETWEEN", "LIKE", "count(*)", "sum(k)", "$1", "%s", ";",
          "CAST", "AS", "CASE", "WHEN", "THEN", "END", "EXISTS", "DISTINCT", "HAVING", "\x00"]


def test_garbage_never_leaks_python_errors(sess: SyncSession) -> None:
    """Random token soup: every outcome is success or a CrdbError with a
    SQLSTATE; the table's rows are never corrupted (they still decode)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    for s in SETUP:
        sess.ex(s)

    @settings(max_examples=150, deadline=None, database=None)
    @given(st.lists(st.sampled_from(TOKENS), min_size=1, max_size=12))
    def run(tokens: list[str]) -> None:
        sql = " ".join(tokens)
        try:
            sess.ex(sql, 1)
        except CrdbError as e:
            assert len(e.sqlstate) == 5 and str(e), sql
        sess.rows("SELECT * FROM t")  # still decodes

    run()
