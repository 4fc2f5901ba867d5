"""A linearizability checker for single-key registers (Wing–Gong with Lowe's memoization).

Definitions. A *history* is the list of events clients saw, in real-time
order: `invoke` when a process starts an operation, then exactly one of
`ok` (it took effect, with this output), `fail` (it certainly did not take
effect) or `info` (unknown: a timeout, an `AmbiguousResultError`, a crash).
A process runs one operation at a time. Pairing each invoke with its
completion gives *operations* with a call position and a return position;
`info` operations never return (their return is +inf): they may take effect
at any point after their call, or never. `fail` operations are dropped.

A history is *linearizable* when the operations can be put in one sequence
that (1) respects real time — if A returned before B was called, A comes
first — and (2) is legal for the sequential model (a register: reads see
the latest write; CAS succeeds exactly when the current value is the
expected one).

Algorithm. Wing & Gong's search, as in Lowe's "Testing for linearizability"
and Porcupine: the call/return events of one key sit in a doubly linked
list; the search walks it, and at each *call* tries to linearize that
operation next (legal in the model from the current state). Doing so lifts
the call and its return out of the list and restarts from the head. Meeting
a *return* means the operation returned before it was linearized: undo the
last choice (a stack) and try the next candidate. Lowe's memoization keeps a
cache of (set of linearized operations as a bitset, model state): reaching
an already-seen configuration cannot lead anywhere new, which makes the
search polynomial for the histories that occur in practice (few concurrent
processes). The search succeeds when the list is empty.

P-compositionality. Linearizability is local: a history of independent
registers is linearizable iff each key's sub-history is. `check` partitions
by key and searches each key alone — exponentially cheaper than searching
the product.

Ambiguity. An `info` operation stays pending to the end of the history, so
the search may linearize it anywhere after its call — including after every
other operation, where its effect is invisible (= "it never happened"). Its
output is unknown, so a pending read has no constraint (and no effect: it is
dropped) and a pending CAS takes effect iff the value matches. Pending
operations are what makes the search blow up (each may or may not have
happened at every step), so `Register.prune` drops the pending writes whose
value no operation ever observed — sound, see its docstring — which in a
workload with unique values removes almost all of them.

Explanation. When a key's history is not linearizable the result names what
went wrong the way Porcupine's visualization does: the longest partial
linearization the search found, the model state after it, the operation
whose return came before any order could place it, and the operations that
were concurrent candidates at that point. `minimize=True` further removes
side-effect-free operations (reads, failed CASes) while the rest is still
not linearizable — sound, because dropping a side-effect-free operation
from a linearizable history leaves it linearizable — leaving a small
sub-history that is contradictory on its own.

Budget. The problem is NP-complete in general; `max_configs` bounds the
number of explored configurations per key, beyond which the verdict is
`unknown` rather than a hang.

Mutation check. `tests/jepsen/test_linearizability.py` feeds hand-made
anomalies (stale read, lost write, phantom value, non-monotonic reads, CAS on
a wrong value) that must be rejected, tricky valid histories that must be
accepted, and property tests both ways.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

__all__ = [
    "CasFailed",
    "CheckResult",
    "Event",
    "History",
    "KeyResult",
    "Model",
    "Operation",
    "Register",
    "check",
    "check_operations",
    "operations",
]

EventType = Literal["invoke", "ok", "fail", "info"]
OpKind = Literal["read", "write", "cas"]
INF = math.inf


@dataclass(frozen=True, slots=True)
class CasFailed:
    """The output of a CAS whose condition failed *and* that saw `actual`
    (CockroachDB's ConditionFailedError carries it): a read of `actual`."""

    actual: Hashable


@dataclass(frozen=True, slots=True)
class Event:
    """One line of a history. `value` is the input on `invoke` (write: the
    value; cas: (expected, new); read: None) and the output on `ok` (read:
    the value seen, None = absent; cas: True = done, False = condition did
    not hold, `CasFailed(actual)` = did not hold and the value was `actual`)."""

    process: int
    type: EventType
    f: OpKind
    key: Hashable
    value: Any = None
    time: float = 0.0  # informational (virtual or wall time of the event)


@dataclass(frozen=True, slots=True)
class Operation:
    """An invoke paired with its completion; `ret` is INF for `info`."""

    id: int
    process: int
    f: OpKind
    key: Hashable
    input: Any
    output: Any
    call: float
    ret: float
    status: Literal["ok", "info"]
    call_time: float = 0.0
    ret_time: float = INF

    @property
    def pending(self) -> bool:
        return self.status == "info"

    def __str__(self) -> str:
        if self.f == "read":
            what = f"read -> {self.output!r}" if not self.pending else "read -> ?"
        elif self.f == "write":
            what = f"write {self.input!r}"
        else:
            exp, new = self.input
            if self.pending:
                res = "?"
            elif isinstance(self.output, CasFailed):
                res = f"failed, saw {self.output.actual!r}"
            else:
                res = "ok" if self.output else "failed"
            what = f"cas {exp!r}->{new!r} {res}"
        span = f"[{self.call_time:g}, {'inf' if self.ret_time == INF else f'{self.ret_time:g}'}]"
        return f"op{self.id} p{self.process} {self.key!r} {what} {span}"


class History:
    """Records a history as clients run: `h = History(); i = h.invoke(...); h.ok(i, v)`.

    Events are appended in call order, so list position is real-time order
    (all clients must record on one thread / event loop). `clock` gives the
    informational timestamp of each event.
    """

    def __init__(self, clock: Any = None) -> None:
        self.events: list[Event] = []
        self._open: dict[int, tuple[int, OpKind, Hashable]] = {}
        self._clock = clock

    def _now(self) -> float:
        return float(self._clock()) if self._clock is not None else float(len(self.events))

    def invoke(self, process: int, f: OpKind, key: Hashable, value: Any = None) -> int:
        if process in self._open:
            raise ValueError(f"process {process} already has an operation in flight")
        self._open[process] = (len(self.events), f, key)
        self.events.append(Event(process, "invoke", f, key, value, self._now()))
        return process

    def _complete(self, process: int, type_: EventType, value: Any) -> None:
        _, f, key = self._open.pop(process)
        self.events.append(Event(process, type_, f, key, value, self._now()))

    def ok(self, process: int, value: Any = None) -> None:
        self._complete(process, "ok", value)

    def fail(self, process: int) -> None:
        self._complete(process, "fail", None)

    def info(self, process: int) -> None:
        self._complete(process, "info", None)

    def __len__(self) -> int:
        return len(self.events)


def operations(events: Sequence[Event]) -> list[Operation]:
    """Pair invokes with completions by process; drop `fail`s; an invoke that
    never completes (or completes with `info`) is pending to the end."""
    open_: dict[int, tuple[int, Event]] = {}
    ops: list[Operation] = []
    for pos, ev in enumerate(events):
        if ev.type == "invoke":
            if ev.process in open_:
                raise ValueError(f"process {ev.process} invoked twice without completing (event {pos})")
            open_[ev.process] = (pos, ev)
            continue
        if ev.process not in open_:
            raise ValueError(f"completion without invoke for process {ev.process} (event {pos})")
        cpos, inv = open_.pop(ev.process)
        if ev.f != inv.f or ev.key != inv.key:
            raise ValueError(f"completion at event {pos} does not match its invoke")
        if ev.type == "fail":
            continue
        status: Literal["ok", "info"] = "ok" if ev.type == "ok" else "info"
        ops.append(Operation(
            id=len(ops), process=inv.process, f=inv.f, key=inv.key, input=inv.value,
            output=ev.value if status == "ok" else None,
            call=cpos, ret=pos if status == "ok" else INF, status=status,
            call_time=inv.time, ret_time=ev.time if status == "ok" else INF,
        ))
    for cpos, inv in open_.values():
        ops.append(Operation(
            id=len(ops), process=inv.process, f=inv.f, key=inv.key, input=inv.value,
            output=None, call=cpos, ret=INF, status="info", call_time=inv.time,
        ))
    return ops


class Model(Protocol):
    """A sequential specification: a hashable state and a step function."""

    def init(self) -> Hashable: ...

    def step(self, state: Hashable, op: Operation) -> tuple[bool, Hashable]:
        """(is `op` legal in `state`, the state after it)."""
        ...

    def pure(self, op: Operation) -> bool:
        """True if `op` never changes the state (removable when minimizing)."""
        ...

    def prune(self, ops: list[Operation]) -> list[Operation]:
        """Remove operations that provably cannot affect the verdict."""
        ...


@dataclass(frozen=True, slots=True)
class Register:
    """A read/write/compare-and-set register whose initial value is `initial`
    (None: the key is absent)."""

    initial: Hashable = None

    def init(self) -> Hashable:
        return self.initial

    def step(self, state: Hashable, op: Operation) -> tuple[bool, Hashable]:
        if op.f == "read":
            return (op.pending or op.output == state), state
        if op.f == "write":
            return True, op.input
        if op.f == "cas":
            exp, new = op.input
            if op.pending:
                return True, (new if state == exp else state)
            if isinstance(op.output, CasFailed):
                return state != exp and state == op.output.actual, state
            if op.output:
                return state == exp, new
            return state != exp, state
        raise ValueError(f"unknown register operation {op.f!r}")

    def pure(self, op: Operation) -> bool:
        return op.f == "read" or (op.f == "cas" and not op.pending and (
            op.output is False or isinstance(op.output, CasFailed)))

    def prune(self, ops: list[Operation]) -> list[Operation]:
        """Drop pending operations that cannot matter: pending reads, and
        pending writes / CASes whose value nobody ever observed. Placing such
        a write anywhere but the end only makes later observations harder,
        so the history is linearizable iff it is without them — unless some
        CAS failed without saying what it saw (a write of any other value
        could explain it), in which case pending writes are kept."""
        ops = [op for op in ops if not (op.pending and op.f == "read")]
        if any(op.f == "cas" and op.output is False for op in ops):
            return ops
        seen: set[Hashable] = set()
        for op in ops:
            if op.f == "read":
                seen.add(op.output)
            elif op.f == "cas":
                seen.add(op.input[0])
                if isinstance(op.output, CasFailed):
                    seen.add(op.output.actual)
        return [op for op in ops if not op.pending or op.f == "read" or (
            (op.input if op.f == "write" else op.input[1]) in seen)]


@dataclass(frozen=True, slots=True)
class KeyResult:
    """The verdict for one key."""

    key: Hashable
    status: Literal["ok", "illegal", "unknown"]
    ops: int
    configs: int  # configurations explored
    linearization: tuple[Operation, ...] = ()  # full (ok) or longest partial (illegal)
    state: Any = None  # model state after `linearization`
    blocked: Operation | None = None  # returned before it could be linearized
    candidates: tuple[Operation, ...] = ()  # concurrent ops that were tried there
    minimal: tuple[Operation, ...] = ()  # small contradictory sub-history (minimize=True)

    def explain(self) -> str:
        if self.status == "ok":
            return f"key {self.key!r}: linearizable ({self.ops} ops)"
        if self.status == "unknown":
            return f"key {self.key!r}: gave up after {self.configs} configurations ({self.ops} ops)"
        lines = [f"key {self.key!r}: NOT linearizable ({self.ops} ops)"]
        tail = self.linearization[-8:]
        if len(self.linearization) > len(tail):
            lines.append(f"  ... {len(self.linearization) - len(tail)} earlier ops linearized")
        lines += [f"  linearized: {op}" for op in tail]
        lines.append(f"  state then: {self.state!r}")
        if self.blocked is not None:
            lines.append(f"  cannot linearize: {self.blocked}")
        lines += [f"  candidates tried: {op}" for op in self.candidates]
        if self.minimal:
            lines.append("  minimal contradictory sub-history:")
            lines += [f"    {op}" for op in self.minimal]
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class CheckResult:
    status: Literal["ok", "illegal", "unknown"]
    keys: dict[Hashable, KeyResult] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def bad_keys(self) -> list[KeyResult]:
        return [r for r in self.keys.values() if r.status != "ok"]

    def explain(self) -> str:
        if self.ok:
            return f"linearizable ({len(self.keys)} keys)"
        return "\n".join(r.explain() for r in self.bad_keys)


def check(
    history: History | Sequence[Event],
    model: Model | None = None,
    *,
    max_configs: int = 2_000_000,
    minimize: bool = True,
) -> CheckResult:
    """Is `history` linearizable for `model` (default: a `Register` per key)?"""
    events = history.events if isinstance(history, History) else history
    return check_operations(operations(events), model, max_configs=max_configs, minimize=minimize)


def check_operations(
    ops: Iterable[Operation],
    model: Model | None = None,
    *,
    max_configs: int = 2_000_000,
    minimize: bool = True,
) -> CheckResult:
    m: Model = model if model is not None else Register()
    by_key: dict[Hashable, list[Operation]] = defaultdict(list)
    for op in ops:
        by_key[op.key].append(op)
    results: dict[Hashable, KeyResult] = {}
    for key in sorted(by_key, key=repr):
        r = _check_key(key, by_key[key], m, max_configs)
        if r.status == "illegal" and minimize:
            r = _with_minimal(r, by_key[key], m, max_configs)
        results[key] = r
    if any(r.status == "illegal" for r in results.values()):
        status: Literal["ok", "illegal", "unknown"] = "illegal"
    elif any(r.status == "unknown" for r in results.values()):
        status = "unknown"
    else:
        status = "ok"
    return CheckResult(status, results)


# ---- the search ---------------------------------------------------------------


class _Entry:
    __slots__ = ("is_call", "match", "next", "op", "prev", "slot")

    def __init__(self, op: Operation | None, is_call: bool, slot: int) -> None:
        self.op = op
        self.is_call = is_call
        self.slot = slot  # bit index of op in the linearized set
        self.match: _Entry | None = None
        self.prev: _Entry | None = None
        self.next: _Entry | None = None


def _build(ops: list[Operation]) -> _Entry:
    points: list[tuple[float, int, int, _Entry]] = []
    for slot, op in enumerate(ops):
        call = _Entry(op, True, slot)
        ret = _Entry(op, False, slot)
        call.match = ret
        # At equal positions calls sort first: such operations overlap.
        points.append((op.call, 0, slot, call))
        points.append((op.ret, 1, slot, ret))
    points.sort(key=lambda p: p[:3])
    head = _Entry(None, False, -1)
    cur = head
    for *_, e in points:
        cur.next = e
        e.prev = cur
        cur = e
    return head


def _lift(e: _Entry) -> None:
    assert e.prev is not None and e.match is not None and e.match.prev is not None
    e.prev.next = e.next
    if e.next is not None:
        e.next.prev = e.prev
    m = e.match
    m.prev.next = m.next  # type: ignore[union-attr]
    if m.next is not None:
        m.next.prev = m.prev


def _unlift(e: _Entry) -> None:
    m = e.match
    assert m is not None and m.prev is not None and e.prev is not None
    m.prev.next = m
    if m.next is not None:
        m.next.prev = m
    e.prev.next = e
    if e.next is not None:
        e.next.prev = e


def _check_key(key: Hashable, all_ops: list[Operation], model: Model, max_configs: int) -> KeyResult:
    ops = model.prune(list(all_ops))
    head = _build(ops)
    state = model.init()
    linearized = 0
    cache: set[tuple[int, Hashable]] = {(0, state)}
    stack: list[tuple[_Entry, Hashable]] = []
    best_depth = -1
    best: tuple[tuple[Operation, ...], Hashable, Operation | None, tuple[Operation, ...]] = ((), state, None, ())
    configs = 0
    entry = head.next
    while head.next is not None:
        assert entry is not None
        if entry.is_call:
            ok, new_state = model.step(state, entry.op)  # type: ignore[arg-type]
            if ok:
                new_lin = linearized | (1 << entry.slot)
                cfg = (new_lin, new_state)
                if cfg not in cache:
                    configs += 1
                    if configs > max_configs:
                        return KeyResult(key, "unknown", len(all_ops), configs)
                    cache.add(cfg)
                    stack.append((entry, state))
                    state, linearized = new_state, new_lin
                    _lift(entry)
                    entry = head.next
                    continue
            entry = entry.next
            continue
        # A return: its operation was not linearized before it returned.
        if len(stack) > best_depth:
            best_depth = len(stack)
            cands = []
            e = head.next
            while e is not None and e is not entry:
                if e.is_call:
                    cands.append(e.op)
                e = e.next
            best = (tuple(s[0].op for s in stack), state, entry.op, tuple(cands))  # type: ignore[misc]
        if not stack:
            break
        top, state = stack.pop()
        linearized &= ~(1 << top.slot)
        _unlift(top)
        entry = top.next
    else:
        return KeyResult(key, "ok", len(all_ops), configs,
                         linearization=tuple(s[0].op for s in stack), state=state)  # type: ignore[misc]
    lin, st, blocked, cands = best
    return KeyResult(key, "illegal", len(all_ops), configs, linearization=lin, state=st,
                     blocked=blocked, candidates=tuple(c for c in cands if c is not blocked))


def _with_minimal(r: KeyResult, ops: list[Operation], model: Model, max_configs: int,
                  limit: int = 400) -> KeyResult:
    """Drop side-effect-free ops one by one while the rest stays illegal."""
    cur = list(ops)
    if len(cur) > limit:
        return r
    for op in list(ops):
        if not model.pure(op):
            continue
        trial = [o for o in cur if o is not op]
        if _check_key(r.key, trial, model, max_configs).status == "illegal":
            cur = trial
    return KeyResult(r.key, r.status, r.ops, r.configs, r.linearization, r.state, r.blocked,
                     r.candidates, minimal=tuple(sorted(cur, key=lambda o: o.call)))
