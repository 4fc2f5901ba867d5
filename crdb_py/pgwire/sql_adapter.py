"""The wire server's backend over the real SQL layer (`crdb_py.sql.session`).

`SQLAdapterBackend(store)` opens a `crdb_py.sql.session.Session` per client
connection over a `KVStore` (a node's KV `DB`). This module maps the SQL
layer onto the seam in backend.py:

* types: `SQLType` families -> PostgreSQL OIDs (INT2/4/8, FLOAT -> float8,
  DECIMAL -> numeric, STRING -> text / varchar, BOOL, BYTES -> bytea, DATE,
  TIMESTAMP, TIMESTAMPTZ, UUID; an untyped NULL column -> text);
* transaction state: NoTxn -> 'I', Open / CommitWait -> 'T', Aborted -> 'E';
* errors: the session raises `CrdbError`s, which already carry SQLSTATE;
* `prepare` parses the statement (so syntax errors surface at Parse) and
  counts its `$n` placeholders; result columns of queries are not known
  before execution (the server runs the portal when the client Describes it);
* `catalog()` answers psql's `\\l` / `\\dt` / `\\d` (pgcatalog.py) with SHOW
  statements run on the same session.

Passwords: by default `password_verifier(user)` reads the SCRAM verifier
that `CREATE USER ... PASSWORD` stored in KV (crdb_py/sql/users.py); a
`lookup(user)` coroutine replaces that read, and a static `{user: verifier}`
map is the fallback for users neither knows.

Cancel: `cancel()` sets the session's cancel flag; the executor yields to
the event loop every few rows, so the server's task cancel (and the flag)
take effect even in the middle of a CPU-bound statement.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from crdb_py.pgwire import pgtypes as P
from crdb_py.pgwire.backend import Column, PreparedInfo, StatementResult, TxnStatus
from crdb_py.pgwire.pgcatalog import ColumnInfo, TableInfo
from crdb_py.sql import types as T
from crdb_py.sql.catalog import DEFAULT_DB
from crdb_py.sql.errors import SQLError
from crdb_py.sql.kv import KVStore
from crdb_py.sql.parse import split_statements
from crdb_py.sql.session import Session, TxnState
from crdb_py.sql.users import lookup_verifier

_FAMILY_OID = {T.FLOAT: P.FLOAT8, T.DECIMAL: P.NUMERIC, T.BOOL: P.BOOL, T.BYTES: P.BYTEA,
               T.DATE: P.DATE, T.TIMESTAMP: P.TIMESTAMP, T.TIMESTAMPTZ: P.TIMESTAMPTZ,
               T.UUID: P.UUID, T.INTERVAL: P.INTERVAL, T.UNKNOWN: P.TEXT}
_STATUS: dict[TxnState, TxnStatus] = {TxnState.NO_TXN: "I", TxnState.OPEN: "T",
                                      TxnState.COMMIT_WAIT: "T", TxnState.ABORTED: "E"}
# SHOW COLUMNS' data_type -> what PostgreSQL's format_type() prints
_FORMAT_TYPE = {"INT2": "smallint", "INT4": "integer", "INT8": "bigint", "FLOAT": "double precision",
                "DECIMAL": "numeric", "STRING": "text", "BOOL": "boolean", "BYTES": "bytea",
                "DATE": "date", "TIMESTAMP": "timestamp without time zone",
                "TIMESTAMPTZ": "timestamp with time zone", "UUID": "uuid"}
_PLACEHOLDER = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\$(\d+)")


def type_oid(t: T.SQLType) -> int:
    if t.family == T.INT:
        return {2: P.INT2, 4: P.INT4}.get(t.width, P.INT8)
    if t.family == T.STRING:
        return P.VARCHAR if t.width else P.TEXT
    return _FAMILY_OID.get(t.family, P.TEXT)


def format_type(data_type: str) -> str:
    m = re.fullmatch(r"VARCHAR\((\d+)\)", data_type)
    if m:
        return f"character varying({m.group(1)})"
    return _FORMAT_TYPE.get(data_type, data_type.lower())


def placeholder_count(sql: str) -> int:
    return max((int(m.group(1)) for m in _PLACEHOLDER.finditer(sql) if m.group(1)), default=0)


class SQLAdapterSession:
    def __init__(self, session: Session, user: str) -> None:
        self.session = session
        self.user = user

    def split(self, sql: str) -> list[str]:
        return [s for s in split_statements(sql) if s.strip()]

    async def execute(self, sql: str, params: Sequence[Any] | None = None) -> StatementResult:
        res = await self.session.execute(sql, list(params or ()))
        cols = [Column(name, type_oid(t)) for name, t in res.columns]
        tag = res.tag or (f"SELECT {len(res.rows)}" if cols else "")
        return StatementResult(tag, cols, res.rows)

    async def prepare(self, sql: str, param_oids: Sequence[int]) -> PreparedInfo:
        stmt = self.session.cache.get(sql)  # raises the statement's syntax error now
        n = max(placeholder_count(sql), len(param_oids))
        oids = list(param_oids) + [0] * (n - len(param_oids))
        returns_rows = stmt.kind in ("query", "show", "explain", "explain_analyze", "split",
                                     "show_users") or (
            stmt.ast is not None and stmt.ast.args.get("returning") is not None)
        return PreparedInfo(oids, None if returns_rows else [])

    def txn_status(self) -> TxnStatus:
        return _STATUS[self.session.state]

    def cancel(self) -> None:
        # The server also cancels the statement's task; the session rolls back on either.
        self.session.cancel()

    async def close(self) -> None:
        await self.session.close()

    def catalog(self) -> SQLAdapterSession:
        return self

    # Introspector ----------------------------------------------------------------------------
    def current_database(self) -> str:
        return self.session.database

    async def databases(self) -> list[str]:
        return [r[0] for r in (await self.session.execute("SHOW DATABASES")).rows]

    async def tables(self) -> list[TableInfo]:
        out = []
        for (name,) in (await self.session.execute("SHOW TABLES")).rows:
            cols = [ColumnInfo(c, format_type(dt), not nullable, default)
                    for c, dt, nullable, default, hidden
                    in (await self.session.execute(f"SHOW COLUMNS FROM {name}")).rows
                    if not hidden]
            idx: dict[str, tuple[bool, list[str]]] = {}
            for _, iname, non_unique, _, col in (
                    await self.session.execute(f"SHOW INDEXES FROM {name}")).rows:
                idx.setdefault(iname, (not non_unique, []))[1].append(col)
            indexes = [(n, u, c) for n, (u, c) in idx.items()]
            out.append(TableInfo(name, cols, indexes))
        return out


class SQLAdapterBackend:
    """`SQLBackend` over a node's KV store. `store` may be a callable returning
    the store, or None while the node has not joined a cluster yet (sessions
    are then refused with 57P03, "cannot connect now")."""

    def __init__(self, store: KVStore | Callable[[], KVStore | None], *,
                 verifiers: Mapping[str, str] | None = None,
                 lookup: Callable[[str], Awaitable[str | None]] | None = None) -> None:
        self._store = store
        self.verifiers = dict(verifiers or {})
        self._lookup = lookup if lookup is not None else self._read_users

    async def new_session(self, user: str, database: str) -> SQLAdapterSession:
        store = self._store() if callable(self._store) else self._store
        if store is None:
            raise SQLError("the node is not initialized yet: run `crdb-py init` or wait for "
                           "it to join its cluster", "57P03")
        # As in CockroachDB, connecting to a database that does not exist succeeds;
        # statements then fail with 3D000 until `CREATE DATABASE` or `USE`.
        s = Session(store, database=(database or DEFAULT_DB).lower())
        return SQLAdapterSession(s, user)

    async def _read_users(self, user: str) -> str | None:
        store = self._store() if callable(self._store) else self._store
        return None if store is None else await lookup_verifier(store, user)

    async def password_verifier(self, user: str) -> str | None:
        v = await self._lookup(user)
        return v if v is not None else self.verifiers.get(user)
