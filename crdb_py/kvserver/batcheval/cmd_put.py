"""Put: write a value at the batch's write timestamp.

Non-transactional: a committed version at ``header.timestamp`` (an inline,
unversioned value when that is zero). Transactional: an intent at
``txn.meta.write_timestamp`` carrying the request's sequence number. A newer
committed version raises `WriteTooOldError`, another txn's intent
`WriteIntentError`. The `blind` hint is ignored: MVCC reads the key's head
anyway to keep the intent and stats invariants.
"""

from __future__ import annotations

from crdb_py.kvserver.batcheval.command import Command, CommandArgs, Result, register
from crdb_py.kvserver.batcheval.declare import declare_write, txn_meta
from crdb_py.pb import api_pb2
from crdb_py.storage import mvcc_put


def evaluate(cargs: CommandArgs, req: api_pb2.PutRequest, resp: api_pb2.PutResponse) -> Result:
    mvcc_put(
        cargs.rw,
        req.header.key,
        cargs.timestamp,
        req.value,
        txn=txn_meta(cargs),
        stats=cargs.stats,
    )
    return Result()


PUT = register(Command(name="put", declare_keys=declare_write, evaluate=evaluate, is_write=True))
