"""GC: remove garbage the range's GC queue found, and move its GC thresholds.

After CockroachDB's ``batcheval/cmd_gc.go``. Sent by the GC queue
(`crdb_py.kvserver.gc_queue`) to its own range's leaseholder; the header
spans the range. One request may carry any of:

* ``threshold`` / ``txn_span_gc_threshold`` — new GC thresholds
  (`crdb_py.kvserver.gcthreshold`). Each only moves forward (an older value
  is ignored); the new values are written in the command's write batch and
  reported in `Result` so every replica updates its in-memory copy when
  the command applies. The queue sets them in a request of their own,
  *before* sending any key: once the threshold applied, no request at or
  below it evaluates, so no new version can appear under it while the
  keys are collected.
* ``keys`` — (key, ts): remove every version of the key at or below ts
  (`mvcc_garbage_collect_keys`). ts must be at or below the GC threshold
  (else `InvalidArgumentError`); removing an intent's provisional value or
  a live newest version raises `InternalError` (the queue never asks for
  either). MVCC stats stay exact.
* ``txn_records`` — finalized records to remove. A record that is gone is
  skipped (a retried request); a record that is not COMMITTED/ABORTED, or
  whose txn started above the txn span GC threshold, is refused
  (`InvalidArgumentError`): without the threshold below it, its
  coordinator could re-create the record (`gcthreshold.can_create_txn_record`).
  The queue resolves a record's intents before asking.
* ``abort_span_txn_ids`` — abort span entries to remove; only those whose
  timestamp is below the txn span GC threshold go (an entry re-poisoned
  since the queue looked is left).

Latches: non-MVCC writes on every key named (a mutex per key: nothing
writes or reads it while its versions go), on each record and abort span
entry, and on the threshold keys it sets. Reads of the thresholds by other
commands are not latched (see `gcthreshold`).
"""

from __future__ import annotations

from crdb_py.kvserver import abortspan, gcthreshold
from crdb_py.kvserver.batcheval import txn_record as tr
from crdb_py.kvserver.batcheval.command import Command, CommandArgs, Result, register
from crdb_py.kvserver.spanset import SpanAccess, SpanSet
from crdb_py.pb import api_pb2, data_pb2
from crdb_py.storage.mvcc import mvcc_delete
from crdb_py.storage.mvcc_intent import mvcc_garbage_collect_keys
from crdb_py.util import keys
from crdb_py.util.errors import InvalidArgumentError, RangeKeyMismatchError
from crdb_py.util.hlc import Timestamp, ts_from_proto


def declare_keys(
    desc: data_pb2.RangeDescriptor,
    header: api_pb2.BatchHeader,
    req: api_pb2.GCRequest,
    spans: SpanSet,
) -> None:
    for gk in req.keys:
        spans.add_non_mvcc(SpanAccess.READ_WRITE, gk.key)
    for meta in req.txn_records:
        tr.declare_record(meta, spans)
    for txn_id in req.abort_span_txn_ids:
        abortspan.declare_write(desc, txn_id, spans)
    if req.HasField("threshold"):
        spans.add_non_mvcc(SpanAccess.READ_WRITE, keys.range_gc_threshold_key(desc.range_id))
    if req.HasField("txn_span_gc_threshold"):
        spans.add_non_mvcc(
            SpanAccess.READ_WRITE, keys.range_txn_span_gc_threshold_key(desc.range_id)
        )


def _in_range(desc: data_pb2.RangeDescriptor, key: bytes) -> None:
    try:
        ok = desc.start_key <= keys.addr(key) < desc.end_key
    except ValueError:
        ok = False
    if not ok:
        raise RangeKeyMismatchError(key, b"", desc)


def evaluate(cargs: CommandArgs, req: api_pb2.GCRequest, resp: api_pb2.GCResponse) -> Result:
    rw, desc, rid = cargs.rw, cargs.desc, cargs.desc.range_id
    out = Result()
    gc_thr, txn_thr = gcthreshold.load(rw, rid)
    if req.HasField("threshold"):
        new = ts_from_proto(req.threshold)
        if gc_thr < new:
            gc_thr = new
            gcthreshold.set_gc_threshold(rw, rid, new)
            out.gc_threshold = new
    if req.HasField("txn_span_gc_threshold"):
        new = ts_from_proto(req.txn_span_gc_threshold)
        if txn_thr < new:
            txn_thr = new
            gcthreshold.set_txn_span_gc_threshold(rw, rid, new)
            out.txn_span_gc_threshold = new

    gc_keys: list[tuple[bytes, Timestamp]] = []
    for gk in req.keys:
        _in_range(desc, gk.key)
        ts = ts_from_proto(gk.timestamp)
        if gc_thr < ts or ts.is_empty():
            raise InvalidArgumentError(
                f"GC of {gk.key!r} at {ts}: must be set and at or below the GC threshold {gc_thr}"
            )
        gc_keys.append((gk.key, ts))
    resp.versions_removed = mvcc_garbage_collect_keys(rw, gc_keys, stats=cargs.stats)

    for meta in req.txn_records:
        _in_range(desc, tr.record_key(meta))
        rec = tr.read_record(rw, meta)
        if rec is None:
            continue
        if not tr.is_final(rec.status):
            raise InvalidArgumentError(
                f"GC of the record of txn {meta.id.hex()[:8]}: it is {tr.status_name(rec.status)}; "
                "only finalized records are garbage"
            )
        if gcthreshold.can_create_txn_record(rec.meta, txn_thr):
            raise InvalidArgumentError(
                f"GC of the record of txn {meta.id.hex()[:8]}: it started at "
                f"{ts_from_proto(rec.meta.min_timestamp)}, above the txn span GC threshold "
                f"{txn_thr}; it could be re-created"
            )
        mvcc_delete(rw, tr.record_key(meta), Timestamp(), stats=cargs.stats)
        resp.txn_records_removed += 1

    for txn_id in req.abort_span_txn_ids:
        e = abortspan.get(rw, rid, txn_id)
        if e is not None and ts_from_proto(e.timestamp) < txn_thr:
            abortspan.delete(rw, rid, txn_id)
            resp.abort_span_entries_removed += 1
    return out


GC = register(
    Command(name="gc", declare_keys=declare_keys, evaluate=evaluate, is_write=True, is_range=True)
)
