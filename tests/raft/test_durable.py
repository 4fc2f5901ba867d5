"""DurableStorage: the raft log, hard state and truncated state on an Engine.

Every test runs on both real engines (MemEngine and RocksEngine); restart
tests drop the storage object (and, for RocksDB, close and reopen the
engine) and check that exactly the persisted state comes back.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crdb_py.raft.durable import DurableStorage, RaftKeys, decode_entry, default_raft_keys
from crdb_py.raft.errors import (
    CompactedError,
    SnapshotOutOfDateError,
    SnapshotTemporarilyUnavailable,
    UnavailableError,
)
from crdb_py.raft.storage import MemoryStorage
from crdb_py.raft.types import ConfState, Entry, EntryType, HardState, Snapshot, SnapshotMetadata
from crdb_py.storage.mem import MemEngine
from crdb_py.storage.rocks import RocksEngine
from crdb_py.util import keys


class _Env:
    """An engine that can be "restarted" (closed and reopened from disk)."""

    def __init__(self, kind: str, path: str) -> None:
        self.kind = kind
        self.path = path
        self.engine = MemEngine() if kind == "mem" else RocksEngine(path)

    def restart(self) -> None:
        if self.kind == "rocks":
            self.engine.close()
            self.engine = RocksEngine(self.path)
        # MemEngine: the engine object *is* the durable state.


@pytest.fixture(params=["mem", "rocks"])
def env(request: pytest.FixtureRequest, tmp_path) -> Iterator[_Env]:
    e = _Env(request.param, str(tmp_path / "db"))
    yield e
    e.engine.close()


def ents(
    *pairs: tuple[int, int], data: Callable[[int], bytes] = lambda i: b"d%d" % i
) -> list[Entry]:
    return [Entry(term=t, index=i, data=data(i)) for i, t in pairs]


def log_keys(engine, k: RaftKeys) -> list[int]:  # type: ignore[no-untyped-def]
    lo, hi = k.log_lo, k.log_hi  # bounds must outlive the iterator (rocksdict)
    return [k.index_of(key) for key, _ in engine.iter_range(lo, hi)]


def state(s: DurableStorage) -> tuple:
    first, last = s.first_index(), s.last_index()
    log = s.entries(first, last + 1) if last >= first else []
    return (
        s.initial_state(),
        first,
        last,
        s.term(first - 1),
        [(e.index, e.term, e.type, e.data) for e in log],
        s.truncated_state(),
    )


def test_keys_match_util_keys() -> None:
    k = default_raft_keys(7)
    assert k.log(42) == keys.raft_log_key(7, 42)
    assert k.hard_state == keys.raft_hard_state_key(7)
    assert k.truncated_state == keys.raft_truncated_state_key(7)
    assert k.log(1).startswith(keys.raft_log_prefix(7))
    assert k.log(1) == b"\x00i" + (7).to_bytes(8, "big") + b"rftl" + (1).to_bytes(8, "big")
    for key in (k.conf_state, k.snapshot, k.hard_state, k.truncated_state):
        assert key.startswith(keys.range_id_prefix(7))
        assert not (k.log_lo <= key < k.log_hi)


def test_empty_storage(env: _Env) -> None:
    s = DurableStorage(env.engine, 1)
    assert s.initial_state() == (HardState(), ConfState())
    assert (s.first_index(), s.last_index()) == (1, 0)
    assert s.term(0) == 0
    with pytest.raises(UnavailableError):
        s.term(1)
    assert s.entries(1, 1) == []
    assert s.snapshot().is_empty()


def test_append_read_and_restart(env: _Env) -> None:
    s = DurableStorage(env.engine, 3)
    s.set_conf_state(ConfState(voters=(1, 2, 3)))
    s.save(HardState(term=2, vote=1, commit=2), ents((1, 1), (2, 1), (3, 2)))
    assert s.last_index() == 3
    assert s.term(3) == 2
    assert [e.data for e in s.entries(1, 4)] == [b"d1", b"d2", b"d3"]
    before = state(s)
    env.restart()
    s2 = DurableStorage(env.engine, 3)
    assert state(s2) == before
    assert s2.initial_state() == (HardState(term=2, vote=1, commit=2), ConfState(voters=(1, 2, 3)))


def test_groups_are_isolated(env: _Env) -> None:
    a, b = DurableStorage(env.engine, 1), DurableStorage(env.engine, 2)
    a.save(HardState(term=5, vote=1), ents((1, 5), (2, 5)))
    b.save(HardState(term=1), ents((1, 1)))
    a2, b2 = DurableStorage(env.engine, 1), DurableStorage(env.engine, 2)
    assert a2.last_index() == 2 and b2.last_index() == 1
    assert a2.initial_state()[0].term == 5 and b2.initial_state()[0].term == 1


def test_conflicting_suffix_is_replaced(env: _Env) -> None:
    s = DurableStorage(env.engine, 1, cache_entries=2)
    s.append(ents((1, 1), (2, 1), (3, 1), (4, 1), (5, 1)))
    s.append(ents((3, 2), (4, 2), data=lambda i: b"new%d" % i))
    assert s.last_index() == 4
    got = [(e.index, e.term, e.data) for e in s.entries(1, 5)]
    assert got == [(1, 1, b"d1"), (2, 1, b"d2"), (3, 2, b"new3"), (4, 2, b"new4")]
    with pytest.raises(UnavailableError):
        s.entries(1, 6)
    env.restart()
    s2 = DurableStorage(env.engine, 1)
    assert s2.last_index() == 4
    assert [(e.index, e.term, e.data) for e in s2.entries(1, 5)] == got
    # no stale entry 5 left on the engine
    k = s2.keys
    assert log_keys(env.engine, k) == [1, 2, 3, 4]


def test_append_gap_is_an_error(env: _Env) -> None:
    s = DurableStorage(env.engine, 1)
    s.append(ents((1, 1)))
    with pytest.raises(Exception, match="gap"):
        s.append(ents((3, 1)))


def test_compact_and_truncated_state_survive_restart(env: _Env) -> None:
    s = DurableStorage(env.engine, 1)
    s.save(HardState(term=3, commit=6), ents(*[(i, 1 + i // 3) for i in range(1, 7)]))
    s.create_snapshot(4, ConfState(voters=(1,)), b"sm@4")
    s.compact(4)
    assert (s.first_index(), s.last_index()) == (5, 6)
    assert s.term(4) == 2  # truncated state answers for first_index - 1
    with pytest.raises(CompactedError):
        s.term(3)
    with pytest.raises(CompactedError):
        s.entries(4, 6)
    assert [e.index for e in s.entries(5, 7)] == [5, 6]
    s.compact(2)  # already compacted: no-op
    before = state(s)
    env.restart()
    s2 = DurableStorage(env.engine, 1)
    assert state(s2) == before
    assert s2.truncated_state() == s.truncated_state()
    snap = s2.snapshot()
    assert (snap.data, snap.metadata.index, snap.metadata.term) == (b"sm@4", 4, 2)
    assert snap.metadata.conf_state == ConfState(voters=(1,))
    k = s2.keys
    assert log_keys(env.engine, k) == [5, 6]


def test_compact_beyond_last_index_fails(env: _Env) -> None:
    s = DurableStorage(env.engine, 1)
    s.append(ents((1, 1)))
    with pytest.raises(UnavailableError):
        s.compact(2)


def test_snapshot_unavailable_after_compaction_without_one(env: _Env) -> None:
    s = DurableStorage(env.engine, 1)
    s.append(ents((1, 1), (2, 1)))
    s.compact(1)
    with pytest.raises(SnapshotTemporarilyUnavailable):
        s.snapshot()


def test_apply_snapshot_replaces_log(env: _Env) -> None:
    s = DurableStorage(env.engine, 1)
    s.append(ents((1, 1), (2, 1), (3, 1)))
    snap = Snapshot(
        data=b"state",
        metadata=SnapshotMetadata(conf_state=ConfState(voters=(1, 2)), index=10, term=4),
    )
    s.save(HardState(term=4, commit=10), None, snap)
    assert (s.first_index(), s.last_index(), s.term(10)) == (11, 10, 4)
    assert s.initial_state() == (HardState(term=4, commit=10), ConfState(voters=(1, 2)))
    with pytest.raises(SnapshotOutOfDateError):
        s.apply_snapshot(snap)
    s.append(ents((11, 4)))
    before = state(s)
    env.restart()
    s2 = DurableStorage(env.engine, 1)
    assert state(s2) == before
    assert s2.snapshot() == snap
    k = s2.keys
    assert log_keys(env.engine, k) == [11]


def test_save_into_caller_batch_is_atomic(env: _Env) -> None:
    a, b = DurableStorage(env.engine, 1), DurableStorage(env.engine, 2)
    batch = env.engine.new_batch()
    a.save(HardState(term=1, vote=1), ents((1, 1)), batch=batch)
    b.save(HardState(term=2, vote=2), ents((1, 2)), batch=batch)
    # nothing reached the engine yet: a fresh view sees empty storage
    assert DurableStorage(env.engine, 1).last_index() == 0
    assert DurableStorage(env.engine, 2).initial_state()[0] == HardState()
    env.engine.write(batch, sync=True)
    assert DurableStorage(env.engine, 1).initial_state()[0] == HardState(term=1, vote=1)
    assert DurableStorage(env.engine, 2).term(1) == 2


def test_max_size_limits_entries_but_returns_at_least_one(env: _Env) -> None:
    s = DurableStorage(env.engine, 1, cache_entries=3)
    s.append([Entry(term=1, index=i, data=b"x" * 100) for i in range(1, 11)])
    assert len(s.entries(1, 11, max_size=1)) == 1
    assert len(s.entries(1, 11, max_size=2 * 116)) == 2
    assert len(s.entries(1, 11, max_size=0)) == 1
    assert len(s.entries(1, 11)) == 10
    # the limit also applies across the engine/cache boundary
    assert len(s.entries(6, 11, max_size=4 * 116)) == 4


def test_entry_encoding_roundtrip() -> None:
    from crdb_py.raft.durable import encode_entry

    e = Entry(term=2**40, index=9, type=EntryType.CONF_CHANGE, data=b"\x00\xff" * 3)
    assert decode_entry(9, encode_entry(e)) == e


def test_injected_keys(env: _Env) -> None:
    p = b"\x00custom"
    k = RaftKeys(
        prefix=p,
        log_prefix=p + b"L",
        hard_state=p + b"H",
        truncated_state=p + b"T",
        conf_state=p + b"C",
        snapshot=p + b"S",
    )
    s = DurableStorage(env.engine, 1, keys=k)
    s.save(HardState(term=1), ents((1, 1)))
    assert env.engine.get(p + b"L" + (1).to_bytes(8, "big")) is not None
    assert DurableStorage(env.engine, 1).last_index() == 0
    assert DurableStorage(env.engine, 1, keys=k).last_index() == 1


# ---- differential: DurableStorage behaves like MemoryStorage ----------------------

ops = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(0, 6), st.integers(1, 4), st.integers(0, 3)),
        st.tuples(st.just("compact"), st.integers(0, 6)),
        st.tuples(st.just("restart")),
    ),
    max_size=25,
)


@settings(max_examples=60, deadline=None)
@given(ops=ops, cache=st.integers(1, 5))
def test_matches_memory_storage(ops: list[tuple], cache: int) -> None:
    engine = MemEngine()
    d = DurableStorage(engine, 1, cache_entries=cache)
    m = MemoryStorage()
    term = 1
    for op in ops:
        if op[0] == "append":
            _, back, n, bump = op
            term += bump
            start = max(m.first_index(), m.last_index() + 1 - back)
            new = [Entry(term=term, index=start + i, data=b"%d/%d" % (term, i)) for i in range(n)]
            m.append(list(new))
            d.append(list(new))
        elif op[0] == "compact":
            idx = m.first_index() + op[1]
            if idx > m.last_index():
                continue
            m.compact(idx)
            d.compact(idx)
        else:
            d = DurableStorage(engine, 1, cache_entries=cache)
        assert (d.first_index(), d.last_index()) == (m.first_index(), m.last_index())
        lo, hi = m.first_index(), m.last_index()
        assert d.term(lo - 1) == m.term(lo - 1)
        if hi >= lo:
            assert [(e.index, e.term, e.data) for e in d.entries(lo, hi + 1)] == [
                (e.index, e.term, e.data) for e in m.entries(lo, hi + 1)
            ]
            r = random.Random(len(ops))
            a = r.randint(lo, hi)
            b = r.randint(a, hi)
            assert [e.data for e in d.entries(a, b + 1)] == [e.data for e in m.entries(a, b + 1)]
