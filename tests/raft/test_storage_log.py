"""MemoryStorage and the core's RaftLog (stable storage + unstable tail)."""

from __future__ import annotations

import pytest

from crdb_py.raft import (
    CompactedError,
    ConfState,
    Entry,
    HardState,
    MemoryStorage,
    Snapshot,
    SnapshotMetadata,
    SnapshotOutOfDateError,
    UnavailableError,
)
from crdb_py.raft.log import RaftLog
from crdb_py.util.errors import InternalError


def ents(*pairs: tuple[int, int]) -> list[Entry]:
    return [Entry(term=t, index=i) for i, t in pairs]


def storage_3_4_5() -> MemoryStorage:
    """Entries 4 and 5 after a snapshot at 3 (term 3) — etcd's fixture."""
    st = MemoryStorage(ConfState((1,)))
    st.apply_snapshot(Snapshot(metadata=SnapshotMetadata(ConfState((1,)), index=3, term=3)))
    st.append(ents((4, 4), (5, 5)))
    return st


# ---- MemoryStorage ---------------------------------------------------------------------


def test_storage_term() -> None:
    st = storage_3_4_5()
    with pytest.raises(CompactedError):
        st.term(2)
    assert [st.term(i) for i in (3, 4, 5)] == [3, 4, 5]
    with pytest.raises(UnavailableError):
        st.term(6)


def test_storage_entries_and_size_limit() -> None:
    st = storage_3_4_5()
    st.append(ents((6, 6)))
    with pytest.raises(CompactedError):
        st.entries(3, 5)
    assert [e.index for e in st.entries(4, 5)] == [4]
    assert [e.index for e in st.entries(4, 7)] == [4, 5, 6]
    assert [e.index for e in st.entries(4, 7, max_size=0)] == [4]  # at least one
    assert [e.index for e in st.entries(4, 7, max_size=33)] == [4, 5]
    with pytest.raises(InternalError):
        st.entries(4, 8)


def test_storage_first_last_compact() -> None:
    st = storage_3_4_5()
    assert (st.first_index(), st.last_index()) == (4, 5)
    with pytest.raises(CompactedError):
        st.compact(3)
    st.compact(4)
    assert (st.first_index(), st.last_index()) == (5, 5)
    assert st.term(4) == 4
    with pytest.raises(InternalError):
        st.compact(6)


@pytest.mark.parametrize(
    "new,want",
    [
        ([(4, 4), (5, 5)], [(3, 3), (4, 4), (5, 5)]),  # no change
        ([(4, 4), (5, 6), (6, 6)], [(3, 3), (4, 4), (5, 6), (6, 6)]),  # conflict at 5
        ([(6, 5)], [(3, 3), (4, 4), (5, 5), (6, 5)]),  # plain append
        ([(2, 3), (3, 3), (4, 5)], [(3, 3), (4, 5)]),  # overlaps the compacted prefix
        ([(4, 5)], [(3, 3), (4, 5)]),  # truncate from 4
    ],
)
def test_storage_append(new: list[tuple[int, int]], want: list[tuple[int, int]]) -> None:
    st = storage_3_4_5()
    st.append(ents(*new))
    assert [(i, st.term(i)) for i in range(st.first_index() - 1, st.last_index() + 1)] == want


def test_storage_append_gap_is_an_error() -> None:
    st = storage_3_4_5()
    with pytest.raises(InternalError):
        st.append(ents((7, 5)))


def test_storage_snapshots() -> None:
    st = storage_3_4_5()
    s = st.create_snapshot(4, ConfState((1, 2)), b"data")
    assert (s.metadata.index, s.metadata.term, s.data) == (4, 4, b"data")
    assert st.snapshot() == s
    with pytest.raises(SnapshotOutOfDateError):
        st.create_snapshot(3, None, b"")
    with pytest.raises(SnapshotOutOfDateError):
        st.apply_snapshot(Snapshot(metadata=SnapshotMetadata(index=4, term=4)))
    st.apply_snapshot(Snapshot(b"x", SnapshotMetadata(ConfState((1, 2, 3)), index=9, term=7)))
    assert (st.first_index(), st.last_index(), st.term(9)) == (10, 9, 7)
    assert st.initial_state()[1] == ConfState((1, 2, 3))


def test_storage_state() -> None:
    st = MemoryStorage(ConfState((1, 2)))
    st.set_hard_state(HardState(2, 1, 0))
    st.set_conf_state(ConfState((1, 2, 3)))
    assert st.initial_state() == (HardState(2, 1, 0), ConfState((1, 2, 3)))
    assert st.snapshot().metadata.conf_state == ConfState((1, 2))  # as of its index (0)


# ---- RaftLog --------------------------------------------------------------------------


def test_log_unstable_then_stable() -> None:
    st = MemoryStorage()
    log = RaftLog(st)
    assert (log.first_index(), log.last_index()) == (1, 0)
    log.append(ents((1, 1), (2, 1), (3, 2)))
    assert log.last_index() == 3 and log.last_term() == 2
    assert [e.index for e in log.unstable.next_entries()] == [1, 2, 3]
    log.unstable.accept_in_progress()
    assert log.unstable.next_entries() == []
    st.append(ents((1, 1), (2, 1)))
    log.stable_to(2, 1)
    assert [e.index for e in log.unstable.entries] == [3]
    assert [e.index for e in log.entries(1)] == [1, 2, 3]  # storage + unstable


def test_log_stable_to_ignores_replaced_entries() -> None:
    log = RaftLog(MemoryStorage())
    log.append(ents((1, 1), (2, 1)))
    log.unstable.accept_in_progress()
    log.append(ents((2, 2)))  # a new leader replaced entry 2 meanwhile
    log.stable_to(2, 1)  # the Ready that persisted (2, term 1) is advanced
    assert log.unstable.maybe_term(2) == 2
    assert [e.index for e in log.unstable.next_entries()] == [2]  # still to persist


@pytest.mark.parametrize(
    "new,conflict",
    [
        ([], 0), ([(1, 1), (2, 2), (3, 3)], 0), ([(2, 2), (3, 3)], 0), ([(3, 3)], 0),
        ([(1, 1), (2, 2), (3, 3), (4, 4), (5, 4)], 4), ([(4, 4), (5, 4)], 4),
        ([(1, 4), (2, 4)], 1), ([(2, 1), (3, 4), (4, 4)], 2), ([(3, 1), (4, 2)], 3),
    ],
)
def test_log_find_conflict(new: list[tuple[int, int]], conflict: int) -> None:
    log = RaftLog(MemoryStorage())
    log.append(ents((1, 1), (2, 2), (3, 3)))
    assert log.find_conflict(ents(*new)) == conflict


def test_log_find_conflict_by_term() -> None:
    st = storage_3_4_5()
    st.append(ents((6, 5), (7, 7)))
    log = RaftLog(st)
    assert log.find_conflict_by_term(7, 8) == (7, 7)
    assert log.find_conflict_by_term(7, 6) == (6, 5)
    assert log.find_conflict_by_term(7, 4) == (4, 4)
    assert log.find_conflict_by_term(7, 3) == (3, 3)
    assert log.find_conflict_by_term(7, 2) == (2, 0)  # ran into the compacted prefix


def test_log_maybe_append_and_commit() -> None:
    log = RaftLog(MemoryStorage())
    log.append(ents((1, 1), (2, 2), (3, 3)))
    assert log.maybe_append(3, 2, 3, ents((4, 4))) is None  # term mismatch at 3
    assert log.maybe_append(3, 3, 10, ents((4, 4))) == 4
    assert log.committed == 4  # min(leader commit, last new index)
    assert log.maybe_append(1, 1, 4, ents((2, 2))) == 2  # no truncation of a match
    assert log.last_index() == 4
    with pytest.raises(InternalError):
        log.maybe_append(1, 1, 4, ents((2, 9)))  # would overwrite a committed entry


def test_log_commit_rules() -> None:
    log = RaftLog(MemoryStorage())
    log.append(ents((1, 1), (2, 2)))
    assert not log.maybe_commit(2, 1)  # entry 2 is of term 2, not the leader's term 1
    assert log.maybe_commit(2, 2)
    assert not log.maybe_commit(1, 1)  # never moves backwards
    with pytest.raises(InternalError):
        log.commit_to(3)


def test_log_committed_entries_are_handed_out_once() -> None:
    log = RaftLog(MemoryStorage())
    log.append(ents((1, 1), (2, 1), (3, 1)))
    log.commit_to(2)
    assert [e.index for e in log.next_committed_ents()] == [1, 2]
    log.applying = 2
    assert log.next_committed_ents() == []
    log.commit_to(3)
    assert [e.index for e in log.next_committed_ents()] == [3]
    log.applied_to(2)
    assert log.applied == 2


def test_log_restore_snapshot() -> None:
    log = RaftLog(MemoryStorage())
    log.append(ents((1, 1)))
    s = Snapshot(metadata=SnapshotMetadata(ConfState((1,)), index=10, term=3))
    log.restore(s)
    assert (log.first_index(), log.last_index(), log.committed) == (11, 10, 10)
    assert log.term(10) == 3
    assert log.has_pending_snapshot() and log.next_committed_ents() == []
    with pytest.raises(CompactedError):
        log.term(5)
    log.append(ents((11, 3)))
    assert log.last_index() == 11


def test_log_slice_size_limit_spans_storage_and_unstable() -> None:
    st = MemoryStorage()
    st.append([Entry(1, i, data=b"x" * 10) for i in range(1, 4)])
    log = RaftLog(st)
    log.append([Entry(1, i, data=b"x" * 10) for i in range(4, 7)])
    assert [e.index for e in log.slice(1, 7)] == [1, 2, 3, 4, 5, 6]
    assert [e.index for e in log.slice(1, 7, max_size=26 * 4)] == [1, 2, 3, 4]
    assert [e.index for e in log.slice(2, 7, max_size=26)] == [2]
    assert [e.index for e in log.slice(4, 7, max_size=52)] == [4, 5]
