"""ALTER TABLE ... ADD COLUMN / DROP COLUMN / RENAME [COLUMN].

Row values are tagged by column id (rowenc), so adding a nullable column
without a default rewrites nothing, and a dropped column's values are simply
ignored by the new descriptor (a re-added column gets a fresh id and never
sees them). Adding a column with a DEFAULT or NOT NULL backfills every row
in the same transaction (and fails with 23502 if a row would be NULL);
a UNIQUE column gets a unique index, backfilled. Dropping a column drops the
secondary indexes and CHECKs that use it; primary key columns cannot be
dropped. RENAME TO moves the namespace entry (the descriptor keeps its id,
so rows and indexes stay where they are); RENAME COLUMN changes the name in
the descriptor only (rows are tagged by column id) and rewrites the SQL
text of the CHECK constraints that mention the column. Every change bumps
the descriptor version. As with other DDL here, the change is
transactional, not online.
"""

from __future__ import annotations

import re
from dataclasses import replace

from sqlglot import exp

from crdb_py.sql import errors as E
from crdb_py.sql import rowenc
from crdb_py.sql.catalog import Check, Index, TableDesc, clear_span
from crdb_py.sql.exec_ddl import check_name, column_def, validate_exprs
from crdb_py.sql.exec_dml import TableWriter, backfill
from crdb_py.sql.runtime import ExecCtx, Result
from crdb_py.sql.tablerows import RowCodec


async def run_alter(x: ExecCtx, node: exp.Alter) -> Result:
    if str(node.args.get("kind", "")).upper() != "TABLE":
        raise E.unsupported(f"ALTER {node.args.get('kind')}")
    if node.args.get("exists"):
        db_id = await x.db_for(node.this)
        if await x.catalog.table(db_id, node.this.name) is None:
            return Result(tag="ALTER TABLE")
    desc = await x.resolve_table(node.this)
    for action in node.args.get("actions") or []:
        if isinstance(action, exp.AlterRename):
            desc = await rename_table(x, desc, action.this)
        elif isinstance(action, exp.RenameColumn):
            desc = rename_column(x, desc, action.this.name, action.args["to"].name,
                                 bool(action.args.get("exists")))
        elif isinstance(action, exp.ColumnDef):
            desc = await add_column(x, desc, action)
        elif isinstance(action, exp.Drop) and str(action.args.get("kind")).upper() == "COLUMN":
            for c in action.args.get("tables") or []:
                desc = await drop_column(x, desc, c.name, bool(action.args.get("exists")))
        else:
            raise E.unsupported(f"ALTER TABLE {action.sql('postgres')[:60]}")
    return Result(tag="ALTER TABLE")


async def add_column(x: ExecCtx, desc: TableDesc, item: exp.ColumnDef) -> TableDesc:
    if desc.has_column(item.name):
        if item.args.get("exists"):
            return desc
        raise E.SQLError(f'column "{item.name}" of relation "{desc.name}" already exists', "42701")
    col, is_pk, uniq, checks = column_def(item, desc.next_column_id)
    if is_pk:
        raise E.unsupported("adding a PRIMARY KEY column")
    new_checks = tuple(Check(check_name(n, e, i), e.sql("postgres"))
                       for i, (n, e) in enumerate(checks, start=len(desc.checks)))
    new = replace(desc, columns=(*desc.columns, col), checks=desc.checks + new_checks,
                  next_column_id=desc.next_column_id + 1)
    validate_exprs(x, new)
    if col.default is not None or not col.nullable or new_checks:
        await _rewrite_rows(x, desc, new)
    if uniq:
        idx = Index(new.next_index_id, f"{desc.name}_{col.name}_key", (col.id,), True)
        new = replace(new, indexes=(*new.indexes, idx), next_index_id=new.next_index_id + 1)
        new = x.catalog.write_table(new)
        await backfill(x, new, idx)
        return new
    return x.catalog.write_table(new)


async def _rewrite_rows(x: ExecCtx, old: TableDesc, new: TableDesc) -> None:
    """Re-encode every row under `new`, filling the added column's default."""
    old_codec = RowCodec.of(old)
    w = TableWriter(x, new)
    p = rowenc.index_prefix(old.id, old.primary.id)
    for k, v in await x.buf.scan(p, rowenc.prefix_end(p)):
        row = list(old_codec.decode(k, v))
        row.append(w.default_row()[-1])
        full = w.finish(row)
        x.buf.put(w.codec.primary_key(full), w.codec.primary_value(full))


async def drop_column(x: ExecCtx, desc: TableDesc, name: str, if_exists: bool) -> TableDesc:
    if not desc.has_column(name) or desc.column(name).hidden:
        if if_exists:
            return desc
        raise E.undefined_column(name)
    col = desc.column(name)
    if col.id in desc.primary.column_ids:
        raise E.SQLError(f'column "{name}" is referenced by the primary key', "0A000")
    if len(desc.visible_columns) == 1:
        raise E.SQLError("cannot drop the only column of a table", "0A000")
    keep, gone = [], []
    for idx in desc.indexes:
        (gone if col.id in idx.column_ids else keep).append(idx)
    for idx in gone:
        await clear_span(x.buf, rowenc.index_prefix(desc.id, idx.id))
    checks = tuple(c for c in desc.checks
                   if name not in {n.name for n in _parse_cols(c.expr)})
    new = replace(desc, columns=tuple(c for c in desc.columns if c.id != col.id),
                  indexes=tuple(keep), checks=checks)
    return x.catalog.write_table(new)


def _parse_cols(text: str) -> list[exp.Column]:
    from crdb_py.sql.parse import parse_expr

    return list(parse_expr(text).find_all(exp.Column))


async def rename_table(x: ExecCtx, desc: TableDesc, to: exp.Table) -> TableDesc:
    if to.args.get("db") is not None and await x.db_for(to) != desc.parent_id:
        raise E.unsupported("moving a table to another database with RENAME")
    if to.name == desc.name:
        return desc
    if await x.catalog.table(desc.parent_id, to.name) is not None:
        raise E.duplicate_table(to.name)
    x.on_schema_change()
    return x.catalog.rename_table(desc, to.name)


def rename_column(x: ExecCtx, desc: TableDesc, old: str, new: str, if_exists: bool) -> TableDesc:
    if not desc.has_column(old) or desc.column(old).hidden:
        if if_exists:
            return desc
        raise E.undefined_column(old)
    if old == new:
        return desc
    if desc.has_column(new):
        raise E.SQLError(f'column "{new}" of relation "{desc.name}" already exists', "42701")
    cols = tuple(replace(c, name=new) if c.name == old else c for c in desc.columns)
    checks = tuple(replace(c, expr=_rename_in(c.expr, old, new)) for c in desc.checks)
    x.on_schema_change()
    return x.catalog.write_table(replace(desc, columns=cols, checks=checks))


def _rename_in(text: str, old: str, new: str) -> str:
    """`text` (a stored SQL expression) with column `old` called `new`."""
    from crdb_py.sql.parse import parse_expr

    e = parse_expr(text)
    if not any(c.name == old for c in e.find_all(exp.Column)):
        return text

    def swap(n: exp.Expression) -> exp.Expression:
        if isinstance(n, exp.Column) and n.name == old:
            plain = re.fullmatch(r"[a-z_][a-z0-9_]*", new) is not None
            return exp.column(new, n.table or None, quoted=not plain)
        return n
    return e.transform(swap).sql("postgres")
