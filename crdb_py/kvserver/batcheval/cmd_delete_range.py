"""DeleteRange: tombstone every key with a visible value in [key, end_key).

The scan for live keys fails on anything newer than the write timestamp
(`WriteTooOldError`) and on any other transaction's intent in the span
(`WriteIntentError`), as a locking read would: deleting "what is there"
must not miss a value committed above it. Honours the batch's remaining key
budget (`cargs.max_keys`): the keys deleted count, and the rest of the span
comes back as ``header.resume_span``. ``return_keys`` returns the deleted
keys in `keys`. Byte budgets do not apply (CockroachDB's DeleteRange ignores
TargetBytes too).
"""

from __future__ import annotations

from crdb_py.kvserver.batcheval.command import Command, CommandArgs, Result, register
from crdb_py.kvserver.batcheval.declare import declare_write, set_resume_span, txn_meta
from crdb_py.pb import api_pb2
from crdb_py.storage import mvcc_delete_range


def evaluate(
    cargs: CommandArgs, req: api_pb2.DeleteRangeRequest, resp: api_pb2.DeleteRangeResponse
) -> Result:
    h = req.header
    deleted, resume = mvcc_delete_range(
        cargs.rw,
        h.key,
        h.end_key,
        cargs.timestamp,
        txn=txn_meta(cargs),
        stats=cargs.stats,
        max_keys=cargs.max_keys,
    )
    if req.return_keys:
        resp.keys.extend(deleted)
    if resume is not None:
        set_resume_span(resp.header, *resume)
    resp.header.num_keys = len(deleted)
    return Result(num_keys=len(deleted))


DELETE_RANGE = register(
    Command(
        name="delete_range",
        declare_keys=declare_write,
        evaluate=evaluate,
        is_write=True,
        is_range=True,
    )
)
