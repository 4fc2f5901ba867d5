"""The timestamp cache: the highest timestamp at which each key was read.

Why it exists
-------------
MVCC lets a read at ts R proceed without leaving anything in storage. Without
a record of it, a later write at W <= R to a key the read saw would rewrite
history under the reader: the reader saw "no value at R", but now there is
one. The leaseholder therefore remembers, for every key span read, the
highest read timestamp; a write whose timestamp is at or below that is
**pushed** to just above it (`get_max(...)[0].next()`). A transaction's own
reads do not push its own writes, so each entry also keeps the id of the txn
that owns the maximum — or None when two different readers (or a
non-transactional read) share it.

Invariant (the one the parallel-commit model checks): for every key the value
returned by `get_max` never decreases, and is never below the timestamp of any
read ever recorded over that key on this lease.

The low-water mark
------------------
Everything below the **low-water mark** is treated as read. A new leaseholder
knows nothing about reads served by the previous one, so it starts with the
low-water mark at the lease start: no write below the start of its lease can
sneak under a read the old leaseholder served. `set_low_water` only moves it
forward.

Bounded memory
--------------
The cache is a piecewise-constant function over the key space: a `SortedDict`
of boundary keys, each mapping to the (ts, txn id) that holds from that key up
to the next boundary (None = nothing recorded above the low-water mark). An add
splits at most two segments and ratchets the ones it covers; adjacent equal
segments are merged, so repeated reads of the same keys do not grow it.

When its approximate size passes the budget, the cache evicts by **ratcheting
the low-water mark** up to the median timestamp it holds and dropping every
entry at or below it. The lowest timestamps are the oldest reads, so this is
"evict the oldest half"; and since the low-water mark then covers every dropped
entry, `get_max` can only answer higher than before, never lower — the safety
property. The cost is that some writes are pushed that need not be (their
transactions may have to refresh). Eviction is O(n) and halves n, so it is
amortised O(1) per add.

Ties and txn ids: the maximum over a span is owned by txn T only if every
contribution at that timestamp comes from T. A contribution with txn id None,
or a tie with the low-water mark, makes the owner None — the caller then pushes
even the txn's own writes, which is safe.

Rejected: CockroachDB's interval skiplist with rotating pages (it exists for
lock-free concurrency across goroutines; one asyncio loop needs none); an
interval list scanned linearly (O(n) lookups); keeping every read and
answering with a max-query (unbounded memory and slower lookups).

Threading: one instance per leaseholder replica, used from one event loop.
See `docs/design/concurrency.md`.
"""

from __future__ import annotations

from sortedcontainers import SortedDict

from crdb_py.util.errors import InvalidArgumentError
from crdb_py.util.hlc import Timestamp

DEFAULT_MAX_BYTES = 64 << 20
# Approximate bytes one boundary costs beyond its key: SortedDict slot and list
# entry, the value tuple, and the Timestamp it points to.
ENTRY_OVERHEAD_BYTES = 160

# A segment value: (timestamp, owning txn id or None).
_Value = tuple[Timestamp, bytes | None]


def _ratchet(cur: _Value | None, ts: Timestamp, txn_id: bytes | None) -> _Value:
    if cur is None or cur[0] < ts:
        return (ts, txn_id)
    if cur[0] == ts and cur[1] != txn_id:
        return (ts, None)
    return cur


class TimestampCache:
    """Maximum read timestamps over key spans, with a low-water mark.

    >>> c = TimestampCache(Timestamp(10))
    >>> c.add(b"a", b"c", Timestamp(20), b"t1")
    >>> c.add(b"b", None, Timestamp(30), b"t2")
    >>> c.get_max(b"a")
    (Timestamp(wall_time=20, logical=0), b't1')
    >>> c.get_max(b"a", b"z")
    (Timestamp(wall_time=30, logical=0), b't2')
    >>> c.get_max(b"x")
    (Timestamp(wall_time=10, logical=0), None)
    """

    def __init__(self, low_water: Timestamp, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_bytes <= 0:
            raise InvalidArgumentError(f"timestamp cache budget must be positive, got {max_bytes}")
        self._low_water = low_water
        self._max_bytes = max_bytes
        self._bounds: SortedDict = SortedDict()  # key -> _Value | None
        self._bytes = 0
        self.evictions = 0  # how many times eviction ratcheted the low-water mark

    # ---- public interface --------------------------------------------------

    @property
    def low_water(self) -> Timestamp:
        return self._low_water

    def add(self, start: bytes, end: bytes | None, ts: Timestamp, txn_id: bytes | None) -> None:
        """Record a read of `[start, end)` (or of the key `start` when `end` is
        None/empty) at `ts` by `txn_id` (None for a non-transactional read)."""
        end_key = _end(start, end)
        if ts <= self._low_water:
            return  # the low-water mark already answers at least this, owner None
        if not end:
            self._add_point(start, end_key, ts, txn_id)
        else:
            self._add_span(start, end_key, ts, txn_id)
        if self._bytes > self._max_bytes:
            self._evict()

    def get_max(self, start: bytes, end: bytes | None = None) -> tuple[Timestamp, bytes | None]:
        """The highest read timestamp over `[start, end)` (or the key `start`),
        at least the low-water mark, and the txn owning it if it is unique."""
        end_key = _end(start, end)
        best: _Value = (self._low_water, None)
        bounds = self._bounds
        idx = bounds.bisect_right(start) - 1
        if idx >= 0:
            v = bounds.peekitem(idx)[1]
            if v is not None:
                best = _ratchet(best, *v)
        if end:  # (no key lies strictly between a point and its successor)
            for k in bounds.irange(start, end_key, inclusive=(False, False)):
                v = bounds[k]
                if v is not None:
                    best = _ratchet(best, *v)
        return best

    def push_write_ts(
        self, start: bytes, end: bytes | None, ts: Timestamp, txn_id: bytes | None
    ) -> Timestamp:
        """The timestamp a write of `[start, end)` proposed at `ts` by `txn_id`
        must move to: `ts` itself, or just above the highest read of the span
        by anyone else. A write without a txn (`txn_id` None) owns no read."""
        read_ts, owner = self.get_max(start, end)
        if ts > read_ts or (txn_id is not None and owner == txn_id):
            return ts
        return read_ts.next()

    def set_low_water(self, ts: Timestamp) -> None:
        """Move the low-water mark forward to `ts` (a smaller `ts` is ignored:
        the cache never moves backwards). Entries at or below it are dropped."""
        if ts <= self._low_water:
            return
        self._low_water = ts
        self._prune()

    def clear(self, low_water: Timestamp) -> None:
        """Forget the individual entries (e.g. for a new lease starting at
        `low_water`). The low-water mark becomes the largest of `low_water`, the
        old mark and every entry, so no answer ever goes down."""
        for v in self._bounds.values():
            if v is not None:
                low_water = low_water.forward(v[0])
        self._low_water = self._low_water.forward(low_water)
        self._bounds.clear()
        self._bytes = 0

    def __len__(self) -> int:
        """Number of segment boundaries held (a measure of size)."""
        return len(self._bounds)

    @property
    def approx_bytes(self) -> int:
        return self._bytes

    # ---- internals ---------------------------------------------------------

    def _add_point(self, key: bytes, succ: bytes, ts: Timestamp, txn_id: bytes | None) -> None:
        # The common case, without the general split/ratchet/coalesce passes. No
        # key lies strictly between `key` and its successor `succ`.
        bounds = self._bounds
        i = bounds.bisect_right(key)  # boundaries <= key
        if i and bounds.keys()[i - 1] == key:
            cur = bounds[key]
            before = bounds.peekitem(i - 2)[1] if i >= 2 else None
            present = True
        else:
            cur = bounds.peekitem(i - 1)[1] if i else None
            before, present = cur, False
        new = _ratchet(cur, ts, txn_id)
        if new == cur:
            return
        if succ not in bounds:
            self._put(succ, cur)  # the old value resumes after the key
        elif bounds[succ] == new:
            self._del(succ)
        if new == before:
            if present:
                self._del(key)
        elif present:
            bounds[key] = new
        else:
            self._put(key, new)

    def _add_span(self, start: bytes, end_key: bytes, ts: Timestamp, txn_id: bytes | None) -> None:
        bounds = self._bounds
        self._split(end_key)
        self._split(start)
        for k in bounds.irange(start, end_key, inclusive=(True, False)):
            bounds[k] = _ratchet(bounds[k], ts, txn_id)
        self._coalesce(start, end_key)

    def _put(self, key: bytes, value: _Value | None) -> None:
        self._bounds[key] = value
        self._bytes += len(key) + ENTRY_OVERHEAD_BYTES

    def _del(self, key: bytes) -> None:
        del self._bounds[key]
        self._bytes -= len(key) + ENTRY_OVERHEAD_BYTES

    def _split(self, key: bytes) -> None:
        """Make `key` a boundary without changing the function."""
        bounds = self._bounds
        if key in bounds:
            return
        idx = bounds.bisect_right(key) - 1
        self._put(key, bounds.peekitem(idx)[1] if idx >= 0 else None)

    def _coalesce(self, start: bytes, end: bytes) -> None:
        """Drop boundaries in [start, end] that repeat the previous segment's value."""
        bounds = self._bounds
        idx = bounds.bisect_left(start) - 1
        prev = bounds.peekitem(idx)[1] if idx >= 0 else None
        for k in list(bounds.irange(start, end)):
            v = bounds[k]
            if v == prev:
                self._del(k)
            else:
                prev = v

    def _prune(self) -> None:
        """Rebuild without the values the low-water mark dominates, merged."""
        lw = self._low_water
        kept: list[tuple[bytes, _Value | None]] = []
        prev: _Value | None = None
        size = 0
        for k, v in self._bounds.items():
            if v is not None and v[0] <= lw:
                v = None
            if v != prev:
                kept.append((k, v))
                size += len(k) + ENTRY_OVERHEAD_BYTES
                prev = v
        self._bounds = SortedDict(kept)
        self._bytes = size

    def _evict(self) -> None:
        while self._bytes > self._max_bytes and self._bounds:
            stamps = sorted(v[0] for v in self._bounds.values() if v is not None)
            if not stamps:  # only the uncovered tail remains: nothing to trade
                break
            self.evictions += 1
            self.set_low_water(stamps[len(stamps) // 2])


def _end(start: bytes, end: bytes | None) -> bytes:
    if not end:
        return start + b"\x00"
    if end <= start:
        raise InvalidArgumentError(
            f"invalid span [{start!r}, {end!r}): the end key must sort after the start key"
        )
    return end
