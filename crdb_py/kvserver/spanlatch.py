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
`acquire` gives the request the next sequence number and, *in one step with no
await in between*, (1) collects the conflicting latches already present —
held or still waiting — and (2) inserts its own latches. It then waits until
each of those earlier requests has released (or given up). Consequences:

* FIFO: a request waits for every earlier conflicting request, even one that is
  itself still waiting; a later request can never overtake an earlier
  conflicting one. A read queued behind a write holds back a write queued
  behind it.
* No starvation and no deadlock: waits only ever point to earlier sequence
  numbers, so the waits-for graph is acyclic and the oldest waiter always
  progresses.
* No polling: each waiter parks on a future that the guard it waits for
  resolves when it is released.

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
from collections.abc import AsyncIterator, Iterator
from typing import Any

from sortedcontainers import SortedDict

from crdb_py.kvserver.spanset import DeclaredSpan, SpanAccess, SpanSet
from crdb_py.util.errors import InternalError
from crdb_py.util.hlc import Timestamp

_WAITING, _HELD, _RELEASED = 0, 1, 2


class _Latch:
    """One declared span inserted into the manager."""

    __slots__ = ("access", "end", "guard", "is_point", "key", "ts")

    def __init__(self, ds: DeclaredSpan, guard: Guard) -> None:
        self.access = ds.access
        self.key = ds.span.key
        self.end = ds.span.end
        self.is_point = ds.span.is_point
        self.ts = ds.ts
        self.guard = guard


class Guard:
    """Proof that a request's latches are inserted; held once `acquire` returns.

    Pass it back to `LatchManager.release` exactly once.
    """

    __slots__ = ("_conflicts", "_latches", "_state", "_waiters", "seq", "spans")

    def __init__(self, seq: int, spans: SpanSet) -> None:
        self.seq = seq
        self.spans = spans
        self._latches: list[_Latch] = []
        # Earlier latches this request must wait out (dropped once acquired).
        self._conflicts: list[_Latch] = []
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


class _LatchIndex:
    """The latches of one access kind."""

    __slots__ = ("points", "ranges")

    def __init__(self) -> None:
        self.points: SortedDict = SortedDict()  # key -> list[_Latch]
        self.ranges: dict[_Latch, None] = {}

    def insert(self, latch: _Latch) -> None:
        if latch.is_point:
            bucket = self.points.get(latch.key)
            if bucket is None:
                self.points[latch.key] = [latch]
            else:
                bucket.append(latch)
        else:
            self.ranges[latch] = None

    def remove(self, latch: _Latch) -> None:
        if latch.is_point:
            bucket = self.points[latch.key]
            bucket.remove(latch)
            if not bucket:
                del self.points[latch.key]
        else:
            del self.ranges[latch]

    def overlapping(self, key: bytes, end: bytes, is_point: bool) -> Iterator[_Latch]:
        if is_point:
            bucket = self.points.get(key)
            if bucket:
                yield from bucket
        else:
            for k in self.points.irange(key, end, inclusive=(True, False)):
                yield from self.points[k]
        for latch in self.ranges:
            if latch.key < end and key < latch.end:
                yield latch

    def __len__(self) -> int:
        return sum(len(b) for b in self.points.values()) + len(self.ranges)


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

    # ---- acquiring ---------------------------------------------------------

    async def acquire(self, spans: SpanSet) -> Guard:
        """Wait until no earlier conflicting request holds or awaits a latch,
        then return the held guard. Cancellation leaves nothing behind."""
        guard = self._insert(spans)
        if guard._conflicts:
            await self._wait(guard)
        else:
            guard._state = _HELD
        return guard

    def try_acquire(self, spans: SpanSet) -> Guard | None:
        """Acquire without waiting, or return None (inserting nothing) when any
        present latch conflicts."""
        if self._conflicting(spans, before=None):
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
        """Whether none of the earlier latches this guard skipped over, still
        unreleased, conflicts with `spans` (a subset of the declared spans)."""
        if guard._state != _WAITING:
            return True
        pending = [la for la in guard._conflicts if la.guard._state != _RELEASED]
        if not pending:
            return True
        for ds in spans:
            for la in pending:
                if _overlaps(la, ds) and _conflict(ds.access, ds.ts, la.access, la.ts):
                    return False
        return True

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
        }

    # ---- internals ---------------------------------------------------------

    def _insert(self, spans: SpanSet) -> Guard:
        # No await in here: collecting the conflicts and inserting must be one
        # atomic step for the sequencing argument in the module docstring.
        self._seq += 1
        guard = Guard(self._seq, spans)
        guard._conflicts = self._conflicting(spans, before=guard)
        for ds in spans:
            latch = _Latch(ds, guard)
            self._indexes[ds.access].insert(latch)
            guard._latches.append(latch)
        return guard

    def _conflicting(self, spans: SpanSet, before: Guard | None) -> list[_Latch]:
        reads, writes = self._indexes
        out: list[_Latch] = []
        for ds in spans:
            sp = ds.span
            key, end, is_point = sp.key, sp.end, sp.is_point
            if ds.access is SpanAccess.READ_ONLY:
                for la in writes.overlapping(key, end, is_point):
                    if not _read_ignores_write(ds.ts, la.ts):
                        out.append(la)
            else:
                out.extend(writes.overlapping(key, end, is_point))
                for la in reads.overlapping(key, end, is_point):
                    if not _read_ignores_write(la.ts, ds.ts):
                        out.append(la)
        if before is not None:
            out = [la for la in out if la.guard is not before]
        return out

    async def _wait(self, guard: Guard) -> None:
        try:
            for latch in guard._conflicts:
                other = latch.guard
                if other._state != _RELEASED:
                    await other._wait_released()
        except BaseException:
            # Cancelled (or the loop is shutting down): give the place in line up.
            if guard._state != _RELEASED:
                self._remove(guard)
            raise
        if guard._state == _RELEASED:
            raise InternalError(f"latch guard released while its acquire was waiting: {guard!r}")
        guard._conflicts = []
        guard._state = _HELD

    def _remove(self, guard: Guard) -> None:
        for latch in guard._latches:
            self._indexes[latch.access].remove(latch)
        guard._latches = []
        guard._conflicts = []
        guard._signal_released()


def _overlaps(la: _Latch, ds: DeclaredSpan) -> bool:
    return la.key < ds.span.end and ds.span.key < la.end


def _conflict(a: SpanAccess, a_ts: Timestamp, b: SpanAccess, b_ts: Timestamp) -> bool:
    """The conflict table of the module docstring, for overlapping spans."""
    if a is SpanAccess.READ_ONLY and b is SpanAccess.READ_ONLY:
        return False
    if a is SpanAccess.READ_WRITE and b is SpanAccess.READ_WRITE:
        return True
    read_ts, write_ts = (a_ts, b_ts) if a is SpanAccess.READ_ONLY else (b_ts, a_ts)
    return not _read_ignores_write(read_ts, write_ts)

