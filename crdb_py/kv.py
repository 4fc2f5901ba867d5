"""The KV API: `DB` (non-transactional operations over a cluster).

The transactional `Txn` and the retrying `run_txn(fn)` join it with the
transaction coordinator (milestone M5).
"""

from __future__ import annotations

from crdb_py.kvclient.db import DB, KVOps

__all__ = ["DB", "KVOps"]
