"""The plan cache (crdb_py/sql/plancache.py): planned statements reused by text.

Each test pins one property a reused plan must keep: no recompilation on a
hit, parameters read per execution (never the first execution's values),
schema changes seen at once, one plan per concurrent execution, the same
errors as an uncached execution, and catalog reads batched.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from crdb_py.sql import errors as E
from crdb_py.sql import expr, planner
from crdb_py.sql.parse import StatementCache
from crdb_py.sql.plancache import PlanCache
from crdb_py.sql.session import Session
from tests.sql.fake_kv import FakeKV, FakeTxn


class Pair:
    """Two databases fed the same statements: one session reuses plans, the
    other plans every statement afresh (the reference)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.plans = PlanCache()
        self.cached = Session(FakeKV(), cache=StatementCache(), plans=self.plans)
        self.fresh = Session(FakeKV(), cache=StatementCache(), plans=PlanCache(0))

    def run(self, s: Session, sql: str, params: tuple[Any, ...]) -> Any:
        try:
            r = self.loop.run_until_complete(s.execute(sql, list(params)))
            return ("ok", r.rows, r.rowcount, [c for c, _ in r.columns])
        except E.SQLError as ex:
            return ("error", ex.sqlstate)

    def both(self, sql: str, *params: Any) -> Any:
        a = self.run(self.cached, sql, params)
        b = self.run(self.fresh, sql, params)
        assert a == b, f"{sql} {params}: cached {a} != fresh {b}"
        return a


@pytest.fixture
def pair() -> Iterator[Pair]:
    loop = asyncio.new_event_loop()
    try:
        p = Pair(loop)
        for sql in ("CREATE TABLE kv (k INT PRIMARY KEY, v TEXT, n INT)",
                    "CREATE INDEX kv_n ON kv (n)",
                    "CREATE TABLE other (id INT PRIMARY KEY, k INT, tag TEXT)"):
            p.both(sql)
        for i in range(40):
            p.both("INSERT INTO kv VALUES ($1, $2, $3)", i, f"v{i % 7}", i % 5)
            p.both("INSERT INTO other VALUES ($1, $2, $3)", i, (i * 3) % 40, f"t{i % 3}")
        yield p
    finally:
        loop.close()


SHAPES: list[tuple[str, list[tuple[Any, ...]]]] = [
    ("SELECT v FROM kv WHERE k = $1", [(1,), (7,), (39,), (99,), (None,)]),
    ("SELECT k FROM kv WHERE k IN ($1, $2) ORDER BY k", [(1, 2), (5, 5), (3, 100)]),
    ("SELECT k FROM kv WHERE k BETWEEN $1 AND $2 ORDER BY k", [(3, 6), (10, 12), (6, 3)]),
    ("SELECT k FROM kv WHERE k > $1 ORDER BY k LIMIT $2 OFFSET $3", [(30, 3, 1), (0, 2, 0)]),
    ("SELECT k, n FROM kv WHERE n = $1 ORDER BY k", [(0,), (3,), (4,)]),
    ("SELECT k FROM kv WHERE v LIKE $1 ORDER BY k", [("v1%",), ("%3",), ("nothing",)]),
    ("SELECT n, count(*) FROM kv GROUP BY n HAVING count(*) > $1 ORDER BY n", [(7,), (8,)]),
    ("SELECT kv.k, other.tag FROM kv JOIN other ON other.k = kv.k WHERE kv.n = $1 ORDER BY 1, 2",
     [(1,), (2,)]),
    ("SELECT k FROM kv WHERE k IN (SELECT k FROM other WHERE id < $1) ORDER BY k", [(3,), (9,)]),
    ("SELECT k, (SELECT count(*) FROM other o WHERE o.k = kv.k AND o.id > $1) FROM kv "
     "WHERE k < 6 ORDER BY k", [(0,), (20,)]),
    ("WITH s AS (SELECT k FROM kv WHERE n = $1) SELECT count(*) FROM s", [(1,), (2,)]),
    ("SELECT k FROM kv WHERE k = $1 UNION SELECT id FROM other WHERE id = $2 ORDER BY 1",
     [(1, 2), (3, 3)]),
    ("SELECT * FROM kv WHERE k = $1", [(4,), (5,)]),
    ("SELECT $1::INT + k FROM kv WHERE k = $2", [(10, 1), (20, 2)]),
    ("UPDATE kv SET v = $1 WHERE k = $2 RETURNING k, v", [("a", 1), ("b", 2), ("c", 1)]),
    ("INSERT INTO kv VALUES ($1, $2, $3) RETURNING k", [(100, "x", 1), (101, "y", 2),
                                                        (100, "dup", 3)]),
    ("INSERT INTO kv VALUES ($1, $2, 0) ON CONFLICT (k) DO UPDATE SET v = $2",
     [(1, "u1"), (200, "u2"), (1, "u3")]),
    ("UPSERT INTO kv VALUES ($1, $2, $3)", [(300, "p", 1), (300, "q", 2)]),
    ("DELETE FROM kv WHERE k = $1 RETURNING v", [(2,), (3,), (2,)]),
    ("SELECT k, v FROM kv WHERE k >= 100 ORDER BY k", [()]),
]


@pytest.mark.parametrize("sql,param_sets", SHAPES, ids=[s[:40] for s, _ in SHAPES])
def test_cached_plan_matches_fresh_plan(pair: Pair, sql: str,
                                        param_sets: list[tuple[Any, ...]]) -> None:
    before = pair.plans.hits
    outcomes = [pair.both(sql, *params)[0] for params in param_sets * 2]
    # After a success the plan is back in the cache, so the next execution
    # reuses it (a failed execution drops the plan it used).
    expect = sum(1 for a, b in zip(outcomes, outcomes[1:]) if a == "ok")
    assert pair.plans.hits - before >= expect > 0


def test_hit_compiles_nothing(pair: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    compiled: list[Any] = []
    analysed: list[Any] = []
    real_compile, real_const = expr.Compiler.compile, planner._is_const

    def counting_compile(self: expr.Compiler, e: Any) -> Any:
        compiled.append(e)
        return real_compile(self, e)

    def counting_const(e: Any) -> bool:
        analysed.append(e)
        return real_const(e)

    monkeypatch.setattr(expr.Compiler, "compile", counting_compile)
    monkeypatch.setattr(planner, "_is_const", counting_const)
    sql = "SELECT v, n + 1 FROM kv WHERE k = $1 AND n >= $2"
    assert pair.run(pair.cached, sql, (3, 0))[1] == [("v3", 4)]
    assert compiled and analysed  # the first execution plans
    compiled.clear()
    analysed.clear()
    for k in (4, 5, 6):
        assert pair.run(pair.cached, sql, (k, 0))[1] == [(f"v{k}", k % 5 + 1)]
    assert compiled == [] and analysed == []
    assert pair.run(pair.fresh, sql, (7, 0))[1] == [("v0", 3)]
    assert compiled and analysed  # without a plan cache every execution plans


def test_plans_are_not_shared_by_overlapping_executions() -> None:
    """Executions of one text interleave at every KV read; each must read
    its own parameters (a shared mutable plan would mix them)."""

    class YieldingTxn(FakeTxn):
        async def get(self, key: bytes) -> bytes | None:
            await asyncio.sleep(0)
            return await super().get(key)

    class YieldingKV(FakeKV):
        def txn(self, name: str = "") -> FakeTxn:
            return YieldingTxn(self)

    async def main() -> None:
        kv = YieldingKV()
        plans = PlanCache()
        setup = Session(kv, plans=plans)
        await setup.execute("CREATE TABLE t (k INT PRIMARY KEY, v INT)")
        for i in range(20):
            await setup.execute("INSERT INTO t VALUES ($1, $2)", [i, i * 10])
        sessions = [Session(kv, plans=plans) for _ in range(12)]
        for _ in range(3):
            res = await asyncio.gather(*(
                s.execute("SELECT v FROM t WHERE k = $1", [i]) for i, s in enumerate(sessions)))
            assert [r.rows for r in res] == [[(i * 10,)] for i in range(12)]
        assert plans.hits > 0

    asyncio.run(main())


def test_schema_changes_are_seen(pair: Pair) -> None:
    q = "SELECT * FROM kv WHERE k = $1"
    for _ in range(2):
        assert pair.both(q, 1)[3] == ["k", "v", "n"]
    pair.both("ALTER TABLE kv ADD COLUMN extra INT DEFAULT 7")
    assert pair.both(q, 1)[1:] == ([(1, "v1", 1, 7)], 1, ["k", "v", "n", "extra"])
    pair.both("ALTER TABLE kv DROP COLUMN v")
    assert pair.both(q, 1)[1:] == ([(1, 1, 7)], 1, ["k", "n", "extra"])
    # Same names, other layout: positions must be resolved again.
    pair.both("DROP TABLE kv")
    pair.both("CREATE TABLE kv (n INT, k INT PRIMARY KEY, v TEXT)")
    pair.both("INSERT INTO kv VALUES (5, 1, 'x')")
    assert pair.both(q, 1)[1:] == ([(5, 1, "x")], 1, ["n", "k", "v"])
    assert pair.both("SELECT v FROM kv WHERE k = $1", 1)[1] == [("x",)]


def test_a_new_index_is_used_by_a_cached_statement(pair: Pair) -> None:
    q = "SELECT id FROM other WHERE tag = $1 ORDER BY id"
    assert pair.both(q, "t1")[1] == [(i,) for i in range(40) if i % 3 == 1]
    pair.both("CREATE INDEX other_tag ON other (tag)")
    assert pair.both(q, "t2")[1] == [(i,) for i in range(40) if i % 3 == 2]
    plan = pair.loop.run_until_complete(pair.cached.execute(f"EXPLAIN {q}", ["t2"]))
    assert any("other@other_tag" in r[0] for r in plan.rows)


def test_same_text_in_another_database(pair: Pair) -> None:
    q = "SELECT * FROM t WHERE a = $1"
    pair.both("CREATE DATABASE d1")
    pair.both("CREATE DATABASE d2")
    pair.both("USE d1")
    pair.both("CREATE TABLE t (a INT PRIMARY KEY, b TEXT)")
    pair.both("INSERT INTO t VALUES (1, 'one')")
    assert pair.both(q, 1)[1] == [(1, "one")]
    pair.both("USE d2")
    pair.both("CREATE TABLE t (z BOOL, a INT PRIMARY KEY)")
    pair.both("INSERT INTO t VALUES (true, 1)")
    assert pair.both(q, 1)[1:] == ([(True, 1)], 1, ["z", "a"])


def test_parameter_errors_on_a_cached_plan(pair: Pair) -> None:
    q = "SELECT v FROM kv WHERE k = $1"
    pair.both(q, 1)
    assert pair.both(q) == ("error", "08P01")  # too few
    assert pair.both(q, object()) [0] == "error"  # unsupported type
    assert pair.both(q, "x")[0] == "error"  # wrong type for an INT column
    assert pair.both(q, 2)[1] == [("v2",)]


def test_reparsed_text_drops_its_plans() -> None:
    async def main() -> None:
        plans = PlanCache()
        s = Session(FakeKV(), cache=StatementCache(capacity=1), plans=plans)
        await s.execute("CREATE TABLE t (k INT PRIMARY KEY)")
        await s.execute("INSERT INTO t VALUES (1), (2)")
        for _ in range(3):  # each text evicts the other's parse
            assert (await s.execute("SELECT k FROM t WHERE k = $1", [1])).rows == [(1,)]
            assert (await s.execute("SELECT k FROM t WHERE k = $1 + 0", [2])).rows == [(2,)]
        assert plans.hits == 0  # a plan never outlives the AST it was built from

    asyncio.run(main())


def test_capacity_zero_turns_it_off(pair: Pair) -> None:
    before = pair.plans.hits
    for k in range(5):
        pair.both("SELECT v FROM kv WHERE k = $1", k)
    assert len(pair.fresh.plans) == 0 and pair.fresh.plans.hits == 0
    assert pair.plans.hits - before == 4


def test_lru_bound() -> None:
    async def main() -> None:
        plans = PlanCache(capacity=3)
        s = Session(FakeKV(), plans=plans)
        await s.execute("CREATE TABLE t (k INT PRIMARY KEY)")
        for i in range(10):
            await s.execute(f"SELECT k FROM t WHERE k = {i}")
        assert len(plans) == 3

    asyncio.run(main())


def test_catalog_reads_of_a_cached_plan_share_one_batch() -> None:
    """Uncached: database, descriptor and row are three round trips; a cached
    plan reads all three in one batch (the row key planned ahead from the
    parameters)."""
    trips: list[str] = []
    in_batch = [False]

    class CountingTxn(FakeTxn):
        async def get(self, key: bytes) -> bytes | None:
            if not in_batch[0]:
                trips.append("get")
            return await super().get(key)

        async def run(self, b: Any) -> list[Any]:
            trips.append("batch")
            in_batch[0] = True
            try:
                return await super().run(b)
            finally:
                in_batch[0] = False

    class CountingKV(FakeKV):
        def txn(self, name: str = "") -> FakeTxn:
            return CountingTxn(self)

    async def main() -> None:
        s = Session(CountingKV(), plans=PlanCache())
        await s.execute("CREATE TABLE t (k INT PRIMARY KEY, v INT)")
        await s.execute("INSERT INTO t VALUES (1, 10)")
        trips.clear()
        assert (await s.execute("SELECT v FROM t WHERE k = $1", [1])).rows == [(10,)]
        first = list(trips)
        trips.clear()
        assert (await s.execute("SELECT v FROM t WHERE k = $1", [1])).rows == [(10,)]
        assert first == ["get", "get", "get"]
        assert trips == ["batch"]
        trips.clear()
        assert (await s.execute("SELECT v FROM t WHERE k = $1", [2])).rows == []
        assert trips == ["batch"]  # a missing row is known from the batch too
        # A schema change makes the guess stale: still right, one extra read.
        await s.execute("ALTER TABLE t ADD COLUMN w INT DEFAULT 5")
        trips.clear()
        assert (await s.execute("SELECT v FROM t WHERE k = $1", [1])).rows == [(10,)]
        assert trips[0] == "batch"

    asyncio.run(main())
