"""SHOW statements (the minimal set; introspection is extended here)."""

from __future__ import annotations

import re

from crdb_py.sql import errors as E
from crdb_py.sql import types as T
from crdb_py.sql.runtime import ExecCtx, Result

_S = T.T_STRING


async def run_show(x: ExecCtx, what: str, txn_status: str) -> Result:
    w = what.strip()
    low = w.lower()
    if low == "databases":
        names = sorted(await x.catalog.list_databases())
        return Result([("database_name", _S)], [(n,) for n in names])
    if low == "tables":
        tables = await x.catalog.list_tables(x.db_id)
        return Result([("table_name", _S)], [(t.name,) for t in sorted(tables, key=lambda t: t.name)])
    if low in ("database", "current_database"):
        return Result([("database", _S)], [(x.db_name,)])
    if low == "transaction status":
        return Result([("transaction_status", _S)], [(txn_status,)])
    m = re.match(r"^columns\s+from\s+(\w+)$", w, re.I)
    if m:
        desc = await x.catalog.must_table(x.db_id, m.group(1))
        rows = [(c.name, str(c.type), c.nullable, c.default, c.hidden) for c in desc.columns]
        return Result([("column_name", _S), ("data_type", _S), ("is_nullable", T.T_BOOL),
                       ("column_default", _S), ("is_hidden", T.T_BOOL)], rows)
    m = re.match(r"^(?:indexes|index|keys)\s+from\s+(\w+)$", w, re.I)
    if m:
        desc = await x.catalog.must_table(x.db_id, m.group(1))
        rows = []
        for idx in desc.all_indexes:
            for i, cid in enumerate(idx.column_ids):
                rows.append((desc.name, idx.name, not idx.unique, i + 1, desc.col_by_id(cid).name))
        return Result([("table_name", _S), ("index_name", _S), ("non_unique", T.T_BOOL),
                       ("seq_in_index", T.T_INT), ("column_name", _S)], rows)
    raise E.unsupported(f"SHOW {w}")
