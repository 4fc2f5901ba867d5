"""The lock table: per-key lock holders and FIFO wait queues on one range.

What it holds
-------------
Intents are locks that live in storage; the lock table is the leaseholder's
*in-memory index of the contended ones*. A lock enters the table when a
request discovers it (evaluation raised `WriteIntentError`: the replica hands
the intents to `add_discovered_lock`) or when the replica reports that a txn
wrote an intent on a key others already queue for (`acquire_lock`; an
uncontended intent is not remembered). A lock leaves when it is resolved
(`update_locks`, after a ResolveIntent / EndTxn applied) and nobody queues on
it. The table can therefore be incomplete (an intent nobody met yet) but
never wrong in a way that matters: a forgotten intent is rediscovered by
evaluation, a stale one is pushed, found finalized, resolved (a no-op) and
released.

Conflicts (request of txn T with a lock-table span vs. a lock on key k)
-----------------------------------------------------------------------
A request declares *lock spans*: READ_ONLY spans at a conflict timestamp C
(its read timestamp forwarded to its uncertainty limit) and READ_WRITE spans.

    lock held by T itself              no conflict (a txn never waits on itself)
    lock held by H != T at ts L        read at C: conflict iff L <= C
                                       write:     always
    lock not held, reserved by req R   read: never (reservations do not block reads)
                                       write of T: none if R is of T, or if this
                                         request is older (lower seq: it takes
                                         the reservation over); else wait behind R
    lock not held, not reserved        a write takes the reservation

Non-transactional requests have no txn id: they conflict like a txn that
holds nothing.

Fairness: reservations (as in CockroachDB's lock_table.go)
----------------------------------------------------------
Every request gets a sequence number when it is first sequenced and keeps it
across re-sequencing. Writers wait in a lock's queue ordered by that number;
readers wait in an unordered set. When the holder releases the lock, all
waiting readers are woken and the *first* queued writer (only) gets the
lock's **reservation** and is woken: it re-sequences while the later writers
keep waiting behind the reservation (they do not push it: a reservation
holder is an active request, not an idle txn). When the reserving request
finishes, the reservation passes to the next writer; if it wrote an intent,
that intent is either reported (`acquire_lock`: the lock becomes held by its
txn, later writers now wait on — and push — that txn) or rediscovered by the
next writer's evaluation. Nobody overtakes an earlier writer, and a release
wakes one writer, not the whole queue. A request with a lower sequence number that reaches a
reserved lock takes the reservation over (it arrived first).

Deadlock freedom
----------------
A request that has to wait gives up every reservation it holds (they pass
to the next writers). So a reservation is only ever held by an *active*
request — re-sequencing (waiting on latches, which are FIFO and acyclic) or
evaluating — and waiting behind one always ends. The only waits that can
form a cycle are waits on locks held by txns, and those are pushed: the
txn wait queue's deadlock detection sees them. CockroachDB keeps the
reservations of a waiting request and instead pushes the reservation
holder's txn so that detection sees that edge too; dropping them is
simpler and costs only some fairness for requests that wait on several
keys in turn (an older request takes a reservation back anyway when it
returns: a lower sequence number wins).

Signalling
----------
Each waiting guard has one future (made on demand), resolved — and counted
as a wake-up — only when the guard must act: it stopped waiting (lock
released, reservation granted, lock pushed above its read, table cleared);
it is the queue's head writer and the lock got a new holder, or it just
became the head of a held lock (it pushes at once); or the lock's **stuck
timer** fired: one timer per held lock with waiters, due `stuck_delay`
after the later of the holder's arrival and the waiter's, tells the other
waiters to push. A holder change thus touches the head and one timer, not
every waiter: O(1) wake-ups per holder on a hot key. A guard's wait state
(`WaitState`) is computed from the lock on demand, so it is never stale.
Nothing polls. The table itself is synchronous (the timer aside): only the
waiter (`lock_table_waiter.py`) awaits. One instance per replica, on the
node's event loop; no internal locking.

Rejected: waking every waiter at every release (a thundering herd that
re-evaluates n requests per release on a hot key); remembering every
intent written (memory for the uncontended common case — CockroachDB also
only tracks contended replicated locks). Design: docs/design/concurrency.md.
"""

from __future__ import annotations

import asyncio
from bisect import insort
from collections.abc import Iterator
from dataclasses import dataclass

from sortedcontainers import SortedDict

from crdb_py.kvserver.spanset import Span, SpanAccess, SpanSet
from crdb_py.pb import data_pb2
from crdb_py.util.errors import InternalError
from crdb_py.util.hlc import Timestamp, ts_from_proto

FINAL_STATUSES = (data_pb2.COMMITTED, data_pb2.ABORTED)


@dataclass(frozen=True, slots=True)
class WaitState:
    """What a waiting guard waits for: the lock on `key`, held by `holder`
    (a txn to push) or only reserved by another request (`holder` None: just
    wait). `access`/`conflict_ts` say how the guard's span met the lock."""

    key: bytes
    holder: data_pb2.TxnMeta | None
    lock_ts: Timestamp
    access: SpanAccess
    conflict_ts: Timestamp

    @property
    def held(self) -> bool:
        return self.holder is not None


class LockTableGuard:
    """A request's place in the lock table; it lives from the request's first
    sequencing until it finishes, across re-sequencing (it keeps its `seq`)."""

    __slots__ = (
        "_access",
        "_conflict_ts",
        "_fut",
        "_waiting_on",
        "lock_spans",
        "push_for",
        "reserved",
        "seq",
        "txn_id",
        "wait_start",
        "wakeups",
    )

    def __init__(self, seq: int, txn_id: bytes | None, lock_spans: SpanSet) -> None:
        self.seq = seq
        self.txn_id = txn_id
        self.lock_spans = lock_spans
        self.reserved: dict[bytes, _Lock] = {}  # locks this request reserves
        self.wakeups = 0
        self.wait_start = 0.0  # loop time when it enqueued on the current lock
        # id of the holder the lock's stuck timer told this waiter to push
        self.push_for: bytes | None = None
        self._waiting_on: _Lock | None = None
        self._access = SpanAccess.READ_ONLY
        self._conflict_ts = Timestamp()
        self._fut: asyncio.Future[None] | None = None

    @property
    def waiting(self) -> bool:
        return self._waiting_on is not None

    @property
    def wait_state(self) -> WaitState | None:
        """What the guard waits for now (computed: holder changes need not
        touch every waiter)."""
        lock = self._waiting_on
        if lock is None:
            return None
        return WaitState(lock.key, lock.holder, lock.ts, self._access, self._conflict_ts)

    def has_writes(self) -> bool:
        return any(ds.access is SpanAccess.READ_WRITE for ds in self.lock_spans)

    def changed(self) -> asyncio.Future[None]:
        """A future resolved at the next notification of this guard. One per
        guard at a time: only the request's own waiter awaits it."""
        if self._fut is None or self._fut.done():
            self._fut = asyncio.get_running_loop().create_future()
        return self._fut

    def _notify(self) -> None:
        self.wakeups += 1
        fut, self._fut = self._fut, None
        if fut is not None and not fut.done():
            fut.set_result(None)

    def __repr__(self) -> str:
        return f"LockTableGuard(seq={self.seq}, waiting={self.wait_state})"


class _Lock:
    """The table's entry for one key."""

    __slots__ = ("held_since", "holder", "key", "readers", "reservation", "timer", "ts", "writers")

    def __init__(self, key: bytes) -> None:
        self.key = key
        self.holder: data_pb2.TxnMeta | None = None
        self.ts = Timestamp()
        self.held_since = 0.0  # loop time the current holder was set
        self.timer: asyncio.TimerHandle | None = None  # the stuck timer
        self.reservation: LockTableGuard | None = None
        self.writers: list[tuple[int, LockTableGuard]] = []  # by seq
        self.readers: dict[LockTableGuard, Timestamp] = {}  # guard -> conflict ts

    def empty(self) -> bool:
        return (
            self.holder is None
            and self.reservation is None
            and not self.writers
            and not self.readers
        )

    def waiters(self) -> list[LockTableGuard]:
        return [*self.readers, *(g for _, g in self.writers)]


class LockTable:
    """Locks by key with wait queues. See the module docstring.

    >>> lt = LockTable()
    >>> holder = data_pb2.TxnMeta(id=b"h", write_timestamp=data_pb2.Timestamp(wall_time=5))
    >>> ss = SpanSet(); ss.add(SpanAccess.READ_WRITE, b"k")
    >>> g = lt.new_guard(b"t", ss)
    >>> lt.add_discovered_lock(g, b"k", holder)
    >>> lt.scan_and_enqueue(g), g.wait_state.holder.id
    (True, b'h')
    """

    def __init__(self, *, stuck_delay: float | None = None) -> None:
        self._locks: SortedDict = SortedDict()  # key -> _Lock
        self._seq = 0
        # After a holder kept a lock this long (from each waiter's arrival),
        # its waiters beyond the head are told to push it; None: never (the
        # pure data-structure tests).
        self.stuck_delay = stuck_delay

    # ---- guards ---------------------------------------------------------------

    def new_guard(self, txn_id: bytes | None, lock_spans: SpanSet) -> LockTableGuard:
        self._seq += 1
        return LockTableGuard(self._seq, txn_id or None, lock_spans)

    def scan_and_enqueue(self, g: LockTableGuard) -> bool:
        """Look for the first lock conflicting with `g`'s lock spans (taking
        free reservations on the way). Returns True with `g` enqueued on it
        (the caller must drop its latches and wait), or False: no conflict."""
        self._dequeue_waiting(g)
        for ds in g.lock_spans:
            for lock in self._overlapping(ds.span):
                if self._must_wait(g, lock, ds.access, ds.ts):
                    self._enqueue(g, lock, ds.access, ds.ts)
                    return True
        return False

    def enqueue_on(self, g: LockTableGuard, key: bytes) -> bool:
        """Make `g` wait on the lock at `key` even if its declared lock spans
        do not say so (evaluation found the intent conflicting: trust it).
        False when there is no held lock of another txn at `key`."""
        lock = self._locks.get(key)
        if lock is None or lock.holder is None or lock.holder.id == g.txn_id:
            return False
        self._dequeue_waiting(g)
        access = SpanAccess.READ_WRITE if g.has_writes() else SpanAccess.READ_ONLY
        self._enqueue(g, lock, access, lock.ts)
        return True

    def dequeue(self, g: LockTableGuard) -> None:
        """The request finished (or gave up): leave every queue and pass on
        every reservation."""
        self._dequeue_waiting(g)
        self._release_reservations(g)

    def _release_reservations(self, g: LockTableGuard) -> None:
        reserved, g.reserved = g.reserved, {}
        for lock in reserved.values():
            if lock.reservation is g:
                lock.reservation = None
                self._grant_next(lock)

    # ---- lock state changes -----------------------------------------------------

    def add_discovered_lock(
        self, g: LockTableGuard | None, key: bytes, holder: data_pb2.TxnMeta
    ) -> None:
        """Evaluation of `g`'s request met `holder`'s intent at `key`."""
        if g is not None and g.txn_id is not None and holder.id == g.txn_id:
            raise InternalError(f"txn discovered its own intent on {key!r} as a conflict")
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = _Lock(key)
        self._set_holder(lock, holder)

    def acquire_lock(self, key: bytes, holder: data_pb2.TxnMeta) -> None:
        """`holder` wrote an intent on `key` (after apply). Remembered only if
        the key is contended (present in the table)."""
        lock = self._locks.get(key)
        if lock is not None:
            self._set_holder(lock, holder)

    def update_locks(self, up: data_pb2.LockUpdate) -> int:
        """Intents of `up.txn` in `up.span` were resolved (after apply):
        finalized (or rewritten at a newer epoch) releases them, PENDING at a
        higher timestamp moves them up. Returns the number of locks touched."""
        span = Span(up.span.key, up.span.end_key)
        touched = 0
        for lock in list(self._overlapping(span)):
            if lock.holder is None or lock.holder.id != up.txn.id:
                continue
            touched += 1
            if up.status in FINAL_STATUSES or up.txn.epoch > lock.holder.epoch:
                self._release(lock)
            else:
                new_ts = ts_from_proto(up.txn.write_timestamp)
                if lock.ts < new_ts:
                    lock.ts = new_ts
                    h = data_pb2.TxnMeta()
                    h.CopyFrom(lock.holder)
                    h.write_timestamp.CopyFrom(up.txn.write_timestamp)
                    lock.holder = h
                    self._wake_readers(lock, below=new_ts)
        return touched

    def clear(self) -> None:
        """Forget everything (lease lost, range split/merged): every waiter is
        woken to re-sequence (and be redirected or rediscover what matters)."""
        locks, self._locks = self._locks, SortedDict()
        for lock in locks.values():
            _cancel_timer(lock)
            if lock.reservation is not None:
                lock.reservation.reserved.pop(lock.key, None)
            for w in lock.waiters():
                w._waiting_on = None
                w._notify()

    def would_update(self, up: data_pb2.LockUpdate) -> bool:
        """Whether `update_locks(up)` would change anything: the waiter skips
        resolving an intent the table already knows is gone or moved."""
        span = Span(up.span.key, up.span.end_key)
        final = up.status in FINAL_STATUSES
        new_ts = ts_from_proto(up.txn.write_timestamp)
        for lock in self._overlapping(span):
            h = lock.holder
            if h is not None and h.id == up.txn.id:
                if final or up.txn.epoch > h.epoch or lock.ts < new_ts:
                    return True
        return False

    def held_since(self, key: bytes) -> float:
        """Loop time at which the lock on `key` got its current holder."""
        lock = self._locks.get(key)
        return 0.0 if lock is None else lock.held_since

    def is_queue_head(self, g: LockTableGuard) -> bool:
        """Whether `g` is the first writer queued on the lock it waits on."""
        lock = g._waiting_on
        return lock is not None and bool(lock.writers) and lock.writers[0][1] is g

    # ---- introspection -------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._locks)

    def lock_holder(self, key: bytes) -> data_pb2.TxnMeta | None:
        lock = self._locks.get(key)
        return None if lock is None else lock.holder

    def queued(self, key: bytes) -> list[int]:
        """Sequence numbers of the writers queued on `key`, in order."""
        lock = self._locks.get(key)
        return [] if lock is None else [s for s, _ in lock.writers]

    def reserved_by(self, key: bytes) -> int | None:
        lock = self._locks.get(key)
        return None if lock is None or lock.reservation is None else lock.reservation.seq

    def waiter_count(self) -> int:
        return sum(len(lk.writers) + len(lk.readers) for lk in self._locks.values())

    def metrics(self) -> dict[str, int]:
        return {
            "locks": len(self._locks),
            "held": sum(1 for lk in self._locks.values() if lk.holder is not None),
            "waiters": self.waiter_count(),
        }

    def check_invariants(self) -> None:
        """Raise InternalError if the structure is inconsistent (tests call
        this after every step of randomized runs)."""
        for key, lock in self._locks.items():
            where = f"lock table entry {key!r}"
            if lock.key != key or lock.empty():
                raise InternalError(f"{where}: misfiled or empty")
            seqs = [s for s, _ in lock.writers]
            if seqs != sorted(set(seqs)):
                raise InternalError(f"{where}: writers out of order {seqs}")
            if lock.holder is None and lock.reservation is None and lock.writers:
                raise InternalError(f"{where}: writers queued on a free lock")
            if lock.readers and lock.holder is None:
                raise InternalError(f"{where}: readers wait on an unheld lock")
            if lock.holder is not None and lock.reservation is not None:
                raise InternalError(f"{where}: held and reserved")
            res = lock.reservation
            if res is not None and (res.reserved.get(key) is not lock or res.waiting):
                raise InternalError(f"{where}: reservation by a waiting or unaware request")
            for w in lock.waiters():
                ws = w.wait_state
                if w._waiting_on is not lock or ws is None or ws.key != key:
                    raise InternalError(f"{where}: waiter {w!r} does not know it waits here")
                if w.reserved:
                    raise InternalError(f"{where}: waiter {w!r} holds reservations")
                if ws.holder is not None and (
                    lock.holder is None or ws.holder.id != lock.holder.id
                ):
                    raise InternalError(f"{where}: waiter {w!r} would push the wrong txn")

    # ---- internals ----------------------------------------------------------------

    def _overlapping(self, span: Span) -> Iterator[_Lock]:
        if span.is_point:
            lock = self._locks.get(span.key)
            if lock is not None:
                yield lock
            return
        for k in list(self._locks.irange(span.key, span.end, inclusive=(True, False))):
            lock = self._locks.get(k)
            if lock is not None:
                yield lock

    def _must_wait(self, g: LockTableGuard, lock: _Lock, access: SpanAccess, ts: Timestamp) -> bool:
        if lock.holder is not None:
            if g.txn_id is not None and lock.holder.id == g.txn_id:
                return False
            if access is SpanAccess.READ_ONLY:
                return lock.ts <= ts
            return True
        if access is SpanAccess.READ_ONLY:
            return False
        res = lock.reservation
        if res is None or res is g:
            self._reserve(lock, g)
            return False
        if g.txn_id is not None and res.txn_id == g.txn_id:
            return False
        if g.seq < res.seq:  # arrived first: take the reservation over
            res.reserved.pop(lock.key, None)
            self._reserve(lock, g)
            return False
        return True

    def _reserve(self, lock: _Lock, g: LockTableGuard) -> None:
        lock.reservation = g
        g.reserved[lock.key] = lock

    def _enqueue(self, g: LockTableGuard, lock: _Lock, access: SpanAccess, ts: Timestamp) -> None:
        # A waiting request holds no reservation (see "Deadlock freedom").
        self._release_reservations(g)
        if access is SpanAccess.READ_WRITE:
            insort(lock.writers, (g.seq, g), key=_seq_key)
        else:
            lock.readers[g] = ts
        g._waiting_on, g._access, g._conflict_ts = lock, access, ts
        g.wait_start = _now()
        g.push_for = None
        if lock.holder is not None and lock.timer is None:
            self._arm(lock)

    def _dequeue_waiting(self, g: LockTableGuard) -> None:
        lock = g._waiting_on
        if lock is None:
            return
        g._waiting_on = None
        if g._access is SpanAccess.READ_WRITE:
            was_head = bool(lock.writers) and lock.writers[0][1] is g
            lock.writers = [e for e in lock.writers if e[1] is not g]
            if was_head and lock.holder is not None and lock.writers:
                lock.writers[0][1]._notify()  # the new head pushes without delay
        else:
            lock.readers.pop(g, None)
        self._gc(lock)

    def _set_holder(self, lock: _Lock, holder: data_pb2.TxnMeta) -> None:
        changed = lock.holder is None or lock.holder.id != holder.id
        h = data_pb2.TxnMeta()
        h.CopyFrom(holder)
        lock.holder = h
        lock.ts = ts_from_proto(holder.write_timestamp)
        res = lock.reservation
        if res is not None:  # a held lock has no reservation; the reserver re-queues if it must
            res.reserved.pop(lock.key, None)
            lock.reservation = None
        self._wake_readers(lock, below=lock.ts)
        if changed:
            # Only the head writer hears of the new holder at once (it pushes
            # it now); the others are told by the stuck timer if it lasts.
            lock.held_since = _now()
            self._arm(lock)
            if lock.writers:
                lock.writers[0][1]._notify()

    def _release(self, lock: _Lock) -> None:
        lock.holder = None
        lock.ts = Timestamp()
        _cancel_timer(lock)
        readers, lock.readers = lock.readers, {}
        for r in readers:
            r._waiting_on = None
            r._notify()
        if lock.reservation is None:
            self._grant_next(lock)
        else:
            self._gc(lock)

    def _grant_next(self, lock: _Lock) -> None:
        """Hand an unheld, unreserved lock to its first queued writer. The
        writers behind it now wait on a reservation: nothing to push, and
        nothing to tell them (their wait state is computed)."""
        if lock.holder is None and lock.reservation is None and lock.writers:
            _, g = lock.writers.pop(0)
            g._waiting_on = None
            self._reserve(lock, g)
            g._notify()
        self._gc(lock)

    def _wake_readers(self, lock: _Lock, *, below: Timestamp) -> None:
        """Readers whose conflict timestamp is now below the lock's go on."""
        for r, ts in list(lock.readers.items()):
            if ts < below:
                del lock.readers[r]
                r._waiting_on = None
                r._notify()
        self._gc(lock)

    # ---- the stuck timer: one per held lock with waiters -------------------------

    def _arm(self, lock: _Lock) -> None:
        """(Re)arm the lock's timer for the earliest waiter due to push."""
        _cancel_timer(lock)
        if self.stuck_delay is None or lock.holder is None:
            return
        starts = [max(w.wait_start, lock.held_since) for w in lock.waiters()]
        if not starts:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        lock.timer = loop.call_at(min(starts) + self.stuck_delay, self._on_stuck, lock)

    def _on_stuck(self, lock: _Lock) -> None:
        lock.timer = None
        if lock.holder is None or self._locks.get(lock.key) is not lock:
            return
        assert self.stuck_delay is not None
        now, hid = _now(), lock.holder.id
        head = lock.writers[0][1] if lock.writers else None
        later: list[float] = []
        for w in lock.waiters():
            if w is head:
                continue  # the head pushes on its own schedule
            since = max(w.wait_start, lock.held_since)
            if now - since >= self.stuck_delay - 1e-9:
                if w.push_for != hid:
                    w.push_for = hid
                    w._notify()
            else:
                later.append(since)
        if later:
            loop = asyncio.get_running_loop()
            lock.timer = loop.call_at(min(later) + self.stuck_delay, self._on_stuck, lock)

    def _gc(self, lock: _Lock) -> None:
        if not lock.readers and not lock.writers:
            _cancel_timer(lock)
        if lock.empty() and self._locks.get(lock.key) is lock:
            del self._locks[lock.key]


def _seq_key(e: tuple[int, LockTableGuard]) -> int:
    return e[0]


def _cancel_timer(lock: _Lock) -> None:
    if lock.timer is not None:
        lock.timer.cancel()
        lock.timer = None


def _now() -> float:
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:  # used outside a loop (pure data-structure tests)
        return 0.0
