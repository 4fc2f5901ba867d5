"""A dict-backed toy SQL backend for the wire-server tests.

It understands just enough: CREATE TABLE t (col TYPE, ...), INSERT INTO t
VALUES (...), ... (literals or $n), SELECT * / col list FROM t [WHERE col =
lit|$n], SELECT <literal or $n>[, ...], SELECT pg_sleep(s) (cancellable),
SELECT 1/0 (22012), BEGIN / COMMIT / ROLLBACK with PostgreSQL's failed-
transaction state, and anything else is a syntax error (42601). Writes inside
a transaction are buffered and applied at COMMIT. Every statement it
receives is appended to `backend.log` (the psql tests read it).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from crdb_py.pgwire import pgtypes as P
from crdb_py.pgwire.backend import Column, PreparedInfo, StatementResult, TxnStatus
from crdb_py.pgwire.pgcatalog import ColumnInfo, TableInfo


class FakeError(Exception):
    def __init__(self, sqlstate: str, msg: str) -> None:
        super().__init__(msg)
        self.sqlstate = sqlstate


_TYPES = {"int": P.INT8, "integer": P.INT8, "bigint": P.INT8, "text": P.TEXT, "string": P.TEXT,
          "bool": P.BOOL, "boolean": P.BOOL, "float": P.FLOAT8, "bytea": P.BYTEA}
_TOKEN = re.compile(r"\s*(?:(\$\d+)|'((?:[^']|'')*)'|(-?\d+\.\d+)|(-?\d+)|(NULL|TRUE|FALSE))\s*(?:,|$)",
                    re.I)


@dataclass
class Table:
    columns: list[Column]
    not_null: set[str] = field(default_factory=set)
    pk: str | None = None
    rows: list[tuple[Any, ...]] = field(default_factory=list)


def _values(text: str, params: Sequence[Any]) -> list[Any]:
    out: list[Any] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise FakeError("42601", f"syntax error at or near {text[pos:pos + 10]!r}")
        ph, s, f, i, kw = m.groups()
        if ph is not None:
            n = int(ph[1:])
            if n > len(params):
                raise FakeError("08P01", f"no value for parameter {ph}")
            out.append(params[n - 1])
        elif s is not None:
            out.append(s.replace("''", "'"))
        elif f is not None:
            out.append(float(f))
        elif i is not None:
            out.append(int(i))
        else:
            out.append({"null": None, "true": True, "false": False}[kw.lower()])
        pos = m.end()
    return out


def _coerce(v: Any, c: Column) -> Any:
    """An untyped (text) parameter takes its column's type, as in PostgreSQL."""
    if isinstance(v, str) and c.type_oid == P.INT8:
        try:
            return int(v)
        except ValueError:
            raise FakeError("22P02", f"invalid input syntax for type bigint: {v!r}") from None
    return v


def _oid_of(v: Any) -> int:
    if isinstance(v, bool):
        return P.BOOL
    if isinstance(v, int):
        return P.INT8
    if isinstance(v, float):
        return P.FLOAT8
    return P.TEXT


class FakeSession:
    def __init__(self, backend: FakeBackend, user: str, database: str) -> None:
        self.backend = backend
        self.user = user
        self.database = database
        self.state: TxnStatus = "I"
        self.pending: list[tuple[str, tuple[Any, ...]]] = []
        self._cancel = asyncio.Event()
        self.closed = False

    # SQLSession ---------------------------------------------------------------------------------
    def split(self, sql: str) -> list[str]:
        return [s.strip() for s in sql.split(";") if s.strip()]

    async def prepare(self, sql: str, param_oids: Sequence[int]) -> PreparedInfo:
        low = sql.strip().lower()
        if not low or low.split()[0] not in ("select", "insert", "create", "begin", "commit",
                                             "rollback", "show", "drop"):
            raise FakeError("42601", f"syntax error at or near {sql.split()[0]!r}" if sql.split()
                            else "syntax error")
        n = max((int(x) for x in re.findall(r"\$(\d+)", sql)), default=0)
        oids = list(param_oids) + [0] * (n - len(param_oids))
        m = re.match(r"select\s+(.*?)\s+from\s+(\w+)", sql, re.I | re.S)
        cols: list[Column] | None = None
        if m and m.group(2) in self.backend.tables:
            cols = self._project(self.backend.tables[m.group(2)], m.group(1))[0]
        elif not low.startswith(("select", "show")):
            cols = []
        return PreparedInfo(oids, cols)

    async def execute(self, sql: str, params: Sequence[Any] | None = None) -> StatementResult:
        self.backend.log.append(sql)
        params = list(params or [])
        low = sql.strip().rstrip(";").lower()
        if low in ("begin", "start transaction"):
            if self.state != "I":
                raise FakeError("25001", "there is already a transaction in progress")
            self.state = "T"
            return StatementResult("BEGIN")
        if low in ("commit", "end"):
            tag = "ROLLBACK" if self.state == "E" else "COMMIT"
            if self.state == "T":
                for t, row in self.pending:
                    self.backend.tables[t].rows.append(row)
            self.pending, self.state = [], "I"
            return StatementResult(tag)
        if low == "rollback":
            self.pending, self.state = [], "I"
            return StatementResult("ROLLBACK")
        if self.state == "E":
            raise FakeError("25P02", "current transaction is aborted, commands ignored until "
                            "end of transaction block")
        try:
            return await self._exec(sql, params)
        except BaseException:
            if self.state == "T":
                self.state = "E"
            raise

    def txn_status(self) -> TxnStatus:
        return self.state

    def cancel(self) -> None:
        self._cancel.set()

    async def close(self) -> None:
        self.closed = True

    def catalog(self) -> FakeSession:
        return self

    # Introspector (crdb_py/pgwire/pgcatalog.py) ----------------------------------------------
    def current_database(self) -> str:
        return self.database

    async def databases(self) -> list[str]:
        return ["defaultdb", "postgres"]

    async def tables(self) -> list[TableInfo]:
        return [TableInfo(n, [ColumnInfo(c.name, P.NAMES[c.type_oid], c.name in t.not_null, None)
                              for c in t.columns],
                          [(f"{n}_pkey", True, [t.pk])] if t.pk else [])
                for n, t in sorted(self.backend.tables.items())]

    # the toy executor ----------------------------------------------------------------------------
    async def _exec(self, sql: str, params: list[Any]) -> StatementResult:
        s = sql.strip().rstrip(";")
        m = re.fullmatch(r"create table (\w+) \((.*)\)", s, re.I | re.S)
        if m:
            name = m.group(1)
            if name in self.backend.tables:
                raise FakeError("42P07", f'relation "{name}" already exists')
            cols, nn, pk = [], set(), None
            for part in m.group(2).split(","):
                words = part.split()
                if words[1].lower() not in _TYPES:
                    raise FakeError("42704", f'type "{words[1]}" does not exist')
                cols.append(Column(words[0], _TYPES[words[1].lower()]))
                if "not null" in part.lower() or "primary key" in part.lower():
                    nn.add(words[0])
                if "primary key" in part.lower():
                    pk = words[0]
            self.backend.tables[name] = Table(cols, nn, pk)
            return StatementResult("CREATE TABLE")
        m = re.fullmatch(r"insert into (\w+) values\s*(.*)", s, re.I | re.S)
        if m:
            t = self._table(m.group(1))
            tuples = re.findall(r"\(([^()]*)\)", m.group(2))
            rows = []
            for tup in tuples:
                vals = _values(tup, params)
                if len(vals) != len(t.columns):
                    raise FakeError("42601", f"INSERT has {len(vals)} values, expected "
                                    f"{len(t.columns)}")
                vals = [_coerce(v, c) for v, c in zip(vals, t.columns, strict=True)]
                for c, v in zip(t.columns, vals, strict=True):
                    if v is None and c.name in t.not_null:
                        raise FakeError("23502", f'null value in column "{c.name}" violates '
                                        "not-null constraint")
                    if v is not None and c.type_oid == P.INT8 and not isinstance(v, int):
                        raise FakeError("22P02", f"invalid input syntax for type bigint: {v!r}")
                rows.append(tuple(vals))
            for row in rows:
                if self.state == "T":
                    self.pending.append((m.group(1), row))
                else:
                    t.rows.append(row)
            return StatementResult(f"INSERT 0 {len(rows)}")
        m = re.fullmatch(r"select pg_sleep\((\d+(?:\.\d+)?)\)", s, re.I)
        if m:
            self._cancel.clear()
            try:
                await asyncio.wait_for(self._cancel.wait(), float(m.group(1)))
            except TimeoutError:
                return StatementResult("SELECT 1", [Column("pg_sleep", P.TEXT)], [("",)])
            raise FakeError("57014", "canceling statement due to user request")
        if re.fullmatch(r"select\s+\d+\s*/\s*0", s, re.I):
            raise FakeError("22012", "division by zero")
        m = re.fullmatch(r"select (.*?) from (\w+)(?: where (\w+) = (.*))?", s, re.I | re.S)
        if m:
            t = self._table(m.group(2))
            cols, idx = self._project(t, m.group(1))
            rows = t.rows + [r for tn, r in self.pending if tn == m.group(2)]
            if m.group(3):
                where = [i for i, c in enumerate(t.columns) if c.name == m.group(3)]
                if not where:
                    raise FakeError("42703", f'column "{m.group(3)}" does not exist')
                want = _values(m.group(4), params)[0]
                rows = [r for r in rows if r[where[0]] == want]
            out = [tuple(r[i] for i in idx) for r in rows]
            return StatementResult(f"SELECT {len(out)}", cols, out)
        m = re.fullmatch(r"select (.*)", s, re.I | re.S)
        if m:
            vals = _values(m.group(1), params)
            cols = [Column(f"?column?{i}" if i else "?column?", _oid_of(v))
                    for i, v in enumerate(vals)]
            return StatementResult("SELECT 1", cols, [tuple(vals)])
        raise FakeError("42601", f"syntax error at or near {s.split()[0]!r}" if s else "syntax error")

    def _table(self, name: str) -> Table:
        t = self.backend.tables.get(name)
        if t is None:
            raise FakeError("42P01", f'relation "{name}" does not exist')
        return t

    def _project(self, t: Table, what: str) -> tuple[list[Column], list[int]]:
        if what.strip() == "*":
            return list(t.columns), list(range(len(t.columns)))
        idx = []
        for name in (w.strip() for w in what.split(",")):
            found = [i for i, c in enumerate(t.columns) if c.name == name]
            if not found:
                raise FakeError("42703", f'column "{name}" does not exist')
            idx.append(found[0])
        return [t.columns[i] for i in idx], idx


class FakeBackend:
    def __init__(self, users: dict[str, str] | None = None) -> None:
        self.tables: dict[str, Table] = {}
        self.verifiers = dict(users or {})  # user -> SCRAM verifier
        self.log: list[str] = []
        self.sessions: list[FakeSession] = []

    async def new_session(self, user: str, database: str) -> FakeSession:
        if database not in ("defaultdb", "postgres", user):
            raise FakeError("3D000", f'database "{database}" does not exist')
        s = FakeSession(self, user, database)
        self.sessions.append(s)
        return s

    async def password_verifier(self, user: str) -> str | None:
        return self.verifiers.get(user)
