"""crdb_py.storage: engines, MVCC key encoding and MVCC operations.

Design notes: docs/design/storage.md.
"""

from __future__ import annotations

from crdb_py.storage.batch import OverlayBatch
from crdb_py.storage.engine import Engine, Reader, ReadWriter, WriteBatch, Writer
from crdb_py.storage.mem import MemEngine
from crdb_py.storage.mvcc import (
    GetResult,
    ScanResult,
    decode_int_value,
    encode_int_value,
    mvcc_conditional_put,
    mvcc_delete,
    mvcc_delete_range,
    mvcc_get,
    mvcc_increment,
    mvcc_put,
    mvcc_scan,
)
from crdb_py.storage.mvcc_intent import (
    mvcc_clear_range,
    mvcc_find_split_key,
    mvcc_garbage_collect,
    mvcc_get_intent,
    mvcc_resolve_write_intent,
    mvcc_resolve_write_intent_range,
    mvcc_scan_intents,
)
from crdb_py.storage.stats import MVCCStats, compute_stats


def open_engine(path: str | None = None) -> Engine:
    """A RocksEngine at `path`, or a MemEngine when `path` is None."""
    if path is None:
        return MemEngine()
    from crdb_py.storage.rocks import RocksEngine

    return RocksEngine(path)


__all__ = [
    "Engine",
    "GetResult",
    "MVCCStats",
    "MemEngine",
    "OverlayBatch",
    "ReadWriter",
    "Reader",
    "ScanResult",
    "WriteBatch",
    "Writer",
    "compute_stats",
    "decode_int_value",
    "encode_int_value",
    "mvcc_clear_range",
    "mvcc_conditional_put",
    "mvcc_delete",
    "mvcc_delete_range",
    "mvcc_find_split_key",
    "mvcc_garbage_collect",
    "mvcc_get",
    "mvcc_get_intent",
    "mvcc_increment",
    "mvcc_put",
    "mvcc_resolve_write_intent",
    "mvcc_resolve_write_intent_range",
    "mvcc_scan",
    "mvcc_scan_intents",
    "open_engine",
]
