"""ReverseScan: like Scan, in descending key order.

A limited reverse scan resumes over ``[key, next_key(last key not read))``:
the resume span keeps the request's start and ends just past the first key
it did not return.
"""

from __future__ import annotations

from crdb_py.kvserver.batcheval.cmd_scan import scan
from crdb_py.kvserver.batcheval.command import Command, CommandArgs, Result, register
from crdb_py.kvserver.batcheval.declare import declare_read
from crdb_py.pb import api_pb2


def evaluate(
    cargs: CommandArgs, req: api_pb2.ReverseScanRequest, resp: api_pb2.ReverseScanResponse
) -> Result:
    return scan(cargs, req, resp, reverse=True)


REVERSE_SCAN = register(
    Command(
        name="reverse_scan",
        declare_keys=declare_read,
        evaluate=evaluate,
        is_read=True,
        is_range=True,
        updates_tscache=True,
    )
)
