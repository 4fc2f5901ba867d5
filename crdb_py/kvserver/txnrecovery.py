"""Transaction recovery: decide a STAGING transaction whose coordinator went quiet.

Why it exists
-------------
With parallel commits a coordinator writes its record STAGING — listing the
*in-flight writes* it has not proven yet — in the same round as those last
writes, and tells the client "committed" as soon as all of them succeed. At
that moment the txn is **implicitly committed**: STAGING record + every
in-flight write present as an intent at the txn's epoch with timestamp <=
the record's write timestamp. Flipping the record to COMMITTED is
bookkeeping that happens afterwards, asynchronously.

If the coordinator dies in between, or is just slow, another transaction
that meets one of its intents cannot tell whether it is committed: pushing
it would be wrong (if it is implicitly committed, a client has already been
told so), so the push fails with `IndeterminateCommitError` and the pusher
comes here.

The protocol (CockroachDB's ``txnrecovery/manager.go``)
----------------------------------------------------------
1. **Probe.** For each in-flight write send QueryIntent(key, txn at the
   staging epoch and write timestamp, the write's sequence), in batches of
   ``batch_size``, each batch led by a QueryTxn of the record. A QueryIntent
   that finds the write missing also **prevents** it: it bumps the timestamp
   cache of the key at the staging timestamp, so the write can never land
   at or below it later, and the txn can never become implicitly committed
   at this attempt. Stop at the first batch with a missing write.
2. **Short-circuit.** If a QueryTxn shows the record has moved on — final
   already, PENDING again, or re-staged at a newer epoch or timestamp — the
   staging attempt we hold is no longer the question: return the record as
   it is (a final one was decided by someone else; a live one is pushed
   normally by the caller, which retries its push).
3. **Decide.** RecoverTxn(implicitly_committed = no write was missing) to
   the record's range: COMMITTED if every write was found (it *was*
   committed: this only makes it explicit), ABORTED if one was prevented.
   The command re-checks that the record is still the same STAGING attempt
   under its latch, so a coordinator racing us is never contradicted; a
   record that got final in between is returned unchanged.
4. **Clean up.** Hand all the txn's intents (lock spans and in-flight
   writes) with the final status to the intent resolver. (The RecoverTxn
   command also returns them as `Result.resolve_intents`; resolving twice is
   harmless, and doing it here does not depend on the replica's wiring.)

A record that does not exist is recovered as ABORTED (RecoverTxn writes an
ABORTED record, so the txn can never write one later).

Invariants this keeps (docs/design/transactions.md, MODEL-CHECKS.md
"Parallel commits"): AckImpliesCommit — recovery only aborts after
*preventing* a write, so an implicitly committed txn is never aborted; a
final status never changes (the command returns final records untouched);
implicit commit leads to explicit commit (the first pusher to meet the
txn's intents after its coordinator died makes it COMMITTED).

Concurrency
-----------
Recoveries of one txn id inside one manager are deduplicated: a second
caller waits for the running recovery and gets its answer. Recoveries in
different managers (nodes) may run concurrently; they agree because the
record decides (RecoverTxn is evaluated under the record's latch, and
prevention is monotonic: once a write is prevented nobody can find it).

Rejected: probing writes one by one (one round trip per write), and
skipping the QueryTxn (a recovery racing a coordinator that already
committed would issue needless preventions and RecoverTxns).
"""

from __future__ import annotations

import asyncio
import logging

from crdb_py.kvserver.batcheval import txn_record as tr
from crdb_py.kvserver.intentresolver import IntentResolver, KVSender, kv_send, txn_updates
from crdb_py.pb import api_pb2, data_pb2
from crdb_py.util.errors import InvalidArgumentError
from crdb_py.util.hlc import ts_from_proto

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 128


def _copy(txn: data_pb2.Transaction) -> data_pb2.Transaction:
    out = data_pb2.Transaction()
    out.CopyFrom(txn)
    return out


def record_changed(staging: data_pb2.Transaction, cur: data_pb2.Transaction) -> bool:
    """Has the record moved on from the staging attempt we are recovering?"""
    if cur.status != tr.STAGING:
        return True
    if cur.meta.epoch != staging.meta.epoch:
        return cur.meta.epoch > staging.meta.epoch
    return ts_from_proto(cur.meta.write_timestamp) > ts_from_proto(staging.meta.write_timestamp)


def probe_batch(
    staging: data_pb2.Transaction, writes: list[data_pb2.SequencedWrite]
) -> api_pb2.BatchRequest:
    """QueryTxn of the record, then one QueryIntent per write."""
    ba = api_pb2.BatchRequest()
    qt = ba.requests.add().query_txn
    qt.header.key = staging.meta.key
    qt.txn.CopyFrom(staging.meta)
    for w in writes:
        qi = ba.requests.add().query_intent
        qi.header.key = w.key
        qi.txn.CopyFrom(staging.meta)
        qi.txn.sequence = w.sequence
        qi.error_if_missing = False
    return ba


class TxnRecoveryManager:
    """Recovers STAGING transactions. One per store."""

    def __init__(
        self,
        kv: KVSender,
        intent_resolver: IntentResolver | None = None,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        self.kv = kv
        self.intent_resolver = intent_resolver
        self.batch_size = batch_size
        self._inflight: dict[bytes, asyncio.Future[data_pb2.Transaction]] = {}
        # Counters, for tests and status.
        self.attempts = 0
        self.committed = 0
        self.aborted = 0
        self.moot = 0

    async def recover(self, staging: data_pb2.Transaction) -> data_pb2.Transaction:
        """Decide STAGING txn `staging` (the record as a push found it);
        return its record afterwards: COMMITTED or ABORTED, or — if the
        record had moved on — the record as it is now."""
        if tr.is_final(staging.status):
            return _copy(staging)
        if staging.status != tr.STAGING:
            raise InvalidArgumentError(
                f"recover needs a STAGING txn; {staging.meta.id.hex()[:8]} is "
                f"{tr.status_name(staging.status)}"
            )
        tid = staging.meta.id
        fut = self._inflight.get(tid)
        if fut is None or fut.done():  # (a done one is forgotten a loop turn later)
            fut = asyncio.ensure_future(self._recover(_copy(staging)))
            self._inflight[tid] = fut
            fut.add_done_callback(lambda f, tid=tid: self._forget(tid, f))
        return _copy(await asyncio.shield(fut))

    def _forget(self, tid: bytes, fut: asyncio.Future[data_pb2.Transaction]) -> None:
        if self._inflight.get(tid) is fut:
            del self._inflight[tid]
        if not fut.cancelled():
            fut.exception()  # retrieved by the awaiters; silence "never retrieved"

    async def _recover(self, staging: data_pb2.Transaction) -> data_pb2.Transaction:
        self.attempts += 1
        tid = staging.meta.id.hex()[:8]
        writes = list(staging.in_flight_writes)
        prevented = False
        # Always probe at least once: the QueryTxn tells whether the record
        # still is this staging attempt (or exists at all).
        for i in range(0, max(len(writes), 1), self.batch_size):
            br = await kv_send(self.kv, probe_batch(staging, writes[i : i + self.batch_size]))
            qt = br.responses[0].query_txn
            if not qt.txn_record_exists:
                log.info("recovering txn %s: no record; aborting it", tid)
                prevented = True  # nothing to prevent: without a record it never committed
                break
            if record_changed(staging, qt.queried_txn):
                self.moot += 1
                log.debug(
                    "recovering txn %s: record moved on (%s)",
                    tid,
                    tr.status_name(qt.queried_txn.status),
                )
                return _copy(qt.queried_txn)
            if any(not r.query_intent.found_intent for r in br.responses[1:]):
                prevented = True
                break
        return await self._decide(staging, implicitly_committed=not prevented)

    async def _decide(
        self, staging: data_pb2.Transaction, *, implicitly_committed: bool
    ) -> data_pb2.Transaction:
        ba = api_pb2.BatchRequest()
        rt = ba.requests.add().recover_txn
        rt.header.key = staging.meta.key
        rt.txn.CopyFrom(staging.meta)
        rt.implicitly_committed = implicitly_committed
        br = await kv_send(self.kv, ba)
        rec = _copy(br.responses[0].recover_txn.recovered_txn)
        if rec.status == tr.COMMITTED:
            self.committed += 1
        elif rec.status == tr.ABORTED:
            self.aborted += 1
        else:
            self.moot += 1
        log.info(
            "recovered txn %s: %s (all in-flight writes found: %s)",
            staging.meta.id.hex()[:8],
            tr.status_name(rec.status),
            implicitly_committed,
        )
        if tr.is_final(rec.status) and self.intent_resolver is not None:
            done = _copy(rec)
            if not done.lock_spans and not done.in_flight_writes:
                # The record may have been written without its spans (e.g.
                # ABORTED for a missing record): use what the staging copy knew.
                done.lock_spans.extend(staging.lock_spans)
                done.in_flight_writes.extend(staging.in_flight_writes)
            self.intent_resolver.enqueue(txn_updates(done))
        return rec


__all__ = ["TxnRecoveryManager", "probe_batch", "record_changed"]
