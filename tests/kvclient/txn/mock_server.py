"""A small in-memory KV server for coordinator tests: a `Sender`.

It models what the coordinator relies on, after docs/design/transactions.md:
ranges (split keys; a batch is cut into one part per range and *every* part
is evaluated, as the DistSender sends them concurrently — the error of the
lowest request index is raised, with ``index``), MVCC versions, intents with
a per-sequence history (replays are no-ops), a timestamp cache that pushes
writes, WriteTooOld, uncertainty, txn records (PENDING / STAGING /
COMMITTED / ABORTED), QueryIntent with prevention, 1PC (``require_1pc``),
Refresh / RefreshRange, HeartbeatTxn, and a recovery routine. It also
records every batch received (`log`) and offers knobs to inject trouble:
`lose_async_write(key)` (a pipelined write that never lands),
`fail_next(kind, exc)`, `bump_tscache(key, ts)` (a reader that will push the
next writer), `abort_record(txn_id)` (a pusher won).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from crdb_py.kvclient import batch as kb
from crdb_py.pb import api_pb2, data_pb2
from crdb_py.util import errors
from crdb_py.util.hlc import Timestamp, ts_from_proto, ts_to_proto

PENDING, STAGING, COMMITTED, ABORTED = (
    data_pb2.PENDING,
    data_pb2.STAGING,
    data_pb2.COMMITTED,
    data_pb2.ABORTED,
)
WRITES = {"put", "conditional_put", "increment", "delete", "delete_range"}


@dataclass
class Intent:
    txn_id: bytes
    epoch: int
    seq: int
    ts: Timestamp
    history: dict[int, bytes | None] = field(default_factory=dict)  # seq -> value

    @property
    def value(self) -> bytes | None:
        return self.history[max(self.history)]

    def value_at(self, seq: int) -> tuple[bool, bytes | None]:
        seqs = [s for s in self.history if s <= seq]
        if not seqs:
            return False, None
        return True, self.history[max(seqs)]


def _ts(p: object) -> Timestamp:
    return ts_from_proto(p)


class MockServer:
    def __init__(self, splits: list[bytes] | None = None) -> None:
        self.splits = sorted(splits or [])
        self.versions: dict[bytes, list[tuple[Timestamp, bytes | None]]] = {}
        self.intents: dict[bytes, Intent] = {}
        self.tscache: dict[bytes, tuple[Timestamp, bytes | None]] = {}
        self.span_reads: list[tuple[bytes, bytes, Timestamp, bytes | None]] = []
        self.records: dict[bytes, data_pb2.Transaction] = {}
        self.log: list[api_pb2.BatchRequest] = []
        self.lost: set[bytes] = set()
        self.failures: list[tuple[str, errors.CrdbError]] = []
        self.honour_require_1pc = True

    # ---- knobs ----------------------------------------------------------------------

    def range_of(self, key: bytes) -> int:
        return bisect.bisect_right(self.splits, key)

    def lose_async_write(self, key: bytes) -> None:
        self.lost.add(key)

    def fail_next(self, kind: str, exc: errors.CrdbError) -> None:
        self.failures.append((kind, exc))

    def bump_tscache(self, key: bytes, ts: Timestamp, txn_id: bytes | None = None) -> None:
        cur = self.tscache.get(key)
        if cur is None or cur[0] < ts:
            self.tscache[key] = (ts, txn_id)

    def write_committed(self, key: bytes, value: bytes | None, ts: Timestamp) -> None:
        self.versions.setdefault(key, []).append((ts, value))
        self.versions[key].sort(key=lambda v: v[0])

    def abort_record(self, txn_id: bytes) -> None:
        rec = self.records.get(txn_id)
        if rec is None:
            rec = data_pb2.Transaction()
            rec.meta.id = txn_id
            self.records[txn_id] = rec
        rec.status = ABORTED
        self._resolve_all(rec)

    def committed_value(self, key: bytes) -> bytes | None:
        vs = self.versions.get(key)
        return vs[-1][1] if vs else None

    def batches_of(self, kind: str) -> list[api_pb2.BatchRequest]:
        return [b for b in self.log if any(kb.kind(r) == kind for r in b.requests)]

    # ---- the Sender ---------------------------------------------------------------------

    async def send(self, ba: api_pb2.BatchRequest) -> api_pb2.BatchResponse:
        copy = api_pb2.BatchRequest()
        copy.CopyFrom(ba)
        self.log.append(copy)
        parts: dict[int, list[int]] = {}
        for i, r in enumerate(ba.requests):
            parts.setdefault(self.range_of(kb.inner(r).header.key), []).append(i)
        out = api_pb2.BatchResponse()
        for r in ba.requests:
            out.responses.append(kb.empty_response_for(r))
        errs: list[errors.CrdbError] = []
        for rid in sorted(parts):
            idxs = parts[rid]
            try:
                br = self._eval_part(ba, idxs)
            except errors.CrdbError as e:
                errs.append(e)
                continue
            for j, i in enumerate(idxs):
                out.responses[i].CopyFrom(br.responses[j])
            if br.header.HasField("txn"):
                kb.merge_txn(out.header.txn, br.header.txn)
        if errs:
            raise min(errs, key=lambda e: getattr(e, "index", -1))
        return out

    # ---- evaluation -----------------------------------------------------------------------

    def _eval_part(self, ba: api_pb2.BatchRequest, idxs: list[int]) -> api_pb2.BatchResponse:
        reqs = [ba.requests[i] for i in idxs]
        for kind, exc in list(self.failures):
            if any(kb.kind(r) == kind for r in reqs):
                self.failures.remove((kind, exc))
                exc.index = idxs[[kb.kind(r) for r in reqs].index(kind)]  # type: ignore[attr-defined]
                raise exc
        txn = data_pb2.Transaction()
        txn.CopyFrom(ba.header.txn)
        is_write = any(kb.kind(r) in WRITES for r in reqs)
        if is_write:  # the timestamp cache pushes the whole part's writes
            wts = _ts(txn.meta.write_timestamp)
            for r in reqs:
                if kb.kind(r) in WRITES:
                    key = kb.inner(r).header.key
                    got = self.tscache.get(key)
                    if got is not None and got[0] >= wts and got[1] != txn.meta.id:
                        wts = got[0].next()
            ts_to_proto(wts, txn.meta.write_timestamp)
        one_pc = self._try_1pc(ba, reqs, txn)
        if one_pc is not None:
            return one_pc
        saved = (dict(self.intents), {k: list(v) for k, v in self.versions.items()})
        br = api_pb2.BatchResponse()
        for j, r in enumerate(reqs):
            try:
                resp = self._eval(r, txn, ba.header)
            except errors.CrdbError as e:
                self.intents, self.versions = saved
                e.index = idxs[j]  # type: ignore[attr-defined]
                raise
            br.responses.append(resp)
        if ba.header.async_consensus and is_write:
            for r in reqs:
                key = kb.inner(r).header.key
                if key in self.lost:
                    self.lost.discard(key)
                    self.intents.pop(key, None)
        br.header.txn.CopyFrom(txn)
        return br

    def _try_1pc(
        self, ba: api_pb2.BatchRequest, reqs: list[api_pb2.RequestUnion], txn: data_pb2.Transaction
    ) -> api_pb2.BatchResponse | None:
        if not reqs or kb.kind(reqs[-1]) != "end_txn" or not reqs[-1].end_txn.commit:
            return None
        et = reqs[-1].end_txn
        writes = {kb.inner(r).header.key for r in reqs[:-1] if kb.kind(r) in WRITES}
        eligible = (
            not et.in_flight_writes
            and txn.meta.epoch == 0
            and bool(writes)
            and all(s.key in writes for s in et.lock_spans)
            and txn.meta.id not in self.records
            and _ts(txn.meta.write_timestamp) == _ts(txn.read_timestamp)
        )
        if not eligible:
            if et.require_1pc and self.honour_require_1pc:
                raise errors.TransactionStatusError(
                    "could not commit in one phase as requested", reason="require_1pc", txn=txn
                )
            return None
        saved = (dict(self.intents), {k: list(v) for k, v in self.versions.items()})
        br = api_pb2.BatchResponse()
        for r in reqs[:-1]:
            try:
                br.responses.append(self._eval(r, txn, ba.header))
            except errors.CrdbError:
                self.intents, self.versions = saved
                raise
        rec = data_pb2.Transaction()
        rec.CopyFrom(txn)
        rec.status = COMMITTED
        self._resolve(rec, [(k, b"") for k in writes])
        br.responses.add().end_txn.one_phase_commit = True
        txn.status = COMMITTED
        br.header.txn.CopyFrom(txn)
        return br

    def _eval(
        self, r: api_pb2.RequestUnion, txn: data_pb2.Transaction, header: api_pb2.BatchHeader
    ) -> api_pb2.ResponseUnion:
        k = kb.kind(r)
        req = kb.inner(r)
        out = kb.empty_response_for(r)
        resp = kb.inner(out)
        key, end = req.header.key, req.header.end_key
        seq = req.header.sequence
        if k == "get":
            v = self._read(key, txn, seq)
            if v is not None:
                resp.value.raw_bytes = v
        elif k in ("scan", "reverse_scan"):
            ks = sorted(set(self.versions) | set(self.intents))
            rows = []
            for kk in ks:
                if key <= kk < end:
                    v = self._read(kk, txn, seq, record=False)
                    if v is not None:
                        rows.append((kk, v))
            self.span_reads.append((key, end, _ts(txn.read_timestamp), txn.meta.id))
            if k == "reverse_scan":
                rows.reverse()
            for kk, v in rows:
                resp.rows.add(key=kk, value=data_pb2.Value(raw_bytes=v))
        elif k == "put":
            self._write(key, req.value, txn, seq)
        elif k == "conditional_put":
            cur = self._current(key, txn, seq)
            exp = req.exp_value if req.exp_exists else None
            if cur != exp:
                raise errors.ConditionFailedError(cur)
            self._write(key, req.value, txn, seq)
        elif k == "increment":
            cur = self._current(key, txn, seq)
            new = int(cur or b"0") + req.increment
            self._write(key, str(new).encode(), txn, seq)
            resp.new_value = new
        elif k == "delete":
            resp.found_key = self._current(key, txn, seq) is not None
            self._write(key, None, txn, seq)
        elif k == "delete_range":
            for kk in sorted(set(self.versions) | set(self.intents)):
                if key <= kk < end and self._current(kk, txn, seq) is not None:
                    self._write(kk, None, txn, seq)
                    resp.keys.append(kk)
        elif k == "query_intent":
            it = self.intents.get(key)
            q = req.txn
            found = (
                it is not None
                and it.txn_id == q.id
                and it.epoch == q.epoch
                and it.seq >= q.sequence
                and it.ts <= _ts(q.write_timestamp)
            )
            resp.found_intent = found
            if not found:
                self.bump_tscache(key, _ts(q.write_timestamp))
                if req.error_if_missing:
                    raise errors.IntentMissingError(key)
        elif k == "heartbeat_txn":
            rec = self.records.get(txn.meta.id)
            if rec is None:
                rec = data_pb2.Transaction()
                rec.CopyFrom(txn)
                rec.status = PENDING
                self.records[txn.meta.id] = rec
            elif rec.status == ABORTED:
                raise errors.TransactionAbortedError("ABORTED_RECORD_FOUND", txn=rec)
            rec.last_heartbeat.CopyFrom(req.now)
            resp.txn.CopyFrom(rec)
        elif k == "end_txn":
            self._end_txn(req, txn)
        elif k in ("refresh", "refresh_range"):
            self._refresh(key, end or key + b"\x00", _ts(req.refresh_from), txn)
        else:
            raise errors.InvalidArgumentError(f"mock server: unsupported {k}")
        return out

    # ---- MVCC ------------------------------------------------------------------------------

    def _conflict(self, key: bytes, txn: data_pb2.Transaction) -> Intent | None:
        """The intent at `key`; another txn's intent whose record is final
        is resolved first, a STAGING one is recovered (what a pusher does)."""
        it = self.intents.get(key)
        if it is None or it.txn_id == txn.meta.id:
            return it
        rec = self.records.get(it.txn_id)
        if rec is not None and rec.status == STAGING:
            self.recover(it.txn_id)
        elif rec is not None and rec.status in (COMMITTED, ABORTED):
            self._resolve(rec, [(key, b"")])
        return self.intents.get(key)

    def _read(
        self, key: bytes, txn: data_pb2.Transaction, seq: int, record: bool = True
    ) -> bytes | None:
        rts = _ts(txn.read_timestamp) if txn.meta.id else Timestamp(2**62)
        it = self._conflict(key, txn)
        if it is not None:
            if it.txn_id == txn.meta.id and it.epoch == txn.meta.epoch:
                ok, v = it.value_at(seq)
                if ok:
                    return v
            elif it.txn_id != txn.meta.id and it.ts <= rts:
                raise errors.WriteIntentError([data_pb2.Intent(key=key)])
        if record:
            self.bump_tscache(key, rts, txn.meta.id or None)
        limit = _ts(txn.global_uncertainty_limit)
        for ts, v in reversed(self.versions.get(key, [])):
            if ts <= rts:
                return v
            if ts <= limit:
                raise errors.ReadWithinUncertaintyIntervalError(rts, ts, limit, key)
        return None

    def _current(self, key: bytes, txn: data_pb2.Transaction, seq: int) -> bytes | None:
        it = self.intents.get(key)
        if it is not None and it.txn_id == txn.meta.id and it.epoch == txn.meta.epoch:
            ok, v = it.value_at(seq)
            if ok:
                return v
        vs = self.versions.get(key)
        return vs[-1][1] if vs else None

    def _write(self, key: bytes, value: bytes | None, txn: data_pb2.Transaction, seq: int) -> None:
        if not txn.meta.id:  # non-transactional: a committed value above what is there
            vs = self.versions.get(key)
            self.write_committed(key, value, vs[-1][0].next() if vs else Timestamp(1))
            return
        wts = _ts(txn.meta.write_timestamp)
        it = self._conflict(key, txn)
        if it is not None and it.txn_id != txn.meta.id:
            raise errors.WriteIntentError([data_pb2.Intent(key=key)])
        vs = self.versions.get(key)
        if vs and vs[-1][0] >= wts:
            raise errors.WriteTooOldError(wts, vs[-1][0].next(), key)
        if it is not None and it.epoch == txn.meta.epoch:
            if seq in it.history:  # replay
                return
            it.history[seq] = value
            it.seq = max(it.seq, seq)
            it.ts = it.ts.forward(wts)
            return
        self.intents[key] = Intent(txn.meta.id, txn.meta.epoch, seq, wts, {seq: value})

    # ---- records ----------------------------------------------------------------------------

    def _end_txn(self, req: api_pb2.EndTxnRequest, txn: data_pb2.Transaction) -> None:
        rec = self.records.get(txn.meta.id)
        wts = _ts(txn.meta.write_timestamp)
        if rec is not None:
            if rec.status == ABORTED:
                if req.commit:
                    raise errors.TransactionAbortedError("ABORTED_RECORD_FOUND", txn=rec)
                txn.status = ABORTED
                spans = [(sp.key, sp.end_key) for sp in req.lock_spans]
                self._resolve(rec, spans)  # a rollback cleans up what it names
                return
            if rec.status == COMMITTED:
                raise errors.TransactionStatusError("already committed", txn=rec)
            if req.commit and _ts(rec.meta.write_timestamp) > wts:
                raise errors.TransactionRetryError("RETRY_SERIALIZABLE", txn=rec)
        if req.commit and wts > _ts(txn.read_timestamp):
            raise errors.TransactionRetryError("RETRY_SERIALIZABLE", txn=txn)
        new = data_pb2.Transaction()
        new.CopyFrom(txn)
        new.lock_spans.extend(req.lock_spans)
        new.in_flight_writes.extend(req.in_flight_writes)
        if req.commit and req.in_flight_writes:
            new.status = STAGING
            self.records[txn.meta.id] = new
            txn.status = STAGING
            return
        new.status = COMMITTED if req.commit else ABORTED
        self.records[txn.meta.id] = new
        self._resolve_all(new)
        txn.status = new.status

    def _resolve_all(self, rec: data_pb2.Transaction) -> None:
        spans = [(s.key, s.end_key) for s in rec.lock_spans]
        spans += [(w.key, b"") for w in rec.in_flight_writes]
        if not spans:  # e.g. an abort by a pusher: resolve whatever it left
            spans = [(k, b"") for k, it in self.intents.items() if it.txn_id == rec.meta.id]
        self._resolve(rec, spans)

    def _resolve(self, rec: data_pb2.Transaction, spans: list[tuple[bytes, bytes]]) -> None:
        for key in list(self.intents):
            it = self.intents[key]
            if it.txn_id != rec.meta.id:
                continue
            if not any(k == key if not e else k <= key < e for k, e in spans):
                continue
            del self.intents[key]
            if rec.status == COMMITTED and it.epoch == rec.meta.epoch:
                self.write_committed(key, it.value, _ts(rec.meta.write_timestamp))

    def _refresh(self, key: bytes, end: bytes, frm: Timestamp, txn: data_pb2.Transaction) -> None:
        to = _ts(txn.read_timestamp).forward(_ts(txn.meta.write_timestamp))
        for kk, vs in self.versions.items():
            if key <= kk < end:
                for ts, _ in vs:
                    if frm < ts <= to:
                        raise errors.RefreshFailedError(kk, ts, txn=txn)
        for kk, it in self.intents.items():
            if key <= kk < end and it.txn_id != txn.meta.id and it.ts <= to:
                raise errors.RefreshFailedError(kk, it.ts, intent=True, txn=txn)

    # ---- recovery (what a pusher does with an abandoned STAGING record) ----------------------

    def recover(self, txn_id: bytes) -> int:
        """Decide a STAGING record: COMMITTED iff every in-flight write is
        there at or below the staging timestamp; otherwise prevent the
        missing one and abort. Returns the final status."""
        rec = self.records.get(txn_id)
        if rec is None:
            return ABORTED
        if rec.status != STAGING:
            return rec.status
        sts = _ts(rec.meta.write_timestamp)
        ok = True
        for w in rec.in_flight_writes:
            it = self.intents.get(w.key)
            if not (
                it is not None
                and it.txn_id == txn_id
                and it.epoch == rec.meta.epoch
                and it.seq >= w.sequence
                and it.ts <= sts
            ):
                self.bump_tscache(w.key, sts)
                ok = False
        rec.status = COMMITTED if ok else ABORTED
        self._resolve_all(rec)
        return rec.status
