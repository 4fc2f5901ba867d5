"""Get: the value of one key at the batch's read timestamp.

An absent key (or a deletion) leaves `GetResponse.value` unset. The response
header counts the key (``num_keys`` 1, ``num_bytes`` key + value) when a
value was found, so a limited batch charges it against its budget as
CockroachDB does; a Get reached after the budget ran out is answered by
`evaluate_batch` with a resume span instead. An inconsistent read reads below
another transaction's intent and reports it in `Result.encountered_intents`.
"""

from __future__ import annotations

from crdb_py.kvserver.batcheval.command import Command, CommandArgs, Result, register
from crdb_py.kvserver.batcheval.declare import (
    declare_read,
    fill_value,
    inconsistent,
    txn_meta,
    uncertainty_limit,
)
from crdb_py.pb import api_pb2
from crdb_py.storage import mvcc_get


def evaluate(cargs: CommandArgs, req: api_pb2.GetRequest, resp: api_pb2.GetResponse) -> Result:
    key = req.header.key
    res = mvcc_get(
        cargs.rw,
        key,
        cargs.timestamp,
        txn=txn_meta(cargs),
        inconsistent=inconsistent(cargs),
        uncertainty_limit=uncertainty_limit(cargs),
    )
    out = Result()
    if res.intent is not None:
        out.encountered_intents.append(res.intent)
    if res.value is not None:
        fill_value(resp.value, res.value, res.timestamp)
        resp.header.num_keys = out.num_keys = 1
        resp.header.num_bytes = out.num_bytes = len(key) + len(res.value)
    return out


GET = register(
    Command(
        name="get",
        declare_keys=declare_read,
        evaluate=evaluate,
        is_read=True,
        updates_tscache=True,
    )
)
