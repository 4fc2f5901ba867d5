"""The sets checker: every acknowledged insert survives, nothing else appears.

The workload inserts unique elements (`add`, value = the element) and
reads the whole set (`read`, ok value = the elements read). Rules, by the
logical time (history index) of invokes and completions:

- `lost`: an element whose `add` completed `ok` before a read was invoked,
  but the read lacks it; or an element a read saw that a later read
  (invoked after the first one completed) lacks — once visible, an insert
  is committed and must stay;
- `unexpected`: a read holds an element whose `add` failed (`fail` means
  certainly not committed) or that was never added at all;
- `duplicated`: a read holds an element more than once.

An `info` add may be present or absent, until some read sees it: from then
on it must stay. An `add` concurrent with a read may be either. A history
with adds but no `ok` read at all proves nothing and is reported as
`no-reads`.

The broken variant for the mutation test is `check_lost=False`.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Sequence
from typing import Any

from crdb_py.jepsen.checkers.base import Result, count_statuses
from crdb_py.jepsen.history import History, Op, history_ops, operations

__all__ = ["check"]


def check(history: History | Sequence[Op], *, check_lost: bool = True) -> Result:
    ops = [o for o in operations(history_ops(history)) if o.f in ("add", "read")]
    res = Result("sets", counts=count_statuses(ops))
    adds = [o for o in ops if o.f == "add"]
    status: dict[Any, str] = {}
    for o in adds:
        e = o.invoke.value  # the element is the invoke's input
        if e in status:
            raise ValueError(f"element {e!r} added twice: the workload must add unique elements")
        status[e] = o.status
    acked = sorted((o.ret, o.invoke.value) for o in adds if o.status == "ok")
    acked_times = [t for t, _ in acked]
    reads = sorted((o for o in ops if o.f == "read" and o.status == "ok"), key=lambda o: o.call)
    if adds and not reads:
        res.add("no-reads", "no read completed: nothing about the inserts was verified", None)
    seen_by: dict[Any, int] = {}  # element -> completion time of the first read that saw it
    for o in reads:
        elems = list(o.value or ())
        where = f"read by process {o.process} (events {o.call}..{int(o.ret)})"
        counts = Counter(elems)
        dups = sorted((e for e, n in counts.items() if n > 1), key=repr)
        if dups:
            res.add("duplicated", f"{where} holds {dups!r} more than once", (o.call, dups))
        present = set(elems)
        bad = sorted((e for e in present if status.get(e) in (None, "fail")), key=repr)
        if bad:
            why = ", ".join(f"{e!r} ({'failed add' if e in status else 'never added'})" for e in bad)
            res.add("unexpected", f"{where} holds {why}", (o.call, bad))
        if check_lost:
            must = {v for _, v in acked[: bisect.bisect_left(acked_times, o.call)]}
            must |= {e for e, t in seen_by.items() if t < o.call}
            lost = sorted(must - present, key=repr)
            if lost:
                res.add("lost", f"{where} lacks {len(lost)} element(s) acknowledged or seen "
                        f"before it began: {lost[:20]!r}", (o.call, lost))
        for e in present:
            if e not in seen_by or o.ret < seen_by[e]:
                seen_by[e] = int(o.ret)
    return res
