"""The latch manager: in-memory isolation of concurrently evaluating requests.

What a latch is
---------------
Before a replica evaluates a request it acquires one **latch** per span the
request declared (`SpanSet`), and releases them when evaluation is done (for a
write: once its proposal has been applied). Latches are short-lived and local
to the leaseholder; they are not transaction locks — those are intents and the
lock table, which outlive a request. Latches make evaluation of overlapping
requests serial, so a command reading a key never sees half of another
command's write batch, and the timestamp cache and lock table are consulted and
updated under isolation.

Conflicts (a latch held or queued by an earlier request vs. a new one)
--------------------------------------------------------------------
Two latches conflict when their spans overlap and:

    read  R vs read  R'   never
    write W vs write W'   always (whatever the timestamps)
    read  R vs write W    unless both are MVCC (non-zero ts) and R < W

A read at R only observes versions at or below R, so a write above R can run
beside it. A latch at the zero timestamp is non-MVCC and conflicts with every
overlapping latch of the other kind (and writes with writes).

Sequencing and fairness
-----------------------
`acquire` takes the next sequence number and inserts its latches *in one step
with no await in between*. From then on, "a latch present with a lower
sequence number" means exactly "an earlier request, holding or still waiting,
not yet released". The request then waits while any such latch conflicts
with its spans: it parks on the release of the *newest* conflicting guard,
and looks again when woken. Consequences:

* FIFO: a request waits for every earlier conflicting request, even one that is
  itself still waiting; a later request can never overtake an earlier
  conflicting one. A read queued behind a write holds back a write queued
  behind it.
* No starvation and no deadlock: waits only ever point to earlier sequence
  numbers, so the waits-for graph is acyclic and the oldest waiter always
  progresses.
* No polling, and no thundering herd: each waiter parks on a future of one
  guard. The newest earlier conflict cannot acquire before the older requests
  it conflicts with have released, so on a hot key each request is woken
  about once — O(n) wake-ups for a queue of n, where waiting on each conflict
  in turn, oldest first, would wake every queued request at every release
  (O(n^2)). Looking again after a wake-up keeps this correct when a guard is
  released without having acquired (a cancelled acquire, an optimistic guard
  given up).

Cancelling a waiting `acquire` (task cancellation, `asyncio.wait_for`
timeout) removes the request's latches and wakes whoever queued behind it; it
never held anything, so that is safe.

The optimistic path (`acquire_optimistic`, `check_optimistic_no_conflicts`,
`wait_until_acquired`) serves reads with a limit: insert latches for the full
declared span without waiting, evaluate, then check that no earlier latch
conflicts with the keys actually read; if one does, fall back to waiting.

Data structure
--------------
One index per access kind. Point spans (the vast majority: gets, puts, the txn
record) live in a `SortedDict` key -> latches, so a point lookup is a hash
probe and a range lookup is a sorted `irange`. Ranged spans live in an
insertion-ordered dict scanned linearly: they are rare (scans, DeleteRange,
ResolveIntentRange, splits), and a linear scan over a handful beats an
interval tree written in Python. The measured costs are in
`docs/design/concurrency.md`; revisit the choice if ranged latches become
common.

Rejected: one global lock per range (serialises everything); per-key asyncio
locks (no ranges, no MVCC rules, and FIFO across several keys would need
ordered acquisition); polling with `sleep` (latency and CPU).

Threading: one instance per replica, used from the node's single asyncio event
loop; there is no internal locking.
"""

from __future__ import annotations

import asyncio
import contextlib
from bisect import bisect_left
from collections.abc import AsyncIterator
from typing import Any

from sortedcontainers import SortedDict

from crdb_py.kvserver.spanset import DeclaredSpan, Span, SpanAccess, SpanSet
from crdb_py.util.errors import InternalError
from crdb_py.util.hlc import Timestamp

_WAITING, _HELD, _RELEASED = 0, 1, 2


class _Latch:
    """One declared span inserted into the manager."""

    __slots__ = ("access", "end", "guard", "is_point", "key", "seq", "ts")

    def __init__(self, ds: DeclaredSpan, guard: Guard) -> None:
        self.access = ds.access
        self.key = ds.span.key
        self.end = ds.span.end
        self.is_point = ds.span.is_point
        self.ts = ds.ts
        self.guard = guard
        self.seq = guard.seq


def _seq_of(latch: _Latch) -> int:
    return latch.seq


class Guard:
    """Proof that a request's latches are inserted; held once `acquire` returns.

    Pass it back to `LatchManager.release` exactly once.
    """

    __slots__ = ("_latches", "_state", "_waiters", "seq", "spans")

    def __init__(self, seq: int, spans: SpanSet) -> None:
        self.seq = seq
        self.spans = spans
        self._latches: list[_Latch] = []
        self._state = _WAITING
        self._waiters: list[asyncio.Future[None]] | None = None

    @property
    def held(self) -> bool:
        return self._state == _HELD

    @property
    def released(self) -> bool:
        return self._state == _RELEASED

    def _wait_released(self) -> asyncio.Future[None]:
        # A future per waiter: cancelling one waiter must not cancel the others.
        fut = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(fut)
        return fut

    def _signal_released(self) -> None:
        self._state = _RELEASED
        waiters, self._waiters = self._waiters, None
        for fut in waiters or ():
            if not fut.done():
                fut.set_result(None)

    def __repr__(self) -> str:
        state = ("waiting", "held", "released")[self._state]
        return f"Guard(seq={self.seq}, {state}, {self.spans!r})"


# How an earlier latch is matched against the span being checked.
_ANY = 0  # every overlapping latch conflicts (a write checked against write latches)
_READER = 1  # checking a read at ts against write latches
_WRITER = 2  # checking a write at ts against read latches


def _hit(la: _Latch, ts: Timestamp, mode: int) -> bool:
    if mode == _ANY:
        return True
    if mode == _READER:
        return not _read_ignores_write(ts, la.ts)
    return not _read_ignores_write(la.ts, ts)


class _LatchIndex:
    """The latches of one access kind, each bucket and the ranged dict in
    sequence order (latches are inserted with increasing sequence numbers)."""

    __slots__ = ("count", "points", "ranges")

    def __init__(self) -> None:
        self.points: SortedDict = SortedDict()  # key -> list[_Latch], by seq
        self.ranges: dict[_Latch, None] = {}  # insertion order = seq order
        self.count = 0

    def insert(self, latch: _Latch) -> None:
        self.count += 1
        if latch.is_point:
            bucket = self.points.get(latch.key)
            if bucket is None:
                self.points[latch.key] = [latch]
            else:
                bucket.append(latch)
        else:
            self.ranges[latch] = None

    def remove(self, latch: _Latch) -> None:
        self.count -= 1
        if latch.is_point:
            bucket = self.points[latch.key]
            bucket.remove(latch)  # usually near the front: releases are mostly FIFO
            if not bucket:
                del self.points[latch.key]
        else:
            del self.ranges[latch]

    def newest_before(self, span: Span, seq: int, ts: Timestamp, mode: int) -> _Latch | None:
        """The latch with the highest sequence number below `seq` that overlaps
        `span` and conflicts with it (per `mode` at `ts`), or None."""
        best: _Latch | None = None
        points = self.points
        if points:
            if span.is_point:
                bucket = points.get(span.key)
                if bucket:
                    best = _newest_in_bucket(bucket, seq, ts, mode)
            else:
                for k in points.irange(span.key, span.end_key, inclusive=(True, False)):
                    la = _newest_in_bucket(points[k], seq, ts, mode)
                    if la is not None and (best is None or la.seq > best.seq):
                        best = la
        if self.ranges:
            key, end = span.key, span.end
            for la in self.ranges:
                if la.seq >= seq:
                    break
                if (
                    la.key < end
                    and key < la.end
                    and _hit(la, ts, mode)
                    and (best is None or la.seq > best.seq)
                ):
                    best = la
        return best

    def __len__(self) -> int:
        return self.count


def _newest_in_bucket(bucket: list[_Latch], seq: int, ts: Timestamp, mode: int) -> _Latch | None:
    i = len(bucket)
    if bucket[-1].seq >= seq:  # skip the latches of later requests
        i = bisect_left(bucket, seq, key=_seq_of)
    while i > 0:
        i -= 1
        if _hit(bucket[i], ts, mode):
            return bucket[i]
    return None


def _read_ignores_write(read_ts: Timestamp, write_ts: Timestamp) -> bool:
    """A read below an MVCC write does not conflict with it."""
    return not read_ts.is_empty() and not write_ts.is_empty() and read_ts < write_ts


class LatchManager:
    """Latches over key spans for one replica. See the module docstring.

    >>> async def demo():
    ...     m = LatchManager()
    ...     ss = SpanSet(); ss.add(SpanAccess.READ_WRITE, b"k", ts=Timestamp(5))
    ...     g = await m.acquire(ss)
    ...     blocked = m.try_acquire(ss) is None
    ...     m.release(g)
    ...     return blocked, len(m)
    >>> asyncio.run(demo())
    (True, 0)
    """

    def __init__(self) -> None:
        self._indexes = (_LatchIndex(), _LatchIndex())  # by SpanAccess
        self._seq = 0
        self._parks = 0  # times a request parked behind another guard

    # ---- acquiring ---------------------------------------------------------

    async def acquire(self, spans: SpanSet) -> Guard:
        """Wait until no earlier conflicting request holds or awaits a latch,
        then return the held guard. Cancellation leaves nothing behind."""
        guard = self._insert(spans)
        await self._wait(guard)
        return guard

    def try_acquire(self, spans: SpanSet) -> Guard | None:
        """Acquire without waiting, or return None (inserting nothing) when any
        present latch conflicts."""
        if self._newest_conflict(spans, self._seq + 1) is not None:
            return None
        guard = self._insert(spans)
        guard._state = _HELD
        return guard

    def acquire_optimistic(self, spans: SpanSet) -> Guard:
        """Insert the latches without waiting for conflicts. The caller evaluates,
        then calls `check_optimistic_no_conflicts` with the spans it actually
        touched and, if that fails, `wait_until_acquired` before re-evaluating.
        The guard must be released in every case."""
        return self._insert(spans)

    def check_optimistic_no_conflicts(self, guard: Guard, spans: SpanSet) -> bool:
        """Whether no earlier, still present latch conflicts with `spans` (a
        subset of the spans the guard declared)."""
        if guard._state != _WAITING:
            return True
        return self._newest_conflict(spans, guard.seq) is None

    async def wait_until_acquired(self, guard: Guard) -> Guard:
        """Turn an optimistic guard into a held one, waiting as `acquire` would."""
        if guard._state == _RELEASED:
            raise InternalError(f"waiting on released latch guard {guard!r}")
        if guard._state == _WAITING:
            await self._wait(guard)
        return guard

    @contextlib.asynccontextmanager
    async def latched(self, spans: SpanSet) -> AsyncIterator[Guard]:
        """`async with manager.latched(spans) as guard:` acquire, then release."""
        guard = await self.acquire(spans)
        try:
            yield guard
        finally:
            self.release(guard)

    # ---- releasing ---------------------------------------------------------

    def release(self, guard: Guard) -> None:
        """Remove the guard's latches and wake the requests queued behind it."""
        if guard._state == _RELEASED:
            raise InternalError(f"latch guard released twice: {guard!r}")
        self._remove(guard)

    # ---- introspection -----------------------------------------------------

    def __len__(self) -> int:
        """Number of latches present (held or waiting)."""
        return len(self._indexes[0]) + len(self._indexes[1])

    def metrics(self) -> dict[str, Any]:
        return {
            "read_latches": len(self._indexes[SpanAccess.READ_ONLY]),
            "write_latches": len(self._indexes[SpanAccess.READ_WRITE]),
            "sequence": self._seq,
            "waits": self._parks,
        }

    # ---- internals ---------------------------------------------------------

    def _insert(self, spans: SpanSet) -> Guard:
        # No await in here: taking the sequence number and inserting the latches
        # is one atomic step, so "present with a lower sequence number" means
        # exactly "arrived earlier and not yet released".
        self._seq += 1
        guard = Guard(self._seq, spans)
        for ds in spans:
            latch = _Latch(ds, guard)
            self._indexes[ds.access].insert(latch)
            guard._latches.append(latch)
        return guard

    def _newest_conflict(self, spans: SpanSet, seq: int) -> Guard | None:
        """The guard with the highest sequence number below `seq` holding or
        awaiting a latch that conflicts with `spans` (released latches are gone
        from the indexes, so every latch found is still pending)."""
        reads, writes = self._indexes
        best: _Latch | None = None
        for ds in spans:
            sp, ts = ds.span, ds.ts
            if ds.access is SpanAccess.READ_ONLY:
                la = writes.newest_before(sp, seq, ts, _READER)
            else:
                la = writes.newest_before(sp, seq, ts, _ANY)
                la2 = reads.newest_before(sp, seq, ts, _WRITER)
                if la is None or (la2 is not None and la2.seq > la.seq):
                    la = la2
            if la is not None and (best is None or la.seq > best.seq):
                best = la
        return None if best is None else best.guard

    async def _wait(self, guard: Guard) -> None:
        # Wait for the newest earlier conflicting guard, then look again. The
        # newest cannot have acquired before the older ones conflicting with it
        # were released, so one wake-up usually settles a whole queue; waiting
        # on every conflict oldest-first would wake each request queued on a
        # hot key at every release (quadratic). Looking again after each wake-up
        # also covers guards released without ever acquiring (cancelled
        # acquires, optimistic guards given up).
        try:
            while True:
                other = self._newest_conflict(guard.spans, guard.seq)
                if other is None:
                    break
                self._parks += 1
                await other._wait_released()
        except BaseException:
            # Cancelled (or the loop is shutting down): give the place in line up.
            if guard._state != _RELEASED:
                self._remove(guard)
            raise
        if guard._state == _RELEASED:
            raise InternalError(f"latch guard released while its acquire was waiting: {guard!r}")
        guard._state = _HELD

    def _remove(self, guard: Guard) -> None:
        for latch in guard._latches:
            self._indexes[latch.access].remove(latch)
        guard._latches = []
        guard._signal_released()
