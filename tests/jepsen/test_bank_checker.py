"""The bank checker: wrong totals, negative balances and missing accounts are
flagged; valid concurrent histories (with failed and ambiguous transfers) and
simulated serial banks pass; the broken variant misses negative balances."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crdb_py.jepsen.checkers import bank
from crdb_py.jepsen.history import History

ACCOUNTS = [0, 1, 2]


def run(*steps: tuple[int, str, str, Any]) -> History:
    """Steps are (process, 'invoke'|'ok'|'fail'|'info', f, value)."""
    h = History(clock=lambda: 0.0)
    for p, kind, f, v in steps:
        if kind == "invoke":
            h.invoke(p, f, v)
        else:
            getattr(h, kind)(p, v)
    return h


def transfer(p: int, src: int, dst: int, amt: int, outcome: str = "ok") -> list[tuple]:
    v = {"from": src, "to": dst, "amount": amt}
    return [(p, "invoke", "transfer", v), (p, outcome, "transfer", v)]


def read(p: int, balances: dict[int, int]) -> list[tuple]:
    return [(p, "invoke", "read", None), (p, "ok", "read", balances)]


def test_valid_concurrent_history() -> None:
    h = run(
        (0, "invoke", "transfer", {"from": 0, "to": 1, "amount": 5}),
        *read(1, {0: 10, 1: 10, 2: 10}),
        (0, "ok", "transfer", None),
        *transfer(2, 1, 2, 50, "fail"),
        *transfer(3, 2, 0, 1, "info"),
        *read(1, {0: 5, 1: 15, 2: 10}),
        (4, "invoke", "read", None),
        (4, "info", "read", None),
    )
    res = bank.check(h, total=30, accounts=ACCOUNTS)
    assert res.valid, res.explain()
    assert res.counts == {"ok": 3, "fail": 1, "info": 2}


@pytest.mark.parametrize(("name", "balances"), [
    ("wrong-total", {0: 5, 1: 10, 2: 10}),          # half a transfer
    ("negative-balance", {0: -5, 1: 25, 2: 10}),
    ("missing-account", {0: 20, 1: 10}),
    ("unexpected-account", {0: 10, 1: 10, 2: 10, 9: 0}),
])
def test_each_anomaly_is_flagged_with_its_name(name: str, balances: dict[int, int]) -> None:
    h = run(*read(0, {0: 10, 1: 10, 2: 10}), *read(1, balances))
    res = bank.check(h, total=30, accounts=ACCOUNTS)
    assert res.anomaly_types == {name}, res.explain()
    assert len(res.anomalies[name]) == 1
    assert "process 1" in res.anomalies[name][0]


def test_every_offending_read_is_reported() -> None:
    h = run(*read(0, {0: 1, 1: 1, 2: 1}), *read(1, {0: 10, 1: 10, 2: 10}),
            *read(2, {0: 0, 1: 0, 2: 0}))
    res = bank.check(h, total=30)
    assert [d[0] for d in res.details["wrong-total"]] == [0, 4]


def test_broken_variant_misses_negative_balances() -> None:
    h = run(*read(0, {0: -5, 1: 25, 2: 10}))
    assert "negative-balance" in bank.check(h, total=30).anomalies
    assert bank.check(h, total=30, check_negative=False).valid


def simulate(rng: random.Random, n: int, torn: bool) -> History:
    """A serial bank: transfers apply atomically; with `torn`, one read sees
    a transfer's debit but not its credit."""
    bal = {a: 10 for a in ACCOUNTS}
    h = History(clock=lambda: 0.0)
    torn_at = rng.randrange(n + 1) if torn else -1
    for i in range(n):
        if rng.random() < 0.5:
            src, dst = rng.sample(ACCOUNTS, 2)
            amt = rng.randint(1, 5)
            h.invoke(0, "transfer", {"from": src, "to": dst, "amount": amt})
            if bal[src] >= amt:
                bal[src] -= amt
                bal[dst] += amt
                h.ok(0)
            else:
                h.fail(0, error="insufficient funds")
        else:
            h.invoke(1, "read")
            seen = dict(bal)
            if i >= torn_at >= 0:
                seen[ACCOUNTS[0]] -= 1  # a debit whose credit is not visible
                torn_at = -1
            h.ok(1, seen)
    h.invoke(1, "read")
    seen = dict(bal)
    if torn_at >= 0:
        seen[ACCOUNTS[0]] -= 1
    h.ok(1, seen)
    return h


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 80))
def test_serial_banks_pass_and_a_torn_read_is_caught(seed: int, n: int) -> None:
    assert bank.check(simulate(random.Random(seed), n, False), total=30, accounts=ACCOUNTS).valid
    res = bank.check(simulate(random.Random(seed), n, True), total=30, accounts=ACCOUNTS)
    assert "wrong-total" in res.anomalies


def test_read_without_balances_is_a_malformed_history() -> None:
    with pytest.raises(ValueError, match="balance mapping"):
        bank.check(run(*read(0, None)), total=0)  # type: ignore[arg-type]
