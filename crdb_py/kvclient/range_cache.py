"""The range cache: which range holds a key, and who (probably) leases it.

DistSender routes every request by the addressed key. Looking up the range
descriptor in meta costs a round trip, so descriptors are cached here, sorted
by end key (a `SortedDict` end_key -> entry): the range holding K is the
first entry with end_key > K, if its start_key <= K. For reverse iteration we
need the range holding the key *just before* an exclusive end E: the first
entry with end_key >= E, if its start_key < E.

Staleness. Cached descriptors go stale when ranges split or merge. The cache
never guesses: DistSender evicts an entry when a replica answers
RangeKeyMismatch (inserting the replica's current descriptor when the error
carries one) or when no replica of it can be reached. Inserting a descriptor
evicts every cached entry overlapping it, unless one of those has a higher
generation (the incoming one is then older news and is dropped).

Leaseholders. Each entry remembers the replica believed to hold the lease,
learnt from NotLeaseHolder hints and successful sends. It is only a
preference for the order in which replicas are tried.

Coalescing. Concurrent misses for the same (key, direction) share one
lookup: the first caller runs it, the others await the same future. A lookup
that fails fails for all of them; nothing is cached.

The lookup itself (a meta scan) is injected as `lookup(key, reverse)` so the
cache can be tested without a cluster; DistSender provides it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sortedcontainers import SortedDict

from crdb_py.pb import data_pb2

RangeDescriptor = data_pb2.RangeDescriptor
ReplicaDescriptor = data_pb2.ReplicaDescriptor

LookupFn = Callable[[bytes, bool], Awaitable[RangeDescriptor]]


def contains_key(desc: RangeDescriptor, key: bytes) -> bool:
    return desc.start_key <= key < desc.end_key


def contains_key_inverted(desc: RangeDescriptor, key: bytes) -> bool:
    """Does `desc` hold the key just before the exclusive end `key`?"""
    return desc.start_key < key <= desc.end_key


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """A cached descriptor and the replica believed to hold its lease.

    `desc` is a private copy: treat it as immutable."""

    desc: RangeDescriptor
    leaseholder: ReplicaDescriptor | None = None

    @property
    def range_id(self) -> int:
        return self.desc.range_id


def _copy(desc: RangeDescriptor) -> RangeDescriptor:
    out = RangeDescriptor()
    out.CopyFrom(desc)
    return out


def _overlaps(a: RangeDescriptor, start: bytes, end: bytes) -> bool:
    return a.start_key < end and start < a.end_key


class RangeCache:
    """Range descriptors sorted by end key, with coalesced lookups."""

    def __init__(self, lookup: LookupFn) -> None:
        self._lookup_fn = lookup
        self._by_end: SortedDict = SortedDict()  # end_key -> CacheEntry
        self._end_by_id: dict[int, bytes] = {}  # range_id -> end_key
        self._inflight: dict[tuple[bytes, bool], asyncio.Future[CacheEntry]] = {}
        self.lookups = 0  # meta lookups actually performed (for tests / metrics)

    def __len__(self) -> int:
        return len(self._by_end)

    def entries(self) -> list[CacheEntry]:
        return list(self._by_end.values())

    # ---- reading ------------------------------------------------------------

    def get_cached(self, key: bytes, reverse: bool = False) -> CacheEntry | None:
        """The cached entry holding `key` (or, with `reverse`, the key before
        the exclusive end `key`), or None."""
        if reverse:
            i = self._by_end.bisect_left(key)
        else:
            i = self._by_end.bisect_right(key)
        if i >= len(self._by_end):
            return None
        entry: CacheEntry = self._by_end.peekitem(i)[1]
        ok = contains_key_inverted(entry.desc, key) if reverse else contains_key(entry.desc, key)
        return entry if ok else None

    async def lookup(self, key: bytes, reverse: bool = False) -> CacheEntry:
        """The entry holding `key` (see `get_cached`), from the cache or meta."""
        entry = self.get_cached(key, reverse)
        if entry is not None:
            return entry
        fkey = (key, reverse)
        fut = self._inflight.get(fkey)
        if fut is not None:
            return await asyncio.shield(fut)
        fut = asyncio.get_running_loop().create_future()
        self._inflight[fkey] = fut
        try:
            self.lookups += 1
            desc = await self._lookup_fn(key, reverse)
            ok = contains_key_inverted(desc, key) if reverse else contains_key(desc, key)
            if not ok:
                raise LookupError(
                    f"meta lookup for {key!r} returned r{desc.range_id} "
                    f"[{desc.start_key!r}, {desc.end_key!r}) which does not hold it"
                )
            entry = self.insert(desc) or CacheEntry(_copy(desc))
            fut.set_result(entry)
            return entry
        except asyncio.CancelledError:
            fut.cancel()
            raise
        except BaseException as e:
            fut.set_exception(e)
            fut.exception()  # mark retrieved: waiters may be none
            raise
        finally:
            del self._inflight[fkey]

    # ---- writing ------------------------------------------------------------

    def insert(
        self, desc: RangeDescriptor, leaseholder: ReplicaDescriptor | None = None
    ) -> CacheEntry | None:
        """Cache `desc`, evicting overlapping entries. Returns the new entry,
        or None if an overlapping cached descriptor is newer (higher
        generation) and `desc` was dropped."""
        overlapping = self._overlapping(desc.start_key, desc.end_key)
        for e in overlapping:
            if e.desc.generation > desc.generation:
                return None
            if (
                e.desc.range_id == desc.range_id
                and e.desc.generation == desc.generation
                and e.desc.start_key == desc.start_key
                and e.desc.end_key == desc.end_key
            ):
                # Same descriptor: keep what we know about its lease.
                leaseholder = leaseholder or e.leaseholder
        for e in overlapping:
            self._remove(e)
        entry = CacheEntry(_copy(desc), leaseholder)
        self._by_end[desc.end_key] = entry
        self._end_by_id[desc.range_id] = desc.end_key
        return entry

    def evict(self, desc: RangeDescriptor) -> bool:
        """Drop the cached entry for `desc` if it is still the cached one
        (same range id and generation): a concurrent caller may already have
        replaced it with newer news."""
        e = self._by_end.get(desc.end_key)
        if e is None or e.desc.range_id != desc.range_id or e.desc.generation != desc.generation:
            return False
        self._remove(e)
        return True

    def _remove(self, e: CacheEntry) -> None:
        del self._by_end[e.desc.end_key]
        if self._end_by_id.get(e.desc.range_id) == e.desc.end_key:
            del self._end_by_id[e.desc.range_id]

    def update_leaseholder(self, range_id: int, replica: ReplicaDescriptor) -> bool:
        """Remember `replica` as the leaseholder of `range_id`. Returns False
        if the range is not cached or `replica` is not in its descriptor
        (which means the descriptor is stale)."""
        end = self._end_by_id.get(range_id)
        if end is None:
            return False
        e: CacheEntry = self._by_end[end]
        if e.leaseholder is not None and e.leaseholder == replica:
            return True  # already known (every successful response says so)
        if not any(r.node_id == replica.node_id for r in e.desc.replicas):
            return False
        lh = ReplicaDescriptor()
        lh.CopyFrom(replica)
        self._by_end[end] = CacheEntry(e.desc, lh)
        return True

    def clear(self) -> None:
        self._by_end.clear()
        self._end_by_id.clear()

    def _overlapping(self, start: bytes, end: bytes) -> list[CacheEntry]:
        out = []
        for i in range(self._by_end.bisect_right(start), len(self._by_end)):
            e: CacheEntry = self._by_end.peekitem(i)[1]
            if e.desc.start_key >= end:
                break
            if _overlaps(e.desc, start, end):
                out.append(e)
        return out
