"""QueryIntent: is txn T's write at (key, seq) there — and if not, make sure
it never will be at or below T's write timestamp.

Used in two places: the coordinator proving its own pipelined writes, and
transaction recovery deciding a STAGING txn (docs/design/transactions.md).

Found
-----
The intent is *found* iff the key has an intent of the same txn id and
epoch, whose sequence is >= the queried sequence (a later write of the same
txn to the key includes the queried one: sequences only grow and the
coordinator chains writes to a key), and whose timestamp is <= the queried
txn's write timestamp. An intent pushed above that timestamp does not count:
a STAGING txn with a write above its staging timestamp is not implicitly
committed.

Prevention
----------
When the intent is missing, the write might still be in flight. Answering
"missing" is only sound if it stays missing, so the command returns a
`Result.tscache_bumps` entry recording the key at T's write timestamp with
*no* txn id: any later write of the key — T's included — at or below that
timestamp is pushed above it by the timestamp cache, so the in-flight
write can never land where it would make T implicitly committed. The
replica applies the bump before releasing latches, also for this read-only
batch. The READ_ONLY latch at T's write timestamp (`declare_keys`) orders
the query after any in-progress write of the key at or below it.

With ``error_if_missing`` a missing intent raises `IntentMissingError`
(the coordinator's proof failed: the txn must restart); the bump is carried
on the error's result anyway — the replica must apply it before returning
the error (see `crdb_py.kvserver.evaluate.evaluate_batch`, which attaches
it to the raised error as ``tscache_bumps``).
"""

from __future__ import annotations

from crdb_py.kvserver.batcheval.command import Command, CommandArgs, Result, register
from crdb_py.kvserver.spanset import SpanAccess, SpanSet
from crdb_py.pb import api_pb2, data_pb2
from crdb_py.storage import mvcc_get_intent
from crdb_py.util.errors import IntentMissingError, InvalidArgumentError
from crdb_py.util.hlc import ts_from_proto


def declare_keys(
    desc: data_pb2.RangeDescriptor,
    header: api_pb2.BatchHeader,
    req: api_pb2.QueryIntentRequest,
    spans: SpanSet,
) -> None:
    ts = ts_from_proto(req.txn.write_timestamp)
    if ts.is_empty():
        spans.add_non_mvcc(SpanAccess.READ_ONLY, req.header.key)
    else:
        spans.add_mvcc(SpanAccess.READ_ONLY, req.header.key, None, ts)


def intent_matches(md: data_pb2.MVCCMetadata | None, txn: data_pb2.TxnMeta) -> bool:
    return (
        md is not None
        and md.txn.id == txn.id
        and md.txn.epoch == txn.epoch
        and md.txn.sequence >= txn.sequence
        and ts_from_proto(md.timestamp) <= ts_from_proto(txn.write_timestamp)
    )


def evaluate(
    cargs: CommandArgs, req: api_pb2.QueryIntentRequest, resp: api_pb2.QueryIntentResponse
) -> Result:
    key = req.header.key
    wts = ts_from_proto(req.txn.write_timestamp)
    if wts.is_empty() or not req.txn.id:
        raise InvalidArgumentError("QueryIntent needs the txn's id and write timestamp")
    found = intent_matches(mvcc_get_intent(cargs.rw, key), req.txn)
    resp.found_intent = found
    if found:
        return Result()
    out = Result(tscache_bumps=[(key, b"", wts)])
    if req.error_if_missing:
        err = IntentMissingError(key)
        err.tscache_bumps = out.tscache_bumps  # type: ignore[attr-defined]
        raise err
    return out


QUERY_INTENT = register(
    Command(name="query_intent", declare_keys=declare_keys, evaluate=evaluate, is_read=True)
)
