"""The committer: which commit path a transaction takes, and parallel commits.

The three paths
---------------
A committing batch ends in EndTxn(commit). The pipeliner above has filled
its ``lock_spans`` (proven or synchronous writes) and ``in_flight_writes``
(pipelined writes not yet proven, plus this batch's point writes) and put a
QueryIntent in front for every earlier in-flight write. The committer picks:

1. **One-phase commit (1PC)** — the whole txn is this batch: epoch 0, no
   earlier writes (no proofs, every lock is written by this batch), and the
   keys on one range (asked of the `RangeLocator`; unknown = try). The batch
   goes out with the writes as lock spans, no in-flight writes and
   ``require_1pc``: the leaseholder commits it without a record in one round.
   If it cannot (another range after all, a record exists, the timestamp
   moved) it refuses with ``TransactionStatusError(reason="require_1pc")``
   and nothing was written on that range; the committer falls through to the
   next path. (``require_1pc`` is what makes a stale range answer safe: our
   DistSender sends the parts of a batch concurrently, so an EndTxn without
   in-flight writes beside writes on another range could commit while a
   write fails.)
2. **Parallel commit** — when enabled and the batch is eligible, it goes
   out as is: proofs, final writes and EndTxn with ``in_flight_writes``
   together; the DistSender sends the parts concurrently. The record becomes
   **STAGING** in the same round. The txn is *implicitly committed* iff
   every part succeeded (all proofs found their intents, all writes applied)
   and no write was pushed: the response's txn write timestamp (the max of
   all parts) equals the staging timestamp (the server stages only at the
   txn's read = write timestamp). Then the client hears "committed" and a
   background task sends EndTxn(commit) without in-flight writes — the
   explicit commit: STAGING → COMMITTED and intent resolution. A pushed
   write is **never** acked: the committer raises
   ``TransactionRetryError("RETRY_SERIALIZABLE")`` with the pushed txn; the
   span refresher refreshes and re-sends, and the re-sent batch is never
   committed in parallel again.
   *Not eligible* (falls back to 2PC) when: parallel commits are disabled;
   the batch is a re-send after a refresh (an earlier attempt may have left a
   STAGING record); the batch holds a ranged write (DeleteRange: recovery
   could not tell which keys it must find) or any read or other non-write
   request besides the proofs (recovery can only check point writes); there
   is nothing in flight (all writes already proven: a plain commit is as
   fast).
3. **Two-phase commit (2PC)** — first the proofs and the final writes, as a
   synchronous batch (round 1), then the EndTxn alone with every write in
   its lock spans (round 2). Sending the EndTxn only after the writes
   succeeded is what keeps a multi-range 2PC atomic.

A rollback (``commit`` false) is sent as is (the pipeliner made every write
a lock span). An EndTxn of a txn that wrote nothing is elided: nothing to
commit, no round (CockroachDB does the same).

Rejected alternative: putting the 2PC proofs in the EndTxn's batch (as
CockroachDB does). CockroachDB's DistSender holds a non-parallel EndTxn back
until the rest of the batch succeeded; ours sends parts concurrently, so
the split has to happen here. Design: docs/design/txn-coordinator.md.
"""

from __future__ import annotations

from typing import Protocol

from crdb_py.kvclient import batch as kb
from crdb_py.kvclient.txn.interceptor import (
    POINT_WRITES,
    RANGED_WRITES,
    BatchRequest,
    BatchResponse,
    Interceptor,
    TxnState,
    copy_batch,
    end_txn,
    log,
    txn_copy,
)
from crdb_py.kvclient.txn.rounds import CommitPath
from crdb_py.pb import api_pb2, data_pb2
from crdb_py.util import failpoints
from crdb_py.util.errors import (
    CrdbError,
    InternalError,
    TransactionRetryError,
    TransactionStatusError,
)
from crdb_py.util.hlc import Timestamp, ts_from_proto

# Failpoints (crdb_py/util/failpoints.py).
FP_AFTER_STAGING = "kvclient.txn.after_staging"  # STAGING response in hand, not yet judged
FP_BEFORE_ACK = "kvclient.txn.before_ack"  # implicitly committed, client not told yet
FP_BEFORE_EXPLICIT_COMMIT = "kvclient.txn.before_explicit_commit"  # in the async task
# Test-only planted bug (M7's checkers must catch it): armed with ``error``,
# a parallel commit drops its final point writes and is acknowledged anyway,
# i.e. before (without) all in-flight writes succeeding.
FP_BROKEN_ACK_WITHOUT_WRITES = "kvclient.txn.broken_ack_without_writes"


class RangeLocator(Protocol):
    """Tells whether keys live on one range (for the 1PC decision)."""

    async def single_range(self, keys: list[bytes]) -> bool | None:
        """True/False, or None when it cannot tell."""
        ...


class Committer(Interceptor):
    name = "committer"

    def __init__(self, state: TxnState, *, locator: RangeLocator | None = None) -> None:
        super().__init__(state)
        self.locator = locator
        self.explicit_commits = 0

    async def send(self, ba: BatchRequest) -> BatchResponse:
        et = end_txn(ba)
        if et is None:
            return await self.next(ba)
        if not et.lock_spans and not et.in_flight_writes:
            return await self._elided(ba, et.commit)
        if not et.commit:
            br = await self.next(ba)
            self.state.trace.commit_path = CommitPath.ROLLBACK
            return br
        if await self._one_pc_candidate(ba, et):
            br = await self._try_one_pc(ba)
            if br is not None:
                return br
        if self._parallel_eligible(ba, et):
            return await self._parallel_commit(ba)
        return await self._two_phase(ba)

    # ---- read-only / 1PC -------------------------------------------------------------

    async def _elided(self, ba: BatchRequest, commit: bool) -> BatchResponse:
        """The txn wrote nothing: no record, nothing to resolve."""
        if len(ba.requests) > 1:
            prefix = copy_batch(ba)
            del prefix.requests[-1]
            br = await self.next(prefix)
        else:
            br = api_pb2.BatchResponse()
            br.header.txn.CopyFrom(ba.header.txn)
        br.header.txn.status = data_pb2.COMMITTED if commit else data_pb2.ABORTED
        br.responses.add().end_txn.SetInParent()
        self.state.trace.commit_path = CommitPath.READ_ONLY if commit else CommitPath.ROLLBACK
        return br

    async def _one_pc_candidate(self, ba: BatchRequest, et: api_pb2.EndTxnRequest) -> bool:
        if not self.state.config.one_phase_commit or ba.header.txn.meta.epoch != 0:
            return False
        points, ranges, others = _batch_writes(ba)
        if not points and not ranges:
            return False
        if others:  # proofs (earlier writes) or anything but plain reads/writes
            return False
        if any((w.key, w.sequence) not in points for w in et.in_flight_writes):
            return False
        if any((s.key, s.end_key) not in ranges for s in et.lock_spans):
            return False
        if self.locator is None:
            return True
        keys = [kb.inner(r).header.key for r in ba.requests]
        return (await self.locator.single_range(keys)) is not False

    async def _try_one_pc(self, ba: BatchRequest) -> BatchResponse | None:
        one = copy_batch(ba)
        et = one.requests[-1].end_txn
        for w in et.in_flight_writes:
            et.lock_spans.add(key=w.key)
        del et.in_flight_writes[:]
        et.require_1pc = True
        one.header.async_consensus = False
        try:
            br = await self.next(one)
        except TransactionStatusError as e:
            if e.reason != "require_1pc":
                raise
            txn = getattr(e, "txn", None)
            if txn is not None and ts_from_proto(txn.meta.write_timestamp) > ts_from_proto(
                ba.header.txn.read_timestamp
            ):
                raise TransactionRetryError(
                    "RETRY_SERIALIZABLE",
                    "TransactionRetryError: retry txn (RETRY_SERIALIZABLE): the one-phase "
                    "commit was pushed: refresh and retry",
                    txn=txn,
                ) from e
            self.state.trace.notes.append("1pc refused; falling back")
            return None
        if br.responses[-1].end_txn.one_phase_commit:
            self.state.trace.commit_path = CommitPath.ONE_PC
            br.header.txn.status = data_pb2.COMMITTED
        elif br.header.txn.status == data_pb2.COMMITTED:
            # A server that ignores require_1pc committed it normally on one range.
            self.state.trace.commit_path = CommitPath.TWO_PC
        else:
            raise InternalError(
                "a one-phase commit attempt came back neither committed nor refused "
                f"(status {data_pb2.TransactionStatus.Name(br.header.txn.status)})"
            )
        return br

    # ---- parallel commit --------------------------------------------------------------

    def _parallel_eligible(self, ba: BatchRequest, et: api_pb2.EndTxnRequest) -> bool:
        if not self.state.config.parallel_commits or self.state.commit_after_refresh:
            return False
        if not et.in_flight_writes:
            return False
        return all(
            kb.kind(r) in POINT_WRITES or kb.kind(r) == "query_intent"
            for r in ba.requests[:-1]
        )

    async def _parallel_commit(self, ba: BatchRequest) -> BatchResponse:
        staging_ts = ts_from_proto(ba.header.txn.meta.write_timestamp)
        try:
            await failpoints.hit(FP_BROKEN_ACK_WITHOUT_WRITES)
        except failpoints.FailpointError:  # the planted bug (tests only)
            return await self._broken_ack_without_writes(ba)
        br = await self.next(ba)
        await failpoints.hit(FP_AFTER_STAGING)
        txn = br.header.txn
        if not self.implicitly_committed(txn, staging_ts):
            self.state.trace.staging_pushed += 1
            retry = txn_copy(txn)
            retry.status = data_pb2.PENDING
            del retry.in_flight_writes[:]
            raise TransactionRetryError(
                "RETRY_SERIALIZABLE",
                "TransactionRetryError: retry txn (RETRY_SERIALIZABLE): a write of the "
                f"parallel commit was pushed to {ts_from_proto(txn.meta.write_timestamp)} above "
                f"the staging timestamp {staging_ts}: restart transaction",
                txn=retry,
            )
        await failpoints.hit(FP_BEFORE_ACK)
        self.state.trace.commit_path = CommitPath.PARALLEL
        staged = txn_copy(txn)
        staged.status = data_pb2.STAGING
        et = ba.requests[-1].end_txn
        self.state.spawn(self._make_explicit(staged, et), "txn-explicit-commit")
        txn.status = data_pb2.COMMITTED
        return br

    async def _broken_ack_without_writes(self, ba: BatchRequest) -> BatchResponse:
        """FP_BROKEN_ACK_WITHOUT_WRITES: send the batch without its point
        writes, pretend they succeeded, acknowledge. Never used outside tests."""
        kinds = [kb.kind(r) for r in ba.requests]
        sent = copy_batch(ba)
        del sent.requests[:]
        sent.requests.extend(r for r, k in zip(ba.requests, kinds, strict=True)
                             if k not in POINT_WRITES)
        br0 = await self.next(sent)
        br = api_pb2.BatchResponse()
        br.CopyFrom(br0)
        del br.responses[:]
        got = iter(br0.responses)
        for k in kinds:
            if k in POINT_WRITES:
                br.responses.add().put.SetInParent()
            else:
                br.responses.add().CopyFrom(next(got))
        self.state.trace.commit_path = CommitPath.PARALLEL
        staged = txn_copy(br.header.txn)
        staged.status = data_pb2.STAGING
        self.state.spawn(self._make_explicit(staged, ba.requests[-1].end_txn), "txn-explicit-commit")
        br.header.txn.status = data_pb2.COMMITTED
        return br

    def implicitly_committed(self, txn: data_pb2.Transaction, staging_ts: Timestamp) -> bool:
        """Whether a parallel commit whose every part succeeded (`txn` is the
        merged response txn) committed: the record is STAGING and no part's
        write was pushed above the staging timestamp."""
        return (
            txn.status in (data_pb2.STAGING, data_pb2.COMMITTED)
            and ts_from_proto(txn.meta.write_timestamp) <= staging_ts
        )

    async def _make_explicit(self, staged: data_pb2.Transaction, et: api_pb2.EndTxnRequest) -> None:
        """STAGING → COMMITTED, off the critical path (best effort: if this
        fails, whoever finds the STAGING record recovers it)."""
        await failpoints.hit(FP_BEFORE_EXPLICIT_COMMIT)
        ba = api_pb2.BatchRequest()
        h = staged
        del h.in_flight_writes[:]
        del h.lock_spans[:]
        ba.header.txn.CopyFrom(h)
        ru = ba.requests.add()
        req = ru.end_txn
        req.header.key = et.header.key
        req.header.sequence = et.header.sequence
        req.commit = True
        seen: set[tuple[bytes, bytes]] = set()
        for s in et.lock_spans:
            seen.add((s.key, s.end_key))
            req.lock_spans.add(key=s.key, end_key=s.end_key)
        for w in et.in_flight_writes:
            if (w.key, b"") not in seen:
                req.lock_spans.add(key=w.key)
        self.explicit_commits += 1
        try:
            await self.state.raw.send(ba)
        except CrdbError as e:
            log.info("explicit commit of txn %s failed (recovery will finish it): %s",
                     staged.meta.id.hex(), e)

    # ---- 2PC ----------------------------------------------------------------------------

    async def _two_phase(self, ba: BatchRequest) -> BatchResponse:
        et_ru = api_pb2.RequestUnion()
        et_ru.CopyFrom(ba.requests[-1])
        et = et_ru.end_txn
        spans = {(s.key, s.end_key) for s in et.lock_spans}
        for w in et.in_flight_writes:
            if (w.key, b"") not in spans:
                et.lock_spans.add(key=w.key)
        del et.in_flight_writes[:]
        out = api_pb2.BatchResponse()
        txn_pb = txn_copy(ba.header.txn)
        if len(ba.requests) > 1:
            prefix = copy_batch(ba)
            del prefix.requests[-1]
            prefix.header.async_consensus = False
            br1 = await self.next(prefix)
            out.CopyFrom(br1)
            if br1.HasField("header") and br1.header.HasField("txn"):
                kb.merge_txn(txn_pb, br1.header.txn)
            if ts_from_proto(txn_pb.meta.write_timestamp) > ts_from_proto(txn_pb.read_timestamp):
                raise TransactionRetryError(
                    "RETRY_SERIALIZABLE",
                    "TransactionRetryError: retry txn (RETRY_SERIALIZABLE): the final writes "
                    "were pushed: refresh and retry the commit",
                    txn=txn_pb,
                )
        last = copy_batch(ba)
        del last.requests[:]
        last.requests.append(et_ru)
        last.header.async_consensus = False
        last.header.txn.CopyFrom(txn_pb)
        try:
            br2 = await self.next(last)
        except CrdbError as e:
            if getattr(e, "index", -1) == 0:
                e.index = len(ba.requests) - 1  # type: ignore[attr-defined]
            raise
        out.responses.extend(br2.responses)
        out.header.CopyFrom(br2.header)
        if br2.HasField("now"):
            out.now.CopyFrom(br2.now)
        self.state.trace.commit_path = CommitPath.TWO_PC
        return out


def _batch_writes(
    ba: BatchRequest,
) -> tuple[set[tuple[bytes, int]], set[tuple[bytes, bytes]], bool]:
    """(point writes (key, seq), ranged writes (key, end), any other request
    that rules out 1PC) of the requests before the EndTxn."""
    points: set[tuple[bytes, int]] = set()
    ranges: set[tuple[bytes, bytes]] = set()
    other = False
    for r in ba.requests[:-1]:
        k = kb.kind(r)
        h = kb.inner(r).header
        if k in POINT_WRITES:
            points.add((h.key, h.sequence))
        elif k in RANGED_WRITES:
            ranges.add((h.key, h.end_key))
        elif k not in ("get", "scan", "reverse_scan"):
            other = True
    return points, ranges, other
