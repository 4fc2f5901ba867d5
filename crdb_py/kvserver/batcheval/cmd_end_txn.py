"""EndTxn: commit (explicitly, or by staging a parallel commit) or abort.

What it decides
---------------
EndTxn is addressed to the txn's anchor key, so it evaluates on the range
that holds the txn record, under a latch on the record key. It is the only
command through which a coordinator finishes its own transaction:

* **commit with in-flight writes** (``in_flight_writes`` non-empty) writes
  the record **STAGING** at the txn's write timestamp, listing the in-flight
  writes and the lock spans. Nothing is resolved: whether the txn committed
  is not known yet. It is *implicitly committed* as soon as every in-flight
  write is present as an intent at (epoch, seq) with timestamp <= the
  record's; the coordinator (or, if it dies, recovery — `RecoverTxn`) later
  makes that explicit. The response's txn has status STAGING.
* **commit without in-flight writes** writes the record **COMMITTED**;
  **rollback** (``commit`` false) writes it **ABORTED**. The intents in the
  lock spans (and in-flight writes) that lie on this range are resolved in
  the same write batch (`Result.resolved_locks`), the rest are handed to the
  intent resolver (`Result.resolve_intents`) to do after the batch applied.
  The final record is always written (never deleted), so a later pusher or
  recoverer finds the outcome.
* **one-phase commit** is decided a level up, in
  `crdb_py.kvserver.evaluate.try_one_phase_commit`: when a whole txn
  arrives in one batch on one range, its writes are evaluated as plain
  committed writes and no record is written (``one_phase_commit``).

What it rejects, and why
------------------------
In CockroachDB's order (`cmd_end_transaction.go`):

1. a commit whose write timestamp is at or past ``deadline`` —
   `TransactionRetryError("RETRY_COMMIT_DEADLINE_EXCEEDED")`: the deadline
   (e.g. a schema lease's expiry) must bound the commit timestamp;
2. an ABORTED record — a commit gets `TransactionAbortedError
   ("ABORTED_RECORD_FOUND")` (a pusher aborted it; the txn must restart); a
   rollback is idempotent and just resolves its local intents again;
3. a COMMITTED record — `TransactionStatusError`: finishing twice is a bug
   or a replay, and a final status never changes;
4. a record at a newer epoch than the request — `TransactionStatusError`
   (an old attempt must not finish a newer one);
5. a commit whose timestamp moved: the record's write timestamp was pushed
   above the request's, or the request's write timestamp is above its read
   timestamp — `TransactionRetryError("RETRY_SERIALIZABLE")`. Committing
   above the read timestamp would let the reads be stale; the coordinator
   must refresh its reads to the new timestamp first (M5's span refresher)
   and retry the commit.

6. no record, and the txn started at or below the range's txn span GC
   threshold (`crdb_py.kvserver.gcthreshold`): the record may have been
   finalized and garbage-collected, so it must not be written again — a
   commit gets `TransactionAbortedError
   ("ABORT_REASON_ALREADY_COMMITTED_OR_ROLLED_BACK_POSSIBLE_REPLAY")`, a
   rollback resolves its local intents ABORTED and writes no record.

Invariants kept: a final record is never rewritten by this command; the
record's epoch and write timestamp never move backwards (the new record is
the old one merged forward with the request); a STAGING record is written
only at a timestamp equal to the txn's read timestamp, so an implicitly
committed txn needs no refresh.

Rejected alternative: deleting the record on commit when every intent is
local (CockroachDB does, to save space). A pusher or recoverer that then
finds no record must treat it as aborted, so a missing record would have to
be disambiguated through the timestamp cache; keeping the record is simpler
and costs one small value per txn. Design: docs/design/transactions.md.
"""

from __future__ import annotations

from crdb_py.kvserver.batcheval import txn_record as tr
from crdb_py.kvserver.batcheval.command import Command, CommandArgs, Result, register
from crdb_py.kvserver.batcheval.declare import write_timestamp
from crdb_py.kvserver.spanset import SpanAccess, SpanSet
from crdb_py.pb import api_pb2, data_pb2
from crdb_py.storage import mvcc_resolve_write_intent, mvcc_resolve_write_intent_range
from crdb_py.storage.engine import ReadWriter
from crdb_py.storage.stats import MVCCStats
from crdb_py.util.errors import (
    TransactionAbortedError,
    TransactionRetryError,
    TransactionStatusError,
)
from crdb_py.util.hlc import ts_from_proto


def split_span(
    desc: data_pb2.RangeDescriptor, span: data_pb2.Span
) -> tuple[data_pb2.Span | None, list[data_pb2.Span]]:
    """(the part of `span` inside `desc` or None, the parts outside it)."""
    lo, hi = desc.start_key, desc.end_key
    if not span.end_key:
        if lo <= span.key < hi:
            return span, []
        return None, [span]
    start, end = span.key, span.end_key
    outside: list[data_pb2.Span] = []
    if start < lo:
        outside.append(data_pb2.Span(key=start, end_key=min(end, lo)))
    if end > hi:
        outside.append(data_pb2.Span(key=max(start, hi), end_key=end))
    s, e = max(start, lo), min(end, hi)
    inside = data_pb2.Span(key=s, end_key=e) if s < e else None
    return inside, outside


def declare_keys(
    desc: data_pb2.RangeDescriptor,
    header: api_pb2.BatchHeader,
    req: api_pb2.EndTxnRequest,
    spans: SpanSet,
) -> None:
    tr.declare_record(header.txn.meta, spans)
    if req.commit and req.in_flight_writes:
        return  # a parallel commit resolves nothing locally (CockroachDB's declareKeysEndTxn)
    wts = write_timestamp(header)
    pts = [data_pb2.Span(key=w.key) for w in req.in_flight_writes]
    for sp in [*req.lock_spans, *pts]:
        inside, _ = split_span(desc, sp)
        if inside is not None:
            spans.add_mvcc(SpanAccess.READ_WRITE, inside.key, inside.end_key or None, wts)


def resolve_local(
    rw: ReadWriter,
    desc: data_pb2.RangeDescriptor,
    txn: data_pb2.Transaction,
    stats: MVCCStats,
) -> Result:
    """Resolve `txn`'s (final status) intents on this range now; return the
    others as `resolve_intents`."""
    out = Result()
    ignored = [(r.start, r.end) for r in txn.ignored_seqnums]
    for sp in tr.all_lock_spans(txn):
        inside, outside = split_span(desc, sp)
        out.resolve_intents.extend(tr.lock_update(o, txn, txn.status) for o in outside)
        if inside is None:
            continue
        if inside.end_key:
            mvcc_resolve_write_intent_range(
                rw,
                inside.key,
                inside.end_key,
                txn.meta,
                txn.status,
                stats=stats,
                ignored_seqnums=ignored,
            )
        else:
            mvcc_resolve_write_intent(
                rw, inside.key, txn.meta, txn.status, stats=stats, ignored_seqnums=ignored
            )
        out.resolved_locks.append(tr.lock_update(inside, txn, txn.status))
    return out


def evaluate(
    cargs: CommandArgs, req: api_pb2.EndTxnRequest, resp: api_pb2.EndTxnResponse
) -> Result:
    txn = cargs.txn
    assert txn is not None  # is_txn
    tr.check_anchor(req.header.key, txn.meta, "EndTxn")
    wts = tr.write_ts(txn)
    if req.commit and req.HasField("deadline"):
        deadline = ts_from_proto(req.deadline)
        if not deadline.is_empty() and deadline <= wts:
            raise TransactionRetryError(
                "RETRY_COMMIT_DEADLINE_EXCEEDED",
                f"TransactionRetryError: commit timestamp {wts} is at or past the deadline "
                f"{deadline}: restart transaction",
                txn=txn,
            )

    rec = tr.read_record(cargs.rw, txn.meta)
    if rec is None and not tr.can_create_record(cargs.rw, cargs.desc.range_id, txn.meta):
        # The record may have been finalized and garbage-collected: the txn is
        # finished. A commit would resurrect it; a rollback only cleans up.
        aborted = tr.synthesize_aborted(txn.meta)
        if req.commit:
            raise TransactionAbortedError(tr.ABORT_REASON_RECORD_GCED, txn=aborted)
        _set_outcome(aborted, req)
        _reflect(txn, aborted)
        return resolve_local(cargs.rw, cargs.desc, aborted, cargs.stats)
    if rec is None:
        cur = data_pb2.Transaction()
        cur.CopyFrom(txn)
        cur.status = tr.PENDING
    else:
        if rec.status == tr.ABORTED:
            aborted = tr.record_to_txn(rec)
            if req.commit:
                raise TransactionAbortedError("ABORTED_RECORD_FOUND", txn=aborted)
            # A rollback of an aborted txn: clean up what it names, idempotently.
            _set_outcome(aborted, req)
            aborted.status = tr.ABORTED
            _reflect(txn, aborted)
            return resolve_local(cargs.rw, cargs.desc, aborted, cargs.stats)
        if rec.status == tr.COMMITTED:
            raise TransactionStatusError(
                "transaction is already COMMITTED",
                reason="already committed",
                txn=tr.record_to_txn(rec),
            )
        if rec.meta.epoch > txn.meta.epoch:
            raise TransactionStatusError(
                f"EndTxn at epoch {txn.meta.epoch} for a record at epoch {rec.meta.epoch}",
                reason="epoch regression",
                txn=tr.record_to_txn(rec),
            )
        cur = tr.record_to_txn(rec)
        pushed = tr.write_ts(rec) > wts
        tr.merge_forward(cur, txn.meta)
        cur.meta.epoch = txn.meta.epoch
        cur.meta.min_timestamp.CopyFrom(txn.meta.min_timestamp)
        if req.commit and pushed:
            raise TransactionRetryError(
                "RETRY_SERIALIZABLE",
                f"TransactionRetryError: the record was pushed to {tr.write_ts(rec)} above the "
                f"commit timestamp {wts}: refresh and retry the commit",
                txn=cur,
            )
    if req.commit and wts > ts_from_proto(txn.read_timestamp):
        raise TransactionRetryError(
            "RETRY_SERIALIZABLE",
            f"TransactionRetryError: write timestamp {wts} is above the read timestamp "
            f"{ts_from_proto(txn.read_timestamp)}: refresh the reads and retry the commit",
            txn=txn,
        )

    cur.name = txn.name
    cur.read_timestamp.CopyFrom(txn.read_timestamp)
    _set_outcome(cur, req)
    del cur.ignored_seqnums[:]
    cur.ignored_seqnums.extend(txn.ignored_seqnums)
    if req.commit and req.in_flight_writes:
        cur.status = tr.STAGING
        tr.write_record(cargs.rw, tr.txn_to_record(cur), cargs.stats)
        _reflect(txn, cur)
        return Result(updated_txn=_copy(cur))
    cur.status = tr.COMMITTED if req.commit else tr.ABORTED
    out = resolve_local(cargs.rw, cargs.desc, cur, cargs.stats)
    tr.write_record(cargs.rw, tr.txn_to_record(cur), cargs.stats)
    _reflect(txn, cur)
    out.updated_txn = _copy(cur)
    return out


def _set_outcome(cur: data_pb2.Transaction, req: api_pb2.EndTxnRequest) -> None:
    del cur.lock_spans[:]
    cur.lock_spans.extend(req.lock_spans)
    del cur.in_flight_writes[:]
    cur.in_flight_writes.extend(req.in_flight_writes)


def _reflect(txn: data_pb2.Transaction, cur: data_pb2.Transaction) -> None:
    """Show the outcome in the batch's txn (it goes back in the response)."""
    txn.status = cur.status
    txn.meta.write_timestamp.CopyFrom(cur.meta.write_timestamp)
    del txn.in_flight_writes[:]
    if cur.status == tr.STAGING:
        txn.in_flight_writes.extend(cur.in_flight_writes)


def _copy(t: data_pb2.Transaction) -> data_pb2.Transaction:
    out = data_pb2.Transaction()
    out.CopyFrom(t)
    return out


END_TXN = register(
    Command(
        name="end_txn",
        declare_keys=declare_keys,
        evaluate=evaluate,
        is_write=True,
        is_txn=True,
    )
)
