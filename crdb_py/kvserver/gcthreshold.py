"""The GC thresholds of a range: replicated range state, like the lease.

Two timestamps per range, each under the range's raw range-ID prefix (so
never routed, never in MVCC stats), written only by GCRequest evaluation
(`batcheval/cmd_gc.py`) and only ever moved forward:

* the **GC threshold** (``keys.range_gc_threshold_key``): MVCC versions no
  read above it can see may have been removed, so every request whose
  timestamp is at or below it fails with `BatchTimestampBeforeGCError`
  (checked by the replica, `Replica.check_gc_threshold`);
* the **txn span GC threshold** (``keys.range_txn_span_gc_threshold_key``):
  finalized txn records whose txn started at or below it may have been
  removed, so no txn record may be *created* for such a txn
  (`can_create_txn_record`) — a removed record means "finished", and a
  zombie coordinator must not bring it back (CockroachDB's
  ``TxnSpanGCThreshold`` / ``CanCreateTxnRecord``).

They travel with the range: applied with the GC command's write batch (the
replica also keeps them in memory), shipped in snapshots (`engine_spans`),
copied to the right-hand range by the split trigger (`split.apply_split`), and read back on
restart (`load`). Design: docs/design/storage.md, "Garbage collection".
"""

from __future__ import annotations

from crdb_py.pb import data_pb2
from crdb_py.storage.engine import Reader, Writer
from crdb_py.util import keys
from crdb_py.util.hlc import Timestamp, ts_from_proto, ts_to_proto

ZERO = Timestamp()


def _read(reader: Reader, key: bytes) -> Timestamp:
    v = reader.get(key)
    return ts_from_proto(data_pb2.Timestamp.FromString(v)) if v is not None else ZERO


def _encode(ts: Timestamp) -> bytes:
    p = data_pb2.Timestamp()
    ts_to_proto(ts, p)
    return p.SerializeToString()


def gc_threshold(reader: Reader, range_id: int) -> Timestamp:
    return _read(reader, keys.range_gc_threshold_key(range_id))


def txn_span_gc_threshold(reader: Reader, range_id: int) -> Timestamp:
    return _read(reader, keys.range_txn_span_gc_threshold_key(range_id))


def load(reader: Reader, range_id: int) -> tuple[Timestamp, Timestamp]:
    """(GC threshold, txn span GC threshold) of the range; zero when unset."""
    return gc_threshold(reader, range_id), txn_span_gc_threshold(reader, range_id)


def set_gc_threshold(w: Writer, range_id: int, ts: Timestamp) -> None:
    w.put(keys.range_gc_threshold_key(range_id), _encode(ts))


def set_txn_span_gc_threshold(w: Writer, range_id: int, ts: Timestamp) -> None:
    w.put(keys.range_txn_span_gc_threshold_key(range_id), _encode(ts))


def is_threshold_key(k: bytes) -> bool:
    """Whether raw engine key `k` is a GC threshold key (of any range)."""
    n = len(keys.RANGE_ID_PREFIX) + 8
    return k.startswith(keys.RANGE_ID_PREFIX) and len(k) == n + 4 and k[n:] in (
        keys.RANGE_GC_THRESHOLD_SUFFIX,
        keys.RANGE_TXN_SPAN_GC_THRESHOLD_SUFFIX,
    )


def engine_spans(range_id: int) -> list[tuple[bytes, bytes]]:
    """The engine spans holding the range's thresholds (a snapshot ships them)."""
    ks = (keys.range_gc_threshold_key(range_id), keys.range_txn_span_gc_threshold_key(range_id))
    return [(k, keys.next_key(k)) for k in ks]


def can_create_txn_record(meta: data_pb2.TxnMeta, txn_span_threshold: Timestamp) -> bool:
    """Whether a txn record may be written where none exists: not when the
    txn started at or below the txn span GC threshold (its record may have
    been written, finalized and garbage-collected)."""
    return txn_span_threshold.is_empty() or txn_span_threshold < ts_from_proto(meta.min_timestamp)


__all__ = [
    "can_create_txn_record",
    "engine_spans",
    "gc_threshold",
    "is_threshold_key",
    "load",
    "set_gc_threshold",
    "set_txn_span_gc_threshold",
    "txn_span_gc_threshold",
]
