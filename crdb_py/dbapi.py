"""PEP 249 (DB-API 2.0) interface: `crdb_py.connect(target)`.

>>> import crdb_py                                        # doctest: +SKIP
>>> conn = crdb_py.connect()            # in-memory single node
>>> cur = conn.cursor()
>>> cur.execute("CREATE TABLE kv (k INT PRIMARY KEY, v STRING)")
>>> cur.execute("INSERT INTO kv VALUES (%s, %s)", (1, "one")); conn.commit()
>>> cur.execute("SELECT v FROM kv WHERE k = $1", (1,)); cur.fetchone()
('one',)

paramstyle is "format" (`%s`, as psycopg); `$1`-style and, with a mapping,
`%(name)s` ("pyformat") are accepted too. As PEP 249 asks, a connection
opens a transaction implicitly at the first statement and keeps it open
until `commit()` / `rollback()`; set `conn.autocommit = True` for
CockroachDB's statement-at-a-time mode, where each statement commits on its
own and is retried automatically on contention. `with conn:` commits on
success and rolls back on error (the connection stays open, as in sqlite3
and psycopg). Errors carry `.sqlstate` (also `.pgcode`); SQLSTATE 40001
means "retry the transaction": `crdb_py.run_transaction(conn, fn)` does so.
"""

from __future__ import annotations

import datetime as _dt
import random
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from crdb_py.embed import Backend, open_backend, release_backend
from crdb_py.sql.parse import StatementCache
from crdb_py.sql.runtime import Result
from crdb_py.sql.session import Session, TxnState
from crdb_py.util.errors import CrdbError

apilevel = "2.0"
threadsafety = 1  # threads may share the module, not connections
paramstyle = "format"

R = TypeVar("R")


# ---- exceptions (PEP 249 hierarchy) ------------------------------------------------------


class Warning(Exception):  # the name PEP 249 requires
    pass


class Error(Exception):
    sqlstate: str = "XX000"

    def __init__(self, msg: str = "", sqlstate: str | None = None) -> None:
        super().__init__(msg)
        if sqlstate is not None:
            self.sqlstate = sqlstate

    @property
    def pgcode(self) -> str:
        return self.sqlstate


class InterfaceError(Error):
    pass


class DatabaseError(Error):
    pass


class DataError(DatabaseError):
    pass


class OperationalError(DatabaseError):
    pass


class TransactionRollbackError(OperationalError):
    """SQLSTATE class 40: the transaction must be retried (40001)."""


class IntegrityError(DatabaseError):
    pass


class InternalError(DatabaseError):
    pass


class ProgrammingError(DatabaseError):
    pass


class NotSupportedError(DatabaseError):
    pass


_CLASS: dict[str, type[DatabaseError]] = {
    "22": DataError, "23": IntegrityError, "40": TransactionRollbackError,
    "42": ProgrammingError, "3D": ProgrammingError, "3B": ProgrammingError,
    "2B": ProgrammingError, "0A": NotSupportedError, "25": InternalError, "XX": InternalError,
    "08": OperationalError, "53": OperationalError, "54": OperationalError,
    "55": OperationalError, "57": OperationalError, "58": OperationalError, "21": DataError,
    "72": OperationalError,  # snapshot too old: history below the GC threshold
}


def _wrap(e: CrdbError) -> DatabaseError:
    code = getattr(e, "sqlstate", "XX000") or "XX000"
    cls = _CLASS.get(code[:2], DatabaseError)
    err = cls(str(e), code)
    err.__cause__ = e
    return err


# ---- type objects ------------------------------------------------------------------------

STRING, BINARY, NUMBER, DATETIME, ROWID = "STRING", "BYTES", "NUMBER", "DATETIME", "INT8"
Date = _dt.date
Time = _dt.time
Timestamp = _dt.datetime
Binary = bytes


def DateFromTicks(t: float) -> _dt.date:  # PEP 249 names
    return _dt.date.fromtimestamp(t)


def TimestampFromTicks(t: float) -> _dt.datetime:
    return _dt.datetime.fromtimestamp(t)


# ---- connection / cursor --------------------------------------------------------------------

_PYFORMAT = re.compile(r"%\((\w+)\)s")


def _bind(sql: str, params: Any) -> tuple[str, list[Any]]:
    if params is None:
        return sql, []
    if isinstance(params, Mapping):
        names: list[str] = []

        def sub(m: re.Match[str]) -> str:
            names.append(m.group(1))
            return f"${len(names)}"
        try:
            return _PYFORMAT.sub(sub, sql).replace("%%", "%"), [params[n] for n in names]
        except KeyError as ex:
            raise ProgrammingError(f"missing parameter {ex}", "08P01") from ex
    if isinstance(params, str | bytes) or not isinstance(params, Sequence):
        raise ProgrammingError("parameters must be a sequence or a mapping", "08P01")
    return sql.replace("%%", "%"), list(params)


class Connection:
    def __init__(self, backend: Backend, *, cache: StatementCache | None = None) -> None:
        self._backend = backend
        self._session = Session(backend.db, cache=cache)
        self.autocommit = False
        self.closed = False

    # -- PEP 249 ----------------------------------------------------------------------------
    def cursor(self) -> Cursor:
        self._check()
        return Cursor(self)

    def commit(self) -> None:
        self._check()
        if self._session.state != TxnState.NO_TXN:
            self._exec("COMMIT", [])

    def rollback(self) -> None:
        self._check()
        if self._session.state != TxnState.NO_TXN:
            self._exec("ROLLBACK", [])

    def close(self) -> None:
        if self.closed:
            return
        try:
            self._backend.run(self._session.close(), timeout=30)
        finally:
            self.closed = True
            release_backend(self._backend)

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, et: Any, ev: Any, tb: Any) -> None:
        if self.closed:
            return
        if et is None:
            self.commit()
        else:
            self.rollback()

    def __del__(self) -> None:  # best effort for forgotten connections
        if not getattr(self, "closed", True) and not sys.is_finalizing():
            try:
                self.close()
            except Exception:  # interpreter shutdown etc.
                pass

    # -- extensions ---------------------------------------------------------------------------
    def new_session(self) -> Connection:
        """Another connection (its own session and transactions) on the same database."""
        self._check()
        self._backend.refs += 1
        return Connection(self._backend, cache=self._session.cache)

    @property
    def session(self) -> Session:
        return self._session

    @property
    def in_transaction(self) -> bool:
        return self._session.state != TxnState.NO_TXN

    def execute(self, sql: str, params: Any = None) -> Cursor:
        """Shortcut (as sqlite3): a new cursor that has run `sql`."""
        cur = self.cursor()
        cur.execute(sql, params)
        return cur

    def _check(self) -> None:
        if self.closed:
            raise InterfaceError("connection already closed", "08003")

    def _exec(self, sql: str, params: list[Any]) -> Result:
        s = self._session
        try:
            if not self.autocommit and s.state == TxnState.NO_TXN and \
                    s.cache.get(sql).kind not in ("txn", "empty"):
                self._backend.run(s.execute("BEGIN"))
            return self._backend.run(s.execute(sql, params))
        except CrdbError as e:
            raise _wrap(e) from None


class Cursor:
    arraysize = 1

    def __init__(self, conn: Connection) -> None:
        self.connection = conn
        self._rows: list[tuple[Any, ...]] = []
        self._pos = 0
        self.description: list[tuple[Any, ...]] | None = None
        self.rowcount = -1
        self.lastrowid = None
        self.statusmessage = ""
        self.closed = False

    def execute(self, sql: str, params: Any = None) -> Cursor:
        if self.closed:
            raise InterfaceError("cursor already closed", "08003")
        text, args = _bind(sql, params)
        res = self.connection._exec(text, args)
        self._rows = res.rows
        self._pos = 0
        self.description = [(n, str(t), None, None, None, None, None) for n, t in res.columns] \
            if res.columns else None
        self.rowcount = res.rowcount
        self.statusmessage = res.tag
        return self

    def executemany(self, sql: str, seq_of_params: Sequence[Any]) -> Cursor:
        total = 0
        for p in seq_of_params:
            self.execute(sql, p)
            total += max(self.rowcount, 0)
        self.rowcount = total
        return self

    def fetchone(self) -> tuple[Any, ...] | None:
        if self._pos >= len(self._rows):
            return None
        r = self._rows[self._pos]
        self._pos += 1
        return r

    def fetchmany(self, size: int | None = None) -> list[tuple[Any, ...]]:
        n = self.arraysize if size is None else size
        out = self._rows[self._pos: self._pos + n]
        self._pos += len(out)
        return out

    def fetchall(self) -> list[tuple[Any, ...]]:
        out = self._rows[self._pos:]
        self._pos = len(self._rows)
        return out

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        while (r := self.fetchone()) is not None:
            yield r

    def close(self) -> None:
        self.closed = True

    def setinputsizes(self, sizes: Any) -> None:
        pass

    def setoutputsize(self, size: Any, column: Any = None) -> None:
        pass

    def __enter__(self) -> Cursor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def connect(target: str | None = None) -> Connection:
    """Open a connection: None = a new in-memory database, a path = a durable
    one (created if missing), "host:port[,host:port...]" = a running cluster."""
    try:
        return Connection(open_backend(target))
    except CrdbError as e:
        raise _wrap(e) from None


def run_transaction(conn: Connection, fn: Callable[[Connection], R], *,
                    max_retries: int = 50) -> R:
    """Run `fn(conn)` in a transaction and commit it, retrying the whole
    transaction while it fails with SQLSTATE 40001. `fn` must be safe to
    run more than once and must not commit itself."""
    attempt = 0
    while True:
        if conn.in_transaction:
            conn.rollback()
        conn._exec("BEGIN", [])
        try:
            result = fn(conn)
            conn.commit()
            return result
        except Error as e:
            if conn.in_transaction:
                conn.rollback()
            if e.sqlstate != "40001" or attempt >= max_retries:
                raise
            attempt += 1
            time.sleep(min(0.5, 0.001 * 2 ** min(attempt, 10)) * random.random())
        except BaseException:
            if conn.in_transaction:
                conn.rollback()
            raise
