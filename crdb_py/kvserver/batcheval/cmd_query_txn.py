"""QueryTxn: the current state of a transaction, from its record.

Addressed to the queried txn's anchor key. Returns the record as
``queried_txn`` with ``txn_record_exists``; without a record, the queried
`TxnMeta` as a PENDING txn (``txn_record_exists`` false) — the txn may not
have written its record yet — or ABORTED when no record may be created any
more (the txn started at or below the txn span GC threshold). ``waiting_txns`` (the txns waiting on it in the
txn wait queue, for deadlock detection) comes from the replica: pass a
``waiting_txns(txn_id) -> list[bytes]`` callable in
``CommandArgs.extras["waiting_txns"]`` (or fill the response after
evaluation). ``wait_for_update`` is the replica's business too: it waits in
the txn wait queue before evaluating. Read-only.
"""

from __future__ import annotations

from crdb_py.kvserver.batcheval import txn_record as tr
from crdb_py.kvserver.batcheval.command import Command, CommandArgs, Result, register
from crdb_py.kvserver.spanset import SpanAccess, SpanSet
from crdb_py.pb import api_pb2, data_pb2


def declare_keys(
    desc: data_pb2.RangeDescriptor,
    header: api_pb2.BatchHeader,
    req: api_pb2.QueryTxnRequest,
    spans: SpanSet,
) -> None:
    spans.add_non_mvcc(SpanAccess.READ_ONLY, tr.record_key(req.txn))


def evaluate(
    cargs: CommandArgs, req: api_pb2.QueryTxnRequest, resp: api_pb2.QueryTxnResponse
) -> Result:
    tr.check_anchor(req.header.key, req.txn, "QueryTxn")
    rec = tr.read_record(cargs.rw, req.txn)
    if rec is None:
        if tr.can_create_record(cargs.rw, cargs.desc.range_id, req.txn):
            resp.queried_txn.CopyFrom(tr.synthesize_pending(req.txn))
        else:  # its record may have been garbage-collected: finished
            resp.queried_txn.CopyFrom(tr.synthesize_aborted(req.txn))
        resp.txn_record_exists = False
    else:
        resp.queried_txn.CopyFrom(tr.record_to_txn(rec))
        resp.txn_record_exists = True
    waiting = cargs.extras.get("waiting_txns")
    if waiting is not None:
        resp.waiting_txns.extend(waiting(req.txn.id))
    return Result()


QUERY_TXN = register(
    Command(name="query_txn", declare_keys=declare_keys, evaluate=evaluate, is_read=True)
)
