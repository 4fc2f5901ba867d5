"""`$n` placeholders written without spaces (`$1,$2`, `$1+$2`) parse; text
inside quotes and dollar-quoted strings is left alone."""

from __future__ import annotations

import pytest

from crdb_py.sql.parse import parse_statement, space_parameters
from tests.sql.conftest import SyncSession


@pytest.mark.parametrize("sql,spaced", [
    ("SELECT $1,$2", "SELECT $1 ,$2 "),
    ("SELECT $1+$2", "SELECT $1 +$2 "),
    ("SELECT '$1,$2', $1", "SELECT '$1,$2', $1 "),
    ("SELECT 'it''s $1', $1", "SELECT 'it''s $1', $1 "),
    ("SELECT $$a $1,$2$$", "SELECT $$a $1,$2$$"),
    ("SELECT $t$x$1$t$, $1", "SELECT $t$x$1$t$, $1 "),
    ('SELECT "a$1", $2', 'SELECT "a$1", $2 '),
    ("SELECT 1", "SELECT 1"),
])
def test_space_parameters(sql: str, spaced: str) -> None:
    assert space_parameters(sql) == spaced
    parse_statement(sql)  # and it parses


def test_values_without_spaces(sess: SyncSession) -> None:
    sess.ex("CREATE TABLE t (k INT PRIMARY KEY, v STRING)")
    sess.ex("INSERT INTO t VALUES ($1,$2),($3,$4)", 1, "a", 2, "b")
    assert sess.rows("SELECT k+$1 FROM t WHERE v IN ($2,$3) ORDER BY k", 10, "a", "b") == [
        (11,), (12,)]
