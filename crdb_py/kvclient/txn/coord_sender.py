"""TxnCoordSender: the client side of one transaction, as a stack of
interceptors over the DistSender.

The stack, top (called first) to bottom, and why in this order
--------------------------------------------------------------
::

    TxnCoordSender.send          txn header, state update, retryable errors → new epoch
      1. LockGatekeeper          one user batch in the stack at a time
      2. Heartbeater             anchor key; heartbeat loop from the first write; abort seen
      3. SeqNumAllocator         a sequence number on every request
      4. Pipeliner               async consensus, proofs (QueryIntent), in-flight writes,
                                 lock footprint; fills the EndTxn's lock spans / in-flight writes
      5. SpanRefresher           read spans; refresh and re-send on a pushed timestamp
      6. Committer               1PC / parallel commit (STAGING) / 2PC; explicit commit
      7. MetricRecorder          consensus rounds of each batch on the wire
    wrapped Sender (DistSender)

1. The gatekeeper is first because asyncio has no mutex to hold across the
   stack: it must shut the door before any interceptor state is touched
   (`lock_gatekeeper.py` explains why a second batch fails, not queues).
2. The heartbeater must see the first write before anything else needs the
   anchor key (the EndTxn's key, the record's range), and stop its loop
   before the EndTxn leaves.
3. Sequence numbers come before the pipeliner, which names in-flight writes
   by (key, sequence) and gives its proofs the sequence of the write proven.
4. The pipeliner is above the refresher and the committer: the EndTxn must
   carry every in-flight write and lock, including the proofs the pipeliner
   adds, before the committer decides how to commit, and a batch re-sent
   after a refresh must keep its proofs.
5. The refresher is above the committer (CockroachDB has it below): a batch
   re-sent after a refresh passes through the committer again, which then
   refuses to commit it in parallel; and the committer's "a parallel commit
   was pushed" becomes an ordinary refreshable error.
6. The committer is below everything that shapes the batch and above the
   recorder, so the recorder sees the 2PC split as the two rounds it is.
7. The recorder is last: it counts exactly what goes on the wire.

Out of band, straight to the wrapped sender (never through the stack):
heartbeats, the explicit commit after a parallel commit, async rollbacks.

Errors. A retryable error (40001) moves the txn to a new epoch *here*,
before the error reaches the caller: same id, timestamps forwarded to what
the error says the txn needs, per-epoch state reset in every interceptor
(`epoch_bumped`). The caller (usually `run_txn`) just runs its function
again on the same `Txn`. A `TransactionAbortedError` finishes the txn: the
caller needs a new one (`run_txn` does that), and this one's intents are
cleaned up asynchronously. Non-retryable errors (ConditionFailed, …) leave
the txn usable, as in CockroachDB.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

from crdb_py.kvclient.sender import Sender
from crdb_py.kvclient.txn.committer import Committer, RangeLocator
from crdb_py.kvclient.txn.heartbeater import Heartbeater
from crdb_py.kvclient.txn.interceptor import (
    BatchRequest,
    BatchResponse,
    Interceptor,
    TxnState,
    copy_batch,
    log,
    set_ts,
    txn_copy,
)
from crdb_py.kvclient.txn.lock_gatekeeper import LockGatekeeper
from crdb_py.kvclient.txn.metric_recorder import MetricRecorder, TxnMetrics
from crdb_py.kvclient.txn.pipeliner import Pipeliner
from crdb_py.kvclient.txn.rounds import CommitPath, TxnTrace
from crdb_py.kvclient.txn.seq_num_allocator import SeqNumAllocator
from crdb_py.kvclient.txn.settings import TxnConfig
from crdb_py.kvclient.txn.span_refresher import SpanRefresher
from crdb_py.pb import api_pb2, data_pb2
from crdb_py.util import keys
from crdb_py.util.errors import (
    ClockOffsetError,
    CrdbError,
    ReadWithinUncertaintyIntervalError,
    TransactionAbortedError,
    TransactionStatusError,
    WriteTooOldError,
)
from crdb_py.util.hlc import HLC, Timestamp, ts_from_proto


def new_txn_proto(
    clock: HLC, *, name: str = "", priority: int = 0, gateway_node_id: int = 0
) -> data_pb2.Transaction:
    """A fresh PENDING txn at the clock's now (read = write = min timestamp)."""
    now = clock.now()
    wall, logical = now.wall_time, now.logical
    t = data_pb2.Transaction()
    meta = t.meta
    meta.id = uuid.uuid4().bytes
    meta.epoch = 0
    for ts in (meta.write_timestamp, meta.min_timestamp, t.read_timestamp):
        ts.wall_time = wall
        ts.logical = logical
    meta.priority = priority
    meta.coordinator_node_id = gateway_node_id
    t.name = name
    t.status = data_pb2.PENDING
    limit = t.global_uncertainty_limit
    limit.wall_time = wall + clock.max_offset_nanos
    limit.logical = logical
    return t


class DistSenderLocator:
    """`RangeLocator` over a DistSender's range cache."""

    def __init__(self, range_cache: object) -> None:
        self._cache = range_cache

    async def single_range(self, ks: list[bytes]) -> bool | None:
        ids = set()
        try:
            for k in ks:
                entry = await self._cache.lookup(keys.addr(k))  # type: ignore[attr-defined]
                ids.add(entry.desc.range_id)
        except (CrdbError, LookupError, ValueError):
            return None
        return len(ids) == 1


class TxnCoordSender:
    """The coordinator of one transaction: a Sender for its batches."""

    def __init__(
        self,
        wrapped: Sender,
        *,
        clock: HLC,
        config: TxnConfig | None = None,
        metrics: TxnMetrics | None = None,
        locator: RangeLocator | None = None,
        name: str = "",
        priority: int = 0,
        gateway_node_id: int = 0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.config = config or TxnConfig()
        self.metrics = metrics
        self.wrapped = wrapped
        txn = new_txn_proto(clock, name=name, priority=priority, gateway_node_id=gateway_node_id)
        self.state = TxnState(txn, config=self.config, clock=clock, raw=wrapped, trace=TxnTrace())
        if locator is None and hasattr(wrapped, "range_cache"):
            locator = DistSenderLocator(wrapped.range_cache)
        self.gatekeeper = LockGatekeeper(self.state)
        self.heartbeater = Heartbeater(self.state, sleep=sleep, on_abort=self._abort_async)
        self.seq = SeqNumAllocator(self.state)
        self.pipeliner = Pipeliner(self.state)
        self.refresher = SpanRefresher(self.state)
        self.committer = Committer(self.state, locator=locator)
        self.recorder = MetricRecorder(self.state)
        self.interceptors: list[Interceptor] = [
            self.gatekeeper,
            self.heartbeater,
            self.seq,
            self.pipeliner,
            self.refresher,
            self.committer,
            self.recorder,
        ]
        for upper, lower in zip(self.interceptors, self.interceptors[1:], strict=False):
            upper.wrapped = lower
        self.recorder.wrapped = wrapped
        self.finished = False
        self.committed = False
        self.aborted = False
        self._started = time.monotonic()

    # ---- accessors -------------------------------------------------------------------

    @property
    def txn(self) -> data_pb2.Transaction:
        return self.state.txn

    @property
    def trace(self) -> TxnTrace:
        return self.state.trace

    @property
    def id(self) -> bytes:
        return self.state.txn.meta.id

    @property
    def epoch(self) -> int:
        return self.state.txn.meta.epoch

    # ---- the send path ---------------------------------------------------------------

    async def send(self, ba: BatchRequest) -> BatchResponse:
        if self.finished:
            status = data_pb2.TransactionStatus.Name(self.state.txn.status)
            if self.aborted:
                raise TransactionAbortedError("ABORTED_RECORD_FOUND", txn=txn_copy(self.state.txn))
            raise TransactionStatusError(
                f"the transaction is already finished ({status}); start a new one",
                reason="txn finished",
                txn=txn_copy(self.state.txn),
            )
        work = copy_batch(ba)
        work.header.txn.CopyFrom(self._header_txn())
        try:
            br = await self.gatekeeper.send(work)
        except CrdbError as e:
            self._handle_error(e)
            raise
        self._update(br)
        return br

    def _header_txn(self) -> data_pb2.Transaction:
        t = txn_copy(self.state.txn)
        del t.lock_spans[:]
        del t.in_flight_writes[:]
        return t

    def _update(self, br: BatchResponse) -> None:
        if br.header.HasField("txn"):
            got = br.header.txn
            st = self.state.txn
            if got.meta.id and got.meta.id != st.meta.id:
                raise TransactionStatusError("response for another transaction", reason="id")
            if got.meta.epoch == st.meta.epoch:
                for src, dst in (
                    (got.meta.write_timestamp, st.meta.write_timestamp),
                    (got.read_timestamp, st.read_timestamp),
                ):
                    if ts_from_proto(src) > ts_from_proto(dst):
                        dst.CopyFrom(src)
                if got.status == data_pb2.COMMITTED:
                    self._finish(committed=True, status=data_pb2.COMMITTED)
                elif got.status == data_pb2.ABORTED:
                    self._finish(committed=False, status=data_pb2.ABORTED)

    def _handle_error(self, e: CrdbError) -> None:
        if isinstance(e, TransactionAbortedError):
            self.aborted = True
            self._finish(committed=False, status=data_pb2.ABORTED)
            self._abort_async()
            return
        if not type(e).retryable or self.finished:
            return
        self.restart(self._restart_timestamp(e))

    def _restart_timestamp(self, e: CrdbError) -> Timestamp:
        ts = self.state.write_ts
        if isinstance(e, WriteTooOldError):
            ts = ts.forward(e.actual_timestamp)
        elif isinstance(e, ReadWithinUncertaintyIntervalError):
            ts = ts.forward(e.existing_timestamp.next())
        txn = getattr(e, "txn", None)
        if txn is not None and hasattr(txn, "meta"):
            ts = ts.forward(ts_from_proto(txn.meta.write_timestamp))
        return ts

    def restart(self, ts: Timestamp) -> None:
        """Move to the next epoch at `ts` (or later): same id, fresh reads."""
        st = self.state.txn
        st.meta.epoch += 1
        ts = ts.forward(self.state.write_ts)
        try:
            self.state.clock.update(ts)
        except ClockOffsetError:
            pass
        set_ts(st.meta.write_timestamp, ts)
        set_ts(st.read_timestamp, ts)
        st.status = data_pb2.PENDING
        self.state.trace.restarts += 1
        for i in self.interceptors:
            i.epoch_bumped()

    # ---- finishing -------------------------------------------------------------------

    def _finish(self, *, committed: bool, status: int) -> None:
        if self.finished:
            return
        self.finished = True
        self.committed = committed
        self.state.txn.status = status  # type: ignore[assignment]
        for i in self.interceptors:
            i.closed()
        if self.metrics is not None:
            self.metrics.record_txn(
                self.state.trace, committed=committed, duration=time.monotonic() - self._started
            )

    async def rollback(self) -> None:
        """Abort the txn and clean up its intents (best effort: errors are
        logged, not raised — an abandoned txn is aborted by pushers anyway)."""
        if self.finished:
            return
        if self.gatekeeper.in_flight:
            self._finish(committed=False, status=data_pb2.ABORTED)
            self._abort_async()
            return
        ba = api_pb2.BatchRequest()
        ba.requests.add().end_txn.commit = False
        try:
            await self.send(ba)
        except CrdbError as e:
            log.info("rollback of txn %s failed: %s", self.id.hex(), e)
        if not self.finished:
            self._finish(committed=False, status=data_pb2.ABORTED)

    def _abort_async(self) -> None:
        """EndTxn(abort) straight to the wrapped sender, in the background."""
        self.heartbeater.stop()
        anchor = self.state.txn.meta.key
        if not anchor:
            return
        ba = api_pb2.BatchRequest()
        ba.header.txn.CopyFrom(self._header_txn())
        ru = ba.requests.add()
        et = ru.end_txn
        et.header.key = anchor
        et.commit = False
        for key, end in self.pipeliner.all_lock_spans():
            et.lock_spans.add(key=key, end_key=end)
        if self.state.trace.commit_path is CommitPath.NONE:
            self.state.trace.commit_path = CommitPath.ROLLBACK

        async def go() -> None:
            try:
                await self.wrapped.send(ba)
            except CrdbError as e:
                log.info("async abort of txn %s failed: %s", self.id.hex(), e)

        try:
            self.state.spawn(go(), "txn-async-abort")
        except RuntimeError:  # no running loop (interpreter shutdown)
            pass

    async def drain(self) -> None:
        """Wait for background work (explicit commit, async abort)."""
        await self.state.drain()

    def close(self) -> None:
        """Stop background loops without finishing the txn (abandon it)."""
        self.heartbeater.stop()


def describe_stack(coord: TxnCoordSender) -> list[str]:
    """Names of the interceptors, top to bottom (tests pin the order)."""
    return [i.name for i in coord.interceptors]


__all__ = ["DistSenderLocator", "TxnCoordSender", "describe_stack", "new_txn_proto"]
