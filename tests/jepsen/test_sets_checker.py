"""The sets checker: lost, unexpected and duplicated elements are flagged;
concurrent and ambiguous inserts may go either way; the broken variant misses
a lost insert."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from crdb_py.jepsen.checkers import sets
from crdb_py.jepsen.history import History


def add(h: History, p: int, e: int, outcome: str = "ok") -> None:
    h.invoke(p, "add", e)
    getattr(h, outcome)(p)


def read(h: History, p: int, elems: list[int]) -> None:
    h.invoke(p, "read")
    h.ok(p, elems)


def test_valid_history_with_ambiguity_and_concurrency() -> None:
    h = History()
    add(h, 0, 1)
    add(h, 0, 2, "fail")
    add(h, 0, 3, "info")       # ambiguous and never seen: fine
    add(h, 1, 4, "info")       # ambiguous and seen: fine, must then stay
    h.invoke(2, "add", 5)      # concurrent with the read below: either way
    read(h, 3, [1, 4])
    h.ok(2)
    read(h, 3, [1, 4, 5])
    res = sets.check(h)
    assert res.valid, res.explain()
    assert res.counts == {"ok": 4, "fail": 1, "info": 2}


def test_lost_acknowledged_insert() -> None:
    h = History()
    add(h, 0, 1)
    add(h, 0, 2)
    read(h, 1, [1])
    res = sets.check(h)
    assert res.anomaly_types == {"lost"}
    assert res.details["lost"][0][1] == [2]


def test_seen_then_vanished_is_lost_even_if_ambiguous() -> None:
    h = History()
    add(h, 0, 1, "info")
    read(h, 1, [1])
    read(h, 1, [])
    assert sets.check(h).anomaly_types == {"lost"}


def test_failed_or_unknown_element_is_unexpected() -> None:
    h = History()
    add(h, 0, 1, "fail")
    read(h, 1, [1, 99])
    res = sets.check(h)
    assert res.anomaly_types == {"unexpected"}
    assert res.details["unexpected"][0][1] == [1, 99]
    assert "failed add" in res.anomalies["unexpected"][0]
    assert "never added" in res.anomalies["unexpected"][0]


def test_duplicated_element() -> None:
    h = History()
    add(h, 0, 1)
    read(h, 1, [1, 1])
    assert sets.check(h).anomaly_types == {"duplicated"}


def test_no_reads_proves_nothing() -> None:
    h = History()
    add(h, 0, 1)
    assert sets.check(h).anomaly_types == {"no-reads"}


def test_broken_variant_misses_lost_inserts() -> None:
    h = History()
    add(h, 0, 1)
    read(h, 1, [])
    assert not sets.check(h).valid
    assert sets.check(h, check_lost=False).valid


def simulate(rng: random.Random, n: int, lose: bool) -> History:
    """A correct set store (concurrent clients, some failures and ambiguous
    results); with `lose`, one acknowledged element is dropped from the store."""
    h = History()
    store: set[int] = set()
    pending: dict[int, int] = {}  # process -> element in flight
    lost = None
    for e in range(n):
        p = rng.randrange(4)
        if p in pending:
            el = pending.pop(p)
            outcome = rng.choices(["ok", "fail", "info"], [0.8, 0.1, 0.1])[0]
            if outcome == "ok" or (outcome == "info" and rng.random() < 0.5):
                store.add(el)
            getattr(h, outcome)(p)
            if outcome == "ok" and lose and lost is None:
                lost = el
                store.discard(el)
            if outcome == "info":
                continue  # this process is retired
        h.invoke(p, "add", e)
        pending[p] = e
        if rng.random() < 0.2:
            h.invoke(10, "read")
            h.ok(10, sorted(store))
    for p in list(pending):
        h.info(p)
    h.invoke(10, "read")
    h.ok(10, sorted(store))
    return h


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 80))
def test_correct_stores_pass_and_a_dropped_insert_is_lost(seed: int, n: int) -> None:
    res = sets.check(simulate(random.Random(seed), n, False))
    assert res.valid, res.explain()
    h = simulate(random.Random(seed), n, True)
    if any(o.type == "ok" and o.f == "add" for o in h):
        assert "lost" in sets.check(h).anomalies
