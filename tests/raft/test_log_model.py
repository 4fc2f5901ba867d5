"""Property test: the core's log (unstable tail over MemoryStorage, with
Readies handed out and persisted at arbitrary moments, compaction and
snapshots) always reads back exactly like a plain model list."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from crdb_py.raft import ConfState, Entry, MemoryStorage, Snapshot, SnapshotMetadata
from crdb_py.raft.log import RaftLog

ops = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(0, 6), st.integers(1, 4), st.integers(0, 2)),
        st.tuples(st.just("ready")),
        st.tuples(st.just("persist")),
        st.tuples(st.just("commit"), st.integers(0, 10)),
        st.tuples(st.just("compact"), st.integers(0, 10)),
        st.tuples(st.just("snapshot"), st.integers(1, 5)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(ops)
@example(  # a stale entry in storage must not be compacted as if applied
    [("append", 0, 1, 0), ("ready",), ("append", 1, 1, 1), ("ready",), ("persist",),
     ("commit", 1), ("compact", 1), ("persist",)]
)
def test_log_reads_like_a_list(program: list[tuple]) -> None:  # type: ignore[type-arg]
    storage = MemoryStorage(ConfState((1,)))
    log = RaftLog(storage)
    model: dict[int, int] = {0: 0}  # index -> term, including the dummy below first
    snap_index = 0
    handed_out: list[list[Entry]] = []  # Readies' entries, not yet persisted
    pending_snap: Snapshot | None = None
    term = 1
    for op in program:
        kind = op[0]
        last = max(model)
        if kind == "append":
            _, back, n, bump = op
            frm = max(log.committed + 1, last + 1 - back, snap_index + 1)
            term += bump
            ents = [Entry(term, frm + i) for i in range(n)]
            log.append(ents)
            for i in [i for i in model if i >= frm]:
                del model[i]
            model.update((e.index, e.term) for e in ents)
        elif kind == "ready":
            handed_out.append(log.unstable.next_entries())
            if log.unstable.next_snapshot() is not None:
                pending_snap = log.unstable.next_snapshot()
            log.unstable.accept_in_progress()
        elif kind == "persist" and (handed_out or pending_snap):
            if pending_snap is not None:
                storage.apply_snapshot(pending_snap)
                log.stable_snap_to(pending_snap.metadata.index)
                pending_snap = None
            if handed_out:
                ents = handed_out.pop(0)
                if ents:
                    storage.append(ents)  # skips any compacted prefix itself
                    log.stable_to(ents[-1].index, ents[-1].term)
        elif kind == "commit":
            log.commit_to(min(last, log.committed + op[1]))
        elif kind == "compact":
            stable_last = storage.last_index()
            # The app compacts only applied entries, and applies only entries
            # it persisted: never beyond the stable prefix (a stale, since
            # overwritten entry may still sit in storage).
            idx = min(
                log.committed, stable_last, log.unstable.offset - 1,
                storage.first_index() - 1 + op[1],
            )
            if idx >= storage.first_index():
                storage.create_snapshot(idx, None, b"")
                storage.compact(idx)
                snap_index = max(snap_index, idx)
                for i in [i for i in model if i < idx]:
                    del model[i]
        elif kind == "snapshot" and not handed_out and pending_snap is None:
            # a leader's snapshot beyond our log replaces everything
            idx = last + op[1]
            term += 1
            s = Snapshot(metadata=SnapshotMetadata(ConfState((1,)), index=idx, term=term))
            log.restore(s)
            model = {idx: term}
            snap_index = idx
        # the log reads back like the model
        first = log.first_index()
        assert log.last_index() == max(model)
        assert first - 1 == min(model)
        assert [(e.index, e.term) for e in log.all_entries()] == sorted(
            (i, t) for i, t in model.items() if i >= first
        )
        for i, t in model.items():
            assert log.term(i) == t
        assert log.committed <= log.last_index()
