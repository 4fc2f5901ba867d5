"""DDL: CREATE/DROP DATABASE, CREATE/DROP TABLE, CREATE/DROP INDEX, TRUNCATE.

Schema changes are ordinary transactional writes of descriptors (see
catalog.py) plus, for CREATE INDEX, a backfill of the new index inside the
same transaction and, for DROP/TRUNCATE, deletion of the table's span.
CockroachDB runs these as online schema changes through intermediate
descriptor states; here a schema change is simply part of the writing
transaction (other transactions that read the old descriptor conflict
with it and retry), which is correct but not online.
"""

from __future__ import annotations

from sqlglot import exp

from crdb_py.sql import errors as E
from crdb_py.sql import rowenc
from crdb_py.sql import types as T
from crdb_py.sql.catalog import (
    PRIMARY_INDEX_ID,
    ROWID,
    Check,
    Column,
    Index,
    TableDesc,
    clear_span,
)
from crdb_py.sql.exec_dml import backfill
from crdb_py.sql.expr import Compiler, Scope
from crdb_py.sql.parse import parse_expr
from crdb_py.sql.runtime import ExecCtx, Result, table_scope


async def run_ddl(x: ExecCtx, node: exp.Expression) -> Result:
    if isinstance(node, exp.Create):
        kind = str(node.args.get("kind")).upper()
        if kind == "TABLE":
            return await create_table(x, node)
        if kind == "INDEX":
            return await create_index(x, node)
        if kind in ("DATABASE", "SCHEMA"):
            return await create_database(x, node)
        raise E.unsupported(f"CREATE {kind}")
    if isinstance(node, exp.Drop):
        kind = str(node.args.get("kind")).upper()
        if kind == "TABLE":
            return await drop_tables(x, node)
        if kind == "INDEX":
            for t in node.args.get("tables") or []:
                tbl = t.args["db"].name if t.args.get("db") else None
                await drop_index(x, tbl, t.name, bool(node.args.get("exists")))
            return Result(tag="DROP INDEX")
        if kind in ("DATABASE", "SCHEMA"):
            return await drop_database(x, node)
        raise E.unsupported(f"DROP {kind}")
    if isinstance(node, exp.Alter):
        from crdb_py.sql.exec_alter import run_alter

        return await run_alter(x, node)
    if isinstance(node, exp.TruncateTable):
        for t in node.expressions:
            desc = await x.resolve_table(t)
            await clear_span(x.buf, rowenc.table_prefix(desc.id))
        return Result(tag="TRUNCATE")
    raise E.unsupported(f"{type(node).__name__}")


async def create_database(x: ExecCtx, node: exp.Create) -> Result:
    name = node.this.name
    if await x.catalog.database_id(name) is not None:
        if node.args.get("exists"):
            return Result(tag="CREATE DATABASE")
        raise E.duplicate_database(name)
    await x.catalog.create_database(name)
    return Result(tag="CREATE DATABASE")


async def drop_database(x: ExecCtx, node: exp.Drop) -> Result:
    for t in node.args.get("tables") or []:
        name = t.name
        db_id = await x.catalog.database_id(name)
        if db_id is None:
            if node.args.get("exists"):
                continue
            raise E.undefined_database(name)
        if name == x.db_name:
            raise E.SQLError(f'cannot drop the current database "{name}"', "55006")
        await x.catalog.drop_database(db_id, name, bool(node.args.get("cascade")))
    x.on_schema_change()
    return Result(tag="DROP DATABASE")


def _col_type(kind: exp.DataType | None) -> tuple[T.SQLType, bool]:
    if kind is None:
        raise E.syntax("column type required")
    serial = kind.this.name in T.SERIAL_TYPES
    return T.from_datatype(kind), serial


def column_def(item: exp.ColumnDef, col_id: int) -> tuple[
        Column, bool, bool, list[tuple[str | None, exp.Expression]]]:
    """A column from its definition: (column, is PK, is UNIQUE, CHECKs)."""
    typ, serial = _col_type(item.args.get("kind"))
    name = item.name
    nullable, default = True, "unique_rowid()" if serial else None
    is_pk = uniq = False
    checks: list[tuple[str | None, exp.Expression]] = []
    for cc in item.constraints:
        k = cc.kind
        if isinstance(k, exp.PrimaryKeyColumnConstraint):
            is_pk = True
        elif isinstance(k, exp.NotNullColumnConstraint):
            nullable = bool(k.args.get("allow_null"))
        elif isinstance(k, exp.DefaultColumnConstraint):
            default = k.this.sql("postgres")
        elif isinstance(k, exp.UniqueColumnConstraint):
            uniq = True
        elif isinstance(k, exp.CheckColumnConstraint):
            checks.append((cc.name or None, k.this))
        else:
            raise E.unsupported(f"column constraint {cc.sql('postgres')}")
    return Column(col_id, name, typ, nullable and not is_pk, default), is_pk, uniq, checks


def check_name(name: str | None, e: exp.Expression, i: int) -> str:
    cnames = sorted({c.name for c in e.find_all(exp.Column)})
    return name or f"check_{'_'.join(cnames) or i}"


async def create_table(x: ExecCtx, node: exp.Create) -> Result:
    schema = node.this
    if not isinstance(schema, exp.Schema):
        raise E.unsupported("CREATE TABLE AS")
    tname = schema.this.name
    db_id = await x.db_for(schema.this)
    if await x.catalog.table(db_id, tname) is not None:
        if node.args.get("exists"):
            return Result(tag="CREATE TABLE")
        raise E.duplicate_table(tname)
    cols: list[Column] = []
    pk_names: list[str] | None = None
    uniques: list[list[str]] = []
    checks: list[tuple[str | None, exp.Expression]] = []
    for item in schema.expressions:
        if isinstance(item, exp.ColumnDef):
            if any(c.name == item.name for c in cols):
                raise E.SQLError(f'column "{item.name}" specified more than once', "42701")
            col, is_pk, uniq, chks = column_def(item, len(cols) + 1)
            if is_pk:
                if pk_names is not None:
                    raise E.SQLError("multiple primary keys are not allowed", "42P16")
                pk_names = [col.name]
            if uniq:
                uniques.append([col.name])
            checks += chks
            cols.append(col)
        elif isinstance(item, exp.PrimaryKey):
            if pk_names is not None:
                raise E.SQLError("multiple primary keys are not allowed", "42P16")
            pk_names = [e.name for e in item.expressions]
        elif isinstance(item, exp.UniqueColumnConstraint):
            uniques.append([e.name for e in item.this.expressions])
        elif isinstance(item, exp.CheckColumnConstraint):
            checks.append((None, item.this))
        elif isinstance(item, exp.Constraint):
            for sub in item.expressions:
                if isinstance(sub, exp.PrimaryKey):
                    pk_names = [e.name for e in sub.expressions]
                elif isinstance(sub, exp.UniqueColumnConstraint):
                    uniques.append([e.name for e in sub.this.expressions])
                elif isinstance(sub, exp.CheckColumnConstraint):
                    checks.append((item.name, sub.this))
                else:
                    raise E.unsupported(f"constraint {item.sql('postgres')}")
        else:
            raise E.unsupported(f"table element {item.sql('postgres')}")
    if not cols:
        raise E.SQLError("a table needs at least one column", "42601")
    by_name = {c.name: c for c in cols}
    if pk_names is None:
        if ROWID in by_name:
            raise E.SQLError(f'column name "{ROWID}" is reserved for the hidden key', "42701")
        rowid = Column(len(cols) + 1, ROWID, T.T_INT, False, "unique_rowid()", hidden=True)
        cols.append(rowid)
        by_name[ROWID] = rowid
        pk_names = [ROWID]
    for n in pk_names + [n for u in uniques for n in u]:
        if n not in by_name:
            raise E.undefined_column(n)
    for n in pk_names:  # primary key columns are NOT NULL
        c = by_name[n]
        cols[cols.index(c)] = by_name[n] = Column(c.id, c.name, c.type, False, c.default, c.hidden)
    table_id = await x.catalog.new_id()
    primary = Index(PRIMARY_INDEX_ID, f"{tname}_pkey", tuple(by_name[n].id for n in pk_names), True)
    indexes = []
    for u in uniques:
        indexes.append(Index(len(indexes) + 2, f"{tname}_{'_'.join(u)}_key",
                             tuple(by_name[n].id for n in u), True))
    chk = []
    for i, (name, e) in enumerate(checks):
        chk.append(Check(check_name(name, e, i), e.sql("postgres")))
    desc = TableDesc(table_id, db_id, tname, tuple(cols), primary, tuple(indexes), tuple(chk),
                     len(cols) + 1, len(indexes) + 2)
    validate_exprs(x, desc)
    x.catalog.write_table(desc, new=True)
    return Result(tag="CREATE TABLE")


def validate_exprs(x: ExecCtx, desc: TableDesc) -> None:
    """Compile DEFAULT and CHECK expressions now, so a bad one fails the DDL."""
    empty = Compiler(Scope([]), x.ctx)
    for c in desc.columns:
        if c.default:
            e = parse_expr(c.default)
            if any(isinstance(n, exp.Column) for n in e.walk()):
                raise E.SQLError("default expression cannot reference columns", "0A000")
            empty(e)
    scoped = Compiler(table_scope(desc, desc.name), x.ctx)
    for ch in desc.checks:
        scoped(parse_expr(ch.expr))


async def drop_tables(x: ExecCtx, node: exp.Drop) -> Result:
    for t in node.args.get("tables") or []:
        db_id = await x.db_for(t)
        desc = await x.catalog.table(db_id, t.name)
        if desc is None:
            if node.args.get("exists"):
                continue
            raise E.undefined_table(t.name)
        await x.catalog.drop_table(desc)
    return Result(tag="DROP TABLE")


async def create_index(x: ExecCtx, node: exp.Create) -> Result:
    idx_node = node.this
    desc = await x.resolve_table(idx_node.args["table"])
    params = idx_node.args.get("params")
    cols = []
    for o in params.args.get("columns") or []:
        e = o.this if isinstance(o, exp.Ordered) else o
        if not isinstance(e, exp.Column):
            raise E.unsupported("expression indexes")
        if isinstance(o, exp.Ordered) and o.args.get("desc"):
            raise E.unsupported("DESC index columns")
        cols.append(desc.column(e.name).id)
    name = idx_node.name or f"{desc.name}_{'_'.join(desc.col_by_id(c).name for c in cols)}_" \
        f"{'key' if node.args.get('unique') else 'idx'}"
    if desc.index(name) is not None:
        if node.args.get("exists"):
            return Result(tag="CREATE INDEX")
        raise E.SQLError(f'index "{name}" already exists', "42P07")
    idx = Index(desc.next_index_id, name, tuple(cols), bool(node.args.get("unique")))
    new = TableDesc(desc.id, desc.parent_id, desc.name, desc.columns, desc.primary,
                    (*desc.indexes, idx), desc.checks, desc.next_column_id,
                    desc.next_index_id + 1, desc.version)
    new = x.catalog.write_table(new)
    await backfill(x, new, idx)
    return Result(tag="CREATE INDEX")


async def drop_index(x: ExecCtx, table: str | None, name: str, if_exists: bool) -> Result:
    cands = []
    if table is not None:
        cands = [await x.catalog.must_table(x.db_id, table)]
    else:
        cands = await x.catalog.list_tables(x.db_id)
    for desc in cands:
        idx = desc.index(name)
        if idx is None:
            continue
        if idx.id == PRIMARY_INDEX_ID:
            raise E.SQLError("cannot drop the primary index", "0A000")
        new = TableDesc(desc.id, desc.parent_id, desc.name, desc.columns, desc.primary,
                        tuple(i for i in desc.indexes if i.id != idx.id), desc.checks,
                        desc.next_column_id, desc.next_index_id, desc.version)
        x.catalog.write_table(new)
        await clear_span(x.buf, rowenc.index_prefix(desc.id, idx.id))
        return Result(tag="DROP INDEX")
    if if_exists:
        return Result(tag="DROP INDEX")
    raise E.SQLError(f'index "{name}" does not exist', "42704")
