"""The plan cache: planned statements kept by their text, reused across
executions and sessions.

What a plan is here. The executor plans as it goes: it resolves names to
column positions, walks the AST for subqueries and aggregates, expands
`*`, analyses the WHERE clause for index constraints and compiles every
expression into a closure (crdb_py/sql/expr.py). All of that depends only
on the statement's AST and the table descriptors it reads, never on the
parameters or the data, so it is recorded in a *memo* carried by the
statement's `Ctx` (`expr.memoized`): keyed by the AST node and by every
other input (a scope signature, a descriptor object). A later execution
with the same `Ctx` finds each piece in the memo and only binds parameters,
computes the KV spans from them and runs. Closures read parameters, `now()`
and subquery results from their `Ctx` at run time, which is why a plan is a
`Ctx`: `Ctx.reset` readies it for the next execution.

Schema changes need no invalidation step: descriptors are still read (one
point read each, in the statement's transaction) on every execution, and
decoded descriptors are shared objects that change identity with their
version, so memo entries keyed by the old descriptor simply stop matching,
and compiled expressions are keyed by the column layout they were
compiled against. A plan is tied to the parsed AST it was built from
(memo keys are node identities); when the statement cache re-parses the
text, the old plans are dropped.

Concurrency: a `Ctx` serves one execution at a time, so each text keeps a
small pool of plans; `checkout` takes one (or makes a fresh one), `checkin`
returns it after a successful execution (a failed one is dropped). The
cache is shared by every session of the process (sessions on different
loop threads included), hence the lock.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from crdb_py.sql.expr import Ctx

PLANNED_KINDS = frozenset({"query", "insert", "upsert", "update", "delete"})


@dataclass(slots=True)
class _Entry:
    ast: Any  # the parsed statement the plans were built from
    free: list[Ctx] = field(default_factory=list)


class PlanCache:
    """LRU of plans by (statement kind, text); `capacity=0` turns it off."""

    def __init__(self, capacity: int = 512, pool: int = 8) -> None:
        self.capacity = capacity
        self.pool = pool
        self._d: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def checkout(self, kind: str, text: str, ast: Any) -> Ctx:
        """A plan for this statement: a cached one if free, else a new
        (empty) one that records itself as it runs."""
        if self.capacity <= 0 or kind not in PLANNED_KINDS or ast is None:
            return Ctx()
        key = (kind, text)
        with self._lock:
            e = self._d.get(key)
            if e is not None and e.ast is ast and e.free:
                self._d.move_to_end(key)
                self.hits += 1
                return e.free.pop()
            self.misses += 1
        return Ctx(memo={})

    def checkin(self, kind: str, text: str, ast: Any, plan: Ctx) -> None:
        """Return a plan after a successful execution."""
        if plan.memo is None:
            return
        key = (kind, text)
        with self._lock:
            e = self._d.get(key)
            if e is None or e.ast is not ast:  # new, or the text was re-parsed
                e = self._d[key] = _Entry(ast)
            self._d.move_to_end(key)
            if len(e.free) < self.pool:
                e.free.append(plan)
            while len(self._d) > self.capacity:
                self._d.popitem(last=False)

    def __len__(self) -> int:
        return len(self._d)

    def clear(self) -> None:
        with self._lock:
            self._d.clear()
