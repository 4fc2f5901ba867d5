"""The txn wait queue: pushes that failed wait here for the pushee to change.

Where it sits
-------------
Every range has one queue, used for the txns whose *record* lives on the
range. A PushTxn that fails (the pushee is live and the pusher does not
outrank it) must not spin: the replica parks it with `wait_for_pushee` until
something could make the push succeed, then re-evaluates it:

* the pushee's record changed in a way that satisfies the push — it was
  finalized (COMMITTED/ABORTED), or pushed above `push_to` for a
  PUSH_TIMESTAMP (`on_txn_record_updated`, called by the replica after
  applying EndTxn/PushTxn/RecoverTxn/HeartbeatTxn) → `PUSHEE_UPDATED`;
* the pushee expired: no heartbeat for `liveness_threshold` (re-checked
  against the injected clock at the expected expiry, at least every
  `pushee_check_interval`, querying the pushee's record through the
  `TxnPusher` seam) → `PUSHEE_EXPIRED`; the re-evaluated push then wins by
  the expiry rule (abandoned transactions are cleaned up this way);
* a deadlock was found and this pusher is the one to break it → `DEADLOCK`:
  the caller re-evaluates the push with `force=True` (CockroachDB also turns
  it into a PUSH_ABORT);
* the queue was cleared (lease lost) → `QUEUE_CLEARED`: retry elsewhere.

Deadlock detection: distributed edge chasing (CockroachDB txnwait/queue.go)
---------------------------------------------------------------------------
A waiting push P→E (pusher P, pushee E) knows a set `dependents`: txns that
(transitively) wait for P. Every `deadlock_check_interval` it asks P's record
range, through the seam, `query_txn(P)`, whose answer carries
`waiting_txns(P)` from *that* range's queue: the pushers waiting on P plus
their own dependents. The sets accumulate. If E is in P's dependents, E
waits (transitively) for P while P waits for E: a cycle. Each push in the
cycle sees it (the sets flow around the cycle one hop per interval, so a
cycle of n txns is seen within about n intervals); only the push whose
pusher has the larger (priority, id) than its pushee breaks it, so exactly
the txns that lose such a comparison get aborted — at least one per cycle,
and never both ends of an edge. The others keep waiting: their pushee is
about to change, or their pusher is aborted, which the same periodic query
reveals (an aborted pusher's wait ends with `TransactionAbortedError`, a
committed one's with `TransactionStatusError`).

Rejected: a global waits-for graph (needs a coordinator and a consistent
snapshot across nodes); timeouts as the deadlock breaker (slow and aborts
live non-deadlocked txns); asking for updates by long-poll (`wait_for_update`
in CockroachDB's QueryTxn) — polling the pusher's record at a fixed interval
is simpler and only runs while a push is actually blocked.

Threading: one instance per replica on the node's event loop.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable
from typing import TYPE_CHECKING

from crdb_py.pb import api_pb2, data_pb2
from crdb_py.util.errors import TransactionAbortedError, TransactionStatusError
from crdb_py.util.hlc import Timestamp, ts_from_proto

if TYPE_CHECKING:
    from crdb_py.kvserver.concurrency.manager import TxnPusher

HEARTBEAT_INTERVAL_NANOS = 1_000_000_000
TXN_LIVENESS_THRESHOLD_NANOS = 5 * HEARTBEAT_INTERVAL_NANOS
FINAL = (data_pb2.COMMITTED, data_pb2.ABORTED)


class PushWaitResult(enum.Enum):
    PUSHEE_UPDATED = "pushee_updated"
    PUSHEE_EXPIRED = "pushee_expired"
    DEADLOCK = "deadlock"  # re-evaluate with force=True
    QUEUE_CLEARED = "queue_cleared"


def last_active(txn: data_pb2.Transaction) -> Timestamp:
    return ts_from_proto(txn.last_heartbeat).forward(ts_from_proto(txn.meta.min_timestamp))


def is_expired(now: Timestamp, txn: data_pb2.Transaction, threshold_nanos: int) -> bool:
    """No sign of life for `threshold_nanos` (final txns never expire)."""
    if txn.status in FINAL:
        return False
    return last_active(txn).add(threshold_nanos) < now


def outranks(a: data_pb2.TxnMeta, b: data_pb2.TxnMeta) -> bool:
    """Whether `a` wins a deadlock against `b`: higher (priority, id)."""
    return (a.priority, a.id) > (b.priority, b.id)


class _WaitingPush:
    __slots__ = ("dependents", "fut", "pushee_id", "pusher", "req")

    def __init__(self, req: api_pb2.PushTxnRequest, pusher: data_pb2.Transaction | None) -> None:
        self.req = req
        self.pusher: data_pb2.Transaction | None = None
        if pusher is not None:  # a copy: its priority is updated from queries
            self.pusher = data_pb2.Transaction()
            self.pusher.CopyFrom(pusher)
        self.pushee_id = req.pushee_txn.id
        self.dependents: dict[bytes, None] = {}  # insertion-ordered set
        self.fut: asyncio.Future[PushWaitResult] = asyncio.get_running_loop().create_future()

    def finish(self, result: PushWaitResult) -> None:
        if not self.fut.done():
            self.fut.set_result(result)

    def satisfied_by(self, rec: data_pb2.Transaction) -> bool:
        if rec.status in FINAL:
            return True
        if self.req.push_type == api_pb2.PUSH_TIMESTAMP:
            return ts_from_proto(self.req.push_to) <= ts_from_proto(rec.meta.write_timestamp)
        return False


class TxnWaitQueue:
    """Waiting pushes by pushee id. See the module docstring."""

    def __init__(
        self,
        pusher: TxnPusher,
        clock: Callable[[], Timestamp],
        *,
        deadlock_check_interval: float = 0.1,
        pushee_check_interval: float = 1.0,
        liveness_threshold_nanos: int = TXN_LIVENESS_THRESHOLD_NANOS,
        detect_deadlocks: bool = True,
    ) -> None:
        self._seam = pusher
        self._clock = clock
        self.deadlock_check_interval = deadlock_check_interval
        self.pushee_check_interval = pushee_check_interval
        self.liveness_threshold_nanos = liveness_threshold_nanos
        self.detect_deadlocks = detect_deadlocks
        self._pushes: dict[bytes, list[_WaitingPush]] = {}  # pushee id -> pushes
        self._records: dict[bytes, data_pb2.Transaction] = {}  # latest known pushee records
        self.deadlocks = 0  # deadlocks this queue broke (DEADLOCK returned)

    # ---- waiting -------------------------------------------------------------------

    async def wait_for_pushee(
        self,
        push: api_pb2.PushTxnRequest,
        pusher: data_pb2.Transaction | None,
        *,
        pushee_record: data_pb2.Transaction | None = None,
    ) -> PushWaitResult:
        """Block until the push may succeed on re-evaluation (see the module
        docstring). `pushee_record` is the record as the failed push saw it;
        without it the record is queried first. Raises TransactionAbortedError
        if the pusher is found aborted meanwhile; cancellation leaves nothing
        behind."""
        w = _WaitingPush(push, pusher if pusher is not None and pusher.meta.id else None)
        pid = w.pushee_id
        self._pushes.setdefault(pid, []).append(w)
        if pushee_record is not None:
            self._note_record(pushee_record)
        detector: asyncio.Task[None] | None = None
        try:
            # A pusher without an anchor key has written nothing: it holds no
            # lock and has no record, so it cannot be part of a cycle.
            if w.pusher is not None and self.detect_deadlocks and w.pusher.meta.key:
                detector = asyncio.ensure_future(self._detect_deadlocks(w))
            res = await self._wait(w)
            rec = self._records.get(pid)
            if res == PushWaitResult.PUSHEE_UPDATED and rec is not None:
                # Tell the push what satisfied it: the record may have been
                # learned from another push (a newer intent's write timestamp)
                # and not be on disk; re-evaluated with its own older view of
                # the pushee, the push would fail again and come straight back.
                _forward_meta(push.pushee_txn, rec.meta)
            return res
        finally:
            if detector is not None:
                detector.cancel()
            self._remove(w)

    async def _wait(self, w: _WaitingPush) -> PushWaitResult:
        pid = w.pushee_id
        if pid not in self._records:
            await self._query_pushee(w)
        while not w.fut.done():
            rec = self._records.get(pid)
            if rec is not None:
                if w.satisfied_by(rec):
                    return PushWaitResult.PUSHEE_UPDATED
                now = self._clock()
                if is_expired(now, rec, self.liveness_threshold_nanos):
                    return PushWaitResult.PUSHEE_EXPIRED
                due = last_active(rec).add(self.liveness_threshold_nanos).wall_time - now.wall_time
                delay = min(self.pushee_check_interval, max(due / 1e9, 0.0) + 1e-3)
            else:
                delay = self.pushee_check_interval
            done, _ = await asyncio.wait({w.fut}, timeout=delay)
            if not done:
                await self._query_pushee(w)
        return w.fut.result()

    async def _query_pushee(self, w: _WaitingPush) -> None:
        rec, _ = await self._seam.query_txn(w.req.pushee_txn)
        self._note_record(rec)

    async def _detect_deadlocks(self, w: _WaitingPush) -> None:
        assert w.pusher is not None
        pusher = w.pusher
        try:
            while not w.fut.done():
                await asyncio.sleep(self.deadlock_check_interval)
                rec, waiting = await self._seam.query_txn(pusher.meta)
                if rec.status == data_pb2.ABORTED:
                    _fail(w, TransactionAbortedError("ABORT_REASON_PUSHER_ABORTED", rec))
                    return
                if rec.status == data_pb2.COMMITTED:
                    _fail(w, TransactionStatusError("pusher committed while waiting", txn=rec))
                    return
                if rec.meta.priority > pusher.meta.priority:
                    pusher.meta.priority = rec.meta.priority
                for tid in waiting:
                    w.dependents[tid] = None
                if w.pushee_id in w.dependents and outranks(pusher.meta, w.req.pushee_txn):
                    self.deadlocks += 1
                    w.finish(PushWaitResult.DEADLOCK)
                    return
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the seam failed: surface it to the waiting push
            _fail(w, e)

    # ---- notifications ----------------------------------------------------------------

    def on_txn_record_updated(self, rec: data_pb2.Transaction) -> None:
        """The replica applied a change to a txn record on this range."""
        pid = rec.meta.id
        if pid not in self._pushes:
            return
        self._note_record(rec)
        for w in self._pushes.get(pid, ()):
            if w.satisfied_by(self._records[pid]):
                w.finish(PushWaitResult.PUSHEE_UPDATED)

    def waiting_txns(self, pushee_id: bytes) -> list[bytes]:
        """Ids of the txns waiting to push `pushee_id`, plus their known
        dependents (what QueryTxn answers in `waiting_txns`)."""
        out: dict[bytes, None] = {}
        for w in self._pushes.get(pushee_id, ()):
            if w.pusher is not None:
                out[w.pusher.meta.id] = None
                out.update(w.dependents)
        return list(out)

    def clear(self) -> None:
        """Lease lost: let every waiting push out to be redirected."""
        for ws in list(self._pushes.values()):
            for w in ws:
                w.finish(PushWaitResult.QUEUE_CLEARED)

    # ---- introspection -------------------------------------------------------------------

    def __len__(self) -> int:
        return sum(len(ws) for ws in self._pushes.values())

    def tracked(self) -> list[bytes]:
        return list(self._pushes)

    # ---- internals -----------------------------------------------------------------------

    def _note_record(self, rec: data_pb2.Transaction) -> None:
        pid = rec.meta.id
        if pid not in self._pushes:
            return
        old = self._records.get(pid)
        cp = data_pb2.Transaction()
        cp.CopyFrom(rec)
        if old is not None:
            _merge_forward(cp, old)
        self._records[pid] = cp

    def _remove(self, w: _WaitingPush) -> None:
        ws = self._pushes.get(w.pushee_id)
        if ws is None:
            return
        if w in ws:
            ws.remove(w)
        if not ws:
            del self._pushes[w.pushee_id]
            self._records.pop(w.pushee_id, None)


def _merge_forward(new: data_pb2.Transaction, old: data_pb2.Transaction) -> None:
    """Records only move forward: a final status sticks, epoch, write
    timestamp, heartbeat and priority never go down."""
    if old.status in FINAL and new.status not in FINAL:
        new.status = old.status
    new.meta.epoch = max(new.meta.epoch, old.meta.epoch)
    new.meta.priority = max(new.meta.priority, old.meta.priority)
    if ts_from_proto(new.meta.write_timestamp) < ts_from_proto(old.meta.write_timestamp):
        new.meta.write_timestamp.CopyFrom(old.meta.write_timestamp)
    if ts_from_proto(new.last_heartbeat) < ts_from_proto(old.last_heartbeat):
        new.last_heartbeat.CopyFrom(old.last_heartbeat)


def _forward_meta(meta: data_pb2.TxnMeta, seen: data_pb2.TxnMeta) -> None:
    """Forward `meta`'s epoch and write timestamp to what `seen` knows."""
    if seen.epoch > meta.epoch:
        meta.epoch = seen.epoch
    if ts_from_proto(meta.write_timestamp) < ts_from_proto(seen.write_timestamp):
        meta.write_timestamp.CopyFrom(seen.write_timestamp)


def _fail(w: _WaitingPush, e: BaseException) -> None:
    if not w.fut.done():
        w.fut.set_exception(e)
