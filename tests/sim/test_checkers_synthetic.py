"""The checkers on hand-made observation streams: each catches its violation
and accepts the legal histories that look like one."""

from __future__ import annotations

import pytest

from crdb_py.raft.errors import CompactedError, UnavailableError
from crdb_py.raft.types import Entry, HardState
from crdb_py.sim.checkers import (
    ElectionSafety,
    InvariantViolation,
    LeaderCompleteness,
    LogMatching,
    StateMachineSafety,
    check_logs,
)


class Log:
    """A minimal LogView: entries [first, last] plus the truncated (index, term)."""

    def __init__(self, *terms: int, first: int = 1, prev_term: int = 0, data: str = "") -> None:
        self.first = first
        self.prev_term = prev_term
        self.ents = [
            Entry(term=t, index=first + k, data=f"{data or 'e'}{first + k}@{t}".encode())
            for k, t in enumerate(terms)
        ]

    def first_index(self) -> int:
        return self.first

    def last_index(self) -> int:
        return self.first + len(self.ents) - 1

    def term(self, i: int) -> int:
        if i == self.first - 1:
            return self.prev_term
        if i < self.first - 1:
            raise CompactedError()
        if i > self.last_index():
            raise UnavailableError()
        return self.ents[i - self.first].term

    def entries(self, lo: int, hi: int, max_size: int | None = None) -> list[Entry]:
        return self.ents[lo - self.first : hi - self.first]


def test_election_safety() -> None:
    c = ElectionSafety()
    c.on_leader(1, 1, Log())
    c.on_leader(1, 1, Log())  # the same leader reported again is fine
    c.on_leader(2, 2, Log())
    with pytest.raises(InvariantViolation, match="two leaders in term 2"):
        c.on_leader(3, 2, Log())


def test_log_matching_same_index_term_different_payload() -> None:
    c = LogMatching()
    a = Log(1, 1, 2)
    c.on_persist(1, None, a.ents, a)
    b = Log(1, 1, 2, data="x")
    with pytest.raises(InvariantViolation, match="log-matching"):
        c.on_persist(2, None, b.ents[2:], b)


def test_log_matching_same_entry_after_different_prefix() -> None:
    c = LogMatching()
    a = Log(1, 1, 3)
    c.on_persist(1, None, a.ents, a)
    # node 2 holds the very same entry 3@3 but after an entry of term 2
    b = Log(1, 2, 3)
    b.ents[2] = a.ents[2]
    with pytest.raises(InvariantViolation, match="prefixes differ"):
        c.on_persist(2, None, b.ents[2:], b)


def test_log_matching_accepts_legal_divergence() -> None:
    c = LogMatching()
    a, b = Log(1, 1, 2), Log(1, 1, 3, 3)
    c.on_persist(1, None, a.ents, a)
    c.on_persist(2, None, b.ents, b)
    check_logs({1: a, 2: b})


def test_check_logs_whole_log_comparison() -> None:
    a = Log(1, 1, 2, 2)
    b = Log(1, 1, 2, 2)
    b.ents[1] = Entry(term=1, index=2, data=b"other")
    with pytest.raises(InvariantViolation, match="differ at index 2"):
        check_logs({1: a, 2: b})
    # compacted logs compare on their overlap only
    check_logs({1: Log(2, 2, first=3, prev_term=1), 2: Log(1, 1, 2, 2)})


def test_leader_completeness() -> None:
    c = LeaderCompleteness()
    log1 = Log(1, 1, 2)
    c.on_persist(1, HardState(term=2, commit=3), [], log1)
    c.on_leader(1, 2, log1)  # bound 2: a leader of term 2 need not be checked
    c.on_leader(2, 2, Log(1))  # (a stale candidate could win term 2 late)
    c.on_leader(3, 3, Log(1, 1, 2, 3))
    with pytest.raises(InvariantViolation, match="without committed entry 3@2"):
        c.on_leader(2, 4, Log(1, 1))
    with pytest.raises(InvariantViolation, match="without committed entry 3@2"):
        c.on_leader(2, 4, Log(1, 1, 3))


def test_leader_completeness_commit_conflicts_and_regressions() -> None:
    c = LeaderCompleteness()
    c.on_persist(1, HardState(term=2, commit=2), [], Log(1, 2))
    with pytest.raises(InvariantViolation, match="committed twice"):
        c.on_persist(2, HardState(term=3, commit=2), [], Log(1, 3))
    c = LeaderCompleteness()
    c.on_persist(1, HardState(term=2, commit=2), [], Log(1, 2))
    with pytest.raises(InvariantViolation, match="went back"):
        c.on_persist(1, HardState(term=2, commit=1), [], Log(1, 2))
    with pytest.raises(InvariantViolation, match="beyond its last log index"):
        LeaderCompleteness().on_persist(1, HardState(term=2, commit=5), [], Log(1, 2))


def test_state_machine_safety() -> None:
    c = StateMachineSafety()
    c.on_restore(1, 0, b"")
    c.on_apply(1, 1, 1, b"d1", commit=1)
    c.on_apply(2, 1, 1, b"d1", commit=1)
    with pytest.raises(InvariantViolation, match="different commands"):
        c.on_apply(3, 1, 1, b"zz", commit=1)
    with pytest.raises(InvariantViolation, match="above its durable commit"):
        c.on_apply(1, 2, 1, b"d2", commit=1)
    with pytest.raises(InvariantViolation, match="right after"):
        c.on_apply(2, 3, 1, b"d3", commit=5)
    # a snapshot with a diverging digest is caught too
    with pytest.raises(InvariantViolation, match="different commands"):
        c.on_restore(4, 1, b"zz")
