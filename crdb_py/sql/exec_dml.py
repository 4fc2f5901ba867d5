"""INSERT / UPSERT / UPDATE / DELETE.

All writes of a row go through `TableWriter`, which keeps the primary row
and every secondary index entry in step and enforces the constraints:

* NOT NULL and CHECK on the new row (a CHECK passes unless it is FALSE);
* uniqueness of the primary key and of each unique index, by a point read
  of the entry's key (through the write buffer, so rows written earlier in
  the same statement or transaction count). The read also makes the txn
  conflict with a concurrent writer of the same key: serializable.

A multi-row UPDATE first removes every old row's entries and then writes
the new ones, so `SET k = k + 1` over consecutive keys does not trip over
itself. The statement runs under the session's statement savepoint: if any
row fails, none of its writes remain.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from crdb_py.sql import errors as E
from crdb_py.sql import rowenc
from crdb_py.sql import types as T
from crdb_py.sql.catalog import Index, TableDesc
from crdb_py.sql.exec_select import run_query, run_subqueries
from crdb_py.sql.expr import Compiler, Scope, ScopeCol, output_name, truthy
from crdb_py.sql.parse import parse_expr
from crdb_py.sql.planner import fetch, plan_scan, pretty_span
from crdb_py.sql.runtime import DEFAULT, ExecCtx, Result, table_scope
from crdb_py.sql.tablerows import RowCodec

Row = tuple[Any, ...]


class TableWriter:
    def __init__(self, x: ExecCtx, desc: TableDesc) -> None:
        self.x, self.desc = x, desc
        self.codec = RowCodec.of(desc)
        self.scope = table_scope(desc, desc.name)
        comp = Compiler(Scope([]), x.ctx)
        self.defaults = [comp(parse_expr(c.default)) if c.default else None for c in desc.columns]
        rc = Compiler(self.scope, x.ctx)
        self.checks = [(c.name, rc(parse_expr(c.expr))) for c in desc.checks]

    def default_row(self) -> list[Any]:
        return [d(()) if d is not None else None for d in self.defaults]

    def finish(self, vals: list[Any]) -> Row:
        """Assign types and check NOT NULL / CHECK."""
        out = []
        for c, v in zip(self.desc.columns, vals):
            v = T.assign(v, c.type, c.name)
            if v is None and not c.nullable:
                raise E.not_null_violation(self.desc.name, c.name)
            out.append(v)
        row = tuple(out)
        for name, f in self.checks:
            if f(row) is False:
                raise E.check_violation(name)
        return row

    async def conflict(self, row: Row) -> tuple[Index, Row] | None:
        """The existing row `row` would collide with, and on which index."""
        raw = await self.x.buf.get(self.codec.primary_key(row))
        if raw is not None:
            pk = self.codec.primary_key(row)
            return self.desc.primary, self.codec.decode(pk, raw)
        for idx in self.desc.indexes:
            if not idx.unique:
                continue
            k, _, checks = self.codec.index_entry(idx, row)
            if not checks:
                continue
            v = await self.x.buf.get(k)
            if v is not None:
                pk = self.codec.pk_key_from_vals(self.codec.pk_from_index(idx, k, v))
                existing = await self.x.buf.get(pk)
                if existing is None:
                    raise E.SQLError(f"index {idx.name} points at a missing row", "XX000")
                return idx, self.codec.decode(pk, existing)
        return None

    async def insert(self, row: Row) -> None:
        buf = self.x.buf
        if buf.defer_unique:  # checked by the writes themselves (ConditionalPut)
            idx = self._buffered_conflict(row)
            if idx is not None:
                raise E.unique_violation(idx.name, self._detail(idx, row))
            self.put(row, new=True)
            return
        hit = await self.conflict(row)
        if hit is not None:
            idx, _ = hit
            raise E.unique_violation(idx.name, self._detail(idx, row))
        self.put(row)

    async def insert_many(self, rows: list[Row]) -> None:
        """`insert` of every row, with the uniqueness reads of all rows in one
        KV batch (per 1,000 keys) instead of one round trip per row. The
        violation reported is the first one in row order, as with `insert`."""
        buf = self.x.buf
        if buf.defer_unique:
            for row in rows:
                await self.insert(row)
            return
        checks: list[list[tuple[Index, bytes]]] = []  # per row: (index, key) to be absent
        for row in rows:
            ks = [(self.desc.primary, self.codec.primary_key(row))]
            for idx in self.desc.indexes:
                if idx.unique:
                    k, _, needed = self.codec.index_entry(idx, row)
                    if needed:
                        ks.append((idx, k))
            checks.append(ks)
        todo = list(dict.fromkeys(k for ks in checks for _, k in ks if k not in buf.writes))
        existing: set[bytes] = set()
        for i in range(0, len(todo), 1000):
            part = todo[i:i + 1000]
            await self.x.canceller.tick(len(part))
            existing.update(k for k, v in zip(part, await buf.get_many(part)) if v is not None)
        seen: set[bytes] = set()  # keys written by earlier rows of this statement
        for row, ks in zip(rows, checks):
            for idx, k in ks:
                taken = k in seen or (buf.writes[k] is not None if k in buf.writes
                                      else k in existing)
                if taken:
                    raise E.unique_violation(idx.name, self._detail(idx, row))
            seen.update(k for _, k in ks)
        for row in rows:
            self.put(row)

    def _buffered_conflict(self, row: Row) -> Index | None:
        """The index on which `row` collides with a row this txn wrote."""
        w = self.x.buf.writes
        if w.get(self.codec.primary_key(row)) is not None:
            return self.desc.primary
        for idx in self.desc.indexes:
            if idx.unique:
                k, _, checks = self.codec.index_entry(idx, row)
                if checks and w.get(k) is not None:
                    return idx
        return None

    def _detail(self, idx: Index, row: Row) -> str:
        cols = [self.desc.col_by_id(c).name for c in idx.column_ids]
        vals = [T.to_text(row[self.codec.pos[c]]) for c in idx.column_ids]
        return f"Key ({', '.join(cols)})=({', '.join(vals)}) already exists."

    def put(self, row: Row, *, new: bool = False) -> None:
        """Write `row` and its index entries; `new`: the primary key and unique
        entries must not exist in KV yet (ConditionalPut at commit)."""
        buf = self.x.buf
        (buf.put_new if new else buf.put)(self.codec.primary_key(row),
                                          self.codec.primary_value(row))
        for idx in self.desc.indexes:
            k, v, checks = self.codec.index_entry(idx, row)
            (buf.put_new if new and idx.unique and checks else buf.put)(k, v)

    def delete(self, row: Row) -> None:
        buf = self.x.buf
        buf.delete(self.codec.primary_key(row))
        for idx in self.desc.indexes:
            buf.delete(self.codec.index_entry(idx, row)[0])


def _returning(x: ExecCtx, node: exp.Expression, w: TableWriter, rows: list[Row]) -> Result:
    ret = node.args.get("returning")
    if ret is None:
        return Result(rowcount=len(rows))
    from crdb_py.sql.exec_select import _expand, _out_type

    projs = _expand(list(ret.expressions), w.scope)
    comp = Compiler(w.scope, x.ctx)
    fns = [comp(p.this if isinstance(p, exp.Alias) else p) for p in projs]
    out = [tuple(f(r) for f in fns) for r in rows]
    cols = [(output_name(p), _out_type(p, w.scope, out, i)) for i, p in enumerate(projs)]
    return Result(columns=cols, rows=out, rowcount=len(rows))


async def _target(x: ExecCtx, node: exp.Expression) -> tuple[TableDesc, list[str] | None]:
    t = node.this
    cols = None
    if isinstance(t, exp.Schema):
        cols = [i.name for i in t.expressions]
        t = t.this
    return await x.resolve_table(t), cols


async def run_insert(x: ExecCtx, node: exp.Insert, *, upsert: bool = False) -> Result:
    desc, cols = await _target(x, node)
    w = TableWriter(x, desc)
    visible = [c.name for c in desc.visible_columns]
    cols = cols or visible
    positions = [desc.columns.index(desc.column(c)) for c in cols]
    if len(set(cols)) != len(cols):
        raise E.SQLError("multiple assignments to the same column", "42701")
    src = node.expression
    if isinstance(src, exp.Values):
        from crdb_py.sql.exec_select import values_relation

        await run_subqueries(x, [src])
        rel = await values_relation(x, src)
    else:
        rel = await run_query(x, src)
    conflict = node.args.get("conflict")
    action = str(conflict.args.get("action")).upper() if conflict is not None else ""
    if conflict is not None and conflict.args.get("duplicate"):
        raise E.unsupported("ON DUPLICATE KEY")
    set_fns = []
    if upsert:
        pk = set(desc.primary.column_ids)
        set_items = [(desc.columns.index(desc.column(c)), None) for c in cols
                     if desc.column(c).id not in pk]
    elif "UPDATE" in action:
        set_items = []
        exc = Scope(w.scope.cols + [ScopeCol("excluded", c.name, c.type) for c in desc.columns])
        comp = Compiler(exc, x.ctx)
        for eq in conflict.expressions:
            c = desc.column(eq.this.name)
            set_items.append((desc.columns.index(c), comp(eq.expression)))
        where = conflict.args.get("where")
        set_fns = [comp(where.this)] if where is not None else []
    written: list[Row] = []
    tick = x.canceller.tick  # cancel / statement_timeout reach long statements
    for src_row in rel.rows:
        await tick()
        if len(src_row) > len(cols):
            raise E.SQLError(
                f"INSERT has more expressions than target columns, {len(src_row)} expressions "
                f"for {len(cols)} targets", "42601")
        vals = w.default_row()
        for p, v in zip(positions, src_row):
            if v is not DEFAULT:
                vals[p] = v
        row = w.finish(vals)
        if conflict is None and not upsert:
            written.append(row)  # checked and written together, below
            continue
        hit = await w.conflict(row)
        if hit is None:
            w.put(row)
            written.append(row)
            continue
        if "NOTHING" in action:
            continue
        _, old = hit
        new = list(old)
        for p, fn in set_items:
            new[p] = row[p] if fn is None else fn(old + row)
        if set_fns and not truthy(set_fns[0](old + row)):
            continue
        w.delete(old)
        new_row = w.finish(new)
        await w.insert(new_row)
        written.append(new_row)
    if conflict is None and not upsert:
        await w.insert_many(written)
    return _returning(x, node, w, written)


async def _matching(x: ExecCtx, desc: TableDesc, alias: str,
                    where: exp.Expression | None) -> list[Row]:
    await run_subqueries(x, [where])
    plan = plan_scan(desc, alias, where, x.ctx)
    if x.explain is not None:
        x.explain.append(f"{'point lookup' if plan.point else 'scan'} {desc.name}@{plan.index.name}")
        for sp in plan.spans[:10]:
            x.explain.append(f"  span: {pretty_span(desc, plan.index, sp)}")
    rows = await fetch(x.buf, plan)
    if where is not None:
        f = Compiler(table_scope(desc, alias), x.ctx)(where)
        kept: list[Row] = []
        async for chunk in x.canceller.chunks(rows):
            kept += [r for r in chunk if truthy(f(r))]
        rows = kept
    return rows


async def run_update(x: ExecCtx, node: exp.Update) -> Result:
    t = node.this
    desc = await x.resolve_table(t)
    alias = t.alias_or_name
    where = node.args.get("where")
    if node.args.get("from") or node.args.get("from_"):
        raise E.unsupported("UPDATE ... FROM")
    rows = await _matching(x, desc, alias, where.this if where is not None else None)
    w = TableWriter(x, desc)
    comp = Compiler(table_scope(desc, alias), x.ctx)
    await run_subqueries(x, list(node.expressions))
    sets = []
    for eq in node.expressions:
        if not isinstance(eq, exp.EQ) or not isinstance(eq.this, exp.Column):
            raise E.unsupported(f"SET {eq.sql('postgres')}")
        c = desc.column(eq.this.name)
        sets.append((desc.columns.index(c), comp(eq.expression)))
    new_rows = []
    tick = x.canceller.tick
    for r in rows:
        await tick()
        new = list(r)
        for p, f in sets:
            new[p] = f(r)
        new_rows.append(w.finish(new))
    for r in rows:
        w.delete(r)
    for n in new_rows:
        await tick()
        await w.insert(n)
    return _returning(x, node, w, new_rows)


async def run_delete(x: ExecCtx, node: exp.Delete) -> Result:
    t = node.this
    desc = await x.resolve_table(t)
    where = node.args.get("where")
    rows = await _matching(x, desc, t.alias_or_name, where.this if where is not None else None)
    w = TableWriter(x, desc)
    async for chunk in x.canceller.chunks(rows):
        for r in chunk:
            w.delete(r)
    return _returning(x, node, w, rows)


async def backfill(x: ExecCtx, desc: TableDesc, idx: Index) -> int:
    """Write `idx` entries for every existing row (CREATE INDEX)."""
    codec = RowCodec.of(desc)
    p = rowenc.index_prefix(desc.id, desc.primary.id)
    n = 0
    for k, v in await x.buf.scan(p, rowenc.prefix_end(p)):
        await x.canceller.tick()
        row = codec.decode(k, v)
        key, val, checks = codec.index_entry(idx, row)
        if checks and await x.buf.get(key) is not None:
            cols = ", ".join(desc.col_by_id(c).name for c in idx.column_ids)
            raise E.unique_violation(idx.name, f"Key ({cols}) is duplicated.")
        x.buf.put(key, val)
        n += 1
    return n
