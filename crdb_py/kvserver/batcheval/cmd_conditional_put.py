"""ConditionalPut: Put if the key's current value is the expected one.

The expectation is ``exp_value`` when ``exp_exists``, else that the key has
no value. "Current" is the newest value as the writer sees it (its own
intent as of its sequence, else the newest committed version at any
timestamp), so a newer committed value fails the condition rather than
being silently ignored. With ``allow_if_does_not_exist`` an absent key also
passes. A failed condition raises `ConditionFailedError` carrying the actual
value (None = absent) and writes nothing.
"""

from __future__ import annotations

from crdb_py.kvserver.batcheval.command import Command, CommandArgs, Result, register
from crdb_py.kvserver.batcheval.declare import declare_write, txn_meta
from crdb_py.pb import api_pb2
from crdb_py.storage import mvcc_conditional_put


def evaluate(
    cargs: CommandArgs,
    req: api_pb2.ConditionalPutRequest,
    resp: api_pb2.ConditionalPutResponse,
) -> Result:
    mvcc_conditional_put(
        cargs.rw,
        req.header.key,
        cargs.timestamp,
        req.value,
        req.exp_value if req.exp_exists else None,
        txn=txn_meta(cargs),
        stats=cargs.stats,
        allow_if_does_not_exist=req.allow_if_does_not_exist,
    )
    return Result()


CONDITIONAL_PUT = register(
    Command(name="conditional_put", declare_keys=declare_write, evaluate=evaluate, is_write=True)
)
