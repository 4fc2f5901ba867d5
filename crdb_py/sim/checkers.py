"""Raft safety checkers, fed by the simulator as things happen.

Each checker watches a stream of observations and raises `InvariantViolation`
the moment Raft's guarantees (paper §5.2-§5.4, Figure 3) are broken. The
simulator (`SimCluster`) feeds them synchronously — a leader is reported in
the `Ready` that announces it, persisted entries and hard states right after
they are written, applied entries as they are applied — and calls
`after_step` once per simulated step. Everything is observed from *outside*
the core (Readys, durable storage, the state machine), so a bug in the core
cannot hide itself by also corrupting what the checker looks at.

The checkers and what they keep:

* `ElectionSafety` — every ``(term, leader)`` ever seen. Two different
  leaders in one term is a violation. Leaders are observed from each
  `Ready`'s soft state, and the simulator takes a Ready after every input, so
  a leadership that lasts a single message is still seen.

* `LogMatching` — for every ``(index, term)`` ever persisted by any node:
  the entry's payload and the term of the entry before it. If two logs hold
  an entry with the same index and term, they must agree on its payload and
  on the previous entry's term; by induction down the log that is exactly
  "same index and term ⇒ identical prefix" (the AppendEntries consistency
  check, §5.3). `check_logs` also compares whole durable logs pairwise
  (run periodically and at the end of a run).

* `LeaderCompleteness` — every committed entry, with an upper bound on the
  term in which it was committed. A node's durable hard state says
  ``commit = c`` at ``term = t``: entries ``<= c`` in its durable log are
  committed, and they were committed in a term ``<= t`` (the node learned the
  commit index at its current term or earlier). Every leader of a term
  greater than that bound must hold the entry (§5.4.3). A leader of a
  smaller term may legitimately lack it: a stale candidate can win an old
  term with delayed votes after a newer leader committed — so the check uses
  the bound, not wall-clock order. Also: two nodes must never durably commit
  different entries at one index, and a node's durable commit index never
  goes back.

* `StateMachineSafety` — the state machine digest after applying each index
  (a hash chain over the applied payloads, so it pins the whole applied
  prefix, across snapshots too). Two nodes with different digests at one
  index applied different commands. A node may also only apply entries at or
  below its own durable commit index, and in order.

Liveness is not a step invariant; see `SimCluster.check_liveness`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from crdb_py.raft.types import Entry, HardState
from crdb_py.util.errors import InternalError

__all__ = [
    "Checker",
    "ElectionSafety",
    "InvariantViolation",
    "LeaderCompleteness",
    "LogMatching",
    "LogView",
    "StateMachineSafety",
    "all_checkers",
    "check_logs",
]


class InvariantViolation(InternalError):
    """A Raft safety property was violated (a bug in the core or the driver)."""

    def __init__(self, checker: str, msg: str) -> None:
        self.checker = checker
        super().__init__(f"[{checker}] {msg}")


class LogView(Protocol):
    """Read access to one node's durable log (`DurableStorage` is one)."""

    def first_index(self) -> int: ...

    def last_index(self) -> int: ...

    def term(self, i: int) -> int: ...

    def entries(self, lo: int, hi: int, max_size: int | None = None) -> list[Entry]: ...


def _term_or_none(log: LogView, i: int) -> int | None:
    if i < log.first_index() - 1 or i > log.last_index():
        return None
    try:
        return log.term(i)
    except Exception:  # compacted / unavailable in between: unknown
        return None


class Checker:
    """Base: every hook is a no-op. Subclasses raise `InvariantViolation`."""

    name = "checker"

    def on_leader(self, node: int, term: int, log: LogView) -> None:
        """`node` became leader of `term`; `log` is its durable log."""

    def on_persist(
        self, node: int, hard_state: HardState | None, entries: list[Entry], log: LogView
    ) -> None:
        """`node` durably wrote `entries` and/or `hard_state` (log is after the write)."""

    def on_apply(self, node: int, index: int, term: int, digest: bytes, commit: int) -> None:
        """`node` applied entry `index`; `digest` is its state machine digest
        after it; `commit` is the node's durable commit index."""

    def on_restore(self, node: int, index: int, digest: bytes) -> None:
        """`node`'s state machine was reset to a snapshot at `index`."""

    def after_step(self, logs: Mapping[int, LogView], step: int) -> None:
        """Called once per simulated step with every node's durable log."""

    def fail(self, msg: str) -> InvariantViolation:
        return InvariantViolation(self.name, msg)


# ---- election safety -----------------------------------------------------------------


@dataclass
class ElectionSafety(Checker):
    name = "election-safety"
    leaders: dict[int, int] = field(default_factory=dict)

    def on_leader(self, node: int, term: int, log: LogView) -> None:
        prev = self.leaders.setdefault(term, node)
        if prev != node:
            raise self.fail(f"two leaders in term {term}: node {prev} and node {node}")


# ---- log matching --------------------------------------------------------------------


@dataclass
class LogMatching(Checker):
    name = "log-matching"
    full_every: int = 50  # steps between whole-log pairwise comparisons (0 = never)
    # (index, term) -> (type, payload, term of index-1 or None if unknown)
    seen: dict[tuple[int, int], tuple[int, bytes, int | None]] = field(default_factory=dict)

    def on_persist(
        self, node: int, hard_state: HardState | None, entries: list[Entry], log: LogView
    ) -> None:
        if not entries:
            return
        prev = _term_or_none(log, entries[0].index - 1)
        for e in entries:
            key = (e.index, e.term)
            mine = (int(e.type), e.data, prev)
            old = self.seen.get(key)
            if old is None:
                self.seen[key] = mine
            else:
                if old[0] != mine[0] or old[1] != mine[1]:
                    raise self.fail(
                        f"node {node} persisted entry {e.index}@{e.term} = {e.data!r}, "
                        f"another node has {old[1]!r} there"
                    )
                if old[2] is not None and prev is not None and old[2] != prev:
                    raise self.fail(
                        f"node {node} holds entry {e.index}@{e.term} after an entry of term "
                        f"{prev}; another node holds it after term {old[2]}: prefixes differ"
                    )
                if old[2] is None and prev is not None:
                    self.seen[key] = mine
            prev = e.term

    def after_step(self, logs: Mapping[int, LogView], step: int) -> None:
        if self.full_every and step % self.full_every == 0:
            self.check(logs)

    def check(self, logs: Mapping[int, LogView]) -> None:
        try:
            check_logs(logs)
        except InvariantViolation as e:
            raise self.fail(str(e)) from None


def check_logs(logs: Mapping[int, LogView]) -> None:
    """Pairwise whole-log comparison: if two logs agree on the term at some
    index, they hold identical entries at every index below it that both
    still have."""
    snap: dict[int, tuple[int, list[Entry]]] = {}
    for n, log in logs.items():
        first, last = log.first_index(), log.last_index()
        snap[n] = (first, log.entries(first, last + 1) if last >= first else [])
    ids = sorted(snap)
    for x, a in enumerate(ids):
        fa, ea = snap[a]
        for b in ids[x + 1 :]:
            fb, eb = snap[b]
            lo = max(fa, fb)
            hi = min(fa + len(ea), fb + len(eb)) - 1
            # highest index where both logs have the same term
            top = 0
            for i in range(hi, lo - 1, -1):
                if ea[i - fa].term == eb[i - fb].term:
                    top = i
                    break
            for i in range(lo, top + 1):
                x1, x2 = ea[i - fa], eb[i - fb]
                if x1.term != x2.term or x1.data != x2.data or x1.type != x2.type:
                    raise InvariantViolation(
                        "log-matching",
                        f"nodes {a} and {b} agree on the term at index {top} but differ at "
                        f"index {i}: {x1.term}/{x1.data!r} vs {x2.term}/{x2.data!r}",
                    )


# ---- leader completeness -------------------------------------------------------------


@dataclass
class _Committed:
    term: int
    data: bytes
    bound: int  # the entry was committed in a term <= bound


@dataclass
class LeaderCompleteness(Checker):
    name = "leader-completeness"
    committed: dict[int, _Committed] = field(default_factory=dict)
    commit_of: dict[int, int] = field(default_factory=dict)

    def on_persist(
        self, node: int, hard_state: HardState | None, entries: list[Entry], log: LogView
    ) -> None:
        if hard_state is None:
            return
        prev = self.commit_of.get(node, 0)
        c = hard_state.commit
        if c < prev:
            raise self.fail(f"node {node} durable commit index went back from {prev} to {c}")
        self.commit_of[node] = c
        if c == prev:
            return
        if c > log.last_index():
            raise self.fail(
                f"node {node} persisted commit index {c} beyond its last log index {log.last_index()}"
            )
        lo = max(prev + 1, log.first_index())
        if lo > c:
            return
        for e in log.entries(lo, c + 1):
            old = self.committed.get(e.index)
            if old is None:
                self.committed[e.index] = _Committed(e.term, e.data, hard_state.term)
                continue
            if old.term != e.term or old.data != e.data:
                raise self.fail(
                    f"index {e.index} committed twice with different entries: "
                    f"{old.term}/{old.data!r} and, on node {node}, {e.term}/{e.data!r}"
                )
            old.bound = min(old.bound, hard_state.term)

    def on_leader(self, node: int, term: int, log: LogView) -> None:
        first, last = log.first_index(), log.last_index()
        for i, c in self.committed.items():
            if c.bound >= term or i < first - 1:
                continue  # may legitimately be absent / covered by a snapshot
            t = _term_or_none(log, i) if i <= last else None
            if t != c.term:
                raise self.fail(
                    f"node {node} became leader of term {term} without committed entry "
                    f"{i}@{c.term} (committed by term {c.bound}); it has "
                    f"{'nothing' if t is None else f'term {t}'} there"
                )

    def restart(self, node: int, commit: int) -> None:
        self.commit_of[node] = commit


# ---- state machine safety ------------------------------------------------------------


@dataclass
class StateMachineSafety(Checker):
    name = "state-machine-safety"
    digests: dict[int, bytes] = field(default_factory=dict)
    applied_of: dict[int, int] = field(default_factory=dict)

    def on_apply(self, node: int, index: int, term: int, digest: bytes, commit: int) -> None:
        if index > commit:
            raise self.fail(
                f"node {node} applied entry {index}@{term} above its durable commit index {commit}"
            )
        prev = self.applied_of.get(node)
        if prev is not None and index != prev + 1:
            raise self.fail(f"node {node} applied index {index} right after {prev}")
        self.applied_of[node] = index
        self._digest(node, index, digest)

    def on_restore(self, node: int, index: int, digest: bytes) -> None:
        self.applied_of[node] = index
        if index:
            self._digest(node, index, digest)

    def _digest(self, node: int, index: int, digest: bytes) -> None:
        old = self.digests.setdefault(index, digest)
        if old != digest:
            raise self.fail(
                f"node {node} state machine differs from another node's after applying index "
                f"{index}: different commands were applied at or below it"
            )


def all_checkers() -> list[Checker]:
    return [ElectionSafety(), LogMatching(), LeaderCompleteness(), StateMachineSafety()]


def names(checkers: Iterable[Checker]) -> list[str]:
    return [c.name for c in checkers]
