"""RefreshRange: Refresh for every key in [key, end_key).

Fails with `RefreshFailedError` on the first key (in key order) with another
writer's version in ``(refresh_from, refresh_to]`` or another txn's intent at
or below ``refresh_to``; see `cmd_refresh.py` for the rules. Deletions count
as writes: a key that disappeared under the txn's scan changes its result as
much as one that appeared.
"""

from __future__ import annotations

from crdb_py.kvserver.batcheval.cmd_refresh import check_span, declare_refresh
from crdb_py.kvserver.batcheval.command import Command, CommandArgs, Result, register
from crdb_py.pb import api_pb2


def evaluate(
    cargs: CommandArgs, req: api_pb2.RefreshRangeRequest, resp: api_pb2.RefreshRangeResponse
) -> Result:
    check_span(cargs, req, req.header.key, req.header.end_key)
    return Result()


REFRESH_RANGE = register(
    Command(
        name="refresh_range",
        declare_keys=declare_refresh,
        evaluate=evaluate,
        is_read=True,
        is_range=True,
        is_txn=True,
        updates_tscache=True,
    )
)
