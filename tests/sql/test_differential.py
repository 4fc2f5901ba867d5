"""Differential testing against sqlite3: random schemas, rows and queries
must give the same results (as multisets, or in order under a total ORDER
BY). The generated SQL stays inside the common subset: no `/` (sqlite
divides integers), no LIKE (sqlite's is case-insensitive), no AVG (float vs
DECIMAL), text compared only with text.

Each hypothesis example builds two tables (t optionally with a secondary
index, so the planner's spans are exercised), inserts rows, then runs
QUERIES_PER_EXAMPLE queries: EXAMPLES x QUERIES_PER_EXAMPLE cases per run.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crdb_py.sql.session import Session
from tests.sql.fake_kv import FakeKV

EXAMPLES = 300
QUERIES_PER_EXAMPLE = 5

ints = st.none() | st.integers(-5, 5)
texts = st.none() | st.sampled_from(["", "a", "b", "ab", "ba", "B", "abc"])
COLS = {"a": "INT", "b": "TEXT", "c": "INT"}


@st.composite
def int_pred(draw: st.DrawFn) -> str:
    col = draw(st.sampled_from(["a", "c", "id"]))
    kind = draw(st.sampled_from(["cmp", "in", "between", "null", "arith"]))
    v = draw(st.integers(-6, 6))
    if kind == "cmp":
        return f"{col} {draw(st.sampled_from(['=', '<', '<=', '>', '>=', '<>']))} {v}"
    if kind == "in":
        vals = draw(st.lists(st.integers(-6, 6) | st.just(None), min_size=1, max_size=4))
        neg = draw(st.sampled_from(["", "NOT "]))
        return f"{col} {neg}IN ({', '.join('NULL' if x is None else str(x) for x in vals)})"
    if kind == "between":
        return f"{col} BETWEEN {v} AND {v + draw(st.integers(0, 5))}"
    if kind == "null":
        return f"{col} IS {draw(st.sampled_from(['', 'NOT ']))}NULL"
    return f"{col} + {draw(st.sampled_from(['a', 'c', '1']))} {draw(st.sampled_from(['=', '>']))} {v}"


@st.composite
def text_pred(draw: st.DrawFn) -> str:
    op = draw(st.sampled_from(["=", "<", ">=", "<>"]))
    return f"b {op} '{draw(st.sampled_from(['', 'a', 'ab', 'b', 'B']))}'"


@st.composite
def pred(draw: st.DrawFn, depth: int = 0) -> str:
    base = draw(int_pred() | text_pred())
    if depth < 2 and draw(st.booleans()):
        conn = draw(st.sampled_from(["AND", "OR"]))
        other = draw(pred(depth + 1))
        base = f"({base} {conn} {other})"
    if draw(st.integers(0, 5)) == 0:
        base = f"NOT ({base})"
    return base


@st.composite
def join_query(draw: st.DrawFn) -> tuple[str, bool]:
    kind = draw(st.sampled_from(["JOIN", "LEFT JOIN", "JOIN", "LEFT JOIN", ", "]))
    lcol, rcol = draw(st.sampled_from(["a", "c", "id"])), draw(st.sampled_from(["a", "c", "id"]))
    extra = draw(st.sampled_from(["", f" AND t.c < {draw(st.integers(-3, 3))}",
                                  f" AND u.b >= '{draw(st.sampled_from(['a', 'b']))}'"]))
    where = ""
    if draw(st.booleans()):
        where = draw(st.sampled_from([
            f" WHERE t.a > {draw(st.integers(-4, 4))}", " WHERE u.id IS NULL",
            f" WHERE u.c = {draw(st.integers(-4, 4))} OR t.b = 'a'",
            " WHERE t.id IN (SELECT c FROM u WHERE c IS NOT NULL)",
            " WHERE t.a NOT IN (SELECT a FROM u WHERE a > 0)"]))
    if kind == ", ":
        on = f" WHERE t.{lcol} = u.{rcol}"
        where = where.replace(" WHERE ", " AND ", 1)
        return f"SELECT t.id, u.id, t.b, u.a FROM t, u{on}{extra}{where}", False
    return f"SELECT t.id, u.id, t.b, u.a FROM t {kind} u ON t.{lcol} = u.{rcol}{extra}{where}", False


@st.composite
def query(draw: st.DrawFn) -> tuple[str, bool]:
    """(sql, ordered)."""
    if draw(st.integers(0, 4)) == 0:
        return draw(join_query())
    where = f" WHERE {draw(pred())}" if draw(st.integers(0, 4)) else ""
    shape = draw(st.sampled_from(["rows", "rows", "group", "agg", "distinct"]))
    if shape == "rows":
        cols = draw(st.lists(st.sampled_from(["a", "b", "c", "a + c", "coalesce(a, c)"]),
                             min_size=1, max_size=3))
        if draw(st.booleans()):
            d = draw(st.sampled_from(["", " DESC"]))
            lim = draw(st.sampled_from(["", " LIMIT 3", " LIMIT 2 OFFSET 1"]))
            ob = draw(st.sampled_from(["a", "b", "c"]))
            return f"SELECT {', '.join(cols)}, id FROM t{where} ORDER BY {ob}{d}, id{lim}", True
        return f"SELECT {', '.join(cols)} FROM t{where}", False
    if shape == "group":
        g = draw(st.sampled_from(["a", "b", "c"]))
        agg = draw(st.sampled_from(["count(*)", "count(a)", "sum(c)", "min(b)", "max(a)",
                                    "count(DISTINCT c)"]))
        having = f" HAVING count(*) > {draw(st.integers(0, 2))}" if draw(st.booleans()) else ""
        return f"SELECT {g}, {agg} FROM t{where} GROUP BY {g}{having}", False
    if shape == "agg":
        return f"SELECT count(*), sum(a), min(c), max(b), count(b) FROM t{where}", False
    col = draw(st.sampled_from(["a", "b", "c"]))
    return f"SELECT DISTINCT {col} FROM t{where}", False


rows_st = st.lists(st.tuples(ints, texts, ints), max_size=25)
index_st = st.sampled_from([None, "a", "b", "c", "a, c", "b, a"])


def _norm(v: Any) -> Any:
    if isinstance(v, bool):
        return int(v)
    if v is not None and not isinstance(v, int | str):
        return int(v) if int(v) == v else float(v)
    return v


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(rows=rows_st, urows=st.lists(st.tuples(ints, texts, ints), max_size=8),
       index=index_st, queries=st.lists(query(), min_size=QUERIES_PER_EXAMPLE,
                                        max_size=QUERIES_PER_EXAMPLE))
def test_matches_sqlite(rows: list[tuple[Any, Any, Any]], urows: list[tuple[Any, Any, Any]],
                        index: str | None, queries: list[tuple[str, bool]]) -> None:
    lite = sqlite3.connect(":memory:")
    loop = asyncio.new_event_loop()
    s = Session(FakeKV())

    def both(sql: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        ours = loop.run_until_complete(s.execute(sql)).rows
        theirs = lite.execute(sql).fetchall()
        return ours, theirs

    try:
        ddl = "CREATE TABLE t (id INT PRIMARY KEY, a INT, b TEXT, c INT)"
        both(ddl)
        if index:
            # a unique index could reject the rows: only non-unique on generated data
            both(f"CREATE INDEX t_idx ON t ({index})")
        both("CREATE TABLE u (id INT PRIMARY KEY, a INT, b TEXT, c INT)")
        for table, rs in (("t", rows), ("u", urows)):
            if rs:
                vals = ", ".join("(" + ", ".join([str(i)] + [_lit(v) for v in r]) + ")"
                                 for i, r in enumerate(rs))
                both(f"INSERT INTO {table} VALUES {vals}")
        for sql, ordered in queries:
            ours, theirs = both(sql)
            ours_n = [tuple(_norm(v) for v in r) for r in ours]
            theirs_n = [tuple(_norm(v) for v in r) for r in theirs]
            if ordered:
                assert ours_n == theirs_n, sql
            else:
                assert Counter(ours_n) == Counter(theirs_n), sql
    finally:
        loop.close()
        lite.close()


def _lit(v: Any) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    return str(v)


def test_checker_catches_a_wrong_result() -> None:
    """The comparison itself can fail: a broken variant (an off-by-one
    filter) is caught."""
    from crdb_py.sql import expr

    lite = sqlite3.connect(":memory:")
    loop = asyncio.new_event_loop()
    s = Session(FakeKV())
    orig = expr._CMP[expr.exp.GT]
    expr._CMP[expr.exp.GT] = lambda c: c >= 0  # broken: > behaves like >=
    try:
        for sql in ["CREATE TABLE t (id INT PRIMARY KEY, a INT)",
                    "INSERT INTO t VALUES (1, 1), (2, 2)"]:
            loop.run_until_complete(s.execute(sql))
            lite.execute(sql)
        sql = "SELECT id FROM t WHERE a > 1"
        ours = loop.run_until_complete(s.execute(sql)).rows
        assert Counter(ours) != Counter(lite.execute(sql).fetchall())
    finally:
        expr._CMP[expr.exp.GT] = orig
        loop.close()
