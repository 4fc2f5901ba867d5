"""The Elle list-append checker: one hand-made history per anomaly it must name,
valid histories (concurrent, ambiguous) it must accept, serial executions that
always pass, mutated reads that are always caught, and its broken variant."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from crdb_py.jepsen.checkers import elle
from crdb_py.jepsen.checkers.elle import Cycle
from crdb_py.jepsen.history import History, Op


def a(k: Any, v: Any) -> list[Any]:
    return ["append", k, v]


def r(k: Any, v: Any = None) -> list[Any]:
    return ["r", k, v]


def blank(mops: list[list[Any]]) -> list[list[Any]]:
    return [[f, k, None] if f == "r" else [f, k, v] for f, k, v in mops]


def serial(*txns: tuple[str, list[list[Any]]]) -> History:
    """Txn i runs alone on process i: invoke, then its completion."""
    h = History(clock=lambda: 0.0)
    for i, (status, mops) in enumerate(txns):
        h.invoke(i, "txn", blank(mops))
        if status == "ok":
            h.ok(i, mops)
        elif status == "fail":
            h.fail(i, blank(mops))
        elif status == "info":
            h.info(i, blank(mops))
    return h


ANOMALIES: dict[str, History] = {
    "G0": serial(
        ("ok", [a("x", 1), a("y", 2)]),
        ("ok", [a("x", 2), a("y", 1)]),
        ("ok", [r("x", [1, 2]), r("y", [1, 2])]),
    ),
    "G1a": serial(
        ("fail", [a("x", 1)]),
        ("ok", [r("x", [1])]),
    ),
    "G1b": serial(
        ("ok", [a("x", 1), a("x", 2)]),
        ("ok", [r("x", [1])]),
        ("ok", [r("x", [1, 2])]),
    ),
    "G1c": serial(
        ("ok", [a("x", 1), r("y", [1])]),
        ("ok", [a("y", 1), r("x", [1])]),
    ),
    "G-single": serial(
        ("ok", [a("x", 1), a("y", 1)]),
        ("ok", [r("x", []), r("y", [1])]),
        ("ok", [r("x", [1])]),
    ),
    "G2": serial(
        ("ok", [r("x", []), a("y", 1)]),
        ("ok", [r("y", []), a("x", 1)]),
        ("ok", [r("x", [1]), r("y", [1])]),
    ),
    "incompatible-order": serial(
        ("ok", [a("x", 1)]),
        ("ok", [a("x", 2)]),
        ("ok", [r("x", [1, 2])]),
        ("ok", [r("x", [2])]),
    ),
    "duplicate-elements": serial(
        ("ok", [a("x", 1)]),
        ("ok", [r("x", [1, 1])]),
    ),
    "garbage-read": serial(
        ("ok", [a("x", 1)]),
        ("ok", [r("x", [1, 9])]),
    ),
    "internal": serial(
        ("ok", [a("x", 1), r("x", [])]),
    ),
}


@pytest.mark.parametrize("name", sorted(ANOMALIES))
def test_each_anomaly_is_flagged_with_exactly_its_name(name: str) -> None:
    res = elle.check(ANOMALIES[name])
    assert not res.valid
    assert res.anomaly_types == {name}, res.explain()
    assert all(res.anomalies[name]), "every instance has an explanation"


def cycle_of(res: Any, name: str) -> Cycle:
    (c,) = res.details[name]
    assert isinstance(c, Cycle)
    return c


def test_cycles_report_their_transactions_and_edges() -> None:
    c = cycle_of(elle.check(ANOMALIES["G-single"]), "G-single")
    assert set(c.txns) == {0, 1}
    assert sorted(e.type for e in c.edges) == ["rw", "wr"]
    for e, nxt in zip(c.edges, c.edges[1:] + c.edges[:1], strict=True):
        assert e.dst == nxt.src  # the edges chain into a cycle
    g2 = cycle_of(elle.check(ANOMALIES["G2"]), "G2")
    assert [e.type for e in g2.edges] == ["rw", "rw"]
    assert {e.key for e in g2.edges} == {"x", "y"}
    g0 = cycle_of(elle.check(ANOMALIES["G0"]), "G0")
    assert {e.type for e in g0.edges} == {"ww"}
    text = elle.check(ANOMALIES["G1c"]).anomalies["G1c"][0]
    assert "T0" in text and "T1" in text and "(wr)" in text


def test_long_g0_cycle_is_found_and_shortest() -> None:
    # T0..T3 each append to two keys; key i's order puts T(i+1) after Ti, and
    # key 3 closes the loop; a bystander T4 reads everything.
    n = 4
    txns: list[tuple[str, list[list[Any]]]] = [
        ("ok", [a(i, i), a((i - 1) % n, 10 + i)]) for i in range(n)
    ]
    reads = [r(k, [k, 10 + (k + 1) % n]) for k in range(n)]
    txns.append(("ok", reads))
    res = elle.check(serial(*txns))
    assert res.anomaly_types == {"G0"}
    assert len(cycle_of(res, "G0").txns) == n


def test_broken_variant_without_rw_edges_misses_g_single_and_g2() -> None:
    for name in ("G-single", "G2"):
        real = elle.check(ANOMALIES[name])
        broken = elle.check(ANOMALIES[name], edge_types=("ww", "wr"))
        assert name in real.anomalies
        assert broken.valid, broken.explain()


def test_broken_variant_without_ww_edges_misses_g0() -> None:
    assert elle.check(ANOMALIES["G0"], edge_types=("wr", "rw")).valid
    assert not elle.check(ANOMALIES["G0"]).valid


# ---- valid histories -------------------------------------------------------------


def test_concurrent_and_ambiguous_history_is_valid() -> None:
    h = History(clock=lambda: 0.0)
    h.invoke(0, "txn", [a("x", 1), a("y", 1)])
    h.invoke(1, "txn", [r("x"), a("x", 2)])
    h.invoke(2, "txn", [a("x", 3)])            # ambiguous, and nobody sees it
    h.invoke(3, "txn", [a("y", 2)])            # definitely failed
    h.ok(1, [r("x", []), a("x", 2)])           # ran before T0's append
    h.info(0, None)                            # ambiguous, but later observed
    h.fail(3, [a("y", 2)])
    h.invoke(4, "txn", [r("x"), r("y")])
    h.ok(4, [r("x", [2, 1]), r("y", [1])])
    h.info(2)
    h.invoke(5, "txn", [a("y", 3), r("y")])    # never completes
    res = elle.check(h, realtime=True)
    assert res.valid, res.explain()
    assert res.counts == {"ok": 2, "fail": 1, "info": 3}


def test_reading_own_appends_is_fine() -> None:
    h = serial(
        ("ok", [a("x", 1), r("x", [1]), a("x", 2), r("x", [1, 2])]),
        ("ok", [r("x", [1, 2]), a("x", 3), r("x", [1, 2, 3])]),
        ("ok", [r("x", [1, 2, 3])]),
    )
    res = elle.check(h, realtime=True)
    assert res.valid, res.explain()


def test_stale_read_is_serializable_but_not_strict() -> None:
    h = serial(
        ("ok", [a("x", 1)]),
        ("ok", [r("x", [])]),   # invoked after T0 completed, yet misses it
        ("ok", [r("x", [1])]),
    )
    assert elle.check(h).valid
    res = elle.check(h, realtime=True)
    assert res.anomaly_types == {"G-single-realtime"}, res.explain()


def test_an_observed_ambiguous_txn_takes_part_in_cycles() -> None:
    h = serial(
        ("info", [a("x", 1), a("y", 1)]),       # outcome unknown, but later seen
        ("ok", [r("x", []), r("y", [1])]),
        ("ok", [r("x", [1])]),
        ("fail", [a("z", 1)]),                  # failed and unseen: no effect
    )
    res = elle.check(h)
    assert res.anomaly_types == {"G-single"}, res.explain()
    assert set(cycle_of(res, "G-single").txns) == {0, 1}
    assert "T0 (process 0, info)" in res.anomalies["G-single"][0]


def test_duplicate_appends_are_a_workload_error() -> None:
    with pytest.raises(ValueError, match="twice"):
        elle.check(serial(("ok", [a("x", 1)]), ("ok", [a("x", 1)])))


# ---- generated histories ---------------------------------------------------------


def serial_history(rng: random.Random, n: int, keys: int, procs: int = 5) -> History:
    """Run `n` random txns serially (txn i takes effect at time i), but give each
    an invoke time before and a completion time after its effect point, so the
    recorded history interleaves while its effects stay serial."""
    state: dict[int, list[int]] = {}
    counter = 0
    plans = []
    for i in range(n):
        status = rng.choices(["ok", "fail", "info"], [0.8, 0.1, 0.1])[0]
        applies = status == "ok" or (status == "info" and rng.random() < 0.5)
        local = {k: list(v) for k, v in state.items()}
        mops: list[list[Any]] = []
        for _ in range(rng.randint(1, 4)):
            k = rng.randrange(keys)
            if rng.random() < 0.5:
                counter += 1
                local.setdefault(k, []).append(counter)
                mops.append(a(k, counter))
            else:
                mops.append(r(k, list(local.get(k, []))))
        if applies:
            state = local
        call = i - rng.random() * 3
        ret = i + rng.random() * 3
        plans.append((call, ret, status, mops))
    events = []
    for j, (call, ret, status, _mops) in enumerate(plans):
        events.append((call, 0, j))
        if not (status == "info" and rng.random() < 0.3):  # some never complete
            events.append((ret, 1, j))
    events.sort()
    h = History(clock=lambda: 0.0)
    free = list(range(procs))
    proc: dict[int, int] = {}
    nxt = procs
    for _, kind, j in events:
        _, _, status, mops = plans[j]
        if kind == 0:
            if free:
                p = free.pop()
            else:
                p, nxt = nxt, nxt + 1
            proc[j] = p
            h.invoke(p, "txn", blank(mops))
            continue
        p = proc[j]
        if status == "ok":
            h.ok(p, mops)
        elif status == "fail":
            h.fail(p, blank(mops))
        else:
            h.info(p, None)
        if status != "info":
            free.append(p)
    return h


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 60), keys=st.integers(1, 6))
def test_serial_executions_are_always_valid(seed: int, n: int, keys: int) -> None:
    res = elle.check(serial_history(random.Random(seed), n, keys), realtime=True)
    assert res.valid, res.explain()


def _mutate(ops: list[Op], rng: random.Random, how: str) -> list[Op] | None:
    """Mutate one read of one ok txn in a way that is always detectable."""
    completions = [i for i, o in enumerate(ops) if o.type == "ok"]
    reads_by_key: dict[Any, list[tuple[int, int]]] = {}
    for i in completions:
        for m, (f, k, _v) in enumerate(ops[i].value):
            if f == "r":
                reads_by_key.setdefault(k, []).append((i, m))
    cands = []
    for rs in reads_by_key.values():
        for i, m in rs:
            v = ops[i].value[m][2]
            longest_other = max((len(ops[j].value[n][2]) for j, n in rs if (j, n) != (i, m)),
                                default=0)
            if how == "garbage" or (how == "duplicate" and v):
                cands.append((i, m, 0))
            elif how in ("swap", "drop"):
                # positions p, p+1 both in this read and in some other read
                for p in range(min(len(v), longest_other) - 1):
                    cands.append((i, m, p))
    if not cands:
        return None
    i, m, p = rng.choice(cands)
    f, k, v = ops[i].value[m]
    v = list(v)
    if how == "swap":
        v[p], v[p + 1] = v[p + 1], v[p]
    elif how == "drop":
        del v[p]
    elif how == "duplicate":
        v.append(v[rng.randrange(len(v))])
    else:
        v.append(10**9)
    value = list(ops[i].value)
    value[m] = [f, k, v]
    out = list(ops)
    old = ops[i]
    out[i] = Op(old.index, old.type, old.process, old.f, value, old.time)
    return out


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(seed=st.integers(0, 2**32 - 1), how=st.sampled_from(["swap", "drop", "duplicate",
                                                            "garbage"]))
def test_a_mutated_read_is_always_flagged(seed: int, how: str) -> None:
    rng = random.Random(seed)
    ops = serial_history(rng, 40, 2).ops
    assert elle.check(ops).valid
    bad = _mutate(ops, rng, how)
    assume(bad is not None)
    assert bad is not None
    res = elle.check(bad)
    assert not res.valid


def test_ten_thousand_transactions() -> None:
    h = serial_history(random.Random(7), 10_000, 200, procs=10)
    res = elle.check(h, realtime=True)
    assert res.valid, res.explain()
    assert sum(res.counts.values()) == 10_000
    # The same history with one read cut short in the middle is caught.
    ops = _mutate(h.ops, random.Random(1), "drop")
    assert ops is not None
    assert "incompatible-order" in elle.check(ops).anomalies


# ---- agreement with brute force --------------------------------------------------


def sloppy_history(rng: random.Random, n: int, keys: int) -> History:
    """A deliberately broken store: each txn reads from a random stale snapshot
    (maybe plus its own appends) but appends to the current state; a final txn
    reads every key, so every version order is known."""
    state: dict[int, list[int]] = {}
    snaps: list[dict[int, list[int]]] = [{}]
    counter = 0
    txns: list[tuple[str, list[list[Any]]]] = []
    for _ in range(n):
        snap = {k: list(v) for k, v in rng.choice(snaps[-3:]).items()}
        mops: list[list[Any]] = []
        for _ in range(rng.randint(1, 3)):
            k = rng.randrange(keys)
            if rng.random() < 0.5:
                counter += 1
                state.setdefault(k, []).append(counter)
                if rng.random() < 0.7:
                    snap.setdefault(k, []).append(counter)
                mops.append(a(k, counter))
            else:
                mops.append(r(k, list(snap.get(k, []))))
        snaps.append({k: list(v) for k, v in state.items()})
        txns.append(("ok", mops))
    txns.append(("ok", [r(k, list(state.get(k, []))) for k in range(keys)]))
    return serial(*txns)


def serializable_by_brute_force(h: History) -> bool:
    txns = [t.mops for t in elle.txns_of(h)]

    def replay(order: tuple[int, ...]) -> bool:
        state: dict[Any, tuple[Any, ...]] = {}
        for i in order:
            for f, k, v in txns[i]:
                if f == "append":
                    state[k] = (*state.get(k, ()), v)
                elif state.get(k, ()) != v:
                    return False
        return True

    import itertools

    return any(replay(p) for p in itertools.permutations(range(len(txns))))


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 5), keys=st.integers(1, 3))
def test_agrees_with_brute_force_when_every_version_order_is_known(
    seed: int, n: int, keys: int
) -> None:
    h = sloppy_history(random.Random(seed), n, keys)
    res = elle.check(h)
    assert res.valid == serializable_by_brute_force(h), res.explain()
