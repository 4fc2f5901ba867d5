"""The heartbeater: keeps the txn record alive and notices an abort.

A txn with writes has (or will have) a record on its anchor range; pushers
treat a record without a heartbeat for 5 s (`TXN_LIVENESS_THRESHOLD`) as
abandoned and may abort it. The heartbeater:

* picks the **anchor key** (the first key the txn writes) and fills the
  EndTxn's key with it;
* starts a loop with the first batch that writes: every
  `config.heartbeat_interval` (1 s) a HeartbeatTxn goes to the anchor, out
  of band (straight to the raw sender: it must not wait behind a user batch
  nor count as a round). The first heartbeat comes one interval late, so a
  txn that commits in one phase never creates a record;
* stops the loop when the EndTxn is sent (commit or rollback);
* when a heartbeat finds the record ABORTED (a pusher won), remembers it:
  the next user batch fails with `TransactionAbortedError` at once, and the
  txn's intents are cleaned up asynchronously (EndTxn(abort), best effort).

It sits at the top of the stack (under the gatekeeper) so that it sees the
user's batches as sent — the first write decides the anchor before anything
below looks at the txn.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from crdb_py.kvclient import batch as kb
from crdb_py.kvclient.txn.interceptor import (
    POINT_WRITES,
    RANGED_WRITES,
    BatchRequest,
    BatchResponse,
    Interceptor,
    TxnState,
    end_txn,
    log,
    set_ts,
    txn_copy,
)
from crdb_py.pb import api_pb2, data_pb2
from crdb_py.util.errors import CrdbError, TransactionAbortedError

Sleep = Callable[[float], Awaitable[None]]


class Heartbeater(Interceptor):
    name = "heartbeater"

    def __init__(
        self,
        state: TxnState,
        *,
        sleep: Sleep = asyncio.sleep,
        on_abort: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(state)
        self._sleep = sleep
        self._on_abort = on_abort
        self._task: asyncio.Task[None] | None = None
        self.aborted: TransactionAbortedError | None = None
        self.heartbeats = 0

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done() and not self._task.cancelling()

    async def send(self, ba: BatchRequest) -> BatchResponse:
        if self.aborted is not None:
            raise TransactionAbortedError(self.aborted.reason or "ABORTED_RECORD_FOUND",
                                          txn=self.aborted.txn)
        meta = self.state.txn.meta
        if not meta.key:
            for r in ba.requests:
                if kb.kind(r) in POINT_WRITES or kb.kind(r) in RANGED_WRITES:
                    meta.key = kb.inner(r).header.key
                    ba.header.txn.meta.key = meta.key
                    break
        et = end_txn(ba)
        if et is not None:
            if not et.header.key:
                et.header.key = meta.key
            self.stop()
        elif meta.key and self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._loop(), name="txn-heartbeat"
            )
        return await self.next(ba)

    def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()

    def closed(self) -> None:
        self.stop()

    async def heartbeat_once(self) -> bool:
        """Send one heartbeat; False when the txn turned out aborted."""
        txn = txn_copy(self.state.txn)
        del txn.lock_spans[:]
        del txn.in_flight_writes[:]
        ba = api_pb2.BatchRequest()
        ba.header.txn.CopyFrom(txn)
        ru = ba.requests.add()
        ru.heartbeat_txn.header.key = txn.meta.key
        set_ts(ru.heartbeat_txn.now, self.state.clock.now())
        self.heartbeats += 1
        try:
            br = await self.state.raw.send(ba)
        except TransactionAbortedError as e:
            self._found_aborted(e)
            return False
        except CrdbError as e:  # transient: the next beat may get through
            log.debug("heartbeat of txn %s failed: %s", txn.meta.id.hex(), e)
            return True
        rec = br.responses[0].heartbeat_txn.txn
        if rec.status == data_pb2.ABORTED:
            self._found_aborted(TransactionAbortedError("ABORTED_RECORD_FOUND", txn=rec))
            return False
        return True

    def _found_aborted(self, e: TransactionAbortedError) -> None:
        self.aborted = e
        if self._on_abort is not None:
            self._on_abort()

    async def _loop(self) -> None:
        while True:
            await self._sleep(self.state.config.heartbeat_interval)
            if not await self.heartbeat_once():
                return
