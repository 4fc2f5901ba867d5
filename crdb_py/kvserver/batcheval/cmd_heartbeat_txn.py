"""HeartbeatTxn: the coordinator tells the record's range the txn is alive.

Addressed to the txn's anchor key. A missing record is created PENDING from
``header.txn`` (the first heartbeat, or the first one after a restart of the
coordinator's writes); a PENDING or STAGING record has its ``last_heartbeat``
forwarded to ``req.now`` (the leaseholder clock when unset) — nothing else of
the record changes. A missing record of a txn that started at or below the
range's txn span GC threshold is not created: it may have been finalized and
garbage-collected, so the heartbeat fails with `TransactionAbortedError`
(``ABORT_REASON_ALREADY_COMMITTED_OR_ROLLED_BACK_POSSIBLE_REPLAY``). A finalized record refuses: ABORTED raises
`TransactionAbortedError("ABORTED_RECORD_FOUND")` (a pusher aborted the txn;
the coordinator must restart), COMMITTED raises `TransactionStatusError`.
The response carries the record as a `Transaction`.
"""

from __future__ import annotations

from crdb_py.kvserver.batcheval import txn_record as tr
from crdb_py.kvserver.batcheval.command import Command, CommandArgs, Result, register
from crdb_py.kvserver.spanset import SpanSet
from crdb_py.pb import api_pb2, data_pb2
from crdb_py.util.errors import TransactionAbortedError, TransactionStatusError
from crdb_py.util.hlc import ts_from_proto, ts_to_proto


def declare_keys(
    desc: data_pb2.RangeDescriptor,
    header: api_pb2.BatchHeader,
    req: api_pb2.HeartbeatTxnRequest,
    spans: SpanSet,
) -> None:
    tr.declare_record(header.txn.meta, spans)


def evaluate(
    cargs: CommandArgs, req: api_pb2.HeartbeatTxnRequest, resp: api_pb2.HeartbeatTxnResponse
) -> Result:
    txn = cargs.txn
    assert txn is not None  # is_txn
    tr.check_anchor(req.header.key, txn.meta, "HeartbeatTxn")
    rec = tr.read_record(cargs.rw, txn.meta)
    if rec is None and not tr.can_create_record(cargs.rw, cargs.desc.range_id, txn.meta):
        raise TransactionAbortedError(tr.ABORT_REASON_RECORD_GCED, txn=tr.synthesize_aborted(txn.meta))
    if rec is None:
        rec = tr.txn_to_record(txn)
        rec.status = tr.PENDING
        del rec.in_flight_writes[:]
    elif rec.status == tr.ABORTED:
        raise TransactionAbortedError("ABORTED_RECORD_FOUND", txn=tr.record_to_txn(rec))
    elif rec.status == tr.COMMITTED:
        raise TransactionStatusError(
            "cannot heartbeat a COMMITTED transaction",
            reason="heartbeat after commit",
            txn=tr.record_to_txn(rec),
        )
    now = ts_from_proto(req.now) if req.HasField("now") else cargs.now
    hb = ts_from_proto(rec.last_heartbeat).forward(now)
    ts_to_proto(hb, rec.last_heartbeat)
    tr.write_record(cargs.rw, rec, cargs.stats)
    out = tr.record_to_txn(rec)
    resp.txn.CopyFrom(out)
    txn.last_heartbeat.CopyFrom(rec.last_heartbeat)
    return Result(updated_txn=out)


HEARTBEAT_TXN = register(
    Command(
        name="heartbeat_txn",
        declare_keys=declare_keys,
        evaluate=evaluate,
        is_write=True,
        is_txn=True,
    )
)
