"""Checkers over Jepsen-style histories (`crdb_py.jepsen.history`).

Each module exposes `check(history, ...) -> Result`:

- `elle`: list-append transactions; infers the dependency graph and names
  G0, G1a, G1b, G1c, G-single and G2 cycles (serializability; strict
  serializability with `realtime=True`);
- `bank`: transfers and whole-table reads; totals and non-negative balances;
- `sets`: unique inserts and reads; lost, unexpected, duplicated elements;
- `monotonic`: read-max-insert-max+1 transactions; inserted values follow
  commit-timestamp order.

Register histories are checked for linearizability by
`crdb_py.jepsen.linearizability` (convert with
`crdb_py.jepsen.history.register_events`). See docs/design/testing.md.
"""

from __future__ import annotations

from collections.abc import Callable

from crdb_py.jepsen.checkers import bank, elle, monotonic, sets
from crdb_py.jepsen.checkers.base import Result

__all__ = ["CHECKERS", "Result", "bank", "elle", "monotonic", "sets"]

CHECKERS: dict[str, Callable[..., Result]] = {
    "elle": elle.check,
    "bank": bank.check,
    "sets": sets.check,
    "monotonic": monotonic.check,
}
