"""SELECT: FROM (scans, joins, derived tables, CTEs) -> WHERE -> GROUP BY /
aggregates -> HAVING -> projection -> ORDER BY -> DISTINCT -> OFFSET/LIMIT.

Everything above the scans runs in Python over lists of row tuples; the
scans are chosen by the planner (planner.py). Joins are hash joins when the
ON clause has a column = column equality between the two sides, nested
loops otherwise; LEFT joins pad with NULLs. A WHERE clause is handed to the
scan of every table that is not on the NULL-extended side of a LEFT join
(the planner only narrows spans; the filter runs on every row anyway).
Uncorrelated subqueries run first, once per statement (`run_subqueries`).
"""

from __future__ import annotations

import functools
from typing import Any

from sqlglot import exp

from crdb_py.sql import errors as E
from crdb_py.sql import types as T
from crdb_py.sql.exec_window import compute_windows, window_nodes
from crdb_py.sql.expr import (
    AGGS,
    Compiler,
    Correlated,
    Scope,
    ScopeCol,
    has_agg,
    memoized,
    output_name,
    sort_key_cmp,
    truthy,
)
from crdb_py.sql.planner import fetch, plan_scan, pretty_span
from crdb_py.sql.runtime import DEFAULT, YIELD_EVERY, ExecCtx, Relation, table_scope
from crdb_py.sql.vtables import generate_series, info_schema, is_info_schema, is_series


def _from(sel: exp.Expression) -> exp.From | None:
    return sel.args.get("from_") or sel.args.get("from")


def _subquery_nodes(nodes: list[exp.Expression | None]) -> list[exp.Expression]:
    """The subqueries directly under `nodes` (not inside other subqueries)."""
    def prune(n: exp.Expression) -> bool:
        return isinstance(n, exp.Subquery | exp.Exists) or (
            isinstance(n, exp.In) and n.args.get("query") is not None)

    out: list[exp.Expression] = []
    for root in nodes:
        if root is None:
            continue
        for n in root.walk(prune=prune):
            if isinstance(n, exp.In) and n.args.get("query") is not None:
                out.append(n)
                out += _subquery_nodes([n.this])
            elif isinstance(n, exp.Exists | exp.Subquery):
                out.append(n)
    return out


def _subqueries_of(x: ExecCtx, nodes: list[exp.Expression | None]) -> list[exp.Expression]:
    """`_subquery_nodes(nodes)`, from the plan memo (nodes of the cached AST)."""
    anchor = next((n for n in nodes if n is not None), None)
    if anchor is None:
        return []
    return memoized(x.ctx, ("subq", tuple(id(n) for n in nodes)), anchor,
                    lambda: _subquery_nodes(nodes))


def _sub_key(n: exp.Expression) -> int:
    return id(n.args["query"]) if isinstance(n, exp.In) else id(n)


async def _run_subquery(x: ExecCtx, n: exp.Expression) -> Any:
    if isinstance(n, exp.In):
        q = n.args["query"]
        rel = await run_query(x, q.this if isinstance(q, exp.Subquery) else q)
        if len(rel.scope.cols) != 1:
            raise E.SQLError("subquery must return only one column", "42601")
        return [r[0] for r in rel.rows]
    if isinstance(n, exp.Exists):
        return bool((await run_query(x, n.this)).rows)
    rel = await run_query(x, n.this)
    if len(rel.scope.cols) != 1:
        raise E.SQLError("subquery must return only one column", "42601")
    if len(rel.rows) > 1:
        raise E.cardinality("more than one row returned by a subquery used as an expression")
    return rel.rows[0][0] if rel.rows else None


async def run_subqueries(x: ExecCtx, nodes: list[exp.Expression | None]) -> None:
    """Run the uncorrelated subqueries under `nodes` once, before the statement.
    One that names a column its own FROM lacks (42703) is taken to be
    correlated: it is marked `Correlated` and run per outer row by
    `run_correlated` (SELECT only; elsewhere it reports 0A000)."""
    for n in _subqueries_of(x, nodes):
        try:
            x.ctx.subqueries[_sub_key(n)] = await _run_subquery(x, n)
        except E.SQLError as ex:
            if ex.sqlstate != "42703":
                raise
            x.ctx.subqueries[_sub_key(n)] = Correlated()


async def run_correlated(x: ExecCtx, rel: Relation, nodes: list[exp.Expression | None]) -> None:
    """Evaluate the correlated subqueries under `nodes` for every row of `rel`
    (the outer row's columns are constants inside: `Ctx.outer`)."""
    if not x.ctx.subqueries:
        return
    corr = [n for n in _subqueries_of(x, nodes)
            if isinstance(x.ctx.subqueries.get(_sub_key(n)), Correlated)]
    for n in corr:
        box = x.ctx.subqueries[_sub_key(n)]
        for r in rel.rows:
            x.ctx.outer.append((rel.scope, r))
            try:
                box.per_row[id(r)] = await _run_subquery(x, n)
            finally:
                x.ctx.outer.pop()


async def run_query(x: ExecCtx, q: exp.Expression) -> Relation:
    """Run a SELECT / UNION / VALUES query expression."""
    with_ = q.args.get("with_") or q.args.get("with")
    saved = dict(x.ctes)
    try:
        if with_ is not None:
            for cte in with_.expressions:
                x.ctes[cte.alias] = _rename(await run_query(x, cte.this), cte.alias, cte)
        if isinstance(q, exp.Select):
            return await _select(x, q)
        if isinstance(q, exp.Union | exp.Except | exp.Intersect):
            return await _setop(x, q)
        if isinstance(q, exp.Subquery):
            return await run_query(x, q.this)
        if isinstance(q, exp.Values):
            return await values_relation(x, q)
        raise E.unsupported(f"query {q.sql('postgres')[:60]!r}")
    finally:
        x.ctes = saved


def _rename(rel: Relation, alias: str, node: exp.Expression) -> Relation:
    ta = node.args.get("alias")
    names = [c.name for c in ta.columns] if isinstance(ta, exp.TableAlias) and ta.columns else []
    cols = [ScopeCol(alias, names[i] if i < len(names) else c.name, c.type)
            for i, c in enumerate(rel.scope.cols)]
    return Relation(Scope(cols), rel.rows)


async def values_relation(x: ExecCtx, v: exp.Values) -> Relation:
    comp = Compiler(Scope([]), x.ctx)
    rows = []
    for tup in v.expressions:
        items = tup.expressions if isinstance(tup, exp.Tuple) else [tup]
        rows.append(tuple(DEFAULT if isinstance(i, exp.Var) and i.name.upper() == "DEFAULT"
                          else comp(i)(()) for i in items))
    n = len(rows[0]) if rows else 0
    if any(len(r) != n for r in rows):
        raise E.SQLError("VALUES lists must all be the same length", "42601")
    return Relation(Scope([ScopeCol(None, f"column{i + 1}", T.T_UNKNOWN) for i in range(n)]), rows)


async def _setop(x: ExecCtx, q: exp.Expression) -> Relation:
    left = await run_query(x, q.this)
    right = await run_query(x, q.expression)
    if len(left.scope.cols) != len(right.scope.cols):
        raise E.SQLError("each UNION query must have the same number of columns", "42601")
    distinct = q.args.get("distinct", True) is not False
    if isinstance(q, exp.Union):
        rows = left.rows + right.rows
    elif isinstance(q, exp.Except):
        rs = set(right.rows)
        rows = [r for r in left.rows if r not in rs]
    else:
        rs = set(right.rows)
        rows = [r for r in left.rows if r in rs]
    if distinct:
        rows = list(dict.fromkeys(rows))
    rel = Relation(left.scope, rows)
    order = q.args.get("order")
    if order is not None:
        comp = Compiler(rel.scope, x.ctx)
        keys = []
        for o in order.expressions:
            e = o.this
            if isinstance(e, exp.Literal) and not e.is_string:
                i = int(e.this) - 1
                keys.append((lambda r, i=i: r[i], bool(o.args.get("desc"))))
            else:
                keys.append((comp(e), bool(o.args.get("desc"))))
        rel.rows = _sorted([(tuple(f(r) for f, _ in keys), r) for r in rel.rows],
                           [d for _, d in keys])
    rel.rows = await _limit(x, q, rel.rows)
    return rel


async def _limit(x: ExecCtx, q: exp.Expression, rows: list[Any]) -> list[Any]:
    comp = Compiler(Scope([]), x.ctx)
    off = q.args.get("offset")
    lim = q.args.get("limit")
    if off is not None:
        n = comp(off.expression)(())
        rows = rows[int(n):]
    if lim is not None and not (isinstance(lim.expression, exp.Var) and
                                lim.expression.name.upper() == "ALL"):
        n = comp(lim.expression)(())
        if n is not None:
            if int(n) < 0:
                raise E.SQLError("negative LIMIT", "2201W")
            rows = rows[: int(n)]
    return rows


def _sorted(keyed: list[tuple[tuple[Any, ...], Any]], desc: list[bool]) -> list[Any]:
    def cmp(a: tuple[tuple[Any, ...], Any], b: tuple[tuple[Any, ...], Any]) -> int:
        for ka, kb, d in zip(a[0], b[0], desc):
            c = sort_key_cmp(ka, kb)
            if c:
                return -c if d else c
        return 0
    return [r for _, r in sorted(keyed, key=functools.cmp_to_key(cmp))]


async def scan_table(x: ExecCtx, t: exp.Table, where: exp.Expression | None) -> Relation:
    if is_series(t):
        return await generate_series(x, t)
    if is_info_schema(t):
        return await info_schema(x, t)
    alias = t.alias_or_name
    if t.name in x.ctes and not (t.args.get("db")):
        rel = x.ctes[t.name]
        return Relation(Scope([ScopeCol(alias, c.name, c.type) for c in rel.scope.cols]), rel.rows)
    desc = await x.resolve_table(t)
    plan = plan_scan(desc, alias, where, x.ctx)
    if plan.point and x.ctx.memo is not None and not x.ctx.outer:
        x.ctx.point_scans.append((desc, alias, where))  # see planner.speculative_point_keys
    if x.explain is not None:
        kind = "point lookup" if plan.point else ("full scan" if plan.full else "scan")
        x.explain.append(f"{kind} {desc.name}@{plan.index.name}")
        for sp in plan.spans[:10]:
            x.explain.append(f"  span: {pretty_span(desc, plan.index, sp)}")
        if len(plan.spans) > 10:
            x.explain.append(f"  ... {len(plan.spans) - 10} more spans")
    return Relation(table_scope(desc, alias), await fetch(x.buf, plan))


async def _source(x: ExecCtx, node: exp.Expression, where: exp.Expression | None) -> Relation:
    if isinstance(node, exp.Table):
        return await scan_table(x, node, where)
    if isinstance(node, exp.Subquery):
        alias = node.alias_or_name
        if not alias:
            raise E.SQLError("subquery in FROM must have an alias", "42601")
        return _rename(await run_query(x, node.this), alias, node)
    if isinstance(node, exp.Values):
        rel = await values_relation(x, node)
        alias = node.alias_or_name or "values"
        return _rename(rel, alias, node)
    raise E.unsupported(f"FROM {node.sql('postgres')[:60]!r}")


def _equi_keys(on: exp.Expression | None, ls: Scope, rs: Scope) -> tuple[list[int], list[int]]:
    from crdb_py.sql.planner import conjuncts

    lk: list[int] = []
    rk: list[int] = []
    for c in conjuncts(on):
        if isinstance(c, exp.EQ) and isinstance(c.this, exp.Column) and \
                isinstance(c.expression, exp.Column):
            for a, b in ((c.this, c.expression), (c.expression, c.this)):
                try:
                    i = ls.resolve(a.table or None, a.name)
                    j = rs.resolve(b.table or None, b.name)
                except E.SQLError:
                    continue
                lk.append(i)
                rk.append(j)
                break
    return lk, rk


async def _join(x: ExecCtx, left: Relation, j: exp.Join, where: exp.Expression | None) -> Relation:
    side = (j.side or "").upper()
    kind = (j.kind or "").upper()
    pad_left_rows = side in ("LEFT", "FULL")  # unmatched left rows are kept, right side NULL
    pad_right_rows = side in ("RIGHT", "FULL")
    right = await _source(x, j.this, None if pad_left_rows else where)
    on = j.args.get("on")
    if j.args.get("using"):
        left, right, on = _using(left, right, j, side)
    scope = left.scope + right.scope
    cond = Compiler(scope, x.ctx)(on) if on is not None else None
    pad = (None,) * len(right.scope.cols)
    lpad = (None,) * len(left.scope.cols)
    rows: list[tuple[Any, ...]] = []
    matched_right: set[int] = set()
    lk, rk = _equi_keys(on, left.scope, right.scope) if on is not None else ([], [])
    if kind == "CROSS" or on is None:
        lk = rk = []
    if lk:
        table: dict[tuple[Any, ...], list[tuple[int, tuple[Any, ...]]]] = {}
        for ri, r in enumerate(right.rows):
            key = tuple(r[i] for i in rk)
            if None not in key:
                table.setdefault(_hkey(key), []).append((ri, r))
        candidates = lambda lrow: (  # noqa: E731
            table.get(_hkey(k), ()) if None not in (k := tuple(lrow[i] for i in lk)) else ())
    else:
        indexed = list(enumerate(right.rows))
        candidates = lambda lrow: indexed  # noqa: E731
    tick = x.canceller.tick
    for lrow in left.rows:
        matched = False
        cands = candidates(lrow)
        await tick(len(cands) + 1)
        for ri, r in cands:
            row = lrow + r
            if cond is None or truthy(cond(row)):
                rows.append(row)
                matched = True
                matched_right.add(ri)
        if pad_left_rows and not matched:
            rows.append(lrow + pad)
    if pad_right_rows:
        rows += [lpad + r for ri, r in enumerate(right.rows) if ri not in matched_right]
    return Relation(scope, rows)


def _using(left: Relation, right: Relation, j: exp.Join,
           side: str) -> tuple[Relation, Relation, exp.Expression]:
    """JOIN ... USING (c, ...): ON l.c = r.c for each c, and the copy of c from
    the side that may be NULL-extended is hidden (so `c` and `*` name it once)."""
    if side == "FULL":
        raise E.unsupported("FULL JOIN ... USING")
    conds: list[exp.Expression] = []
    lcols, rcols = list(left.scope.cols), list(right.scope.cols)
    for ident in j.args["using"]:
        name = ident.name
        li = left.scope.resolve(None, name)
        ri = right.scope.resolve(None, name)
        conds.append(exp.EQ(this=exp.column(name, lcols[li].table),
                            expression=exp.column(name, rcols[ri].table)))
        if side == "RIGHT":
            c = lcols[li]
            lcols[li] = ScopeCol(c.table, c.name, c.type, hidden=True)
        else:
            c = rcols[ri]
            rcols[ri] = ScopeCol(c.table, c.name, c.type, hidden=True)
    on: exp.Expression = conds[0]
    for c2 in conds[1:]:
        on = exp.And(this=on, expression=c2)
    return Relation(Scope(lcols), left.rows), Relation(Scope(rcols), right.rows), on


def _hkey(key: tuple[Any, ...]) -> tuple[Any, ...]:
    """Hash key for joins/grouping: Python already hashes 1, 1.0 and Decimal(1) alike."""
    return key


def _expand(projs: list[exp.Expression], scope: Scope) -> list[exp.Expression]:
    out: list[exp.Expression] = []
    for p in projs:
        if isinstance(p, exp.Star):
            out += [exp.column(c.name, c.table) for c in scope.cols if not c.hidden]
        elif isinstance(p, exp.Column) and isinstance(p.this, exp.Star):
            tbl = p.table
            cols = [c for c in scope.cols if c.table == tbl and not c.hidden]
            if not cols:
                raise E.SQLError(f'no data source matches pattern: {tbl}.*', "42P01")
            out += [exp.column(c.name, c.table) for c in cols]
        else:
            out.append(p)
    return out


async def _select(x: ExecCtx, sel: exp.Select) -> Relation:
    where_node = sel.args.get("where")
    where = where_node.this if where_node is not None else None
    having = sel.args.get("having")
    group = sel.args.get("group")
    order = sel.args.get("order")
    await run_subqueries(x, [*sel.expressions, where, having.this if having else None,
                             order, *[j.args.get("on") for j in sel.args.get("joins") or []]])
    frm = _from(sel)
    if frm is None:
        rel = Relation(Scope([]), [()])
    else:
        joins = sel.args.get("joins") or []
        # A WHERE narrows the spans of scans; never those of a NULL-extended side.
        first_where = None if any((j.side or "").upper() in ("RIGHT", "FULL")
                                  for j in joins) else where
        rel = await _source(x, frm.this, first_where)
        for j in joins:
            rel = await _join(x, rel, j, first_where)
    await run_correlated(x, rel, [where])
    if where is not None:
        f = Compiler(rel.scope, x.ctx)(where)
        kept: list[tuple[Any, ...]] = []
        async for chunk in x.canceller.chunks(rel.rows):
            kept += [r for r in chunk if truthy(f(r))]
        rel = Relation(rel.scope, kept)
    await run_correlated(x, rel, list(sel.expressions))
    sig = tuple((c.table, c.name, c.hidden) for c in rel.scope.cols)
    projs = memoized(x.ctx, ("expand", sig), sel, lambda: _expand(list(sel.expressions), rel.scope))
    aggregating = group is not None or having is not None or memoized(
        x.ctx, ("has_agg", sig), sel, lambda: any(has_agg(p) for p in projs))
    comp = Compiler(rel.scope, x.ctx, agg=aggregating)
    items: list[Any]  # per output row: the input row, or (rep, rows) group
    if aggregating:
        gexprs = [_group_expr(g, projs, rel.scope) for g in (group.expressions if group else [])]
        gfns = [Compiler(rel.scope, x.ctx)(g) for g in gexprs]
        _check_grouped([p.this if isinstance(p, exp.Alias) else p for p in projs] +
                       ([having.this] if having is not None else []), gexprs, rel.scope)
        groups: dict[tuple[Any, ...], tuple[Any, list[Any]]] = {}
        async for chunk in x.canceller.chunks(rel.rows):
            for r in chunk:
                key = _hkey(tuple(g(r) for g in gfns))
                groups.setdefault(key, (r, []))[1].append(r)
        items = list(groups.values())
        if not gfns and not items:
            items = [(None, [])]
        if having is not None:
            hf = comp(having.this)
            items = [g for g in items if truthy(hf(g))]
    else:
        items = rel.rows
    wnodes = memoized(x.ctx, ("windows", sig), sel, lambda: window_nodes(
        [*projs, *(order.expressions if order is not None else [])]))
    if wnodes:
        await compute_windows(x, wnodes, rel.scope, items, aggregating)
    pfns = [comp(p.this if isinstance(p, exp.Alias) else p) for p in projs]
    names = [output_name(p) for p in projs]
    out: list[tuple[Any, ...]] = []
    if wnodes:  # window values are read by the position of the item
        for i, it in enumerate(items):
            x.ctx.window_row = i
            out.append(tuple(f(it) for f in pfns))
            if i % YIELD_EVERY == 0:
                await x.canceller.tick(YIELD_EVERY)
    else:
        async for chunk in x.canceller.chunks(items):
            out += [tuple(f(it) for f in pfns) for it in chunk]
    if order is not None:
        keys = []
        for o in order.expressions:
            e = o.this
            if isinstance(e, exp.Literal) and not e.is_string:
                i = int(e.this) - 1
                if not 0 <= i < len(names):
                    raise E.SQLError(f"ORDER BY position {i + 1} is not in select list", "42P10")
                keys.append(("out", i))
            elif isinstance(e, exp.Column) and not e.table and e.name in names and \
                    (names.count(e.name) == 1):
                keys.append(("out", names.index(e.name)))
            else:
                keys.append(("in", comp(e)))
        keyed = []
        for i, (it, o_row) in enumerate(zip(items, out)):
            if i % YIELD_EVERY == 0:
                await x.canceller.tick(YIELD_EVERY)
            x.ctx.window_row = i
            keyed.append((tuple(o_row[k] if kind == "out" else k(it) for kind, k in keys), o_row))
        out = _sorted(keyed, [bool(o.args.get("desc")) for o in order.expressions])
        x.canceller.check()  # the sort itself runs in one call
    if sel.args.get("distinct") is not None:
        seen: dict[tuple[Any, ...], None] = {}
        uniq = []
        async for chunk in x.canceller.chunks(out):
            for r in chunk:
                k = _hkey(r)
                if k not in seen:
                    seen[k] = None
                    uniq.append(r)
        out = uniq
    out = await _limit(x, sel, out)
    types = [_out_type(p, rel.scope, out, i) for i, p in enumerate(projs)]
    return Relation(Scope([ScopeCol(None, n, t) for n, t in zip(names, types)]), out)


def _group_expr(g: exp.Expression, projs: list[exp.Expression], scope: Scope) -> exp.Expression:
    """GROUP BY 2 / GROUP BY alias refer to the select list (as in PostgreSQL)."""
    if isinstance(g, exp.Literal) and not g.is_string:
        i = int(g.this) - 1
        if not 0 <= i < len(projs):
            raise E.SQLError(f"GROUP BY position {i + 1} is not in select list", "42P10")
        p = projs[i]
        return p.this if isinstance(p, exp.Alias) else p
    if isinstance(g, exp.Column) and not g.table:
        try:
            scope.resolve(None, g.name)
        except E.SQLError:
            for p in projs:
                if isinstance(p, exp.Alias) and p.alias == g.name:
                    return p.this
    return g


def _check_grouped(exprs: list[exp.Expression], gexprs: list[exp.Expression],
                   scope: Scope) -> None:
    """Outside aggregates, only grouped expressions may be referenced (42803)."""
    gcols = {scope.resolve(g.table or None, g.name) for g in gexprs if isinstance(g, exp.Column)}
    gsql = {g.sql() for g in gexprs if not isinstance(g, exp.Column)}

    def prune(n: exp.Expression) -> bool:  # a window's aggregate is not: sum(x) OVER ()
        return (isinstance(n, AGGS) and not isinstance(n.parent, exp.Window)) or isinstance(
            n, exp.Subquery | exp.Exists) or (
            bool(gsql) and not isinstance(n, exp.Column) and n.sql() in gsql)

    for e in exprs:
        for n in e.walk(prune=prune):
            if isinstance(n, exp.Column) and not isinstance(n.this, exp.Star) and \
                    (n.sql() not in gsql) and \
                    scope.resolve(n.table or None, n.name) not in gcols:
                raise E.SQLError(
                    f'column "{n.name}" must appear in the GROUP BY clause or be used in an '
                    "aggregate function", "42803")


def _out_type(p: exp.Expression, scope: Scope, rows: list[Any], i: int) -> T.SQLType:
    e = p.this if isinstance(p, exp.Alias) else p
    if isinstance(e, exp.Column):
        try:
            return scope.cols[scope.resolve(e.table or None, e.name)].type
        except E.SQLError:
            pass
    if isinstance(e, exp.Cast):
        return T.cast_target(e.to)
    if isinstance(e, exp.Count):
        return T.T_INT
    for r in rows:
        if r[i] is not None:
            return T.type_of(r[i])
    return T.T_UNKNOWN
