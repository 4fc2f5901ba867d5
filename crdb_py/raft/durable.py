"""Durable raft log storage on an `Engine`: one key space per raft group.

`DurableStorage` is the `Storage` the raft core reads (see
`crdb_py/raft/storage.py`) plus the write side the application drives after
every `Ready`. It keeps everything a replica must find again after a crash:

* the **log entries** ``(term, index, type, data)``;
* the **hard state** ``(term, vote, commit)`` — the vote above all: forgetting
  it lets a node vote twice in a term;
* the **truncated state** ``(index, term)`` of the last entry dropped from the
  log (by compaction or by installing a snapshot), so ``term(first_index-1)``
  keeps answering after truncation — the core needs it for the log-matching
  check of the first retained entry;
* the **conf state** (voters and learners) and the latest **snapshot**
  (metadata and application data).

Key layout (raw, unversioned engine keys; the first three are exactly
`crdb_py.util.keys`)::

    b"\\x00i" + range_id (8 bytes, big endian)   = prefix
        + b"rftl" + index (8 bytes, big endian)  -> term u64 | type u8 | data
        + b"rfth"                                -> term u64 | vote u64 | commit u64
        + b"rftt"                                -> index u64 | term u64
        + b"rftc"                                -> ConfState (raft_pb2)
        + b"rfts"                                -> Snapshot (raft_pb2)

Log entries sort by index, so the log is one contiguous engine span and a
suffix truncation or a compaction is a range of deletes. Entry values are a
fixed 9-byte struct header plus the payload: cheaper to encode than a
protobuf on the hot path, and the index is already in the key.

Atomicity: `save(hard_state, entries, snapshot, batch=...)` writes into a
caller-supplied engine write batch, so a store can put the log writes of many
groups into one synced batch (the Ready contract: persist hard state, entries
and snapshot atomically, then send). Without a batch, `save` makes its own
and writes it synced. The in-memory view (first/last index, the entry cache)
is updated when `save` returns — the caller must then commit the batch before
acting on the Ready; if it crashes instead, the object is dropped with the
process and reopening from the engine finds only what was committed.

Cache: the most recent entries (a bounded tail of the log) live in memory, so
the leader's hot path — `term(i)` for appends and `entries(lo, hi)` for
replication of fresh proposals — does not touch the engine. Misses (lagging
followers, restart) read the engine with one range scan.

The raft package may not import `crdb_py.storage` (layering); the engine is a
duck-typed object with the `Engine` protocol's shape (get / iter_range / put /
delete / new_batch / write(batch, sync=)).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from crdb_py.pb import raft_pb2
from crdb_py.raft.errors import (
    CompactedError,
    SnapshotOutOfDateError,
    SnapshotTemporarilyUnavailable,
    UnavailableError,
)
from crdb_py.raft.types import (
    ConfState,
    Entry,
    EntryType,
    HardState,
    Snapshot,
    SnapshotMetadata,
)
from crdb_py.util import keys as _keys
from crdb_py.util.errors import InternalError

__all__ = [
    "DurableStorage",
    "RaftKeys",
    "TruncatedState",
    "default_raft_keys",
]

_ENTRY_HDR = struct.Struct(">QB")
_HARD_STATE = struct.Struct(">QQQ")
_TRUNCATED = struct.Struct(">QQ")

RAFT_CONF_STATE_SUFFIX = b"rftc"
RAFT_SNAPSHOT_SUFFIX = b"rfts"


# Bytes counted per entry (beyond its payload) against `max_size` limits.
ENTRY_OVERHEAD = 16


class _Reader(Protocol):
    def get(self, key: bytes) -> bytes | None: ...

    def iter_range(
        self, lower: bytes, upper: bytes | None = None, *, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]: ...


class _Writer(Protocol):
    def put(self, key: bytes, value: bytes) -> None: ...

    def delete(self, key: bytes) -> None: ...


@dataclass(frozen=True, slots=True)
class RaftKeys:
    """The engine keys of one raft group.

    `log(index)` must be order-preserving in `index`, and every log key must
    lie in ``[log_lo, log_hi)`` (no other key of the group in between).
    """

    prefix: bytes
    log_prefix: bytes
    hard_state: bytes
    truncated_state: bytes
    conf_state: bytes
    snapshot: bytes

    def log(self, index: int) -> bytes:
        return self.log_prefix + index.to_bytes(8, "big")

    def index_of(self, key: bytes) -> int:
        return int.from_bytes(key[len(self.log_prefix) :], "big")

    @property
    def log_lo(self) -> bytes:
        return self.log_prefix

    @property
    def log_hi(self) -> bytes:
        return _keys.prefix_end(self.log_prefix)


def default_raft_keys(range_id: int) -> RaftKeys:
    """The range-ID-local raft keys of `crdb_py.util.keys`, plus conf state and
    snapshot keys under the same prefix."""
    prefix = _keys.range_id_prefix(range_id)
    return RaftKeys(
        prefix=prefix,
        log_prefix=_keys.raft_log_prefix(range_id),
        hard_state=_keys.raft_hard_state_key(range_id),
        truncated_state=_keys.raft_truncated_state_key(range_id),
        conf_state=prefix + RAFT_CONF_STATE_SUFFIX,
        snapshot=prefix + RAFT_SNAPSHOT_SUFFIX,
    )


@dataclass(frozen=True, slots=True)
class TruncatedState:
    """The last entry removed from the log: `term(index)` still answers."""

    index: int = 0
    term: int = 0


# ---- encoding ----------------------------------------------------------------------


def encode_entry(e: Entry) -> bytes:
    return _ENTRY_HDR.pack(e.term, int(e.type)) + e.data


def decode_entry(index: int, v: bytes) -> Entry:
    term, typ = _ENTRY_HDR.unpack_from(v)
    return Entry(term=term, index=index, type=EntryType(typ), data=bytes(v[_ENTRY_HDR.size :]))


def encode_hard_state(hs: HardState) -> bytes:
    return _HARD_STATE.pack(hs.term, hs.vote, hs.commit)


def decode_hard_state(v: bytes) -> HardState:
    term, vote, commit = _HARD_STATE.unpack(v)
    return HardState(term=term, vote=vote, commit=commit)


def _conf_state_pb(cs: ConfState) -> raft_pb2.ConfState:
    return raft_pb2.ConfState(voters=list(cs.voters), learners=list(cs.learners))


def _conf_state_from_pb(p: raft_pb2.ConfState) -> ConfState:
    return ConfState(voters=tuple(p.voters), learners=tuple(p.learners))


def encode_snapshot(s: Snapshot) -> bytes:
    md = s.metadata
    return raft_pb2.Snapshot(
        data=s.data,
        metadata=raft_pb2.SnapshotMetadata(
            conf_state=_conf_state_pb(md.conf_state), index=md.index, term=md.term
        ),
    ).SerializeToString()


def decode_snapshot(v: bytes) -> Snapshot:
    p = raft_pb2.Snapshot.FromString(v)
    md = p.metadata
    return Snapshot(
        data=p.data,
        metadata=SnapshotMetadata(
            conf_state=_conf_state_from_pb(md.conf_state), index=md.index, term=md.term
        ),
    )


# ---- the storage -------------------------------------------------------------------


class DurableStorage:
    """Raft `Storage` for one group, persisted in `engine` under `keys`.

    Reads are served from memory where possible; writes go to the engine (or
    to the caller's batch). Reopening a `DurableStorage` over the same engine
    recovers exactly the persisted state.
    """

    __slots__ = (
        "_cache",
        "_cache_entries",
        "_cache_lo",
        "_conf_state",
        "_engine",
        "_hard_state",
        "_last",
        "_snapshot",
        "_truncated",
        "keys",
        "range_id",
    )

    def __init__(
        self,
        engine: Any,
        range_id: int,
        *,
        keys: RaftKeys | None = None,
        cache_entries: int = 4096,
    ) -> None:
        self._engine = engine
        self.range_id = range_id
        self.keys = keys if keys is not None else default_raft_keys(range_id)
        self._cache_entries = max(1, cache_entries)
        k = self.keys

        v = engine.get(k.hard_state)
        self._hard_state = decode_hard_state(v) if v is not None else HardState()
        v = engine.get(k.truncated_state)
        self._truncated = (
            TruncatedState(*_TRUNCATED.unpack(v)) if v is not None else TruncatedState()
        )
        v = engine.get(k.conf_state)
        self._conf_state = (
            _conf_state_from_pb(raft_pb2.ConfState.FromString(v)) if v is not None else ConfState()
        )
        v = engine.get(k.snapshot)
        self._snapshot: Snapshot | None = decode_snapshot(v) if v is not None else None

        self._last = self._truncated.index
        lo_key, hi_key = k.log_lo, k.log_hi  # outlive the iterator (see entries)
        it = engine.iter_range(lo_key, hi_key, reverse=True)
        try:
            top = next(it, None)
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()  # don't keep an engine iterator alive (rocksdict reopen)
        if top is not None:
            self._last = max(self._last, k.index_of(top[0]))
        # Cache: entries [_cache_lo, _last] when non-empty, contiguous tail.
        self._cache: list[Entry] = []
        self._cache_lo = self._last + 1

    # ---- Storage (read side) -----------------------------------------------------

    def initial_state(self) -> tuple[HardState, ConfState]:
        return self._hard_state, self._conf_state

    def first_index(self) -> int:
        return self._truncated.index + 1

    def last_index(self) -> int:
        return self._last

    def truncated_state(self) -> TruncatedState:
        return self._truncated

    def hard_state(self) -> HardState:
        return self._hard_state

    def conf_state(self) -> ConfState:
        return self._conf_state

    def term(self, i: int) -> int:
        t = self._truncated
        if i == t.index:
            return t.term
        if i < t.index:
            raise CompactedError(f"raft log index {i} compacted (truncated at {t.index})")
        if i > self._last:
            raise UnavailableError(f"raft log index {i} beyond last index {self._last}")
        if i >= self._cache_lo:
            return self._cache[i - self._cache_lo].term
        v = self._engine.get(self.keys.log(i))
        if v is None:
            raise InternalError(f"raft log entry {i} missing in [{t.index + 1}, {self._last}]")
        return _ENTRY_HDR.unpack_from(v)[0]

    def entries(self, lo: int, hi: int, max_size: int | None = None) -> list[Entry]:
        """Entries [lo, hi), at least one (if any) and at most `max_size` bytes."""
        if lo <= self._truncated.index:
            raise CompactedError(
                f"raft log index {lo} compacted (truncated at {self._truncated.index})"
            )
        if hi > self._last + 1:
            raise UnavailableError(f"raft log index {hi - 1} beyond last index {self._last}")
        if lo >= hi:
            return []
        out: list[Entry] = []
        size = 0
        if lo < self._cache_lo:
            k = self.keys
            end = min(hi, self._cache_lo)
            expect = lo
            # Bounds bound to locals: they must outlive the iterator (with
            # rocksdict the upper bound is referenced, not copied).
            lo_key, hi_key = k.log(lo), k.log(end)
            for key, v in self._engine.iter_range(lo_key, hi_key):
                idx = k.index_of(key)
                if idx != expect:
                    raise InternalError(f"raft log gap: expected entry {expect}, found {idx}")
                e = decode_entry(idx, v)
                size += len(e.data) + ENTRY_OVERHEAD
                if out and max_size is not None and size > max_size:
                    return out
                out.append(e)
                expect += 1
            if expect != end:
                raise InternalError(f"raft log gap: entries [{expect}, {end}) missing")
            lo = end
        if lo < hi:
            c = self._cache
            base = self._cache_lo
            for i in range(lo - base, hi - base):
                e = c[i]
                size += len(e.data) + ENTRY_OVERHEAD
                if out and max_size is not None and size > max_size:
                    return out
                out.append(e)
        return out

    def snapshot(self) -> Snapshot:
        if self._snapshot is None:
            if self._truncated.index == 0:
                return Snapshot(metadata=SnapshotMetadata(conf_state=self._conf_state))
            raise SnapshotTemporarilyUnavailable("no snapshot stored for the truncated log")
        return self._snapshot

    # ---- write side -------------------------------------------------------------

    def save(
        self,
        hard_state: HardState | None = None,
        entries: list[Entry] | None = None,
        snapshot: Snapshot | None = None,
        batch: _Writer | None = None,
    ) -> None:
        """Persist one Ready's durable part: snapshot first, then entries, then
        the hard state, all into `batch` (or one synced batch of our own)."""
        own = batch is None
        b: Any = self._engine.new_batch() if own else batch
        if snapshot is not None and not snapshot.is_empty():
            self._apply_snapshot(snapshot, b)
        if entries:
            self._append(entries, b)
        if hard_state is not None:
            b.put(self.keys.hard_state, encode_hard_state(hard_state))
            self._hard_state = hard_state
        if own:
            self._engine.write(b, sync=True)

    def set_hard_state(self, hs: HardState, batch: _Writer | None = None) -> None:
        self.save(hard_state=hs, batch=batch)

    def append(self, entries: list[Entry], batch: _Writer | None = None) -> None:
        self.save(entries=entries, batch=batch)

    def apply_snapshot(self, snap: Snapshot, batch: _Writer | None = None) -> None:
        self.save(snapshot=snap, batch=batch)

    def set_conf_state(self, cs: ConfState, batch: _Writer | None = None) -> None:
        self._write(
            lambda b: b.put(self.keys.conf_state, _conf_state_pb(cs).SerializeToString()), batch
        )
        self._conf_state = cs

    def create_snapshot(
        self, index: int, cs: ConfState | None, data: bytes, batch: _Writer | None = None
    ) -> Snapshot:
        """Record a snapshot of the state machine as of applied `index` (which
        must be in the log). Does not truncate: call `compact` for that."""
        if self._snapshot is not None and index <= self._snapshot.metadata.index:
            raise SnapshotOutOfDateError(
                f"snapshot at {index} is not newer than stored snapshot at {self._snapshot.metadata.index}"
            )
        if index > self._last:
            raise UnavailableError(f"snapshot index {index} beyond last index {self._last}")
        snap = Snapshot(
            data=data,
            metadata=SnapshotMetadata(
                conf_state=cs if cs is not None else self._conf_state,
                index=index,
                term=self.term(index),
            ),
        )
        self._write(lambda b: b.put(self.keys.snapshot, encode_snapshot(snap)), batch)
        self._snapshot = snap
        return snap

    def compact(self, compact_index: int, batch: _Writer | None = None) -> None:
        """Drop entries up to and including `compact_index`; remember its term
        in the truncated state. A no-op if already compacted that far."""
        if compact_index <= self._truncated.index:
            return
        if compact_index > self._last:
            raise UnavailableError(f"compact index {compact_index} beyond last index {self._last}")
        term = self.term(compact_index)
        lo = self._truncated.index + 1
        k = self.keys

        def w(b: Any) -> None:
            for i in range(lo, compact_index + 1):
                b.delete(k.log(i))
            b.put(k.truncated_state, _TRUNCATED.pack(compact_index, term))

        self._write(w, batch)
        self._truncated = TruncatedState(compact_index, term)
        if compact_index >= self._cache_lo:
            del self._cache[: compact_index + 1 - self._cache_lo]
            self._cache_lo = compact_index + 1

    def truncate(self, index: int, batch: _Writer | None = None) -> None:
        """Alias of `compact` in CockroachDB's words (log truncation)."""
        self.compact(index, batch)

    # ---- internals ---------------------------------------------------------------

    def _write(self, fn: Any, batch: _Writer | None) -> None:
        if batch is not None:
            fn(batch)
            return
        b = self._engine.new_batch()
        fn(b)
        self._engine.write(b, sync=True)

    def _append(self, entries: list[Entry], b: Any) -> None:
        first = entries[0].index
        if first <= self._truncated.index:
            # The prefix at or below the truncation point is already committed
            # and applied; raft only resends it after a snapshot race. Skip it.
            entries = [e for e in entries if e.index > self._truncated.index]
            if not entries:
                return
            first = entries[0].index
        if first > self._last + 1:
            raise InternalError(
                f"raft log append at {first} leaves a gap after last index {self._last}"
            )
        k = self.keys
        for e in entries:
            b.put(k.log(e.index), encode_entry(e))
        new_last = entries[-1].index
        # Entries past the new tail are a conflicting suffix: delete them.
        for i in range(new_last + 1, self._last + 1):
            b.delete(k.log(i))
        self._last = new_last
        # Cache invariant: it holds exactly [_cache_lo, _last], contiguous.
        c = self._cache
        if first < self._cache_lo:
            self._cache = c = []
            self._cache_lo = first
        else:
            del c[first - self._cache_lo :]
        c.extend(entries)
        over = len(c) - self._cache_entries
        if over > 0:
            del c[:over]
            self._cache_lo += over

    def _apply_snapshot(self, snap: Snapshot, b: Any) -> None:
        md = snap.metadata
        if md.index <= self._truncated.index:
            raise SnapshotOutOfDateError(
                f"snapshot at {md.index} is older than truncated state at {self._truncated.index}"
            )
        k = self.keys
        for i in range(self._truncated.index + 1, self._last + 1):
            b.delete(k.log(i))
        b.put(k.truncated_state, _TRUNCATED.pack(md.index, md.term))
        b.put(k.conf_state, _conf_state_pb(md.conf_state).SerializeToString())
        b.put(k.snapshot, encode_snapshot(snap))
        self._truncated = TruncatedState(md.index, md.term)
        self._conf_state = md.conf_state
        self._snapshot = snap
        self._last = md.index
        self._cache = []
        self._cache_lo = md.index + 1
