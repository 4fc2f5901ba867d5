"""ResolveIntentRange: ResolveIntent for every intent of a txn in [key, end_key).

Honours the batch's remaining key budget (``max_span_request_keys``): once
that many intents were resolved the rest of the span comes back as
``header.resume_span`` and the intent resolver sends it again. Intents of
other txns in the span are left alone. ``poison`` updates the abort span
as for ResolveIntent (poisoning only if an intent was removed).
"""

from __future__ import annotations

from crdb_py.kvserver import abortspan
from crdb_py.kvserver.batcheval.cmd_resolve_intent import declare_resolve, lock_update_of
from crdb_py.kvserver.batcheval.command import Command, CommandArgs, Result, register
from crdb_py.kvserver.batcheval.declare import set_resume_span
from crdb_py.pb import api_pb2
from crdb_py.storage import mvcc_resolve_write_intent_range


def evaluate(
    cargs: CommandArgs,
    req: api_pb2.ResolveIntentRangeRequest,
    resp: api_pb2.ResolveIntentRangeResponse,
) -> Result:
    h = req.header
    n, resume = mvcc_resolve_write_intent_range(
        cargs.rw,
        h.key,
        h.end_key,
        req.intent_txn,
        req.status,
        stats=cargs.stats,
        ignored_seqnums=[(r.start, r.end) for r in req.ignored_seqnums],
        max_keys=cargs.max_keys,
    )
    resp.header.num_keys = n
    abortspan.maybe_update_on_resolve(
        cargs.rw, cargs.desc.range_id, req.intent_txn, req.status, req.poison, n > 0
    )
    up = lock_update_of(req)
    if resume is not None:
        set_resume_span(resp.header, *resume)
        up.span.end_key = resume[0]
    return Result(resolved_locks=[up], num_keys=n)


RESOLVE_INTENT_RANGE = register(
    Command(
        name="resolve_intent_range",
        declare_keys=declare_resolve,
        evaluate=evaluate,
        is_write=True,
        is_range=True,
    )
)
