"""The concurrency manager: latches + lock table + txn wait queue of a replica.

How a request is sequenced (`sequence`)
---------------------------------------
::

    acquire latches over req.spans (spanlatch: FIFO, short-lived)
    scan the lock table over req.lock_spans
      no conflict   -> return the Guard, latches held: evaluate
      conflict      -> release latches, wait in the lock's queue (pushing the
                       holder after a delay, resolving its intent), then
                       start over (same lock-table sequence number: fair)

    evaluate -> WriteIntentError(intents)
        -> handle_write_intent_error(g, err): the intents become discovered
           locks, latches are dropped, the request waits as above and is
           sequenced again; the returned Guard holds latches again.
    finish(g): release latches, leave the lock table (pass reservations on).

Latches are never held while waiting on a lock: a waiter holding latches
would block the very ResolveIntent that frees it.

The replica's duties (see the report / docs/design/concurrency.md):
``on_lock_updated`` after applying a batch that resolved intents
(ResolveIntent(Range), EndTxn's `resolved_locks`); ``on_lock_acquired``
optionally after applying intents (fairness on hot keys);
``on_txn_record_updated`` after applying a record change (EndTxn, PushTxn,
HeartbeatTxn, RecoverTxn); ``wait_for_pushee`` when a PushTxn evaluates to
TransactionPushError; ``waiting_txns`` to fill QueryTxn's answer; ``clear``
when the lease is lost.

Everything beyond this replica is reached through the `TxnPusher` seam (the
store implements it over the KV client), so this package does no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from crdb_py.kvserver.concurrency.lock_table import LockTable, LockTableGuard
from crdb_py.kvserver.concurrency.lock_table_waiter import LockTableWaiter
from crdb_py.kvserver.concurrency.txn_wait_queue import (
    TXN_LIVENESS_THRESHOLD_NANOS,
    PushWaitResult,
    TxnWaitQueue,
)
from crdb_py.kvserver.spanlatch import Guard as LatchGuard
from crdb_py.kvserver.spanlatch import LatchManager
from crdb_py.kvserver.spanset import SpanAccess, SpanSet
from crdb_py.pb import api_pb2, data_pb2
from crdb_py.util.errors import InternalError, WriteIntentError
from crdb_py.util.hlc import Timestamp, ts_from_proto


class TxnPusher(Protocol):
    """What the concurrency manager needs from the rest of the cluster
    (implemented by the store over the KV client)."""

    async def push_txn(
        self,
        pusher: data_pb2.Transaction | None,
        pushee: data_pb2.TxnMeta,
        push_type: int,
        push_to: Timestamp,
        *,
        force: bool = False,
    ) -> data_pb2.Transaction:
        """PushTxn to the pushee's record range; blocks (in that range's txn
        wait queue) until it succeeds. Raises TransactionPushError only if
        the far side gives up, TransactionAbortedError if the pusher was
        aborted meanwhile."""
        ...

    async def resolve_intent(self, update: data_pb2.LockUpdate) -> None: ...

    async def query_txn(
        self, txn: data_pb2.TxnMeta
    ) -> tuple[data_pb2.Transaction, list[bytes]]:
        """(record or synthesized PENDING, waiting_txns) from txn's record range."""
        ...


@dataclass(slots=True)
class Request:
    """What sequencing needs to know about a batch.

    `spans` are latched; `lock_spans` are checked against the lock table:
    READ_ONLY spans at the timestamp up to which the read conflicts with
    intents (its read timestamp forwarded to its uncertainty limit),
    READ_WRITE spans at any timestamp. Build one from a batch with
    `request_from_batch`.
    """

    spans: SpanSet
    lock_spans: SpanSet = field(default_factory=SpanSet)
    txn: data_pb2.Transaction | None = None

    @property
    def txn_id(self) -> bytes | None:
        return self.txn.meta.id if self.txn is not None and self.txn.meta.id else None


class Guard:
    """A sequenced request: holds latches between `sequence` and `finish`."""

    __slots__ = ("latch_guard", "ltg", "req")

    def __init__(self, req: Request, ltg: LockTableGuard) -> None:
        self.req = req
        self.ltg = ltg
        self.latch_guard: LatchGuard | None = None

    @property
    def holds_latches(self) -> bool:
        return self.latch_guard is not None

    def __repr__(self) -> str:
        return f"Guard(seq={self.ltg.seq}, latched={self.holds_latches})"


class ConcurrencyManager:
    """One per replica. See the module docstring and docs/design/transactions.md."""

    def __init__(
        self,
        pusher: TxnPusher,
        clock: Callable[[], Timestamp],
        *,
        latches: LatchManager | None = None,
        push_delay: float = 0.05,
        head_push_delay: float = 0.0,
        deadlock_check_interval: float = 0.1,
        pushee_check_interval: float = 1.0,
        liveness_threshold_nanos: int = TXN_LIVENESS_THRESHOLD_NANOS,
        detect_deadlocks: bool = True,
    ) -> None:
        self.latches = latches if latches is not None else LatchManager()
        self.lock_table = LockTable(stuck_delay=push_delay)
        self.waiter = LockTableWaiter(
            self.lock_table,
            pusher,
            push_delay=push_delay,
            head_push_delay=head_push_delay,
        )
        self.txn_wait_queue = TxnWaitQueue(
            pusher,
            clock,
            deadlock_check_interval=deadlock_check_interval,
            pushee_check_interval=pushee_check_interval,
            liveness_threshold_nanos=liveness_threshold_nanos,
            detect_deadlocks=detect_deadlocks,
        )

    # ---- the request path ----------------------------------------------------------

    async def sequence(self, req: Request) -> Guard:
        """Latches acquired and no conflicting lock: the request may evaluate.
        Waits (and pushes) as needed; cancellation leaves nothing behind."""
        g = Guard(req, self.lock_table.new_guard(req.txn_id, req.lock_spans))
        return await self._sequence(g)

    async def _sequence(self, g: Guard) -> Guard:
        try:
            while True:
                g.latch_guard = await self.latches.acquire(g.req.spans)
                if not self.lock_table.scan_and_enqueue(g.ltg):
                    return g
                self._release_latches(g)
                await self.waiter.wait(g.ltg, g.req.txn)
        except BaseException:
            self.finish(g)
            raise

    def finish(self, g: Guard) -> None:
        """The request is done (evaluated, or failed): release its latches and
        its place in the lock table. Idempotent."""
        self._release_latches(g)
        self.lock_table.dequeue(g.ltg)

    async def handle_write_intent_error(self, g: Guard, err: WriteIntentError) -> Guard:
        """Evaluation met intents: remember them as locks, drop latches, wait
        for them (pushing their txns), and sequence the request again. Call
        it while still holding the guard's latches."""
        if not g.holds_latches:
            raise InternalError(f"handle_write_intent_error without latches: {g!r}")
        try:
            first: bytes | None = None
            for intent in err.intents:
                if g.req.txn_id is not None and intent.txn.id == g.req.txn_id:
                    continue  # an own intent is not a conflict; evaluation decides
                self.lock_table.add_discovered_lock(g.ltg, intent.key, intent.txn)
                first = intent.key if first is None else first
            self._release_latches(g)
            if self.lock_table.scan_and_enqueue(g.ltg) or (
                first is not None and self.lock_table.enqueue_on(g.ltg, first)
            ):
                await self.waiter.wait(g.ltg, g.req.txn)
        except BaseException:
            self.finish(g)
            raise
        return await self._sequence(g)

    # ---- notifications from the replica (after apply) -------------------------------------

    def on_lock_updated(self, up: data_pb2.LockUpdate) -> None:
        """Intents in `up.span` of `up.txn` were resolved on this range."""
        self.lock_table.update_locks(up)

    def on_lock_acquired(self, key: bytes, txn: data_pb2.TxnMeta) -> None:
        """`txn` wrote an intent on `key` (optional; keeps hot keys fair)."""
        self.lock_table.acquire_lock(key, txn)

    # ---- txn wait queue (this range holds the pushee's record) -------------------------------

    async def wait_for_pushee(
        self,
        push: api_pb2.PushTxnRequest,
        pusher: data_pb2.Transaction | None,
        *,
        pushee_record: data_pb2.Transaction | None = None,
    ) -> PushWaitResult:
        """A PushTxn failed on this range: wait until retrying it may succeed.
        On DEADLOCK retry with `force=True` (and PUSH_ABORT)."""
        return await self.txn_wait_queue.wait_for_pushee(push, pusher, pushee_record=pushee_record)

    def on_txn_record_updated(self, rec: data_pb2.Transaction) -> None:
        self.txn_wait_queue.on_txn_record_updated(rec)

    def waiting_txns(self, pushee_id: bytes) -> list[bytes]:
        return self.txn_wait_queue.waiting_txns(pushee_id)

    def clear(self) -> None:
        """The lease was lost: wake every waiter (they re-sequence and are
        redirected) and let every waiting push out."""
        self.lock_table.clear()
        self.txn_wait_queue.clear()

    def metrics(self) -> dict[str, int]:
        return {
            **self.lock_table.metrics(),
            "pushes": self.waiter.pushes,
            "waiting_pushes": len(self.txn_wait_queue),
            "deadlocks_broken": self.txn_wait_queue.deadlocks,
        }

    # ---- internals -------------------------------------------------------------------------

    def _release_latches(self, g: Guard) -> None:
        lg, g.latch_guard = g.latch_guard, None
        if lg is not None:
            self.latches.release(lg)


# ---- building a Request from a batch ---------------------------------------------------------

_LOCKING_READS = frozenset({"get", "scan", "reverse_scan"})
_LOCKING_WRITES = frozenset({"put", "conditional_put", "increment", "delete", "delete_range"})


def request_from_batch(
    ba: api_pb2.BatchRequest, spans: SpanSet, *, uncertainty_limit: Timestamp | None = None
) -> Request:
    """The `Request` for a batch whose latch spans are `spans`.

    Only MVCC reads and writes wait in the lock table; txn-record commands,
    intent resolution, QueryIntent and refreshes never do (they act on the
    locks themselves or fail on them). A read conflicts with intents at or
    below its read timestamp forwarded to its uncertainty limit
    (`uncertainty_limit` for a non-transactional read if the replica gives it
    one)."""
    h = ba.header
    txn = h.txn if h.HasField("txn") else None
    if txn is not None:
        read_to = ts_from_proto(txn.read_timestamp).forward(
            ts_from_proto(txn.global_uncertainty_limit)
        )
    else:
        read_to = ts_from_proto(h.timestamp)
        if uncertainty_limit is not None:
            read_to = read_to.forward(uncertainty_limit)
    lock_spans = SpanSet()
    for ru in ba.requests:
        kind = ru.WhichOneof("value")
        req = getattr(ru, kind)
        key, end = req.header.key, req.header.end_key or None
        if kind in _LOCKING_READS:
            lock_spans.add(SpanAccess.READ_ONLY, key, end, read_to)
        elif kind in _LOCKING_WRITES:
            lock_spans.add(SpanAccess.READ_WRITE, key, end)
    return Request(spans=spans, lock_spans=lock_spans, txn=txn)
