"""Transaction records: reading, writing, converting, and liveness.

A txn record is a `TransactionRecord` stored as an inline (unversioned) MVCC
value at ``keys.transaction_key(meta.key, meta.id)``: range-local, next to the
txn's anchor key, so it lives on the anchor's range. Only the commands in
this package write it (HeartbeatTxn, EndTxn, PushTxn, RecoverTxn), always
under a non-MVCC READ_WRITE latch on the record key (`declare_record`).

Status transitions the commands allow (final statuses never change)::

    (none) --Heartbeat/Push--> PENDING --EndTxn(in-flight)--> STAGING
    PENDING/STAGING --EndTxn--> COMMITTED | ABORTED
    PENDING --Push(abort)--> ABORTED      STAGING --RecoverTxn--> COMMITTED | ABORTED

A record's epoch and write timestamp only move forward (`merge_forward`).
Liveness: a txn is *expired* when neither its last heartbeat nor (without
one) its start was within `TXN_LIVENESS_THRESHOLD` of now — 5x the 1 s
heartbeat interval, as in CockroachDB's `txnwait.IsExpired`.
Design: docs/design/transactions.md.
"""

from __future__ import annotations

from crdb_py.kvserver import gcthreshold
from crdb_py.kvserver.spanset import SpanAccess, SpanSet
from crdb_py.pb import data_pb2
from crdb_py.storage import mvcc_get, mvcc_put
from crdb_py.storage.engine import Reader, ReadWriter
from crdb_py.storage.stats import MVCCStats
from crdb_py.util import keys
from crdb_py.util.errors import InvalidArgumentError
from crdb_py.util.hlc import Timestamp, ts_from_proto, ts_to_proto

HEARTBEAT_INTERVAL_NANOS = 1_000_000_000
TXN_LIVENESS_THRESHOLD_NANOS = 5 * HEARTBEAT_INTERVAL_NANOS

PENDING = data_pb2.PENDING
STAGING = data_pb2.STAGING
COMMITTED = data_pb2.COMMITTED
ABORTED = data_pb2.ABORTED

_ZERO = Timestamp()


def status_name(status: int) -> str:
    return data_pb2.TransactionStatus.Name(status)


def is_final(status: int) -> bool:
    return status in (COMMITTED, ABORTED)


def record_key(meta: data_pb2.TxnMeta) -> bytes:
    return keys.transaction_key(meta.key, meta.id)


def declare_record(meta: data_pb2.TxnMeta, spans: SpanSet) -> None:
    """Declare the record key as a non-MVCC READ_WRITE span (a mutex)."""
    spans.add_non_mvcc(SpanAccess.READ_WRITE, record_key(meta))


def check_anchor(req_key: bytes, meta: data_pb2.TxnMeta, what: str) -> None:
    """A record command is addressed to the txn's anchor key (its record's range)."""
    if not meta.id:
        raise InvalidArgumentError(f"{what}: the transaction has no id")
    if req_key != meta.key:
        raise InvalidArgumentError(
            f"{what}: request key {req_key!r} must be the transaction's anchor key {meta.key!r}"
        )


# ---- storage -------------------------------------------------------------------------


def read_record(reader: Reader, meta: data_pb2.TxnMeta) -> data_pb2.TransactionRecord | None:
    """The stored record of the txn `meta` names, or None."""
    res = mvcc_get(reader, record_key(meta), _ZERO)
    if res.value is None:
        return None
    return data_pb2.TransactionRecord.FromString(res.value)


ABORT_REASON_RECORD_GCED = "ABORT_REASON_ALREADY_COMMITTED_OR_ROLLED_BACK_POSSIBLE_REPLAY"


def can_create_record(rw: Reader, range_id: int, meta: data_pb2.TxnMeta) -> bool:
    """Whether a missing record of `meta`'s txn may be written: not when the
    txn started at or below the range's txn span GC threshold — its record
    may have been finalized and garbage-collected, so a missing record then
    means "finished" (`crdb_py.kvserver.gcthreshold`)."""
    return gcthreshold.can_create_txn_record(meta, gcthreshold.txn_span_gc_threshold(rw, range_id))


def synthesize_aborted(meta: data_pb2.TxnMeta) -> data_pb2.Transaction:
    """A txn whose record is missing and may not be created: finished, and as
    far as anyone can now tell, aborted."""
    txn = synthesize_pending(meta)
    txn.status = ABORTED
    return txn


def write_record(
    rw: ReadWriter, rec: data_pb2.TransactionRecord, stats: MVCCStats | None = None
) -> None:
    mvcc_put(rw, record_key(rec.meta), _ZERO, rec.SerializeToString(), stats=stats)


# ---- conversion ----------------------------------------------------------------------


def txn_to_record(txn: data_pb2.Transaction) -> data_pb2.TransactionRecord:
    rec = data_pb2.TransactionRecord(status=txn.status)
    rec.meta.CopyFrom(txn.meta)
    rec.meta.sequence = 0  # a record has no "current" sequence
    rec.last_heartbeat.CopyFrom(txn.last_heartbeat)
    rec.lock_spans.extend(txn.lock_spans)
    rec.in_flight_writes.extend(txn.in_flight_writes)
    rec.ignored_seqnums.extend(txn.ignored_seqnums)
    return rec


def record_to_txn(rec: data_pb2.TransactionRecord) -> data_pb2.Transaction:
    """The record as a `Transaction` (its read timestamp is unknown: left unset)."""
    txn = data_pb2.Transaction(status=rec.status)
    txn.meta.CopyFrom(rec.meta)
    txn.last_heartbeat.CopyFrom(rec.last_heartbeat)
    txn.lock_spans.extend(rec.lock_spans)
    txn.in_flight_writes.extend(rec.in_flight_writes)
    txn.ignored_seqnums.extend(rec.ignored_seqnums)
    return txn


def synthesize_pending(meta: data_pb2.TxnMeta) -> data_pb2.Transaction:
    """The txn as it is known without a record: PENDING, no heartbeat yet."""
    txn = data_pb2.Transaction(status=PENDING)
    txn.meta.CopyFrom(meta)
    txn.meta.sequence = 0
    return txn


def merge_forward(txn: data_pb2.Transaction, meta: data_pb2.TxnMeta) -> tuple[bool, bool]:
    """Move `txn`'s epoch, write timestamp and priority up to what `meta`
    knows. Returns (epoch moved, write timestamp moved)."""
    higher_epoch = meta.epoch > txn.meta.epoch
    if higher_epoch:
        txn.meta.epoch = meta.epoch
    wts, mts = write_ts(txn), ts_from_proto(meta.write_timestamp)
    higher_ts = wts < mts
    if higher_ts:
        ts_to_proto(mts, txn.meta.write_timestamp)
    txn.meta.priority = max(txn.meta.priority, meta.priority)
    return higher_epoch, higher_ts


# ---- timestamps and liveness -----------------------------------------------------------


def write_ts(txn: data_pb2.Transaction | data_pb2.TransactionRecord) -> Timestamp:
    return ts_from_proto(txn.meta.write_timestamp)


def last_active(txn: data_pb2.Transaction | data_pb2.TransactionRecord) -> Timestamp:
    """The last time the txn was known alive: its heartbeat, else its start."""
    return ts_from_proto(txn.last_heartbeat).forward(ts_from_proto(txn.meta.min_timestamp))


def is_expired(now: Timestamp, txn: data_pb2.Transaction | data_pb2.TransactionRecord) -> bool:
    """No sign of life for `TXN_LIVENESS_THRESHOLD_NANOS` (final txns never expire)."""
    if is_final(txn.status):
        return False
    return last_active(txn).add(TXN_LIVENESS_THRESHOLD_NANOS) < now


def same_attempt(a: data_pb2.TxnMeta, b: data_pb2.TxnMeta) -> bool:
    """Same epoch and write timestamp (one staging attempt of a commit)."""
    return a.epoch == b.epoch and ts_from_proto(a.write_timestamp) == ts_from_proto(
        b.write_timestamp
    )


def lock_update(span: data_pb2.Span, txn: data_pb2.Transaction, status: int) -> data_pb2.LockUpdate:
    up = data_pb2.LockUpdate(status=status)
    up.span.CopyFrom(span)
    up.txn.CopyFrom(txn.meta)
    up.ignored_seqnums.extend(txn.ignored_seqnums)
    return up


def all_lock_spans(txn: data_pb2.Transaction) -> list[data_pb2.Span]:
    """Lock spans plus in-flight writes (as point spans), deduplicated."""
    out: list[data_pb2.Span] = []
    seen: set[tuple[bytes, bytes]] = set()
    for sp in txn.lock_spans:
        if (sp.key, sp.end_key) not in seen:
            seen.add((sp.key, sp.end_key))
            out.append(sp)
    for w in txn.in_flight_writes:
        if (w.key, b"") not in seen and not any(_covers(sp, w.key) for sp in txn.lock_spans):
            seen.add((w.key, b""))
            out.append(data_pb2.Span(key=w.key))
    return out


def _covers(sp: data_pb2.Span, key: bytes) -> bool:
    if not sp.end_key:
        return sp.key == key
    return sp.key <= key < sp.end_key
