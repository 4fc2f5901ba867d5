"""Concurrency control on a replica: latches, the lock table with its wait
queues, the txn wait queue, pushes and deadlock detection.

Entry point: `ConcurrencyManager` (one per replica). Design:
docs/design/concurrency.md ("Lock table") and docs/design/transactions.md.
"""

from __future__ import annotations

from crdb_py.kvserver.concurrency.lock_table import LockTable, LockTableGuard, WaitState
from crdb_py.kvserver.concurrency.lock_table_waiter import LockTableWaiter
from crdb_py.kvserver.concurrency.manager import (
    ConcurrencyManager,
    Guard,
    Request,
    TxnPusher,
    request_from_batch,
)
from crdb_py.kvserver.concurrency.txn_wait_queue import (
    TXN_LIVENESS_THRESHOLD_NANOS,
    PushWaitResult,
    TxnWaitQueue,
)

__all__ = [
    "TXN_LIVENESS_THRESHOLD_NANOS",
    "ConcurrencyManager",
    "Guard",
    "LockTable",
    "LockTableGuard",
    "LockTableWaiter",
    "PushWaitResult",
    "Request",
    "TxnPusher",
    "TxnWaitQueue",
    "WaitState",
    "request_from_batch",
]
