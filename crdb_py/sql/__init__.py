"""crdb_py.sql: the SQL front end (see docs/design/sql.md).

`Session(kv_store).execute(sql, params)` is the entry point: it parses
(sqlglot, postgres dialect; cached by text), runs the statement against a
KV transaction through a write buffer, and returns a `Result` (columns,
rows, rowcount, tag). Errors are `CrdbError`s carrying a SQLSTATE.
"""

from __future__ import annotations

from crdb_py.sql.runtime import Result
from crdb_py.sql.session import Session, TxnState

__all__ = ["Result", "Session", "TxnState"]
