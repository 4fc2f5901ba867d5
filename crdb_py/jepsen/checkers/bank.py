"""The bank checker: transfers move money, reads must always see it all.

The workload keeps a fixed set of accounts whose balances sum to `total`.
Clients run `transfer` transactions (`{"from": a, "to": b, "amount": n}`)
and `read` transactions that read every balance at once (ok value: a
mapping account -> balance). Under snapshot isolation or better, every
committed read sees a state between whole transfers, so:

- `wrong-total`: an `ok` read whose balances do not sum to `total` (it saw
  half of a transfer, a lost write, a phantom one);
- `negative-balance`: an `ok` read with a balance below zero (transfers
  check the source balance first, so a negative one means two transfers
  both passed a check that only one could pass: write skew / lost update);
- `missing-account` / `unexpected-account` (when `accounts` is given): a
  read that does not cover exactly the accounts that exist.

Transfers are not checked one by one (a transfer's effect is only visible
through reads); `fail` and `info` reads carry no value and are skipped.
The broken variant for the mutation test is `check_negative=False`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from crdb_py.jepsen.checkers.base import Result, count_statuses
from crdb_py.jepsen.history import History, Op, history_ops, operations

__all__ = ["check"]


def check(
    history: History | Sequence[Op],
    *,
    total: int,
    accounts: Collection[Any] | None = None,
    check_negative: bool = True,
) -> Result:
    ops = [o for o in operations(history_ops(history)) if o.f in ("read", "transfer")]
    res = Result("bank", counts=count_statuses(ops))
    expected = set(accounts) if accounts is not None else None
    for o in ops:
        if o.f != "read" or o.status != "ok":
            continue
        bal = o.value
        if not isinstance(bal, Mapping):
            raise ValueError(f"bank read at event {o.call} has no balance mapping: {bal!r}")
        where = f"read by process {o.process} (events {o.call}..{o.complete.index if o.complete else '?'})"
        s = sum(bal.values())
        if s != total:
            res.add("wrong-total", f"{where} sums to {s}, not {total}: {_fmt(bal)}",
                    (o.call, dict(bal), s))
        neg = {a: b for a, b in bal.items() if b < 0}
        if neg and check_negative:
            res.add("negative-balance", f"{where} has negative balances {_fmt(neg)}: {_fmt(bal)}",
                    (o.call, dict(bal), neg))
        if expected is not None:
            missing = expected - set(bal)
            extra = set(bal) - expected
            if missing:
                res.add("missing-account", f"{where} lacks accounts {sorted(missing, key=repr)}",
                        (o.call, missing))
            if extra:
                res.add("unexpected-account", f"{where} has unknown accounts "
                        f"{sorted(extra, key=repr)}", (o.call, extra))
    return res


def _fmt(bal: Mapping[Any, Any]) -> str:
    return "{" + ", ".join(f"{a!r}: {b!r}" for a, b in sorted(bal.items(), key=lambda x: repr(x[0]))) + "}"
