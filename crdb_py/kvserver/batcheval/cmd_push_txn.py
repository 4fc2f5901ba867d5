"""PushTxn: move another transaction out of the way.

A request that meets the intent of txn E (the *pushee*) sends PushTxn to E's
record range (header key = E's anchor). Three kinds:

* PUSH_TIMESTAMP — a reader at ``push_to`` needs E to commit above it: E's
  record stays PENDING with its write timestamp forwarded to ``push_to``
  (E must then refresh or restart to commit);
* PUSH_ABORT — a writer (or a deadlock breaker) needs E gone: E's record
  becomes ABORTED;
* PUSH_TOUCH — succeed only if E is already dead (expired) or finished.

Rules (CockroachDB's `cmd_push_txn.go`, as fixed in
docs/design/transactions.md):

1. No record: E is treated as PENDING with its last sign of life at its
   ``min_timestamp``. A successful push *creates* the record (PENDING pushed,
   or ABORTED), so the outcome sticks: E's coordinator finds it on its next
   heartbeat or EndTxn. (CockroachDB avoids creating records for others and
   uses timestamp-cache markers instead; we keep the record, which is
   simpler and equally final.)
   No record, and E started at or below the range's txn span GC threshold:
   E's record may have been finalized and garbage-collected, so E is
   finished — the push returns E ABORTED and writes nothing.
2. A final record (COMMITTED / ABORTED) is returned as is: the push
   succeeded in the sense that E is no longer in the way.
3. PUSH_TIMESTAMP when E's write timestamp is already >= ``push_to``
   succeeds without writing.
4. What the pusher knows is merged in: a higher epoch or write timestamp in
   ``pushee_txn`` than on the record means E's STAGING attempt failed (it
   has intents past it), so E is then treated as PENDING.
5. The pusher wins when E is expired (no heartbeat for 5 s; the push then
   becomes an abort, so that garbage is cleaned up rather than pushed
   along), or — except for PUSH_TOUCH — when the pusher's priority is higher
   (ties lose), or with ``force`` (deadlock breaking). Otherwise
   `TransactionPushError(pushee)`: the pusher waits in the txn wait queue.
6. A **STAGING** E is never simply pushed or aborted, even by a winner: it
   may already be implicitly committed, and rewriting its record would
   contradict a commit that an acknowledged client relies on. The push
   raises `IndeterminateCommitError(E)` and the pusher runs transaction
   recovery (QueryIntent on each in-flight write, then RecoverTxn), which
   decides it safely. A STAGING E that the pusher cannot beat fails like
   any live txn.

Pushes are idempotent: repeating one after success finds the record
already pushed/aborted and returns it. The response carries E as it is now,
and `Result.updated_txn` tells the txn wait queue about the change.
"""

from __future__ import annotations

from crdb_py.kvserver.batcheval import txn_record as tr
from crdb_py.kvserver.batcheval.command import Command, CommandArgs, Result, register
from crdb_py.kvserver.spanset import SpanSet
from crdb_py.pb import api_pb2, data_pb2
from crdb_py.util.errors import IndeterminateCommitError, TransactionPushError
from crdb_py.util.hlc import ts_from_proto, ts_to_proto


def declare_keys(
    desc: data_pb2.RangeDescriptor,
    header: api_pb2.BatchHeader,
    req: api_pb2.PushTxnRequest,
    spans: SpanSet,
) -> None:
    tr.declare_record(req.pushee_txn, spans)


def pusher_wins(
    now: object, req: api_pb2.PushTxnRequest, pushee: data_pb2.Transaction
) -> tuple[bool, bool]:
    """(pusher wins, pushee expired)."""
    if tr.is_expired(now, pushee):  # type: ignore[arg-type]
        return True, True
    if req.push_type == api_pb2.PUSH_TOUCH:
        return False, False
    if req.pusher_txn.meta.priority > pushee.meta.priority:
        return True, False
    return req.force, False


def evaluate(
    cargs: CommandArgs, req: api_pb2.PushTxnRequest, resp: api_pb2.PushTxnResponse
) -> Result:
    tr.check_anchor(req.header.key, req.pushee_txn, "PushTxn")
    rec = tr.read_record(cargs.rw, req.pushee_txn)
    if rec is None and not tr.can_create_record(cargs.rw, cargs.desc.range_id, req.pushee_txn):
        # Its record may have been garbage-collected: E is finished.
        pushee = tr.synthesize_aborted(req.pushee_txn)
        resp.pushee_txn.CopyFrom(pushee)
        out = data_pb2.Transaction()
        out.CopyFrom(pushee)
        return Result(updated_txn=out)
    pushee = tr.synthesize_pending(req.pushee_txn) if rec is None else tr.record_to_txn(rec)
    if tr.is_final(pushee.status):
        resp.pushee_txn.CopyFrom(pushee)
        return Result()
    push_to = ts_from_proto(req.push_to)
    if req.push_type == api_pb2.PUSH_TIMESTAMP and push_to <= tr.write_ts(pushee):
        resp.pushee_txn.CopyFrom(pushee)
        return Result()  # already far enough up
    higher_epoch, higher_ts = tr.merge_forward(pushee, req.pushee_txn)
    if pushee.status == tr.STAGING and (higher_epoch or higher_ts):
        # The pusher saw E's intents past its staging attempt: that attempt failed.
        pushee.status = tr.PENDING
        del pushee.in_flight_writes[:]
    wins, expired = pusher_wins(cargs.now, req, pushee)
    if not wins:
        raise TransactionPushError(
            pushee,
            f"failed to push transaction {pushee.meta.id.hex()[:8]} "
            f"(priority {pushee.meta.priority} >= pusher's {req.pusher_txn.meta.priority}, "
            f"{'touch' if req.push_type == api_pb2.PUSH_TOUCH else 'not expired'})",
        )
    if pushee.status == tr.STAGING:
        raise IndeterminateCommitError(pushee)
    if expired or req.push_type != api_pb2.PUSH_TIMESTAMP:
        pushee.status = tr.ABORTED
    else:
        ts_to_proto(tr.write_ts(pushee).forward(push_to), pushee.meta.write_timestamp)
    pushee.meta.priority = max(pushee.meta.priority, req.pusher_txn.meta.priority - 1)
    tr.write_record(cargs.rw, tr.txn_to_record(pushee), cargs.stats)
    resp.pushee_txn.CopyFrom(pushee)
    out = data_pb2.Transaction()
    out.CopyFrom(pushee)
    return Result(updated_txn=out)


PUSH_TXN = register(
    Command(name="push_txn", declare_keys=declare_keys, evaluate=evaluate, is_write=True)
)
