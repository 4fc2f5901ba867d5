"""The store's `TxnPusher`: the concurrency manager's way out of its replica.

A lock-table waiter (or a txn wait queue chasing deadlocks) needs to reach
other ranges: push the holder of a lock on the holder's *record* range,
resolve an intent, query a txn record. `KVTxnPusher` does all three by
sending ordinary KV batches through the store's KV client (a DistSender), so
routing, retries and lease moves are handled there, and the concurrency
package stays free of I/O.

Pushing a STAGING transaction
-----------------------------
A STAGING pushee may already be implicitly committed, so PushTxn never
rewrites its record: it raises `IndeterminateCommitError` carrying the
record. `push_txn` then runs transaction recovery (`TxnRecoveryManager`),
which decides the txn — COMMITTED or ABORTED — and returns the final record
to the caller. If recovery finds the record has moved on (the coordinator is
alive and re-staged, or went back to PENDING), the push is simply sent
again, and may wait in the pushee's txn wait queue like any other.

See docs/design/transactions.md, "Intent resolution and recovery".
"""

from __future__ import annotations

import asyncio
import logging

from crdb_py.kvserver.batcheval import txn_record as tr
from crdb_py.kvserver.intentresolver import IntentResolver, KVSender, kv_send
from crdb_py.kvserver.txnrecovery import TxnRecoveryManager
from crdb_py.pb import api_pb2, data_pb2
from crdb_py.util.errors import IndeterminateCommitError, InternalError
from crdb_py.util.hlc import Timestamp, ts_to_proto

log = logging.getLogger(__name__)


def push_batch(
    pusher: data_pb2.Transaction | None,
    pushee: data_pb2.TxnMeta,
    push_type: int,
    push_to: Timestamp,
    force: bool,
) -> api_pb2.BatchRequest:
    ba = api_pb2.BatchRequest()
    p = ba.requests.add().push_txn
    p.header.key = pushee.key
    if pusher is not None:
        p.pusher_txn.CopyFrom(pusher)
    p.pushee_txn.CopyFrom(pushee)
    ts_to_proto(push_to, p.push_to)
    p.push_type = push_type  # type: ignore[assignment]
    p.force = force
    return ba


MOOT_BACKOFF = 0.005  # seconds before re-pushing after a moot recovery, doubling
MOOT_BACKOFF_MAX = 0.5


class KVTxnPusher:
    """`TxnPusher` over the KV client (see the module docstring)."""

    def __init__(
        self,
        kv: KVSender,
        intent_resolver: IntentResolver,
        recovery: TxnRecoveryManager,
    ) -> None:
        self.kv = kv
        self.intent_resolver = intent_resolver
        self.recovery = recovery
        self.pushes = 0
        self.recoveries = 0

    async def push_txn(
        self,
        pusher: data_pb2.Transaction | None,
        pushee: data_pb2.TxnMeta,
        push_type: int,
        push_to: Timestamp,
        *,
        force: bool = False,
    ) -> data_pb2.Transaction:
        """Push `pushee` on its record range; return it as it is after the
        push (final, or PENDING at or above `push_to` for PUSH_TIMESTAMP).
        Raises what the push raises (`TransactionPushError`,
        `TransactionAbortedError`, ...), except that a STAGING pushee is
        recovered instead."""
        if not pushee.key:
            raise InternalError(f"cannot push txn {pushee.id.hex()[:8]} without its anchor key")
        moot = 0
        while True:
            self.pushes += 1
            try:
                br = await kv_send(self.kv, push_batch(pusher, pushee, push_type, push_to, force))
            except IndeterminateCommitError as e:
                staging = e.staging_txn
                if staging is None or not staging.meta.id:
                    raise InternalError("IndeterminateCommitError without the staging txn") from e
                self.recoveries += 1
                rec = await self.recovery.recover(staging)
                if tr.is_final(rec.status):
                    return rec
                log.debug(
                    "push of %s: recovery moot (record %s); pushing again",
                    pushee.id.hex()[:8],
                    tr.status_name(rec.status),
                )
                # The staging record changed under the recovery (its
                # coordinator is still at work): back off before pushing
                # again, or pusher and recovery spin without end.
                moot += 1
                await asyncio.sleep(min(MOOT_BACKOFF_MAX, MOOT_BACKOFF * 2 ** min(moot, 10)))
                continue
            out = data_pb2.Transaction()
            out.CopyFrom(br.responses[0].push_txn.pushee_txn)
            return out

    async def resolve_intent(self, update: data_pb2.LockUpdate, *, poison: bool = True) -> None:
        """Resolve the intent of a txn this store pushed. Poisoned by default:
        an ABORTED pushee's coordinator may still be running and must not
        read around the removed intent (see `crdb_py.kvserver.abortspan`)."""
        await self.intent_resolver.resolve_now([update], poison=poison)

    async def query_txn(self, txn: data_pb2.TxnMeta) -> tuple[data_pb2.Transaction, list[bytes]]:
        ba = api_pb2.BatchRequest()
        q = ba.requests.add().query_txn
        q.header.key = txn.key
        q.txn.CopyFrom(txn)
        br = await kv_send(self.kv, ba)
        resp = br.responses[0].query_txn
        out = data_pb2.Transaction()
        out.CopyFrom(resp.queried_txn)
        return out, list(resp.waiting_txns)


__all__ = ["KVTxnPusher", "push_batch"]
