"""Helpers shared by the `cmd_*.py` files: timestamps, key declaration, limits.

After CockroachDB's `batcheval/declare.go`. Timestamps of a batch:

    non-transactional   reads and writes at ``header.timestamp`` (filled by
                        the replica; zero = inline, unversioned values)
    transactional       reads at ``txn.read_timestamp``, writes at
                        ``txn.meta.write_timestamp`` (>= the read timestamp)

Declared spans (see `crdb_py.kvserver.spanset`):

* a read declares READ_ONLY at the highest timestamp it may have to look at:
  its read timestamp forwarded to the txn's global uncertainty limit, since a
  write inside the uncertainty window must not evaluate beside it;
* a write declares READ_WRITE at its write timestamp (its latch then also
  isolates the reads of the current value that CPut/Increment/Delete do);
* range-local keys (txn records, range descriptors) and zero-timestamp
  (inline) accesses are declared non-MVCC, as CockroachDB's `AddMVCC` does for
  local keys: their latches act as plain mutexes.
"""

from __future__ import annotations

from typing import Any

from crdb_py.kvserver.batcheval.command import CommandArgs
from crdb_py.kvserver.spanset import SpanAccess, SpanSet
from crdb_py.pb import api_pb2, data_pb2
from crdb_py.util import keys
from crdb_py.util.hlc import Timestamp, ts_from_proto, ts_to_proto


def read_timestamp(header: api_pb2.BatchHeader) -> Timestamp:
    """The timestamp reads of the batch happen at."""
    if header.HasField("txn"):
        return ts_from_proto(header.txn.read_timestamp)
    return ts_from_proto(header.timestamp)


def write_timestamp(header: api_pb2.BatchHeader) -> Timestamp:
    """The timestamp writes of the batch happen at (MVCC may push a txn's
    write above it when it rewrites its own newer intent)."""
    if header.HasField("txn"):
        wts = ts_from_proto(header.txn.meta.write_timestamp)
        return wts if not wts.is_empty() else ts_from_proto(header.txn.read_timestamp)
    return ts_from_proto(header.timestamp)


def read_latch_timestamp(header: api_pb2.BatchHeader) -> Timestamp:
    """Where a read latches: its read timestamp, up to its uncertainty limit."""
    ts = read_timestamp(header)
    if header.HasField("txn"):
        ts = ts.forward(ts_from_proto(header.txn.global_uncertainty_limit))
    return ts


def _add(spans: SpanSet, access: SpanAccess, key: bytes, end_key: bytes, ts: Timestamp) -> None:
    if keys.is_local(key) or ts.is_empty():
        spans.add_non_mvcc(access, key, end_key or None)
    else:
        spans.add_mvcc(access, key, end_key or None, ts)


def declare_read(
    desc: data_pb2.RangeDescriptor, header: api_pb2.BatchHeader, req: Any, spans: SpanSet
) -> None:
    """Declare the request's key or span READ_ONLY (Get, Scan, ReverseScan)."""
    h = req.header
    _add(spans, SpanAccess.READ_ONLY, h.key, h.end_key, read_latch_timestamp(header))


def declare_write(
    desc: data_pb2.RangeDescriptor, header: api_pb2.BatchHeader, req: Any, spans: SpanSet
) -> None:
    """Declare the request's key or span READ_WRITE (Put, Delete, ...)."""
    h = req.header
    _add(spans, SpanAccess.READ_WRITE, h.key, h.end_key, write_timestamp(header))


# ---- evaluation helpers ------------------------------------------------------------


def txn_meta(cargs: CommandArgs) -> data_pb2.TxnMeta | None:
    """The txn meta MVCC operations take (its sequence is the request's)."""
    return cargs.txn.meta if cargs.txn is not None else None


def inconsistent(cargs: CommandArgs) -> bool:
    return cargs.header.read_consistency == api_pb2.INCONSISTENT


def uncertainty_limit(cargs: CommandArgs) -> Timestamp | None:
    """Inconsistent reads have no uncertainty interval."""
    return None if inconsistent(cargs) else cargs.uncertainty_limit


def set_resume_span(h: api_pb2.ResponseHeader, key: bytes, end_key: bytes = b"") -> None:
    h.resume_span.key = key
    h.resume_span.end_key = end_key


def fill_value(v: data_pb2.Value, raw: bytes, ts: Timestamp | None) -> None:
    v.raw_bytes = raw
    if ts is not None:
        ts_to_proto(ts, v.timestamp)
