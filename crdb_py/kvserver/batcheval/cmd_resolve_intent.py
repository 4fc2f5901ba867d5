"""ResolveIntent: apply a txn's outcome to its intent on one key.

``intent_txn`` names the txn (id, epoch, write timestamp), ``status`` its
outcome: COMMITTED turns the intent into a committed version at the write
timestamp, ABORTED removes it, PENDING/STAGING moves it up to the write
timestamp (a pushed txn). ``ignored_seqnums`` (savepoint rollbacks) are
applied first. Resolving a key without an intent of that txn does nothing,
so resolution is idempotent. The lock table learns of the resolution from
`Result.resolved_locks` after apply.

The abort span (`crdb_py.kvserver.abortspan`): resolving an ABORTED intent
with ``poison`` set writes the txn's entry when an intent was removed, so
the txn's later requests on this range fail; ``poison`` false clears it.
The entry goes into the same write batch as the resolution.

Declared READ_WRITE at the txn's write timestamp (the timestamp the value
may be written at), non-MVCC when that is unknown (zero); for an ABORTED
status also the txn's abort span entry (whether it will be written is only
known during evaluation).
"""

from __future__ import annotations

from typing import Any

from crdb_py.kvserver import abortspan
from crdb_py.kvserver.batcheval.command import Command, CommandArgs, Result, register
from crdb_py.kvserver.spanset import SpanAccess, SpanSet
from crdb_py.pb import api_pb2, data_pb2
from crdb_py.storage import mvcc_resolve_write_intent
from crdb_py.util.hlc import ts_from_proto


def declare_resolve(
    desc: data_pb2.RangeDescriptor, header: api_pb2.BatchHeader, req: Any, spans: SpanSet
) -> None:
    """Shared with ResolveIntentRange."""
    h = req.header
    ts = ts_from_proto(req.intent_txn.write_timestamp)
    if ts.is_empty():
        spans.add_non_mvcc(SpanAccess.READ_WRITE, h.key, h.end_key or None)
    else:
        spans.add_mvcc(SpanAccess.READ_WRITE, h.key, h.end_key or None, ts)
    if req.status == data_pb2.ABORTED:
        abortspan.declare_write(desc, req.intent_txn.id, spans)


def lock_update_of(req: Any) -> data_pb2.LockUpdate:
    up = data_pb2.LockUpdate(status=req.status)
    up.span.key, up.span.end_key = req.header.key, req.header.end_key
    up.txn.CopyFrom(req.intent_txn)
    up.ignored_seqnums.extend(req.ignored_seqnums)
    return up


def evaluate(
    cargs: CommandArgs, req: api_pb2.ResolveIntentRequest, resp: api_pb2.ResolveIntentResponse
) -> Result:
    removed = mvcc_resolve_write_intent(
        cargs.rw,
        req.header.key,
        req.intent_txn,
        req.status,
        stats=cargs.stats,
        ignored_seqnums=[(r.start, r.end) for r in req.ignored_seqnums],
    )
    abortspan.maybe_update_on_resolve(
        cargs.rw, cargs.desc.range_id, req.intent_txn, req.status, req.poison, removed
    )
    return Result(resolved_locks=[lock_update_of(req)])


RESOLVE_INTENT = register(
    Command(name="resolve_intent", declare_keys=declare_resolve, evaluate=evaluate, is_write=True)
)
