"""The abort span: a range's memory of transactions it knows were aborted.

The problem
-----------
A transaction T can be aborted by someone else: a pusher with a higher
priority (or one that found T expired) writes T's record ABORTED and then
removes T's intents. T's coordinator does not know yet — it learns on its
next heartbeat, or at commit — and meanwhile it keeps sending requests. A
read of T on a range where its intent was removed no longer sees T's own
write: T wrote x=1, the pusher removed the intent, and T now reads the old
value of x. That is a state that never existed, and the coordinator would
hand it to its client before it finds out, at commit, that the txn is dead
(CockroachDB issue #2231). The same zombie must not lay down new intents
either.

The remedy (after CockroachDB's ``pkg/kv/kvserver/abortspan``)
---------------------------------------------------------------
When an ABORTED intent of T is resolved with ``poison=true`` and an intent
was actually removed, the range writes an *abort span entry* for T, in the
same write batch as the resolution, so it is replicated and applied with it:

    key    keys.abort_span_key(range_id, T.id)
           = 0x00 'i' range_id(8, BE) 'abc-' txn_id(16)      (raw, unversioned)
    value  AbortSpanEntry{key: T's anchor, timestamp: T's write ts, priority}

Every later batch of T on that range — reads and writes; all but a lone
rollback (EndTxn commit=false: it must be able to clean up) and a lone
HeartbeatTxn (it reports the ABORTED record instead) — first looks up the
entry (`check_if_txn_aborted`) and fails with
``TransactionAbortedError("ABORT_REASON_ABORT_SPAN")``. The coordinator
treats that like any abort: the txn is finished, the client restarts with a
new txn (new id, so the entry never hits an innocent txn).

Who poisons: whoever resolves intents of a txn it did not run itself and
found ABORTED — the lock-table waiter after a push (`KVTxnPusher`), the
intent resolver's cleanup of intents met by inconsistent reads — and an
EndTxn rollback that asks for it (``EndTxnRequest.poison``). Resolving with
``poison=false`` (the coordinator's own rollback, and the resolution of its
intents elsewhere) *clears* the entry: the coordinator knows, nothing is
left to protect. A commit never touches the abort span (`write_on_resolve`).
Poisoning when nothing was removed is skipped: a push racing with the
coordinator's own cleanup must not leak entries for nothing.

Where it lives, and why raw keys: the entry is replicated range state, like
the lease (``rll-``), so it sits under the range's raw range-ID prefix —
never routed, never seen by MVCC scans, not counted in the MVCC stats. It is
carried along with the range's data: by raft (the write batch), by snapshots
(`engine_span` is part of what a snapshot ships) and by splits
(`copy_to`: the right-hand range is born with a copy of the left's entries,
since T's removed intents may lie on either side).

Latching. A resolution of an ABORTED intent, and a rollback, declare a
non-MVCC write of T's entry (`declare_write`). The check itself is not
latched, unlike CockroachDB, which declares a read of the entry for every
batch of T: here a batch is evaluated in one go, without yielding to the
event loop, against the applied state, and an entry is applied atomically
with the intent removal that calls for it (one write batch). So a batch of T
either sees the intent still there (and reads its own write, which is
consistent) or sees it gone *and* the entry — never the removal without the
entry. Skipping the latch keeps every batch's declared spans what its
commands declare (and one latch fewer per transactional batch).

Garbage collection: as in CockroachDB, the GC queue
(`crdb_py.kvserver.gc_queue`) drops entries older than an hour
(``TxnCleanupThreshold``), unless the txn's coordinator cleared them
earlier with its rollback; `copy_to` takes the same threshold so a split
skips old ones. Design: docs/design/transactions.md, "Abort span", and
docs/design/storage.md, "Garbage collection".
"""

from __future__ import annotations

from collections.abc import Iterator

from crdb_py.kvserver.spanset import SpanAccess, SpanSet
from crdb_py.pb import api_pb2, data_pb2
from crdb_py.storage.engine import Reader, ReadWriter, Writer
from crdb_py.util import keys
from crdb_py.util.errors import TransactionAbortedError
from crdb_py.util.hlc import Timestamp, ts_from_proto

ABORT_REASON_ABORT_SPAN = "ABORT_REASON_ABORT_SPAN"

# Entries older than this are garbage (CockroachDB's TxnCleanupThreshold):
# a split does not copy them.
TXN_CLEANUP_THRESHOLD_NANOS = 3600 * 1_000_000_000


def key(range_id: int, txn_id: bytes) -> bytes:
    return keys.abort_span_key(range_id, txn_id)


def engine_span(range_id: int) -> tuple[bytes, bytes]:
    """[lo, hi) of every engine key of the range's abort span."""
    p = keys.abort_span_prefix(range_id)
    return p, keys.prefix_end(p)


def is_abort_span_key(k: bytes) -> bool:
    """Whether raw engine key `k` is an abort span entry (of any range)."""
    return (
        k.startswith(keys.RANGE_ID_PREFIX)
        and k[len(keys.RANGE_ID_PREFIX) + 8 : len(keys.RANGE_ID_PREFIX) + 12]
        == keys.ABORT_SPAN_SUFFIX
    )


# ---- storage ---------------------------------------------------------------------


def get(reader: Reader, range_id: int, txn_id: bytes) -> api_pb2.AbortSpanEntry | None:
    v = reader.get(key(range_id, txn_id))
    return None if v is None else api_pb2.AbortSpanEntry.FromString(v)


def put(w: Writer, range_id: int, txn_id: bytes, entry: api_pb2.AbortSpanEntry) -> None:
    w.put(key(range_id, txn_id), entry.SerializeToString())


def delete(w: Writer, range_id: int, txn_id: bytes) -> None:
    w.delete(key(range_id, txn_id))


def iterate(reader: Reader, range_id: int) -> Iterator[tuple[bytes, api_pb2.AbortSpanEntry]]:
    """(txn id, entry) of every entry of the range, by txn id."""
    lo, hi = engine_span(range_id)
    n = len(lo)
    for k, v in reader.iter_range(lo, hi):
        yield k[n:], api_pb2.AbortSpanEntry.FromString(v)


def entry_for(meta: data_pb2.TxnMeta) -> api_pb2.AbortSpanEntry:
    e = api_pb2.AbortSpanEntry(key=meta.key, priority=meta.priority)
    e.timestamp.CopyFrom(meta.write_timestamp)
    return e


# ---- the rules -------------------------------------------------------------------


def write_on_resolve(status: int, poison: bool, removed_any: bool) -> bool:
    """Whether resolving intents of a txn with `status` must update the abort
    span (CockroachDB's ``WriteAbortSpanOnResolve``): only for ABORTED; a
    clear (poison false) always; a poison only if an intent was removed."""
    if status != data_pb2.ABORTED:
        return False
    return removed_any if poison else True


def update(rw: ReadWriter, range_id: int, meta: data_pb2.TxnMeta, poison: bool) -> None:
    """Poison (write T's entry) or clear it (CockroachDB's ``UpdateAbortSpan``).
    Writes nothing when the span already says so, so an idempotent retry of a
    resolution does not grow the raft command."""
    cur = get(rw, range_id, meta.id)
    if not poison:
        if cur is not None:
            delete(rw, range_id, meta.id)
        return
    want = entry_for(meta)
    if cur != want:
        put(rw, range_id, meta.id, want)


def maybe_update_on_resolve(
    rw: ReadWriter,
    range_id: int,
    meta: data_pb2.TxnMeta,
    status: int,
    poison: bool,
    removed_any: bool,
) -> None:
    if write_on_resolve(status, poison, removed_any):
        update(rw, range_id, meta, poison)


def check_if_txn_aborted(reader: Reader, range_id: int, txn: data_pb2.Transaction) -> None:
    """Raise ``TransactionAbortedError(ABORT_REASON_ABORT_SPAN)`` if the range
    has an entry for `txn` (the error's txn is `txn` marked ABORTED, at the
    higher of the two priorities)."""
    entry = get(reader, range_id, txn.meta.id)
    if entry is None:
        return
    aborted = data_pb2.Transaction()
    aborted.CopyFrom(txn)
    aborted.status = data_pb2.ABORTED
    aborted.meta.priority = max(aborted.meta.priority, entry.priority)
    raise TransactionAbortedError(ABORT_REASON_ABORT_SPAN, txn=aborted)


def checks_abort_span(ba: api_pb2.BatchRequest) -> bool:
    """Whether `ba` must pass `check_if_txn_aborted`: every transactional batch
    except a lone rollback and a lone HeartbeatTxn (CockroachDB exempts
    ``IsSingleAbortTxnRequest`` and ``IsSingleHeartbeatTxnRequest``)."""
    if not ba.header.HasField("txn") or not ba.header.txn.meta.id:
        return False
    if len(ba.requests) == 1:
        kind = ba.requests[0].WhichOneof("value")
        if kind == "heartbeat_txn":
            return False
        if kind == "end_txn" and not ba.requests[0].end_txn.commit:
            return False
    return True


def copy_to(
    reader: Reader,
    w: Writer,
    range_id: int,
    new_range_id: int,
    *,
    threshold: Timestamp | None = None,
) -> int:
    """Copy range `range_id`'s entries to range `new_range_id` (a split's
    right-hand side); entries whose timestamp is below `threshold` would be
    garbage-collected and are skipped. Returns how many were copied."""
    n = 0
    for txn_id, entry in iterate(reader, range_id):
        if threshold is not None and ts_from_proto(entry.timestamp) < threshold:
            continue
        put(w, new_range_id, txn_id, entry)
        n += 1
    return n


# ---- latching ----------------------------------------------------------------------


def declare_write(desc: data_pb2.RangeDescriptor, txn_id: bytes, spans: SpanSet) -> None:
    """A resolution of an ABORTED intent, or an EndTxn, may write the entry."""
    spans.add_non_mvcc(SpanAccess.READ_WRITE, key(desc.range_id, txn_id))


__all__ = [
    "ABORT_REASON_ABORT_SPAN",
    "TXN_CLEANUP_THRESHOLD_NANOS",
    "check_if_txn_aborted",
    "checks_abort_span",
    "copy_to",
    "declare_write",
    "delete",
    "engine_span",
    "entry_for",
    "get",
    "is_abort_span_key",
    "iterate",
    "key",
    "maybe_update_on_resolve",
    "put",
    "update",
    "write_on_resolve",
]
