"""crdb_py.kvclient: the client side of KV.

`DistSender` routes batches to ranges (range cache, meta lookups, retries);
`DB` is the non-transactional KV API over any `Sender`. The transaction
coordinator (M5) lives in `crdb_py.kvclient.txn`. See docs/design/kvclient.md.
"""

from __future__ import annotations

from crdb_py.kvclient.db import DB, Batch, KVOps, Result
from crdb_py.kvclient.dist_sender import (
    DistSender,
    FirstRangeProvider,
    NodeSender,
    RetryOptions,
    StaticFirstRange,
)
from crdb_py.kvclient.range_cache import RangeCache
from crdb_py.kvclient.sender import Sender, SenderFunc

__all__ = [
    "DB",
    "Batch",
    "DistSender",
    "FirstRangeProvider",
    "KVOps",
    "NodeSender",
    "RangeCache",
    "Result",
    "RetryOptions",
    "Sender",
    "SenderFunc",
    "StaticFirstRange",
]
