"""The log storage seam of the raft core, and an in-memory implementation.

The core *reads* stable state through `Storage`; the application *writes* it
after each `Ready` (hard state, entries, snapshot) and only then calls
`RawNode.advance`. Entries the core has handed out but not yet seen advanced
live in its own unstable log (`crdb_py/raft/log.py`), so a `Storage` only ever
holds durable state.

Indexes: the storage holds entries `[first_index(), last_index()]`; the entry
just before the first (`first_index() - 1`) is represented by the last
snapshot's (index, term), so `term(first_index() - 1)` is always answerable.
An empty storage has first_index 1, last_index 0.

`MemoryStorage` keeps that dummy entry at `_ents[0]`, like etcd's.
"""

from __future__ import annotations

from typing import Protocol

from crdb_py.raft.errors import (
    CompactedError,
    SnapshotOutOfDateError,
    SnapshotTemporarilyUnavailable,
    UnavailableError,
)
from crdb_py.raft.types import ConfState, Entry, HardState, Snapshot, SnapshotMetadata
from crdb_py.util.errors import InternalError

__all__ = [
    "CompactedError",
    "MemoryStorage",
    "SnapshotOutOfDateError",
    "SnapshotTemporarilyUnavailable",
    "Storage",
    "UnavailableError",
    "entry_size",
    "limit_size",
]


class Storage(Protocol):
    """What the raft core reads. All methods return durable state only."""

    def initial_state(self) -> tuple[HardState, ConfState]: ...

    def entries(self, lo: int, hi: int, max_size: int | None = None) -> list[Entry]:
        """Entries in [lo, hi), at least one if any, at most `max_size` bytes.
        Raises CompactedError if lo < first_index(), UnavailableError if the
        range is not present."""
        ...

    def term(self, i: int) -> int:
        """Term of entry i, for first_index()-1 <= i <= last_index().
        Raises CompactedError / UnavailableError outside."""
        ...

    def first_index(self) -> int: ...

    def last_index(self) -> int: ...

    def snapshot(self) -> Snapshot:
        """The most recent snapshot. Raises SnapshotTemporarilyUnavailable."""
        ...


def entry_size(e: Entry) -> int:
    """Approximate encoded size of an entry (payload plus a fixed header)."""
    return len(e.data) + 16


def limit_size(ents: list[Entry], max_size: int | None) -> list[Entry]:
    """The longest prefix of `ents` within `max_size` bytes, but at least one."""
    if max_size is None or len(ents) <= 1:
        return ents
    size = entry_size(ents[0])
    for i in range(1, len(ents)):
        size += entry_size(ents[i])
        if size > max_size:
            return ents[:i]
    return ents


class MemoryStorage:
    """`Storage` in memory, plus the write side the application uses."""

    __slots__ = ("_conf_state", "_ents", "_hard_state", "_snapshot")

    def __init__(self, conf_state: ConfState | None = None) -> None:
        self._hard_state = HardState()
        # the configuration as of the applied index (what a restart starts with);
        # the snapshot's metadata holds the configuration as of its own index
        self._conf_state = conf_state or ConfState()
        self._snapshot = Snapshot(metadata=SnapshotMetadata(conf_state=self._conf_state))
        # _ents[0] is the dummy entry at the snapshot's (index, term)
        self._ents: list[Entry] = [Entry(term=0, index=0)]

    # ---- read side (Storage) ------------------------------------------------

    def initial_state(self) -> tuple[HardState, ConfState]:
        return self._hard_state, self._conf_state

    @property
    def hard_state(self) -> HardState:
        return self._hard_state

    def first_index(self) -> int:
        return self._ents[0].index + 1

    def last_index(self) -> int:
        return self._ents[0].index + len(self._ents) - 1

    def term(self, i: int) -> int:
        offset = self._ents[0].index
        if i < offset:
            raise CompactedError()
        if i - offset >= len(self._ents):
            raise UnavailableError()
        return self._ents[i - offset].term

    def entries(self, lo: int, hi: int, max_size: int | None = None) -> list[Entry]:
        offset = self._ents[0].index
        if lo <= offset:
            raise CompactedError()
        if hi > self.last_index() + 1:
            raise InternalError(f"entries' hi({hi}) is out of bound lastindex({self.last_index()})")
        if len(self._ents) == 1:
            raise UnavailableError()
        return limit_size(self._ents[lo - offset : hi - offset], max_size)

    def snapshot(self) -> Snapshot:
        return self._snapshot

    # ---- write side ---------------------------------------------------------

    def set_hard_state(self, hs: HardState) -> None:
        self._hard_state = hs

    def set_conf_state(self, cs: ConfState) -> None:
        """Record the configuration (the app calls this when it applies a
        configuration change, so a restart from this storage sees it)."""
        self._conf_state = cs

    @property
    def conf_state(self) -> ConfState:
        return self._conf_state

    def apply_snapshot(self, snap: Snapshot) -> None:
        """Replace the storage's contents with the snapshot."""
        if snap.metadata.index <= self._snapshot.metadata.index:
            raise SnapshotOutOfDateError()
        self._snapshot = snap
        self._conf_state = snap.metadata.conf_state
        self._ents = [Entry(term=snap.metadata.term, index=snap.metadata.index)]

    def create_snapshot(self, index: int, cs: ConfState | None, data: bytes) -> Snapshot:
        """Record a snapshot of the state machine as of `index` (<= applied),
        with `cs` the configuration as of `index` (default: the current one,
        right when snapshotting at the applied index). Follow with
        `compact(index)` to drop the log prefix it covers."""
        if index <= self._snapshot.metadata.index:
            raise SnapshotOutOfDateError()
        offset = self._ents[0].index
        if index > self.last_index():
            raise InternalError(f"snapshot {index} is out of bound lastindex({self.last_index()})")
        md = SnapshotMetadata(
            conf_state=cs if cs is not None else self._conf_state,
            index=index,
            term=self._ents[index - offset].term,
        )
        self._snapshot = Snapshot(data=data, metadata=md)
        return self._snapshot

    def compact(self, compact_index: int) -> None:
        """Discard entries before `compact_index` (the entry at compact_index
        becomes the dummy). The app must not compact beyond its applied index."""
        offset = self._ents[0].index
        if compact_index <= offset:
            raise CompactedError()
        if compact_index > self.last_index():
            raise InternalError(
                f"compact {compact_index} is out of bound lastindex({self.last_index()})"
            )
        i = compact_index - offset
        self._ents = [Entry(term=self._ents[i].term, index=compact_index), *self._ents[i + 1 :]]

    def append(self, entries: list[Entry]) -> None:
        """Append entries, replacing any conflicting suffix (entries at and
        after entries[0].index)."""
        if not entries:
            return
        first = self.first_index()
        last = entries[0].index + len(entries) - 1
        if last < first:
            return  # all already compacted
        if first > entries[0].index:
            entries = entries[first - entries[0].index :]
        offset = entries[0].index - self._ents[0].index
        if len(self._ents) > offset:
            del self._ents[offset:]
            self._ents.extend(entries)
        elif len(self._ents) == offset:
            self._ents.extend(entries)
        else:
            raise InternalError(
                f"missing log entry [last: {self.last_index()}, append at: {entries[0].index}]"
            )
