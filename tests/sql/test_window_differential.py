"""Differential tests against sqlite3 for window functions and the scalar
builtins the two share.

Random rows (hypothesis) in one table `w (id, g, v, x)`; each example runs
a few generated window queries and scalar expressions on both and compares
the results keyed by `id` (as multisets). Orders are total (`..., id`)
whenever the function depends on the position inside a peer group
(row_number, lag/lead, first/last_value, ntile, ROWS frames); peer-only
functions (rank, aggregates over the default RANGE frame) may use partial
orders. Both sort NULLs first ascending. Numbers are compared as floats
rounded to 9 places (AVG is DECIMAL here, REAL in sqlite).
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

EXAMPLES = 120
QUERIES_PER_EXAMPLE = 4

TOTAL_ORDERS = ["ORDER BY id", "ORDER BY v, id", "ORDER BY v DESC, id", "ORDER BY g DESC, x, id"]
PARTIAL_ORDERS = ["ORDER BY v", "ORDER BY g, x DESC", "ORDER BY x DESC"]
PARTITIONS = ["", "PARTITION BY g", "PARTITION BY x"]
ROWS_FRAMES = ["ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING", "ROWS UNBOUNDED PRECEDING",
               "ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING",
               "ROWS BETWEEN 2 PRECEDING AND 1 PRECEDING",
               "ROWS BETWEEN 1 FOLLOWING AND 3 FOLLOWING"]
RANGE_FRAMES = ["", "RANGE BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING",
                "RANGE BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING",
                "RANGE UNBOUNDED PRECEDING"]
AGGS = ["sum(v)", "count(v)", "count(*)", "min(v)", "max(v)", "avg(v)", "max(g)"]
PEER_ONLY = ["rank()", "dense_rank()", "percent_rank()", "cume_dist()"]
POSITIONAL = ["row_number()", "lag(v)", "lead(v, 2)", "lag(x, 1, -100)", "lead(g, 1, 'none')",
              "first_value(v)", "last_value(x)", "ntile(3)", "nth_value(v, 2)"]


@st.composite
def window_query(draw: st.DrawFn) -> str:
    part = draw(st.sampled_from(PARTITIONS))
    kind = draw(st.sampled_from(["agg", "peer", "pos", "agg_rows"]))
    if kind == "agg":
        f = draw(st.sampled_from(AGGS))
        order = draw(st.sampled_from(["", *PARTIAL_ORDERS, *TOTAL_ORDERS]))
        frame = draw(st.sampled_from(RANGE_FRAMES)) if order else ""
    elif kind == "peer":
        f = draw(st.sampled_from(PEER_ONLY))
        order = draw(st.sampled_from([*PARTIAL_ORDERS, *TOTAL_ORDERS]))
        frame = ""
    else:
        f = draw(st.sampled_from(AGGS if kind == "agg_rows" else POSITIONAL))
        order = draw(st.sampled_from(TOTAL_ORDERS))
        frame = draw(st.sampled_from(ROWS_FRAMES)) if kind == "agg_rows" else draw(
            st.sampled_from(["", "ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING"]))
    spec = " ".join(p for p in (part, order, frame) if p)
    where = draw(st.sampled_from(["", " WHERE v IS NOT NULL", " WHERE id % 3 <> 0"]))
    return f"SELECT id, {f} OVER ({spec}) FROM w{where}"


SCALARS = ["abs(v)", "sign(v)", "length(g)", "upper(g)", "lower(g)", "replace(g, 'a', 'xy')",
           "substr(g, 2)", "substr(g, 1, 1)", "trim(g)", "ltrim(g, 'a')", "rtrim(g, 'b')",
           "coalesce(v, x, -1)", "nullif(v, x)", "mod(v, 3)", "v % 4", "power(v, 2)",
           "v IS NOT DISTINCT FROM x", "CASE WHEN v > x THEN g ELSE 'n' END"]


@st.composite
def scalar_query(draw: st.DrawFn) -> str:
    exprs = draw(st.lists(st.sampled_from(SCALARS), min_size=1, max_size=3))
    return f"SELECT id, {', '.join(exprs)} FROM w"


@st.composite
def grouped_query(draw: st.DrawFn) -> str:
    f = draw(st.sampled_from(["rank() OVER (ORDER BY sum(v))", "sum(count(*)) OVER ()",
                              "dense_rank() OVER (ORDER BY max(x) DESC)",
                              "count(*) OVER (ORDER BY min(v) ROWS UNBOUNDED PRECEDING)"]))
    if "ROWS" in f:  # a total order, so the frame is deterministic
        f = f.replace("ORDER BY min(v)", "ORDER BY min(v), g")
    return f"SELECT g AS id, count(*), {f} FROM w GROUP BY g"


rows_st = st.lists(st.tuples(st.sampled_from(["a", "b", "ab", None]),
                             st.none() | st.integers(-4, 4),
                             st.none() | st.integers(-3, 3)), max_size=14)


def _norm(v: Any) -> Any:
    if isinstance(v, bool):
        return int(v)
    if v is not None and not isinstance(v, int | str):
        return round(float(v), 9)
    return v


def _lit(v: Any) -> str:
    return "NULL" if v is None else (f"'{v}'" if isinstance(v, str) else str(v))


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(rows=rows_st, queries=st.lists(window_query() | scalar_query() | grouped_query(),
                                      min_size=QUERIES_PER_EXAMPLE,
                                      max_size=QUERIES_PER_EXAMPLE))
def test_windows_and_builtins_match_sqlite(rows: list[tuple[Any, Any, Any]],
                                           queries: list[str]) -> None:
    check(rows, queries)


def check(rows: list[tuple[Any, Any, Any]], queries: list[str]) -> None:
    lite = sqlite3.connect(":memory:")
    loop = asyncio.new_event_loop()
    s = Session(FakeKV())

    def both(sql: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        ours = loop.run_until_complete(s.execute(sql)).rows
        return ours, lite.execute(sql).fetchall()

    try:
        both("CREATE TABLE w (id INT PRIMARY KEY, g TEXT, v INT, x INT)")
        if rows:
            both("INSERT INTO w VALUES " + ", ".join(
                "(" + ", ".join([str(i)] + [_lit(c) for c in r]) + ")"
                for i, r in enumerate(rows)))
        for sql in queries:
            ours, theirs = both(sql)
            a = Counter(tuple(_norm(v) for v in r) for r in ours)
            b = Counter(tuple(_norm(v) for v in r) for r in theirs)
            assert a == b, sql
    finally:
        loop.close()
        lite.close()


def test_checker_catches_a_wrong_window() -> None:
    """The comparison can fail: rank() computed as row_number() is caught."""
    from crdb_py.sql import exec_window

    rows = [("a", 1, 0), ("a", 1, 0), ("b", 2, 0)]
    orig = exec_window._evaluator

    def broken(f: Any, *a: Any) -> Any:
        if isinstance(f, exec_window.exp.Rank):
            f = exec_window.exp.RowNumber()
        return orig(f, *a)

    exec_window._evaluator = broken  # type: ignore[assignment]
    try:
        try:
            check(rows, ["SELECT id, rank() OVER (ORDER BY v) FROM w"])
        except AssertionError:
            return
        raise AssertionError("a wrong rank() went unnoticed")
    finally:
        exec_window._evaluator = orig  # type: ignore[assignment]


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(rows=st.lists(st.tuples(st.sampled_from(["a", "b", None]), st.none() | st.integers(-50, 50),
                               st.none() | st.integers(-3, 3)), min_size=40, max_size=120),
       queries=st.lists(window_query(), min_size=3, max_size=3))
def test_long_partitions_match_sqlite(rows: list[tuple[Any, Any, Any]], queries: list[str]) -> None:
    """Partitions over 32 rows answer sliding frames from a segment tree."""
    check(rows, queries)
