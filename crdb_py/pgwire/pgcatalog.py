"""Just enough `pg_catalog` for psql's `\\l`, `\\dt` and `\\d table`.

psql implements its backslash commands as catalog queries against
`pg_catalog` (pg_database, pg_class, pg_attribute, pg_index, ...), which the
SQL layer does not have. Rather than build those tables, this module
recognises the exact queries psql 13-15 sends (captured with `psql -E`
against this server; they are pinned in tests/pgwire/testdata/psql15_describe.sql) and
answers them from a small `Introspector` the session offers through
`catalog()`. A recognised query that psql only uses to probe optional
features (policies, statistics objects, publications, inheritance...)
gets the right columns and no rows.

Table OIDs are synthetic: `TABLE_OID_BASE + position` in the sorted table
list of the current database, stable for the few queries of one `\\d`.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from crdb_py.pgwire import pgtypes as P
from crdb_py.pgwire.backend import Column, StatementResult

TABLE_OID_BASE = 100_000
SERVER_VERSION = "13.0.0"
# Server parameters as ParameterStatus reports them at start-up; SHOW answers them too.
SERVER_PARAMS = {"server_version": SERVER_VERSION, "server_encoding": "UTF8",
                 "client_encoding": "UTF8", "DateStyle": "ISO, MDY", "IntervalStyle": "postgres",
                 "integer_datetimes": "on", "standard_conforming_strings": "on", "TimeZone": "UTC"}
_SHOW_EXTRA = {"transaction isolation level": "serializable", "transaction_isolation": "serializable",
               "default_transaction_isolation": "serializable", "server_version_num": "130000",
               "max_identifier_length": "63", "search_path": '"$user", public'}
_SHOWABLE = {k.lower(): (k, v) for k, v in SERVER_PARAMS.items()} | {
    k: (k.replace(" ", "_"), v) for k, v in _SHOW_EXTRA.items()}
_RE_SHOW = re.compile(r"^SHOW\s+(\w+(?:\s+\w+)*?)\s*;?$", re.I)
_RE_FUNC = re.compile(r"^SELECT\s+(?:pg_catalog\.)?(version|current_database|current_schema|"
                      r"current_user|session_user)\s*(?:\(\s*\))?\s*;?$", re.I)


@dataclass(frozen=True, slots=True)
class ColumnInfo:
    name: str
    type_name: str  # as format_type() would print it: "bigint", "text", ...
    not_null: bool
    default: str | None


@dataclass(frozen=True, slots=True)
class TableInfo:
    name: str
    columns: list[ColumnInfo]
    indexes: list[tuple[str, bool, list[str]]]  # (name, unique, columns); primary first


class Introspector(Protocol):
    user: str

    def current_database(self) -> str: ...

    async def databases(self) -> list[str]: ...

    async def tables(self) -> list[TableInfo]:
        """The tables of the session's current database, any order."""
        ...


def _cols(*spec: str) -> list[Column]:
    out = []
    for s in spec:
        name, _, t = s.partition(":")
        out.append(Column(name, {"b": P.BOOL, "o": P.OID, "i": P.INT4, "c": P.CHAR}.get(t, P.TEXT)))
    return out


_L_COLS = _cols("Name", "Owner", "Encoding", "Collate", "Ctype", "ICU Locale", "Locale Provider",
                "Access privileges")
_DT_COLS = _cols("Schema", "Name", "Type", "Owner")
_RE_REGEX = re.compile(r"OPERATOR\(pg_catalog\.~\) '((?:[^']|'')*)'")
_RE_OID = re.compile(r"(?:c\.oid|attrelid|indrelid|conrelid|inhrelid|inhparent|starelid|"
                     r"stxrelid|polrelid|prrelid|r\.oid|c2\.oid|i\.indrelid|pr\.prrelid)\s*=\s*'?(\d+)'?")


def _norm(sql: str) -> str:
    return " ".join(sql.split())


def recognizes(sql: str) -> bool:
    return _route(_norm(sql)) is not None


def answer(sql: str, session: Any) -> Awaitable[StatementResult] | None:
    """A coroutine answering a recognised psql catalog query, else None."""
    s = _norm(sql)
    route = _route(s)
    cat = getattr(session, "catalog", None)
    intro = cat() if callable(cat) else None
    if route is None or intro is None:
        return None
    return route(s, intro)


def _route(s: str) -> Any:
    m = _RE_SHOW.match(s)
    if m and m.group(1).lower() in _SHOWABLE:
        return _show
    if _RE_FUNC.match(s):
        return _function
    if "pg_catalog." not in s and "pg_" not in s:
        return None
    for needle, fn in _ROUTES:
        if all(n in s for n in needle):
            return fn
    if re.search(r"\b(FROM|JOIN) pg_catalog\.pg_\w+", s):
        return _empty  # an optional feature probe (policies, statistics, inheritance...)
    return None


def _result(cols: list[Column], rows: Sequence[tuple[Any, ...]]) -> StatementResult:
    return StatementResult(f"SELECT {len(rows)}", cols, list(rows))


def _filter(s: str, names: list[str]) -> list[str]:
    m = _RE_REGEX.search(s)
    if m is None:
        return names
    rx = re.compile(m.group(1).replace("''", "'"))
    return [n for n in names if rx.fullmatch(n) or rx.match(n)]


async def _sorted_tables(intro: Introspector) -> list[TableInfo]:
    return sorted(await intro.tables(), key=lambda t: t.name)


async def _table_for(s: str, intro: Introspector) -> TableInfo | None:
    m = _RE_OID.search(s)
    if m is None:
        return None
    i = int(m.group(1)) - TABLE_OID_BASE
    tables = await _sorted_tables(intro)
    return tables[i] if 0 <= i < len(tables) else None


async def _list_databases(s: str, intro: Introspector) -> StatementResult:
    rows = [(d, "root", "UTF8", "C.UTF-8", "C.UTF-8", None, "libc", None)
            for d in sorted(await intro.databases())]
    return _result(_L_COLS, rows)


async def _list_tables(s: str, intro: Introspector) -> StatementResult:
    kinds = re.search(r"c\.relkind IN \(([^)]*)\)", s)
    if kinds is not None and "'r'" not in kinds.group(1):  # \di, \dv, \ds: only tables exist
        return _result(_DT_COLS, [])
    names = _filter(s, [t.name for t in await _sorted_tables(intro)])
    return _result(_DT_COLS, [("public", n, "table", "root") for n in names])


async def _lookup_oid(s: str, intro: Introspector) -> StatementResult:
    tables = await _sorted_tables(intro)
    keep = set(_filter(s, [t.name for t in tables]))
    rows = [(TABLE_OID_BASE + i, "public", t.name) for i, t in enumerate(tables) if t.name in keep]
    return _result(_cols("oid:o", "nspname", "relname"), rows)


async def _show(s: str, intro: Introspector) -> StatementResult:
    m = _RE_SHOW.match(s)
    assert m is not None
    name, value = _SHOWABLE[m.group(1).lower()]
    return StatementResult("SHOW", _cols(name), [(value,)])


async def _function(s: str, intro: Introspector) -> StatementResult:
    m = _RE_FUNC.match(s)
    assert m is not None
    fn = m.group(1).lower()
    value = {"version": f"PostgreSQL {SERVER_VERSION} (crdb-py)", "current_schema": "public",
             "current_database": intro.current_database()}.get(fn)
    return _result(_cols(fn), [(intro.user if value is None else value,)])


async def _list_schemas(s: str, intro: Introspector) -> StatementResult:
    return _result(_cols("Name", "Owner"), [("public", "root")])


async def _list_roles(s: str, intro: Introspector) -> StatementResult:
    cols = _cols("rolname", "rolsuper:b", "rolinherit:b", "rolcreaterole:b", "rolcreatedb:b",
                 "rolcanlogin:b", "rolconnlimit:i", "rolvaliduntil", "memberof",
                 "rolreplication:b", "rolbypassrls:b")
    users = sorted({"root", intro.user})
    return _result(cols, [(u, u == "root", True, u == "root", u == "root", True, -1, None, "{}",
                           False, False) for u in users])


async def _empty(s: str, intro: Introspector) -> StatementResult:
    return _result(_cols("?column?"), [])


async def _table_flags(s: str, intro: Introspector) -> StatementResult:
    t = await _table_for(s, intro)
    cols = _cols("relchecks:i", "relkind:c", "relhasindex:b", "relhasrules:b", "relhastriggers:b",
                 "relrowsecurity:b", "relforcerowsecurity:b", "relhasoids:b", "relispartition:b",
                 "?column?", "reltablespace:o", "reloftype", "relpersistence:c", "relreplident:c",
                 "amname")
    rows = [] if t is None else [(0, "r", bool(t.indexes), False, False, False, False, False,
                                  False, "", 0, "", "p", "d", "heap")]
    return _result(cols, rows)


async def _table_columns(s: str, intro: Introspector) -> StatementResult:
    t = await _table_for(s, intro)
    cols = _cols("attname", "format_type", "pg_get_expr", "attnotnull:b", "attcollation",
                 "attidentity:c", "attgenerated:c")
    rows = [] if t is None else [(c.name, c.type_name, c.default, c.not_null, None, "", "")
                                 for c in t.columns]
    return _result(cols, rows)


async def _table_indexes(s: str, intro: Introspector) -> StatementResult:
    t = await _table_for(s, intro)
    cols = _cols("relname", "indisprimary:b", "indisunique:b", "indisclustered:b", "indisvalid:b",
                 "pg_get_indexdef", "pg_get_constraintdef", "contype:c", "condeferrable:b",
                 "condeferred:b", "indisreplident:b", "reltablespace:o")
    rows = []
    for i, (name, unique, on) in enumerate(t.indexes if t is not None else []):
        assert t is not None
        primary = i == 0 and name.endswith("_pkey")
        kind = "UNIQUE INDEX" if unique else "INDEX"
        ddl = f"CREATE {kind} {name} ON public.{t.name} USING btree ({', '.join(on)})"
        cdef = f"PRIMARY KEY ({', '.join(on)})" if primary else None
        rows.append((name, primary, unique, False, True, ddl, cdef, "p" if primary else None,
                     False, False, False, 0))
    return _result(cols, rows)


_ROUTES: list[tuple[tuple[str, ...], Any]] = [
    (("FROM pg_catalog.pg_database d",), _list_databases),
    (('as "Schema"', "FROM pg_catalog.pg_class c", "c.relkind IN"), _list_tables),
    (("SELECT c.oid, n.nspname, c.relname FROM pg_catalog.pg_class c",), _lookup_oid),
    (("SELECT c.relchecks, c.relkind, c.relhasindex",), _table_flags),
    (("SELECT a.attname,", "FROM pg_catalog.pg_attribute a"), _table_columns),
    (("pg_catalog.pg_get_indexdef(i.indexrelid", "pg_catalog.pg_index i"), _table_indexes),
    (('SELECT n.nspname AS "Name"', "FROM pg_catalog.pg_namespace n"), _list_schemas),
    (("SELECT r.rolname, r.rolsuper", "FROM pg_catalog.pg_roles r"), _list_roles),
]
