"""The lock-table waiter: how a request waits on a lock, and when it pushes.

A request enqueued in the lock table (`LockTable.scan_and_enqueue` said it
must wait) has dropped its latches and waits here until its guard is no
longer enqueued — the lock was released, pushed above its read, or handed to
it as a reservation — and then re-sequences. While it waits on a lock *held*
by txn H (not merely reserved by another request):

1. it waits on its guard's future until its push is due:
   - the **head** writer of the lock's queue is told of every new holder and
     pushes after `head_push_delay` (0) if transactional — it gets the lock
     next, and pushing at once both detects an abandoned holder early and
     puts its waits-for edge into H's txn wait queue for deadlock
     detection — or after `push_delay` (50 ms) if not (liveness only: a
     non-txn request cannot be part of a cycle);
   - every other waiter (readers, writers further back) is told by the
     lock's single **stuck timer** once H has held the lock for `push_delay`
     since the waiter arrived. While the queue moves, holder changes touch
     only the head and re-arm one timer: a hot key costs O(1) wake-ups and
     pushes per holder, not one per waiter (measured: 1 wake-up per waiter
     for a queue of 1000). When it is stuck, everyone pushes, which is what
     deadlock detection needs (a cycle through any waiter must be seen);
2. if still waiting on H, it pushes H through the `TxnPusher` seam: a read
   pushes H's timestamp above its conflict timestamp (PUSH_TIMESTAMP to
   `conflict_ts.next()`), a write aborts H (PUSH_ABORT). The seam blocks (in
   H's record range's txn wait queue) until the push succeeds; meanwhile the
   guard's future is watched too, and if the lock changes hands the push is
   cancelled (CockroachDB cancels the push context the same way);
3. a successful push returns H finalized or pushed: unless the lock table
   already shows the lock gone or moved (H resolved it itself meanwhile),
   the waiter resolves the intent (`resolve_intent` with H's new status and
   timestamp) and tells the lock table, which releases the lock (or moves
   it above the reader) and wakes whoever is next. The seam resolves with
   ``poison``: if H was ABORTED, its coordinator may not know yet, and the
   range's abort span (`crdb_py.kvserver.abortspan`) must stop it from
   reading around the intent just removed.

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
        head_push_delay: float = 0.0,
    ) -> None:
        self._lt = lock_table
        self._seam = pusher
        self.push_delay = push_delay
        self.head_push_delay = head_push_delay
        self.pushes = 0  # pushes sent (metrics, tests)
        self.resolves = 0  # intents resolved after a push

    async def wait(self, g: LockTableGuard, txn: data_pb2.Transaction | None) -> None:
        """Wait until `g` is no longer enqueued, pushing held locks' txns when
        due. Exceptions from the seam (e.g. the pusher was aborted)
        propagate; the caller dequeues the guard."""
        pushed: bytes | None = None  # the holder already pushed for this lock
        while g.waiting:
            ws = g.wait_state
            assert ws is not None
            changed = g.changed()
            if ws.holder is None or ws.holder.id == pushed:
                await changed  # a reservation (an active request) or pushed already
                continue
            due = self._due(g, ws, txn)
            if due is None:
                await changed  # not the head: the lock's stuck timer will say when
                continue
            if due > 0:
                done, _ = await asyncio.wait({changed}, timeout=due)
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

    def _due(self, g: LockTableGuard, ws: WaitState, txn: data_pb2.Transaction | None) -> float | None:
        """Seconds until `g` should push the holder, or None to wait for the
        lock table's word (the stuck timer, or becoming the head)."""
        assert ws.holder is not None
        if g.push_for == ws.holder.id:
            return 0.0
        if not self._lt.is_queue_head(g):
            return None
        delay = self.head_push_delay if txn is not None else self.push_delay
        since = max(g.wait_start, self._lt.held_since(ws.key))
        return max(0.0, since + delay - asyncio.get_running_loop().time())

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
            while not task.done():
                await asyncio.wait({task, changed}, return_when=asyncio.FIRST_COMPLETED)
                if task.done():
                    break
                ws2 = g.wait_state
                if ws2 is None or ws2.holder is None or ws2.holder.id != ws.holder.id:
                    task.cancel()  # the lock changed hands: this push is moot
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                    return False
                changed = g.changed()  # same holder: keep pushing, keep watching
        except BaseException:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            raise
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
        if not self._lt.would_update(up):
            return True  # already resolved (by H itself, or another waiter)
        self.resolves += 1
        await self._seam.resolve_intent(up)
        self._lt.update_locks(up)
        return True
