"""The lock-table waiter: how a request waits on a lock, and when it pushes.

A request enqueued in the lock table (`LockTable.scan_and_enqueue` said it
must wait) has dropped its latches and waits here until its guard is no
longer enqueued — the lock was released, pushed above its read, or handed to
it as a reservation — and then re-sequences. While it waits on a lock *held*
by txn H (not merely reserved by another request):

1. it waits on its guard's future, for at most the push delay —
   `push_delay` (50 ms) for reads and non-transactional requests,
   `deadlock_push_delay` (0) for transactional writes, which can be part of a
   waits-for cycle and need their push to reach the txn wait queue early for
   deadlock detection to see them;
2. if still waiting on H, it pushes H through the `TxnPusher` seam: a read
   pushes H's timestamp above its conflict timestamp (PUSH_TIMESTAMP to
   `conflict_ts.next()`), a write aborts H (PUSH_ABORT). The seam blocks (in
   H's record range's txn wait queue) until the push succeeds; meanwhile the
   guard's future is watched too, and if the lock changes hands the push is
   cancelled (CockroachDB cancels the push context the same way);
3. a successful push returns H finalized or pushed: the waiter resolves
   the intent itself (`resolve_intent` with H's new status and timestamp)
   and tells the lock table, which releases the lock (or moves it above the
   reader) and wakes whoever is next.

No step polls: every wait is on a future, a timer set once per holder, or
the seam. An abandoned holder (coordinator dead, no heartbeats) is handled
by step 2: the push succeeds once H has expired (PushTxn's rule), and step 3
cleans the intent up.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from crdb_py.kvserver.concurrency.lock_table import LockTable, LockTableGuard, WaitState
from crdb_py.kvserver.spanset import SpanAccess
from crdb_py.pb import api_pb2, data_pb2
from crdb_py.util.errors import InternalError
from crdb_py.util.hlc import ts_from_proto

if TYPE_CHECKING:
    from crdb_py.kvserver.concurrency.manager import TxnPusher

FINAL = (data_pb2.COMMITTED, data_pb2.ABORTED)


class LockTableWaiter:
    def __init__(
        self,
        lock_table: LockTable,
        pusher: TxnPusher,
        *,
        push_delay: float = 0.05,
        deadlock_push_delay: float = 0.0,
    ) -> None:
        self._lt = lock_table
        self._seam = pusher
        self.push_delay = push_delay
        self.deadlock_push_delay = deadlock_push_delay
        self.pushes = 0  # pushes sent (metrics, tests)
        self.resolves = 0

    async def wait(self, g: LockTableGuard, txn: data_pb2.Transaction | None) -> None:
        """Wait until `g` is no longer enqueued, pushing held locks' txns after
        the delay. Exceptions from the seam (e.g. the pusher was aborted)
        propagate; the caller dequeues the guard."""
        pushed: bytes | None = None  # the holder already pushed for this lock
        while g.waiting:
            ws = g.wait_state
            assert ws is not None
            changed = g.changed()
            if ws.holder is None or ws.holder.id == pushed:
                await changed
                continue
            delay = self._delay(ws, txn)
            if delay > 0:
                done, _ = await asyncio.wait({changed}, timeout=delay)
                if done:
                    continue
            ws2 = g.wait_state
            if ws2 is None or ws2.holder is None or ws2.holder.id != ws.holder.id:
                continue
            await self._push(g, ws2, txn, changed)
            # Pushed and resolved (the lock is gone or above us), or it changed
            # hands mid-push. Either way this holder is not pushed again: if it
            # still holds the lock, its own resolution will wake us.
            pushed = ws.holder.id

    def _delay(self, ws: WaitState, txn: data_pb2.Transaction | None) -> float:
        if txn is not None and ws.access is SpanAccess.READ_WRITE:
            return self.deadlock_push_delay
        return self.push_delay

    async def _push(
        self,
        g: LockTableGuard,
        ws: WaitState,
        txn: data_pb2.Transaction | None,
        changed: asyncio.Future[None],
    ) -> bool:
        """Push the holder, then resolve its intent. False when the lock changed
        before the push returned (the push was cancelled)."""
        assert ws.holder is not None
        if ws.access is SpanAccess.READ_WRITE:
            push_type, push_to = api_pb2.PUSH_ABORT, ws.conflict_ts
        else:
            push_type, push_to = api_pb2.PUSH_TIMESTAMP, ws.conflict_ts.next()
        self.pushes += 1
        task = asyncio.ensure_future(self._seam.push_txn(txn, ws.holder, push_type, push_to))
        try:
            done, _ = await asyncio.wait({task, changed}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            raise
        if task not in done:
            ws2 = g.wait_state
            if ws2 is None or ws2.holder is None or ws2.holder.id != ws.holder.id:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                return False
            pushee = await task  # still the same holder: keep pushing it
        else:
            pushee = task.result()
        if pushee.status not in FINAL and push_type == api_pb2.PUSH_TIMESTAMP:
            if ts_from_proto(pushee.meta.write_timestamp) < push_to:
                raise InternalError(
                    f"push of {pushee.meta.id.hex()} returned it below {push_to}"
                )
        elif pushee.status not in FINAL:
            raise InternalError(f"PUSH_ABORT of {pushee.meta.id.hex()} returned it PENDING")
        up = data_pb2.LockUpdate(status=pushee.status)
        up.span.key = ws.key
        up.txn.CopyFrom(pushee.meta)
        up.ignored_seqnums.extend(pushee.ignored_seqnums)
        self.resolves += 1
        await self._seam.resolve_intent(up)
        self._lt.update_locks(up)
        return True
