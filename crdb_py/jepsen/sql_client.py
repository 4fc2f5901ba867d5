"""The Jepsen workloads over SQL: `SQLClient` speaks `BankClient` and
`ListAppendClient` (see `crdb_py.jepsen.client`) through PEP 249.

The workloads, nemeses and checkers stay exactly as they are for the KV
client; only *how* an operation reaches the database changes:

- bank keeps ``accounts(id INT PRIMARY KEY, balance INT)``; a transfer is
  one SQL transaction that reads both balances, refuses to go negative and
  updates both rows; `read_balances` is ``SELECT id, balance FROM accounts``
  in a transaction;
- list-append keeps ``lists(k INT PRIMARY KEY, v TEXT)`` with each list as
  JSON text; a transaction of micro-ops runs ``r(k)`` as a SELECT and
  ``append(k, x)`` as read-modify-write (SELECT, then UPSERT).

Every transaction goes through `crdb_py.run_transaction` (retried on
SQLSTATE 40001). Connections are not thread-safe (PEP 249 threadsafety 1),
so the client opens one connection per calling thread with `connect()` —
``lambda: root.new_session()`` for an embedded database,
`LocalCluster.connect` for a cluster — and the runner's worker threads can
share one `SQLClient` object.

Outcomes map exactly like `client.classify`: a 40001 that outlived the
retries rolled the transaction back, so it is re-raised as
`DefiniteFailure` (`fail`); everything else — 40003 "result is ambiguous",
a lost node or connection, a timeout, anything unknown — is re-raised
unchanged and recorded as `info`. After such an ambiguous error the
thread's connection is dropped and the next operation opens a fresh one.

``autocommit=True`` is the planted bug for the checkers' mutation tests:
every statement commits on its own (no transaction around the read and the
writes of a transfer), so the bank checker must flag lost updates.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from crdb_py.jepsen.client import DefiniteFailure
from crdb_py.util import errors

__all__ = ["SQLClient", "is_definite"]


def is_definite(e: BaseException) -> bool:
    """True when `e` (a PEP 249 error) proves the transaction did not commit:
    SQLSTATE 40001 whose cause is not an ambiguous commit."""
    if getattr(e, "sqlstate", None) != "40001":
        return False
    cause = e.__cause__
    return not isinstance(cause, (errors.AmbiguousResultError,
                                  errors.IndeterminateCommitError))


class SQLClient:
    """`BankClient` and `ListAppendClient` over SQL, one connection per thread.

    `connect()` opens a PEP 249 connection; `table_suffix` names this run's
    tables (``accounts<suffix>``, ``lists<suffix>``) so runs can share a
    database."""

    def __init__(self, connect: Callable[[], Any], *, table_suffix: str = "",
                 autocommit: bool = False, max_retries: int = 50) -> None:
        if table_suffix and not table_suffix.replace("_", "").isalnum():
            raise ValueError(f"bad table suffix {table_suffix!r}")
        self._connect = connect
        self.accounts = f"accounts{table_suffix}"
        self.lists = f"lists{table_suffix}"
        self.autocommit = autocommit
        self.max_retries = max_retries
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: list[Any] = []

    # ---- connections ---------------------------------------------------------------

    def _conn(self) -> Any:
        c = getattr(self._local, "conn", None)
        if c is None:
            c = self._connect()
            c.autocommit = self.autocommit
            self._local.conn = c
            with self._lock:
                self._open.append(c)
        return c

    def _drop(self) -> None:
        c = getattr(self._local, "conn", None)
        self._local.conn = None
        if c is not None:
            with self._lock:
                if c in self._open:
                    self._open.remove(c)
            with contextlib.suppress(Exception):
                c.close()

    def close(self) -> None:
        """Close every connection this client opened."""
        with self._lock:
            conns, self._open = self._open, []
        for c in conns:
            with contextlib.suppress(Exception):
                c.close()

    def _txn(self, fn: Callable[[Any], Any]) -> Any:
        """`fn(cursor)` in one transaction (autocommit: no transaction at all)."""
        from crdb_py.dbapi import run_transaction

        conn = self._conn()
        try:
            if self.autocommit:
                return fn(conn.cursor())
            return run_transaction(conn, lambda c: fn(c.cursor()),
                                   max_retries=self.max_retries)
        except Exception as e:
            if is_definite(e):
                raise DefiniteFailure(f"{type(e).__name__}({e.sqlstate}): {e}") from e
            self._drop()  # the session may be mid-transaction or dead
            raise

    def _ddl(self, *stmts: str) -> None:
        conn = self._conn()
        prev, conn.autocommit = conn.autocommit, True
        try:
            cur = conn.cursor()
            for s in stmts:
                cur.execute(s)
        finally:
            conn.autocommit = prev

    # ---- bank -------------------------------------------------------------------------

    def bank_setup(self, balances: Mapping[int, int]) -> None:
        self._ddl(f"CREATE TABLE IF NOT EXISTS {self.accounts} "
                  "(id INT PRIMARY KEY, balance INT)")

        def fn(cur: Any) -> None:
            for a, b in balances.items():
                cur.execute(f"UPSERT INTO {self.accounts} (id, balance) VALUES (%s, %s)", (a, b))

        self._txn(fn)

    def _balance(self, cur: Any, a: int) -> int:
        cur.execute(f"SELECT balance FROM {self.accounts} WHERE id = %s", (a,))
        row = cur.fetchone()
        return 0 if row is None or row[0] is None else int(row[0])

    def transfer(self, src: int, dst: int, amount: int) -> bool:
        def fn(cur: Any) -> bool:
            s = self._balance(cur, src)
            d = self._balance(cur, dst)
            if s < amount:
                return False
            upd = f"UPDATE {self.accounts} SET balance = %s WHERE id = %s"
            cur.execute(upd, (s - amount, src))
            cur.execute(upd, (d + amount, dst))
            return True

        return bool(self._txn(fn))

    def read_balances(self) -> dict[int, int]:
        def fn(cur: Any) -> dict[int, int]:
            cur.execute(f"SELECT id, balance FROM {self.accounts}")
            return {int(a): int(b) for a, b in cur.fetchall()}

        return self._txn(fn)

    # ---- list-append --------------------------------------------------------------------

    def create_tables(self) -> None:
        """Both workloads' tables (idempotent; the runner calls it before setup)."""
        self._ddl(f"CREATE TABLE IF NOT EXISTS {self.accounts} "
                  "(id INT PRIMARY KEY, balance INT)",
                  f"CREATE TABLE IF NOT EXISTS {self.lists} (k INT PRIMARY KEY, v TEXT)")

    def list_txn(self, mops: Sequence[Sequence[Any]]) -> list[list[Any]]:
        def fn(cur: Any) -> list[list[Any]]:
            out: list[list[Any]] = []
            for f, k, v in mops:
                cur.execute(f"SELECT v FROM {self.lists} WHERE k = %s", (k,))
                row = cur.fetchone()
                lst = json.loads(row[0]) if row is not None and row[0] is not None else []
                if f == "append":
                    cur.execute(f"UPSERT INTO {self.lists} (k, v) VALUES (%s, %s)",
                                (k, json.dumps(lst + [v])))
                    out.append(["append", k, v])
                else:
                    out.append(["r", k, lst])
            return out

        return self._txn(fn)
