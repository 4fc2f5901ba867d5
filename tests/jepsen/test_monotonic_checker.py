"""The monotonic checker: duplicate values, order against commit timestamps,
equal timestamps, bad increments and garbage reads are flagged; a correct
serial counter (with failures and ambiguity) passes; the broken variant misses
a timestamp inversion."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crdb_py.jepsen.checkers import monotonic
from crdb_py.jepsen.history import History


def inc(h: History, p: int, read: int, insert: int, ts: Any, outcome: str = "ok") -> None:
    h.invoke(p, "inc")
    if outcome == "ok":
        h.ok(p, {"read": read, "insert": insert, "ts": ts})
    else:
        getattr(h, outcome)(p)


def test_valid_history() -> None:
    h = History()
    inc(h, 0, 0, 1, (100, 0))
    inc(h, 1, 1, 2, (100, 1))
    inc(h, 2, 2, 3, (105, 0), "info")   # ambiguous: its 3 may have committed
    inc(h, 0, 2, 3, (104, 0), "fail")
    h.invoke(3, "inc")
    h.ok(3, (3, 4, (110, 0)))          # the tuple form; read the ambiguous 3
    res = monotonic.check(h)
    assert res.valid, res.explain()
    assert res.counts == {"ok": 3, "fail": 1, "info": 1}


CASES: dict[str, list[tuple[int, int, Any]]] = {
    "duplicate-value": [(0, 1, 5), (0, 1, 7)],
    "out-of-order": [(0, 1, 5), (1, 2, 3)],
    "same-timestamp": [(0, 1, 5), (1, 2, 5)],
    "bad-increment": [(0, 1, 5), (1, 3, 6)],
    "garbage-read": [(0, 1, 5), (1, 2, 6), (7, 8, 9)],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_anomaly_is_flagged_with_its_name(name: str) -> None:
    h = History()
    for i, (read, insert, ts) in enumerate(CASES[name]):
        inc(h, i, read, insert, ts)
    res = monotonic.check(h)
    assert res.anomaly_types == {name}, res.explain()


def test_broken_variant_misses_an_inversion() -> None:
    h = History()
    inc(h, 0, 0, 1, 5)
    inc(h, 1, 1, 2, 3)
    assert "out-of-order" in monotonic.check(h).anomalies
    assert monotonic.check(h, check_order=False).valid


def simulate(rng: random.Random, n: int, skew: bool) -> History:
    """A correct counter with commit timestamps from an increasing HLC; with
    `skew`, one txn commits with a timestamp from before its predecessor."""
    h = History()
    cur, wall, logical = 0, 1000, 0
    bad = rng.randrange(1, n) if skew else -1
    for i in range(n):
        p = i % 3
        outcome = rng.choices(["ok", "fail", "info"], [0.8, 0.1, 0.1])[0]
        if i in (bad - 1, bad):  # the skewed txn and an ok predecessor
            outcome = "ok"
        if rng.random() < 0.5:
            wall, logical = wall + rng.randint(1, 5), 0
        else:
            logical += 1
        ts = (wall - 100, 0) if i == bad else (wall, logical)
        h.invoke(p, "inc")
        if outcome == "ok" or (outcome == "info" and rng.random() < 0.5):
            cur += 1
        if outcome == "ok":
            h.ok(p, {"read": cur - 1, "insert": cur, "ts": ts})
        else:
            getattr(h, outcome)(p)
    return h


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 60))
def test_correct_counters_pass_and_a_skewed_commit_is_caught(seed: int, n: int) -> None:
    res = monotonic.check(simulate(random.Random(seed), n, False))
    assert res.valid, res.explain()
    bad = monotonic.check(simulate(random.Random(seed), n, True))
    assert "out-of-order" in bad.anomalies, bad.explain()
