"""The monotonic checker: values inserted as max+1 follow commit-timestamp order.

Each `inc` transaction reads the current maximum `m` of a table, inserts
`m + 1` and reports its commit timestamp (ok value: a mapping with
`read`, `insert`, `ts`, or the triple `(read, insert, ts)`; `ts` is a number
or a `(wall, logical)` pair). A serializable database orders the
transactions by commit timestamp, and each one saw its predecessor's
insert, so:

- `duplicate-value`: two committed transactions inserted the same value
  (both read the same maximum: one missed the other's write);
- `out-of-order`: sorted by commit timestamp, the inserted values are not
  strictly increasing (a transaction committed below a write it observed,
  or above one it missed);
- `same-timestamp`: two committed transactions with the same commit
  timestamp (they conflict on the maximum, so one must be above the other);
- `bad-increment`: a transaction inserted something other than read + 1;
- `garbage-read`: transactions read maxima that nobody inserted (nor the
  `initial` value), more distinct ones than the ambiguous transactions whose
  insert is unknown could explain.

`info` transactions may have committed: their inserts make reads of those
values legal, but they take part in no ordering (their timestamp is
unknown). The broken variant for the mutation test is `check_order=False`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from crdb_py.jepsen.checkers.base import Result, count_statuses
from crdb_py.jepsen.history import History, Op, history_ops, operations

__all__ = ["check"]


def _parse(v: Any) -> tuple[Any, Any, Any]:
    if isinstance(v, Mapping):
        return v.get("read"), v.get("insert"), v.get("ts")
    read, insert, ts = v
    return read, insert, ts


def _ts_key(ts: Any) -> tuple[Any, ...]:
    return tuple(ts) if isinstance(ts, (list, tuple)) else (ts,)


def check(history: History | Sequence[Op], *, initial: int = 0,
          check_order: bool = True) -> Result:
    ops = [o for o in operations(history_ops(history)) if o.f == "inc"]
    res = Result("monotonic", counts=count_statuses(ops))
    done: list[tuple[tuple[Any, ...], int, int, int]] = []  # (ts, insert, read, txn call index)
    possible = {initial}
    unknown = 0  # info txns whose insert is unknown: each may explain one read
    for o in ops:
        if o.status == "info":
            if o.complete is not None and o.complete.value is not None:
                possible.add(_parse(o.complete.value)[1])
            else:
                unknown += 1
        if o.status != "ok":
            continue
        read, insert, ts = _parse(o.value)
        possible.add(insert)
        done.append((_ts_key(ts), insert, read, o.call))
    by_value: dict[int, list[tuple[tuple[Any, ...], int, int, int]]] = defaultdict(list)
    by_ts: dict[tuple[Any, ...], list[int]] = defaultdict(list)
    unexplained: dict[int, list[tuple[tuple[Any, ...], int, int, int]]] = defaultdict(list)
    for d in done:
        ts, insert, read, call = d
        by_value[insert].append(d)
        by_ts[ts].append(call)
        if insert != read + 1:
            res.add("bad-increment", f"txn at event {call} read {read} and inserted {insert}", d)
        if read not in possible:
            unexplained[read].append(d)
    if len(unexplained) > unknown:
        for read, ds in sorted(unexplained.items()):
            calls = [d[3] for d in ds]
            res.add("garbage-read", f"txns at events {calls} read max {read}, which no "
                    f"committed txn inserted (and only {unknown} ambiguous txn(s) could have)",
                    (read, ds))
    for v, ds in sorted(by_value.items()):
        if len(ds) > 1:
            who = ", ".join(f"event {c} at ts {_fmt_ts(t)}" for t, _, _, c in ds)
            res.add("duplicate-value", f"value {v} inserted by {len(ds)} txns: {who}", (v, ds))
    for ts, calls in sorted(by_ts.items()):
        if len(calls) > 1:
            res.add("same-timestamp", f"txns at events {calls} all committed at "
                    f"{_fmt_ts(ts)}", (ts, calls))
    if check_order:
        ordered = sorted(done)
        for a, b in zip(ordered, ordered[1:], strict=False):
            if a[0] != b[0] and a[1] > b[1]:  # equal values: duplicate-value
                res.add("out-of-order", f"txn at event {a[3]} inserted {a[1]} at ts "
                        f"{_fmt_ts(a[0])}, but txn at event {b[3]} inserted {b[1]} later, "
                        f"at ts {_fmt_ts(b[0])}", (a, b))
    return res


def _fmt_ts(ts: tuple[Any, ...]) -> str:
    return ",".join(str(x) for x in ts)
