"""SHOW statements (the minimal set; introspection is extended here)."""

from __future__ import annotations

import re

from crdb_py.sql import errors as E
from crdb_py.sql import types as T
from crdb_py.sql.catalog import TableDesc
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
    m = re.match(r"^create\s+(?:table\s+)?(\w+)$", w, re.I)
    if m:
        desc = await x.catalog.must_table(x.db_id, m.group(1))
        return Result([("table_name", _S), ("create_statement", _S)],
                      [(desc.name, create_statement(desc))])
    raise E.unsupported(f"SHOW {w}")


def create_statement(desc: TableDesc) -> str:
    """CREATE TABLE text for a descriptor; re-executable as a script (non-unique
    indexes follow as CREATE INDEX statements)."""
    lines = []
    for c in desc.visible_columns:
        s = f"  {c.name} {str(c.type).upper()}"
        if not c.nullable:
            s += " NOT NULL"
        if c.default is not None:
            s += f" DEFAULT {c.default}"
        lines.append(s)
    pk = [desc.col_by_id(i) for i in desc.primary.column_ids]
    if not any(c.hidden for c in pk):
        lines.append(f"  CONSTRAINT {desc.primary.name} PRIMARY KEY "
                     f"({', '.join(c.name for c in pk)})")
    after = []
    for idx in desc.indexes:
        cols = ", ".join(desc.col_by_id(i).name for i in idx.column_ids)
        if idx.unique:
            lines.append(f"  CONSTRAINT {idx.name} UNIQUE ({cols})")
        else:  # the parser takes no inline INDEX: a separate statement
            after.append(f";\nCREATE INDEX {idx.name} ON {desc.name} ({cols})")
    for ck in desc.checks:
        lines.append(f"  CONSTRAINT {ck.name} CHECK ({ck.expr})")
    return f"CREATE TABLE {desc.name} (\n" + ",\n".join(lines) + "\n)" + "".join(after)
