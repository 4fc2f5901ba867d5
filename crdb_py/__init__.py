"""crdb-py: a distributed, transactional, SQL-speaking key-value database.

Built the way CockroachDB is built: ranges replicated by their own Raft
groups, MVCC with write intents, a transaction coordinator that pipelines
writes and commits with parallel commits, and a SQL front end.
"""

from __future__ import annotations

__version__ = "0.1.0"


def __getattr__(name: str) -> object:  # lazy re-exports: `import crdb_py` stays cheap
    if name == "LocalCluster":
        from crdb_py.localcluster import LocalCluster

        return LocalCluster
    if name in ("connect", "run_transaction"):
        from crdb_py import dbapi

        return getattr(dbapi, name)
    raise AttributeError(f"module 'crdb_py' has no attribute {name!r}")
