"""Reused plans and the SQL-breadth features: every value that changes per
execution (parameters, the current database, random(), window results,
virtual tables, renamed schema objects) is read at run time, never baked
into a cached plan.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from crdb_py.sql.session import Session
from tests.sql.fake_kv import FakeKV
from tests.sql.test_plan_cache import Pair


@pytest.fixture
def pair() -> Iterator[Pair]:
    loop = asyncio.new_event_loop()
    try:
        p = Pair(loop)
        p.both("CREATE TABLE m (k INT PRIMARY KEY, g TEXT, v INT)")
        for i in range(12):
            p.both("INSERT INTO m VALUES ($1, $2, $3)", i, f"g{i % 3}", (i * 7) % 5)
        yield p
    finally:
        loop.close()


@pytest.mark.parametrize("sql, params_list", [
    ("SELECT k, row_number() OVER (PARTITION BY g ORDER BY v, k), sum(v) OVER (ORDER BY k) "
     "FROM m WHERE k < $1 ORDER BY k", [(3,), (12,), (7,)]),
    ("SELECT g, string_agg(k::STRING, ',' ORDER BY k), rank() OVER (ORDER BY sum(v)) "
     "FROM m WHERE v >= $1 GROUP BY g ORDER BY g", [(0,), (3,), (5,)]),
    ("SELECT lag(k, $1, -1) OVER (ORDER BY k) FROM m ORDER BY k", [(1,), (3,)]),
    ("SELECT * FROM generate_series($1, $2) AS s(n)", [(1, 3), (5, 9), (2, 1)]),
    ("SELECT $1::TIMESTAMP + INTERVAL '1 day', date_trunc('month', $1::TIMESTAMP)",
     [("2024-01-31 10:00:00",), ("2023-06-15 00:00:00",)]),
    ("SELECT lpad($1, 5, '*'), split_part($1, ',', 2), extract(year FROM $2::DATE)",
     [("a,b", "2020-01-01"), ("xyz,q,r", "1999-12-31")]),
])
def test_cached_plan_matches_fresh_plan(pair: Pair, sql: str,
                                        params_list: list[tuple[object, ...]]) -> None:
    results = [pair.both(sql, *p) for p in params_list]
    assert len({repr(r) for r in results}) == len(results), "parameters changed nothing"


def test_current_database_is_read_per_execution(pair: Pair) -> None:
    pair.both("CREATE DATABASE other")
    assert pair.both("SELECT current_database()")[1] == [("defaultdb",)]
    pair.both("USE other")
    assert pair.both("SELECT current_database()")[1] == [("other",)]


def test_random_is_not_folded_into_the_plan() -> None:
    loop = asyncio.new_event_loop()
    try:
        s = Session(FakeKV())
        seen = {loop.run_until_complete(s.execute("SELECT random()")).rows[0][0]
                for _ in range(5)}
        assert len(seen) == 5
    finally:
        loop.close()


def test_information_schema_sees_schema_changes(pair: Pair) -> None:
    q = "SELECT table_name FROM information_schema.tables ORDER BY 1"
    assert pair.both(q)[1] == [("m",)]
    pair.both("CREATE TABLE n (a INT PRIMARY KEY)")
    assert pair.both(q)[1] == [("m",), ("n",)]
    pair.both("ALTER TABLE n RENAME TO o")
    assert pair.both(q)[1] == [("m",), ("o",)]


def test_renames_are_seen_by_cached_statements(pair: Pair) -> None:
    q = "SELECT v FROM m WHERE k = $1"
    assert pair.both(q, 4)[1] == [(3,)]
    pair.both("ALTER TABLE m RENAME COLUMN v TO w")
    assert pair.both(q, 4) == ("error", "42703")
    assert pair.both("SELECT w FROM m WHERE k = $1", 4)[1] == [(3,)]
    pair.both("ALTER TABLE m RENAME TO mm")
    assert pair.both(q, 4) == ("error", "42P01")
    assert pair.both("SELECT w FROM mm WHERE k = $1", 4)[1] == [(3,)]
