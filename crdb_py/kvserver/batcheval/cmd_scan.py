"""Scan: the visible values of the keys in [key, end_key), in key order.

Honours the batch's remaining budgets (`cargs.max_keys` rows,
`cargs.target_bytes` bytes of keys + values, at least one row): when one
runs out, the rows so far are returned with ``header.resume_span`` set to
the part of the span not yet read. Rows carry the raw value bytes only (no
timestamps). Shared with ReverseScan (`cmd_reverse_scan.py`).
"""

from __future__ import annotations

from typing import Any

from crdb_py.kvserver.batcheval.command import Command, CommandArgs, Result, register
from crdb_py.kvserver.batcheval.declare import (
    declare_read,
    inconsistent,
    set_resume_span,
    txn_meta,
    uncertainty_limit,
)
from crdb_py.pb import api_pb2
from crdb_py.storage import mvcc_scan


def scan(cargs: CommandArgs, req: Any, resp: Any, *, reverse: bool) -> Result:
    """Evaluate a (reverse) scan into `resp.rows` and its header."""
    h = req.header
    res = mvcc_scan(
        cargs.rw,
        h.key,
        h.end_key,
        cargs.timestamp,
        txn=txn_meta(cargs),
        reverse=reverse,
        max_keys=cargs.max_keys,
        target_bytes=cargs.target_bytes,
        inconsistent=inconsistent(cargs),
        uncertainty_limit=uncertainty_limit(cargs),
    )
    for k, v in res.kvs:
        row = resp.rows.add()
        row.key = k
        row.value.raw_bytes = v  # type: ignore[assignment]  # no tombstones asked for
    if res.resume_span is not None:
        set_resume_span(resp.header, *res.resume_span)
    resp.header.num_keys = len(res.kvs)
    resp.header.num_bytes = res.num_bytes
    return Result(
        encountered_intents=list(res.intents), num_keys=len(res.kvs), num_bytes=res.num_bytes
    )


def evaluate(cargs: CommandArgs, req: api_pb2.ScanRequest, resp: api_pb2.ScanResponse) -> Result:
    return scan(cargs, req, resp, reverse=False)


SCAN = register(
    Command(
        name="scan",
        declare_keys=declare_read,
        evaluate=evaluate,
        is_read=True,
        is_range=True,
        updates_tscache=True,
    )
)
