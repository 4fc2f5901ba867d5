"""Refresh: may the txn's read of one key move from ``refresh_from`` up to
its new timestamp?

The span refresher (M5) sends one Refresh per key the txn read (and one
RefreshRange per span) when the txn's write timestamp was pushed, so that it
can commit at the new timestamp without restarting. The read stays valid
iff nobody else wrote the key in ``(refresh_from, refresh_to]``, where
``refresh_to`` is the txn's write timestamp in the header (its read
timestamp after the refresh; the refresher sends both equal, as CockroachDB
does). It fails with `RefreshFailedError` (a `TransactionRetryError` with
reason ``RETRY_REFRESH_FAIL``: the txn must restart) when

* a committed version (or tombstone) of another writer lies in
  ``(refresh_from, refresh_to]``, or
* another txn's intent lies at or below ``refresh_to`` (it may commit
  there; the refresher does not wait for it).

The txn's own intents are ignored. A successful refresh is a read at
``refresh_to``: it updates the timestamp cache (the replica records it with
the txn's id) and latches READ_ONLY at ``refresh_to``. Shared with
RefreshRange (`cmd_refresh_range.py`).
"""

from __future__ import annotations

from typing import Any

from crdb_py.kvserver.batcheval.command import Command, CommandArgs, Result, register
from crdb_py.kvserver.spanset import SpanAccess, SpanSet
from crdb_py.pb import api_pb2, data_pb2
from crdb_py.storage.engine import Reader
from crdb_py.storage.mvcc_key import decode_suffix, encode_suffix, span_bounds, split_engine_key
from crdb_py.storage.stats import META_INTENT
from crdb_py.util.errors import InvalidArgumentError, RefreshFailedError
from crdb_py.util.hlc import Timestamp, ts_from_proto
from crdb_py.util.keys import next_key

_INTENT_TAG = bytes([META_INTENT])


def refresh_to(header: api_pb2.BatchHeader) -> Timestamp:
    txn = header.txn
    return ts_from_proto(txn.read_timestamp).forward(ts_from_proto(txn.meta.write_timestamp))


def declare_refresh(
    desc: data_pb2.RangeDescriptor, header: api_pb2.BatchHeader, req: Any, spans: SpanSet
) -> None:
    h = req.header
    spans.add_mvcc(SpanAccess.READ_ONLY, h.key, h.end_key or None, refresh_to(header))


def check_span(cargs: CommandArgs, req: Any, start: bytes, end: bytes) -> None:
    """Raise `RefreshFailedError` on any other writer's version in
    (refresh_from, refresh_to] or intent at or below refresh_to in [start, end)."""
    txn = cargs.txn
    assert txn is not None  # is_txn
    lo_ts = ts_from_proto(req.refresh_from)
    hi_ts = refresh_to(cargs.header)
    if lo_ts.is_empty():
        raise InvalidArgumentError("Refresh needs refresh_from")
    _scan(cargs.rw, start, end, txn.meta.id, lo_ts, hi_ts, txn)


def _scan(
    reader: Reader,
    start: bytes,
    end: bytes,
    txn_id: bytes,
    lo_ts: Timestamp,
    hi_ts: Timestamp,
    txn: data_pb2.Transaction,
) -> None:
    lo, hi = span_bounds(start, end)
    provisional: tuple[bytes, bytes] | None = None  # (key, suffix) judged by its intent
    it = reader.iter_range(lo, hi)
    for ek, v in it:
        key, sfx = split_engine_key(ek)
        if not sfx:
            if v[:1] != _INTENT_TAG:
                continue  # an inline value: unversioned, nothing to refresh
            md = data_pb2.MVCCMetadata.FromString(v[1:])
            its = ts_from_proto(md.timestamp)
            if md.txn.id != txn_id and its <= hi_ts:
                raise RefreshFailedError(key, its, intent=True, txn=txn)
            provisional = (key, encode_suffix(its))
            continue
        if provisional == (key, sfx):
            continue
        vts = decode_suffix(sfx)
        if lo_ts < vts <= hi_ts:
            raise RefreshFailedError(key, vts, txn=txn)
    del it


def evaluate(
    cargs: CommandArgs, req: api_pb2.RefreshRequest, resp: api_pb2.RefreshResponse
) -> Result:
    check_span(cargs, req, req.header.key, next_key(req.header.key))
    return Result()


REFRESH = register(
    Command(
        name="refresh",
        declare_keys=declare_refresh,
        evaluate=evaluate,
        is_read=True,
        is_txn=True,
        updates_tscache=True,
    )
)
