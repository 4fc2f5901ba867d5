"""Increment: add to the 8-byte big-endian integer at a key (absent = 0).

Returns the new value in `new_value`. A value that is not an 8-byte integer,
or a result outside int64, raises `InvalidArgumentError` and writes nothing.
"""

from __future__ import annotations

from crdb_py.kvserver.batcheval.command import Command, CommandArgs, Result, register
from crdb_py.kvserver.batcheval.declare import declare_write, txn_meta
from crdb_py.pb import api_pb2
from crdb_py.storage import mvcc_increment


def evaluate(
    cargs: CommandArgs, req: api_pb2.IncrementRequest, resp: api_pb2.IncrementResponse
) -> Result:
    resp.new_value = mvcc_increment(
        cargs.rw,
        req.header.key,
        cargs.timestamp,
        req.increment,
        txn=txn_meta(cargs),
        stats=cargs.stats,
    )
    return Result()


INCREMENT = register(
    Command(name="increment", declare_keys=declare_write, evaluate=evaluate, is_write=True)
)
