"""The register linearizability checker: anomalies it must flag, tricky valid
histories it must accept, agreement with brute force, and property tests."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crdb_py.jepsen.linearizability import (
    CasFailed,
    Event,
    History,
    Register,
    check,
    operations,
)


def hist(*lines: tuple) -> list[Event]:
    """Lines are (process, type, f, value) or (process, type, f, value, key)."""
    out = []
    for i, ln in enumerate(lines):
        p, t, f, v, *rest = ln
        out.append(Event(p, t, f, rest[0] if rest else "x", v, float(i)))
    return out


def W(p, v, key="x"):
    return [(p, "invoke", "write", v, key), (p, "ok", "write", None, key)]


def R(p, v, key="x"):
    return [(p, "invoke", "read", None, key), (p, "ok", "read", v, key)]


def seq(*groups) -> list[Event]:
    return hist(*[ln for g in groups for ln in g])


# ---- anomalies --------------------------------------------------------------------

ANOMALIES = {
    "stale read": seq(W(0, 1), W(0, 2), R(1, 1)),
    "lost write": seq(W(0, 1), R(1, None)),
    "read of a never-written value": seq(W(0, 1), R(1, 7)),
    "read from the future": seq(R(1, 1), W(0, 1)),
    "non-monotonic reads across processes": hist(
        (0, "invoke", "write", 1),
        (1, "invoke", "read", None), (1, "ok", "read", 1),
        (2, "invoke", "read", None), (2, "ok", "read", None),
        (0, "ok", "write", None),
    ),
    "cas succeeded on a wrong value": seq(
        W(0, 1), [(1, "invoke", "cas", (2, 3)), (1, "ok", "cas", True)]
    ),
    "cas failed although the value matched": seq(
        W(0, 1), [(1, "invoke", "cas", (1, 3)), (1, "ok", "cas", False)]
    ),
    "cas effect lost": seq(
        W(0, 1), [(1, "invoke", "cas", (1, 3)), (1, "ok", "cas", True)], R(2, 1)
    ),
    "failed write was visible": seq(
        [(0, "invoke", "write", 1), (0, "fail", "write", None)], R(1, 1)
    ),
    "ambiguous write un-happened": seq(
        [(0, "invoke", "write", 1), (0, "info", "write", None)], R(1, 1), R(2, None)
    ),
    "failed cas saw a stale value": seq(
        W(0, 1), W(0, 2), [(1, "invoke", "cas", (5, 6)), (1, "ok", "cas", CasFailed(1))]
    ),
    "failed cas saw the expected value": seq(
        W(0, 1), [(1, "invoke", "cas", (1, 6)), (1, "ok", "cas", CasFailed(1))]
    ),
    "flip-flop between two writes": hist(
        (0, "invoke", "write", 1), (1, "invoke", "write", 2),
        (0, "ok", "write", None), (1, "ok", "write", None),
        (2, "invoke", "read", None), (2, "ok", "read", 1),
        (2, "invoke", "read", None), (2, "ok", "read", 2),
        (2, "invoke", "read", None), (2, "ok", "read", 1),
    ),
}


@pytest.mark.parametrize("name", sorted(ANOMALIES))
def test_anomaly_is_flagged(name):
    res = check(ANOMALIES[name])
    assert res.status == "illegal", name
    kr = res.keys["x"]
    assert kr.blocked is not None
    assert "NOT linearizable" in res.explain()


def test_explanation_names_the_stale_read():
    res = check(ANOMALIES["stale read"])
    kr = res.keys["x"]
    assert kr.blocked is not None and kr.blocked.f == "read" and kr.blocked.output == 1
    assert [op.input for op in kr.linearization] == [1, 2]
    assert kr.state == 2
    # minimal sub-history: both writes stay (they have effects), the read too
    assert sorted((op.f, op.input, op.output) for op in kr.minimal) == [
        ("read", None, 1), ("write", 1, None), ("write", 2, None)]


def test_minimal_drops_irrelevant_reads():
    h = seq(W(0, 1), R(1, 1), R(2, 1), W(0, 2), R(1, 2), R(2, 1), R(1, 2))
    kr = check(h).keys["x"]
    assert kr.status == "illegal"
    reads = [op for op in kr.minimal if op.f == "read"]
    assert [(op.output) for op in reads] == [1]  # only the stale read is needed


# ---- valid tricky histories ----------------------------------------------------------

VALID = {
    "empty": [],
    "read of the initial value": seq(R(0, None)),
    "overlapping read sees concurrent write": hist(
        (1, "invoke", "read", None), (0, "invoke", "write", 1),
        (1, "ok", "read", 1), (0, "ok", "write", None),
    ),
    "overlapping read misses concurrent write": hist(
        (0, "invoke", "write", 1), (1, "invoke", "read", None),
        (1, "ok", "read", None), (0, "ok", "write", None), *R(1, 1),
    ),
    "concurrent writes in either order": hist(
        (0, "invoke", "write", 1), (1, "invoke", "write", 2),
        (1, "ok", "write", None), (0, "ok", "write", None),
        *R(2, 1), *R(3, 1),
    ),
    "ambiguous write that happened": seq(
        [(0, "invoke", "write", 1), (0, "info", "write", None)], R(1, 1)
    ),
    "ambiguous write that did not happen": seq(
        [(0, "invoke", "write", 1), (0, "info", "write", None)], R(1, None)
    ),
    "ambiguous write that took effect late": seq(
        [(0, "invoke", "write", 1), (0, "info", "write", None)], R(1, None), R(1, None), R(2, 1)
    ),
    "never-completed write (no completion event)": seq([(0, "invoke", "write", 1)], R(1, 1)),
    "ambiguous cas that happened": seq(
        W(0, 1), [(1, "invoke", "cas", (1, 2)), (1, "info", "cas", None)], R(2, 2)
    ),
    "ambiguous read is unconstrained": seq(
        W(0, 1), [(1, "invoke", "read", None), (1, "info", "read", None)], R(2, 1)
    ),
    "failed cas and a successful one": seq(
        W(0, 1),
        [(1, "invoke", "cas", (5, 6)), (1, "ok", "cas", False)],
        [(1, "invoke", "cas", (1, 6)), (1, "ok", "cas", True)],
        R(2, 6),
    ),
    "failed cas saw the current value": seq(
        W(0, 1), [(1, "invoke", "cas", (5, 6)), (1, "ok", "cas", CasFailed(1))], R(2, 1)
    ),
    "failed write is ignored": seq(
        W(0, 1), [(0, "invoke", "write", 2), (0, "fail", "write", None)], R(1, 1)
    ),
    "keys are independent": seq(W(0, 1, "x"), W(0, 1, "y"), R(1, 1, "y"), R(1, 1, "x")),
}


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_history_is_accepted(name):
    res = check(VALID[name])
    assert res.ok, res.explain()


def test_partitioning_by_key_isolates_the_bad_key():
    h = seq(W(0, 1, "x"), W(0, 1, "y"), W(0, 2, "y"), R(1, 1, "y"), R(1, 1, "x"))
    res = check(h)
    assert res.status == "illegal"
    assert [r.key for r in res.bad_keys] == ["y"]
    assert res.keys["x"].status == "ok"


def test_initial_value_of_register():
    assert check(seq(R(0, 0)), Register(initial=0)).ok
    assert not check(seq(R(0, 0))).ok


def test_budget_gives_unknown_not_a_hang():
    # many concurrent writes of distinct values, then a read no order explains
    lines = [(p, "invoke", "write", p) for p in range(14)]
    lines += [(p, "ok", "write", None) for p in range(14)]
    lines += [(99, "invoke", "read", None), (99, "ok", "read", 999)]
    res = check(hist(*lines), max_configs=500, minimize=False)
    assert res.status == "unknown"


def test_history_recorder_and_pairing():
    h = History()
    a = h.invoke(1, "write", "k", b"v")
    b = h.invoke(2, "read", "k")
    h.ok(b, None)
    h.ok(a)
    c = h.invoke(3, "cas", "k", (b"v", b"w"))
    h.info(c)
    d = h.invoke(4, "write", "k", b"z")
    h.fail(d)
    h.invoke(5, "read", "k")  # never completes
    ops = operations(h.events)
    assert [(o.process, o.status) for o in ops] == [(2, "ok"), (1, "ok"), (3, "info"), (5, "info")]
    assert ops[2].ret == float("inf")
    with pytest.raises(ValueError):
        h.invoke(5, "read", "k")  # process 5 still in flight
    assert check(h).ok


# ---- brute force agreement ------------------------------------------------------------


def brute_force(events: list[Event]) -> bool:
    ops = operations(events)
    model = Register()
    for perm in itertools.permutations(ops):
        # real time: if a returned before b was called, a precedes b
        pos = {op.id: i for i, op in enumerate(perm)}
        if any(a.ret < b.call and pos[a.id] > pos[b.id] for a in ops for b in ops):
            continue
        state = model.init()
        for op in perm:
            ok, state = model.step(state, op)
            if not ok:
                break
        else:
            return True
    return False


def random_history(rng: random.Random, n_ops: int, n_procs: int) -> list[Event]:
    events: list[Event] = []
    busy: dict[int, tuple[str, object]] = {}
    started = 0
    while started < n_ops or busy:
        idle = [p for p in range(n_procs) if p not in busy]
        if started < n_ops and idle and (not busy or rng.random() < 0.5):
            p = rng.choice(idle)
            f = rng.choice(["read", "write", "cas"])
            v = None if f == "read" else rng.randint(1, 3) if f == "write" else (
                rng.choice([None, 1, 2]), rng.randint(1, 3))
            events.append(Event(p, "invoke", f, "x", v))
            busy[p] = (f, v)
            started += 1
        else:
            p = rng.choice(sorted(busy))
            f, _ = busy.pop(p)
            kind = rng.choices(["ok", "info", "fail"], [8, 1, 1])[0]
            out = None
            if kind == "ok":
                out = rng.choice([None, 1, 2, 3]) if f == "read" else (
                    rng.choice([True, False, CasFailed(None), CasFailed(1), CasFailed(2)])
                    if f == "cas" else None)
            events.append(Event(p, kind, f, "x", out))
    return events


def test_agrees_with_brute_force_on_small_random_histories():
    rng = random.Random(1234)
    verdicts = {True: 0, False: 0}
    for _ in range(800):
        h = random_history(rng, rng.randint(1, 6), rng.randint(1, 3))
        want = brute_force(h)
        got = check(h, minimize=False)
        assert got.ok == want, (h, got.explain())
        verdicts[want] += 1
    # the sample exercises both verdicts
    assert verdicts[True] > 40 and verdicts[False] > 40


def test_pruning_unobserved_pending_writes_keeps_the_search_small():
    """Many ambiguous writes nobody read, then a stale read: without pruning
    the search would try every subset of the pending writes."""
    lines = [*W(0, "v0")]
    for p in range(1, 40):
        lines += [(p, "invoke", "write", f"lost{p}"), (p, "info", "write", None)]
    lines += W(0, "v1") + R(99, "v0")
    res = check(hist(*lines), max_configs=10_000)
    assert res.status == "illegal"
    assert res.keys["x"].blocked.output == "v0"
    # and an observed pending write is kept: reading it is legal
    ok = check(hist(*lines[:-2], *R(99, "lost7")), max_configs=10_000)
    assert ok.ok, ok.explain()


def test_cas_failed_without_actual_keeps_pending_writes():
    # Only a pending write of 3 can make this CAS(1->2) fail; nobody reads 3.
    h = seq(W(0, 1), [(1, "invoke", "write", 3), (1, "info", "write", None)],
            [(2, "invoke", "cas", (1, 2)), (2, "ok", "cas", False)])
    assert check(h).ok
    h2 = seq(W(0, 1), [(2, "invoke", "cas", (1, 2)), (2, "ok", "cas", False)])
    assert not check(h2).ok


# ---- property tests: histories from a sequential execution ------------------------------


@st.composite
def sequential_histories(draw):
    """A legal sequential run on one register, each op given a real-time
    interval around its linearization point; some ops ambiguous."""
    n = draw(st.integers(1, 30))
    state = None
    next_val = 1
    ops = []  # (f, input, output, point, call, ret, ambiguous)
    for i in range(n):
        f = draw(st.sampled_from(["read", "write", "cas"]))
        if f == "read":
            inp, out = None, state
        elif f == "write":
            inp, out = next_val, None
            next_val += 1
            state = inp
        else:
            exp = draw(st.sampled_from([state, next_val + 1000]))
            inp = (exp, next_val)
            next_val += 1
            out = exp == state
            if out:
                state = inp[1]
            elif draw(st.booleans()):
                out = CasFailed(state)
        point = 10.0 * i
        call = point - draw(st.floats(0, 25))
        ret = point + draw(st.floats(0, 25))
        amb = f != "read" and draw(st.integers(0, 9)) == 0
        ops.append((f, inp, out, point, call, ret, amb))
    ev = []
    for pid, (f, inp, out, _pt, call, ret, amb) in enumerate(ops):
        ev.append((call, 0, pid, Event(pid, "invoke", f, "x", inp)))
        if amb:
            if draw(st.booleans()):
                ev.append((ret, 1, pid, Event(pid, "info", f, "x", None)))
        else:
            ev.append((ret, 1, pid, Event(pid, "ok", f, "x", out)))
    ev.sort(key=lambda t: t[:3])
    return [e for *_, e in ev], ops


@settings(max_examples=150, deadline=None)
@given(sequential_histories())
def test_histories_of_sequential_runs_are_linearizable(hs):
    events, _ = hs
    res = check(events)
    assert res.ok, res.explain()


@settings(max_examples=150, deadline=None)
@given(sequential_histories(), st.data())
def test_impossible_read_values_are_rejected(hs, data):
    events, ops = hs
    reads = [i for i, e in enumerate(events) if e.type == "ok" and e.f == "read"]
    if not reads:
        return
    i = data.draw(st.sampled_from(reads))
    ev = events[i]
    call_pos = next(j for j in range(i) if events[j].process == ev.process)
    # values whose write certainly starts after this read returned
    future = [e.value for e in events[i + 1:] if e.type == "invoke" and e.f == "write"]
    # values overwritten by a write that completed before the read began
    done_before = [j for j in range(call_pos) if events[j].type == "ok" and events[j].f == "write"]
    stale = []
    if done_before:
        last = max(done_before)
        last_inv = next(j for j in range(last) if events[j].process == events[last].process
                        and events[j].type == "invoke")
        overwritten = [events[j] for j in range(last_inv)
                       if events[j].type == "ok" and events[j].f == "write"]
        for w in overwritten:
            winv = next(e for e in events if e.process == w.process and e.type == "invoke")
            stale.append(winv.value)
    choices = ["never"] + future + stale
    bad = data.draw(st.sampled_from(choices))
    if bad == ev.value:
        return
    mutated = list(events)
    mutated[i] = Event(ev.process, "ok", "read", ev.key, bad, ev.time)
    res = check(mutated, minimize=False)
    assert res.status == "illegal", (bad, [str(o) for o in operations(mutated)])
