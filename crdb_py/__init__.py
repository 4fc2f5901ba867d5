"""crdb-py: a distributed, transactional, SQL-speaking key-value database.

Built the way CockroachDB is built: ranges replicated by their own Raft
groups, MVCC with write intents, a transaction coordinator that pipelines
writes and commits with parallel commits, and a SQL front end.
"""

from __future__ import annotations

__version__ = "0.1.0"
