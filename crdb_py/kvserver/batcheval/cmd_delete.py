"""Delete: write a deletion tombstone (remove an inline value at ts zero).

``found_key`` says whether the key had a value as the writer saw it. The
tombstone is written even when it had none (as CockroachDB does), so a
txn's delete of an absent key still leaves an intent that conflicts with
concurrent writers.
"""

from __future__ import annotations

from crdb_py.kvserver.batcheval.command import Command, CommandArgs, Result, register
from crdb_py.kvserver.batcheval.declare import declare_write, txn_meta
from crdb_py.pb import api_pb2
from crdb_py.storage import mvcc_delete


def evaluate(
    cargs: CommandArgs, req: api_pb2.DeleteRequest, resp: api_pb2.DeleteResponse
) -> Result:
    resp.found_key = mvcc_delete(
        cargs.rw, req.header.key, cargs.timestamp, txn=txn_meta(cargs), stats=cargs.stats
    )
    return Result()


DELETE = register(
    Command(name="delete", declare_keys=declare_write, evaluate=evaluate, is_write=True)
)
