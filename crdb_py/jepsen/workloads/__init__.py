"""Jepsen workloads: what clients run, how it is recorded, which checker judges it.

A workload is a generator of operations plus the glue to a checker. It
never talks to a database itself: `apply(client, op)` calls one method of
the client protocol it needs (`crdb_py.jepsen.client`), so KV and SQL
clients are interchangeable. Generation is thread-safe (workers share one
workload) and values are unique where a checker needs them to be.

    w = WORKLOADS["bank"]()
    w.setup(client)
    op = w.generate(rng)              # GenOp(f, value, key)
    result = w.apply(client, op)      # the `ok` value (raises on failure)
    ...
    for op in w.final_ops(): ...      # final reads after the nemesis healed
    verdict = w.check(history)

See docs/design/testing.md, "Workloads and nemeses".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from crdb_py.jepsen.workloads.bank import BankWorkload
from crdb_py.jepsen.workloads.base import GenOp, Verdict, Workload
from crdb_py.jepsen.workloads.list_append import ListAppendWorkload
from crdb_py.jepsen.workloads.monotonic import MonotonicWorkload
from crdb_py.jepsen.workloads.register import RegisterWorkload
from crdb_py.jepsen.workloads.sets import SetsWorkload

__all__ = [
    "WORKLOADS",
    "BankWorkload",
    "GenOp",
    "ListAppendWorkload",
    "MonotonicWorkload",
    "RegisterWorkload",
    "SetsWorkload",
    "Verdict",
    "Workload",
]

WORKLOADS: dict[str, Callable[..., Any]] = {
    "bank": BankWorkload,
    "register": RegisterWorkload,
    "sets": SetsWorkload,
    "list-append": ListAppendWorkload,
    "monotonic": MonotonicWorkload,
}
