"""The KV API: `DB` (non-transactional operations and transactions over a
cluster), `Txn`, the blocking facade `SyncDB` / `SyncTxn`, and the
transaction settings and metrics.

`await db.run_txn(fn)` runs `fn(txn)` in a transaction, retrying retryable
errors; `run_txn(db, fn)` is the same as a function.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from crdb_py.kvclient.db import DB, Batch, KVOps
from crdb_py.kvclient.txn.metric_recorder import TxnMetrics
from crdb_py.kvclient.txn.rounds import CommitPath, TxnTrace
from crdb_py.kvclient.txn.settings import (
    PARALLEL_COMMITS_ENABLED,
    WRITE_PIPELINING_ENABLED,
    TxnConfig,
    TxnSettings,
)
from crdb_py.kvclient.txn.sync import LoopThread, SyncDB, SyncTxn
from crdb_py.kvclient.txn.txn import Txn

T = TypeVar("T")


async def run_txn(db: DB, fn: Callable[[Txn], Awaitable[T]], *, max_retries: int = 50) -> T:
    """`db.run_txn(fn, max_retries=...)`."""
    return await db.run_txn(fn, max_retries=max_retries)


__all__ = [
    "DB",
    "PARALLEL_COMMITS_ENABLED",
    "WRITE_PIPELINING_ENABLED",
    "Batch",
    "CommitPath",
    "KVOps",
    "LoopThread",
    "SyncDB",
    "SyncTxn",
    "Txn",
    "TxnConfig",
    "TxnMetrics",
    "TxnSettings",
    "TxnTrace",
    "run_txn",
]
