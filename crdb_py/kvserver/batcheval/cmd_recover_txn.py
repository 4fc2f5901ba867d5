"""RecoverTxn: finish a STAGING transaction whose coordinator went quiet.

Transaction recovery (`crdb_py.kvserver.txnrecovery`) finds a STAGING
record (a push raised `IndeterminateCommitError`), sends QueryIntent for
each of its in-flight writes — which *prevents* any missing one from ever
landing at or below the staging timestamp — and then this command with
``implicitly_committed``:

* true  (every in-flight write was found): the txn *is* committed; the
  record becomes COMMITTED;
* false (some write was missing, and is now prevented): the txn can never
  become implicitly committed at this attempt; the record becomes ABORTED.

Both return the record and hand all its lock spans and in-flight writes to
the intent resolver (`Result.resolve_intents`).

Checks, and why (CockroachDB's `cmd_recover_txn.go`):

* The record must still be the **same staging attempt** the recoverer
  examined: same epoch and write timestamp. If the coordinator has since
  moved on — a newer epoch or timestamp (it refreshed and re-staged), or the
  record went PENDING — recovery of the old attempt is moot: the record is
  returned unchanged.
* A **final** record is returned unchanged (concurrent recoverers and the
  coordinator itself agree; the first to finish wins). Two combinations
  cannot happen if QueryIntent prevention works, and raise `InternalError`
  loudly instead of being papered over: a prevented attempt (false) whose
  record is COMMITTED at that same attempt, and an implicitly committed
  attempt (true) whose record is ABORTED at that same attempt.
* A record **older** than the request (lower epoch or timestamp) means the
  caller invented the attempt: `InvalidArgumentError`.
* A **missing** record: records are never deleted here, so the txn never
  got as far as writing one; it is treated as aborted — an ABORTED record
  is written so that no later request can create it, and returned. (With
  ``implicitly_committed`` that contradicts the caller's findings:
  `InternalError`.) When no record may be created any more (the txn started
  at or below the txn span GC threshold), ABORTED is returned and nothing
  is written.

The request key is the txn's anchor key; the record key is latched
READ_WRITE.
"""

from __future__ import annotations

from crdb_py.kvserver.batcheval import txn_record as tr
from crdb_py.kvserver.batcheval.command import Command, CommandArgs, Result, register
from crdb_py.kvserver.spanset import SpanSet
from crdb_py.pb import api_pb2, data_pb2
from crdb_py.util.errors import InternalError, InvalidArgumentError
from crdb_py.util.hlc import ts_from_proto


def declare_keys(
    desc: data_pb2.RangeDescriptor,
    header: api_pb2.BatchHeader,
    req: api_pb2.RecoverTxnRequest,
    spans: SpanSet,
) -> None:
    tr.declare_record(req.txn, spans)


def _finish(cargs: CommandArgs, txn: data_pb2.Transaction, status: int) -> Result:
    txn.status = status
    tr.write_record(cargs.rw, tr.txn_to_record(txn), cargs.stats)
    out = Result(updated_txn=txn)
    out.resolve_intents.extend(tr.lock_update(sp, txn, status) for sp in tr.all_lock_spans(txn))
    return out


def evaluate(
    cargs: CommandArgs, req: api_pb2.RecoverTxnRequest, resp: api_pb2.RecoverTxnResponse
) -> Result:
    tr.check_anchor(req.header.key, req.txn, "RecoverTxn")
    rec = tr.read_record(cargs.rw, req.txn)
    if rec is None:
        if req.implicitly_committed:
            raise InternalError(
                f"txn {req.txn.id.hex()[:8]} found implicitly committed but has no record"
            )
        if not tr.can_create_record(cargs.rw, cargs.desc.range_id, req.txn):
            # Garbage-collected (or never written, and now never will be).
            resp.recovered_txn.CopyFrom(tr.synthesize_aborted(req.txn))
            return Result()
        txn = tr.synthesize_pending(req.txn)
        out = _finish(cargs, txn, tr.ABORTED)
        resp.recovered_txn.CopyFrom(txn)
        return out
    txn = tr.record_to_txn(rec)
    resp.recovered_txn.CopyFrom(txn)
    same = tr.same_attempt(rec.meta, req.txn)
    req_ts = ts_from_proto(req.txn.write_timestamp)
    if rec.meta.epoch < req.txn.epoch or (
        rec.meta.epoch == req.txn.epoch and tr.write_ts(rec) < req_ts
    ):
        raise InvalidArgumentError(
            f"RecoverTxn for epoch {req.txn.epoch} at {req_ts} but the record is "
            f"older (epoch {rec.meta.epoch} at {tr.write_ts(rec)})"
        )
    if tr.is_final(rec.status):
        if same and req.implicitly_committed and rec.status == tr.ABORTED:
            raise InternalError(
                f"txn {req.txn.id.hex()[:8]} found implicitly committed but its record is ABORTED"
            )
        if same and not req.implicitly_committed and rec.status == tr.COMMITTED:
            raise InternalError(
                f"txn {req.txn.id.hex()[:8]} had a write prevented but its record is COMMITTED"
            )
        return Result()
    if rec.status != tr.STAGING or not same:
        return Result()  # the coordinator moved on: recovery of this attempt is moot
    out = _finish(cargs, txn, tr.COMMITTED if req.implicitly_committed else tr.ABORTED)
    resp.recovered_txn.CopyFrom(txn)
    return out


RECOVER_TXN = register(
    Command(name="recover_txn", declare_keys=declare_keys, evaluate=evaluate, is_write=True)
)
