"""The pipeliner: write pipelining and the txn's lock footprint.

Definitions
-----------
*Write pipelining.* A batch made only of transactional point writes (Put,
CPut, Increment, Delete — not DeleteRange, whose keys are unknown until it
runs) is sent with ``header.async_consensus``: the leaseholder evaluates it,
proposes the write batch to Raft and answers at once, without waiting for
the round of consensus. The write is then an **in-flight write**
``(key, sequence)``: it will very likely land, but nobody has seen it
replicated. The txn goes on while its writes replicate in the background,
so N writes cost no round on the critical path instead of N.

*Proving.* Before anything later relies on an in-flight write, the pipeliner
prepends a ``QueryIntent(key, seq, error_if_missing)`` to the batch that
needs it. The leaseholder evaluates it behind the write's latch, so it waits
for the write's own consensus round, no more (≤ 1 round). Found → the write
moves into the **lock footprint** (spans whose intents the EndTxn must
resolve). Missing → the server also *prevents* the write from ever landing
at or below the txn's timestamp, and raises `IntentMissingError`; the
pipeliner turns that into a retryable
``TransactionRetryError("RETRY_ASYNC_WRITE_FAILURE")`` — the txn restarts.

Which requests need a proof: any request overlapping an in-flight key (a
read must see the write; a write to the key must order after it), and a
committing EndTxn, which needs *all* of them. For a parallel commit the
proofs run in the same round as the STAGING EndTxn; for a 2PC commit the
committer sends them in a round of their own before the EndTxn.

Invariants
----------
* Every key the txn may have written is in the in-flight set or in the
  footprint, so the EndTxn (commit or abort) names every intent. A batch
  that failed adds all its writes to the footprint: they may have landed.
* An in-flight write is never dropped without proof except by moving it
  to the footprint (epoch restart, failed batch).
* The in-flight set holds one entry per key, with the highest sequence: a
  new write to an in-flight key first proves the old one.

Budget: when the in-flight keys would exceed `config.max_inflight_bytes`
(256 KiB), a batch is written synchronously instead. The footprint is
condensed (neighbouring spans merged into covering spans) beyond
`config.max_lock_spans`: resolution may then scan more keys, never fewer.

EndTxn. The pipeliner fills the EndTxn's ``lock_spans`` (the footprint plus
the batch's ranged writes) and ``in_flight_writes`` (the in-flight set plus
the batch's point writes); the committer, below, decides what becomes of
them. Rejected alternative: proving every pipelined write right after it
was sent — that brings back the round per write that pipelining removes.
"""

from __future__ import annotations

from sortedcontainers import SortedDict

from crdb_py.kvclient import batch as kb
from crdb_py.kvclient.txn.interceptor import (
    POINT_WRITES,
    RANGED_WRITES,
    BatchRequest,
    BatchResponse,
    Interceptor,
    TxnState,
    copy_batch,
    end_txn,
    span_end,
)
from crdb_py.pb import data_pb2
from crdb_py.util.errors import CrdbError, IntentMissingError, TransactionRetryError

RETRY_ASYNC_WRITE_FAILURE = "RETRY_ASYNC_WRITE_FAILURE"


class LockFootprint:
    """Spans whose intents the txn must resolve, condensed past a limit.

    Spans are (key, end) with ``end == b""`` for a single key.
    """

    def __init__(self, max_spans: int) -> None:
        self.max_spans = max(1, max_spans)
        self._spans: list[tuple[bytes, bytes]] = []
        self.condensed = False

    def __len__(self) -> int:
        return len(self._spans)

    def add(self, key: bytes, end: bytes = b"") -> None:
        self._spans.append((key, end))
        if len(self._spans) > 2 * self.max_spans:
            self.condense()

    def spans(self) -> list[tuple[bytes, bytes]]:
        self.condense()
        return list(self._spans)

    def covers(self, key: bytes) -> bool:
        return any(k == key if not e else k <= key < e for k, e in self._spans)

    def clear(self) -> None:
        self._spans.clear()

    def condense(self) -> None:
        """Merge overlapping spans; past `max_spans`, merge neighbours."""
        if not self._spans:
            return
        merged: list[tuple[bytes, bytes]] = []
        for k, e in sorted(set(self._spans)):
            if merged:
                pk, pe = merged[-1]
                p_end = span_end(pk, pe)
                if k < p_end:  # overlaps (or repeats) the previous span
                    merged[-1] = (pk, max(p_end, span_end(k, e)))
                    continue
            merged.append((k, e))
        if len(merged) > self.max_spans:
            self.condensed = True
            per = -(-len(merged) // self.max_spans)
            out = []
            for i in range(0, len(merged), per):
                group = merged[i : i + per]
                out.append((group[0][0], max(span_end(k, e) for k, e in group)))
            merged = out
        self._spans = merged


class Pipeliner(Interceptor):
    name = "pipeliner"

    def __init__(self, state: TxnState) -> None:
        super().__init__(state)
        self.in_flight: SortedDict = SortedDict()  # key -> sequence
        self.in_flight_bytes = 0
        self.footprint = LockFootprint(state.config.max_lock_spans)
        self.proofs_sent = 0
        self.async_batches = 0

    # ---- the send path ---------------------------------------------------------

    async def send(self, ba: BatchRequest) -> BatchResponse:
        et = end_txn(ba)
        if et is not None:
            self._attach_locks(ba, et)
        ba.header.async_consensus = self._can_pipeline(ba)
        proofs = self._proofs_for(ba, prove_all=et is not None and et.commit)
        sent = ba
        if proofs and kb.has_limits(ba):
            # A limited batch may hold only gets/scans/delete-ranges (the
            # DistSender walks it range by range): prove in a batch of its own.
            await self._prove_separately(ba, proofs)
            proofs = []
        if proofs:
            sent = copy_batch(ba)
            del sent.requests[:]
            for key, seq in proofs:
                ru = sent.requests.add()
                qi = ru.query_intent
                qi.header.key = key
                qi.header.sequence = seq
                qi.txn.CopyFrom(ba.header.txn.meta)
                qi.txn.sequence = seq
                qi.error_if_missing = True
            sent.requests.extend(ba.requests)
            self.proofs_sent += len(proofs)
        n = len(proofs)
        try:
            br = await self.next(sent)
        except IntentMissingError as e:
            self._failed(ba)
            raise TransactionRetryError(
                RETRY_ASYNC_WRITE_FAILURE,
                f"TransactionRetryError: retry txn ({RETRY_ASYNC_WRITE_FAILURE}): a pipelined "
                f"write did not land ({e}): restart transaction",
                txn=ba.header.txn,
            ) from e
        except CrdbError as e:
            self._failed(ba)
            idx = getattr(e, "index", -1)
            if isinstance(idx, int) and idx >= 0:
                e.index = idx - n if idx >= n else -1  # type: ignore[attr-defined]
            raise
        for i, (key, seq) in enumerate(proofs):
            if not br.responses[i].query_intent.found_intent:
                self._failed(ba)
                raise TransactionRetryError(RETRY_ASYNC_WRITE_FAILURE, txn=ba.header.txn)
            self._proven(key, seq)
        if n:
            del br.responses[:n]
        self._track(ba)
        if et is not None:
            # The EndTxn's record now names everything (or it was a rollback).
            self._clear_after_end(ba, br)
        return br

    async def _prove_separately(self, ba: BatchRequest, proofs: list[tuple[bytes, int]]) -> None:
        pb = copy_batch(ba)
        del pb.requests[:]
        pb.header.max_span_request_keys = 0
        pb.header.target_bytes = 0
        pb.header.async_consensus = False
        for key, seq in proofs:
            qi = pb.requests.add().query_intent
            qi.header.key = key
            qi.header.sequence = seq
            qi.txn.CopyFrom(ba.header.txn.meta)
            qi.txn.sequence = seq
            qi.error_if_missing = True
        self.proofs_sent += len(proofs)
        try:
            br = await self.next(pb)
        except IntentMissingError as e:
            raise TransactionRetryError(
                RETRY_ASYNC_WRITE_FAILURE,
                f"TransactionRetryError: retry txn ({RETRY_ASYNC_WRITE_FAILURE}): a pipelined "
                f"write did not land ({e}): restart transaction",
                txn=ba.header.txn,
            ) from e
        except CrdbError as e:
            e.index = -1  # type: ignore[attr-defined]
            raise
        for i, (key, seq) in enumerate(proofs):
            if not br.responses[i].query_intent.found_intent:
                raise TransactionRetryError(RETRY_ASYNC_WRITE_FAILURE, txn=ba.header.txn)
            self._proven(key, seq)

    # ---- decisions ---------------------------------------------------------------

    def _can_pipeline(self, ba: BatchRequest) -> bool:
        if not self.state.config.write_pipelining or not ba.requests:
            return False
        size = 0
        for r in ba.requests:
            if kb.kind(r) not in POINT_WRITES:
                return False
            size += len(kb.inner(r).header.key)
        if self.in_flight_bytes + size > self.state.config.max_inflight_bytes:
            return False
        return True

    def _proofs_for(self, ba: BatchRequest, *, prove_all: bool) -> list[tuple[bytes, int]]:
        if not self.in_flight:
            return []
        if prove_all:
            return list(self.in_flight.items())
        need: dict[bytes, int] = {}
        for r in ba.requests:
            k = kb.kind(r)
            if k == "end_txn":
                continue
            h = kb.inner(r).header
            if k in kb.RANGE_KINDS:
                for key in self.in_flight.irange(h.key, h.end_key, inclusive=(True, False)):
                    need[key] = self.in_flight[key]
            elif h.key in self.in_flight:
                need[h.key] = self.in_flight[h.key]
        return sorted(need.items())

    # ---- bookkeeping ----------------------------------------------------------------

    def _attach_locks(self, ba: BatchRequest, et) -> None:  # type: ignore[no-untyped-def]
        del et.lock_spans[:]
        del et.in_flight_writes[:]
        if not et.commit:
            # A rollback proves nothing: everything is just a lock to clean up.
            spans = self.footprint.spans() + [(k, b"") for k in self.in_flight]
        else:
            spans = self.footprint.spans()
        writes: dict[bytes, int] = dict(self.in_flight) if et.commit else {}
        for r in ba.requests[:-1]:
            k = kb.kind(r)
            h = kb.inner(r).header
            if k in RANGED_WRITES:
                spans.append((h.key, h.end_key))
            elif k in POINT_WRITES:
                if et.commit:
                    writes[h.key] = max(writes.get(h.key, 0), h.sequence)
                else:
                    spans.append((h.key, b""))
        for key, end in spans:
            et.lock_spans.add(key=key, end_key=end)
        for key in sorted(writes):
            et.in_flight_writes.add(key=key, sequence=writes[key])

    def _proven(self, key: bytes, seq: int) -> None:
        cur = self.in_flight.get(key)
        if cur is not None and cur <= seq:
            del self.in_flight[key]
            self.in_flight_bytes -= len(key)
        self.footprint.add(key)

    def _track(self, ba: BatchRequest) -> None:
        pipelined = ba.header.async_consensus
        if pipelined:
            self.async_batches += 1
        for r in ba.requests:
            k = kb.kind(r)
            h = kb.inner(r).header
            if k in RANGED_WRITES:
                self.footprint.add(h.key, h.end_key)
            elif k in POINT_WRITES:
                if pipelined:
                    if h.key not in self.in_flight:
                        self.in_flight_bytes += len(h.key)
                    self.in_flight[h.key] = h.sequence
                else:
                    self.footprint.add(h.key)

    def _failed(self, ba: BatchRequest) -> None:
        """A batch failed: its writes may or may not have landed."""
        for r in ba.requests:
            k = kb.kind(r)
            h = kb.inner(r).header
            if k in RANGED_WRITES:
                self.footprint.add(h.key, h.end_key)
            elif k in POINT_WRITES and h.key not in self.in_flight:
                self.footprint.add(h.key)

    def _clear_after_end(self, ba: BatchRequest, br: BatchResponse) -> None:
        if br.header.txn.status in (data_pb2.COMMITTED, data_pb2.ABORTED):
            for key in list(self.in_flight):
                self.footprint.add(key)
            self.in_flight.clear()
            self.in_flight_bytes = 0

    def all_lock_spans(self) -> list[tuple[bytes, bytes]]:
        """Footprint plus in-flight keys: what an abort must clean up."""
        return self.footprint.spans() + [(k, b"") for k in self.in_flight]

    def epoch_bumped(self) -> None:
        for key in self.in_flight:
            self.footprint.add(key)
        self.in_flight.clear()
        self.in_flight_bytes = 0
