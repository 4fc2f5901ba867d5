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

from crdb_py.pb import api_pb2, data_pb2
from crdb_py.storage.engine import Reader, Writer
from crdb_py.util import keys
from crdb_py.util.errors import BatchTimestampBeforeGCError
from crdb_py.util.hlc import Timestamp, ts_from_proto, ts_to_proto

ZERO = Timestamp()
# Requests not checked against the GC threshold: they read no MVCC history
# (txn records, intents) or are the GC itself. An old txn must still be able
# to finish, and its intents to be resolved (intents are never collected).
GC_THRESHOLD_EXEMPT = frozenset({
    "heartbeat_txn", "end_txn", "push_txn", "recover_txn", "query_txn", "query_intent",
    "resolve_intent", "resolve_intent_range", "gc",
})


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


def earliest_active_timestamp(ba: api_pb2.BatchRequest) -> Timestamp | None:
    """The lowest timestamp at which the batch reads or writes MVCC history
    (CockroachDB's ``EarliestActiveTimestamp``): its read timestamp, or just
    above a refresh's ``refresh_from`` (a refresh looks at (from, to]). None
    when every request is exempt from the GC threshold check."""
    h = ba.header
    base = ts_from_proto(h.txn.read_timestamp if h.HasField("txn") else h.timestamp)
    out: Timestamp | None = None
    for ru in ba.requests:
        kind = ru.WhichOneof("value")
        if kind in GC_THRESHOLD_EXEMPT:
            continue
        ts = base
        if kind in ("refresh", "refresh_range"):
            ts = min(ts, ts_from_proto(getattr(ru, kind).refresh_from).next())
        out = ts if out is None else min(out, ts)
    return out


def check_batch(ba: api_pb2.BatchRequest, threshold: Timestamp, range_id: int = 0) -> None:
    """Raise `BatchTimestampBeforeGCError` if `ba` reads or writes at or
    below `threshold` (its earliest active timestamp)."""
    if threshold.is_empty():
        return
    ts = earliest_active_timestamp(ba)
    if ts is not None and ts <= threshold:
        raise BatchTimestampBeforeGCError(ts, threshold, range_id)


__all__ = [
    "GC_THRESHOLD_EXEMPT",
    "can_create_txn_record",
    "check_batch",
    "earliest_active_timestamp",
    "engine_spans",
    "gc_threshold",
    "is_threshold_key",
    "load",
    "set_gc_threshold",
    "set_txn_span_gc_threshold",
    "txn_span_gc_threshold",
]
