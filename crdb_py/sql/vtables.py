"""Relations that are not stored tables: `information_schema` views and the
`generate_series` table function.

`information_schema.{tables, columns, schemata}` are built, when a FROM
clause names them, from the catalog of the current database (or of the
database qualifying them: `db.information_schema.tables`), read in the
statement's transaction like any descriptor — so they see the
transaction's own DDL. The result is an ordinary `Relation`: WHERE, joins,
ORDER BY and aggregates work on it as on a scanned table. They cannot be
written (42501, as CockroachDB answers for a missing privilege).

`generate_series(start, stop[, step])` yields INT (or DECIMAL) values, or
TIMESTAMPs with an INTERVAL step, from start to stop inclusive; its
arguments are evaluated once (no LATERAL references to other FROM items).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlglot import exp

from crdb_py.sql import errors as E
from crdb_py.sql import types as T
from crdb_py.sql.catalog import TableDesc
from crdb_py.sql.expr import Compiler, Scope, ScopeCol
from crdb_py.sql.runtime import ExecCtx, Relation

INFO_SCHEMA = "information_schema"
MAX_SERIES = 10_000_000  # rows; a larger series is almost surely a mistake (54000)

# What PostgreSQL's information_schema.columns.data_type says for our types.
_PG_TYPE = {"INT2": "smallint", "INT4": "integer", "INT8": "bigint",
            "FLOAT": "double precision", "DECIMAL": "numeric", "STRING": "text",
            "BOOL": "boolean", "BYTES": "bytea", "DATE": "date",
            "TIMESTAMP": "timestamp without time zone",
            "TIMESTAMPTZ": "timestamp with time zone", "UUID": "uuid", "INTERVAL": "interval"}

_S, _I = T.T_STRING, T.T_INT
_VIEWS: dict[str, list[tuple[str, T.SQLType]]] = {
    "tables": [("table_catalog", _S), ("table_schema", _S), ("table_name", _S),
               ("table_type", _S)],
    "columns": [("table_catalog", _S), ("table_schema", _S), ("table_name", _S),
                ("column_name", _S), ("ordinal_position", _I), ("column_default", _S),
                ("is_nullable", _S), ("data_type", _S), ("character_maximum_length", _I)],
    "schemata": [("catalog_name", _S), ("schema_name", _S), ("schema_owner", _S)],
}


def is_info_schema(t: exp.Table) -> bool:
    db = t.args.get("db")
    return isinstance(t, exp.Table) and db is not None and db.name.lower() == INFO_SCHEMA


def data_type(t: T.SQLType) -> str:
    if t.family == T.STRING and t.width:
        return "character varying"
    return _PG_TYPE.get(str(t), str(t).lower())


async def info_schema(x: ExecCtx, t: exp.Table) -> Relation:
    """The rows of one information_schema view."""
    name = t.name.lower()
    cols = _VIEWS.get(name)
    if cols is None:
        raise E.undefined_table(f"{INFO_SCHEMA}.{t.name}")
    db_name, db_id = x.db_name, x.db_id
    cat = t.args.get("catalog")
    if cat is not None:
        db_name = cat.name
        found = await x.catalog.database_id(db_name)
        if found is None:
            raise E.undefined_database(db_name)
        db_id = found
    if x.explain is not None:
        x.explain.append(f"virtual table {INFO_SCHEMA}.{name}")
    rows: list[tuple[Any, ...]] = []
    if name == "schemata":
        rows = [(db_name, s, "root" if s == "public" else "node")
                for s in (INFO_SCHEMA, "public")]
    else:
        descs: list[TableDesc] = sorted(await x.catalog.list_tables(db_id), key=lambda d: d.name)
        for d in descs:
            if name == "tables":
                rows.append((db_name, "public", d.name, "BASE TABLE"))
                continue
            for pos, c in enumerate(d.visible_columns, start=1):
                rows.append((db_name, "public", d.name, c.name, pos, c.default,
                             "YES" if c.nullable else "NO", data_type(c.type),
                             c.type.width if c.type.family == T.STRING and c.type.width
                             else None))
    alias = t.alias_or_name
    return Relation(Scope([ScopeCol(alias, n, ty) for n, ty in cols]), rows)


def is_series(t: exp.Expression) -> bool:
    return isinstance(t, exp.Table) and isinstance(
        t.this, exp.ExplodingGenerateSeries | exp.GenerateSeries)


async def generate_series(x: ExecCtx, t: exp.Table) -> Relation:
    g = t.this
    comp = Compiler(Scope([]), x.ctx)
    args = [g.args.get("start"), g.args.get("end"), g.args.get("step")]
    if args[0] is None or args[1] is None:
        raise E.SQLError("unknown signature: generate_series() needs a start and a stop", "42883")
    start, stop, step = (comp(a)(()) if a is not None else None for a in args)
    rows: list[tuple[Any, ...]]
    if start is None or stop is None or (args[2] is not None and step is None):
        rows = []
    elif isinstance(start, dt.date) or isinstance(stop, dt.date):
        rows = _time_series(start, stop, step)
    else:
        rows = _num_series(start, stop, 1 if step is None else step)
    ta = t.args.get("alias")
    alias = t.alias_or_name or "generate_series"
    col = "generate_series"
    if isinstance(ta, exp.TableAlias) and ta.columns:
        col = ta.columns[0].name
    elif not t.alias:
        alias = "generate_series"
    typ = T.type_of(rows[0][0]) if rows else T.T_INT
    await x.canceller.tick(len(rows))
    return Relation(Scope([ScopeCol(alias, col, typ)]), rows)


def _num_series(start: Any, stop: Any, step: Any) -> list[tuple[Any, ...]]:
    for v in (start, stop, step):
        if isinstance(v, bool) or not isinstance(v, int | Decimal):
            raise E.SQLError(f"unknown signature: generate_series({T.type_of(start)}, "
                             f"{T.type_of(stop)}, {T.type_of(step)})", "42883")
    if step == 0:
        raise E.SQLError("step cannot equal zero", "22023")
    n = int((stop - start) // step) + 1
    if n > MAX_SERIES:
        raise E.SQLError(f"generate_series would return {n} rows (at most {MAX_SERIES})", "54000")
    return [(start + i * step,) for i in range(max(n, 0))]


def _time_series(start: Any, stop: Any, step: Any) -> list[tuple[Any, ...]]:
    if not isinstance(step, T.Interval):
        raise E.SQLError("unknown signature: generate_series(timestamp, timestamp) needs an "
                         "INTERVAL step", "42883")
    from crdb_py.sql.builtins import temporal

    a, b = T.assign(start, T.T_TIMESTAMP), T.assign(stop, T.T_TIMESTAMP)
    if isinstance(start, dt.datetime) and start.tzinfo is not None:
        a, b = T.assign(start, T.T_TIMESTAMPTZ), T.assign(stop, T.T_TIMESTAMPTZ)
    zero = T.Interval()
    if step == zero:
        raise E.SQLError("step cannot equal zero", "22023")
    rows: list[tuple[Any, ...]] = []
    cur, i = a, 0
    while (cur <= b) if step > zero else (cur >= b):
        rows.append((cur,))
        i += 1
        if i > MAX_SERIES:
            raise E.SQLError(f"generate_series would return more than {MAX_SERIES} rows",
                             "54000")
        cur = temporal(a, step.scale(i), "+")  # from the start: month steps do not drift
    return rows
