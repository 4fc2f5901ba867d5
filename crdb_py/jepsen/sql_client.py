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
57014 "canceling statement due to statement timeout" (a timed-out COMMIT
may have committed), a lost node or connection, anything unknown — is re-raised
unchanged and recorded as `info`. After such an ambiguous error the
thread's connection is dropped and the next operation opens a fresh one.

``autocommit=True`` is the planted bug for the checkers' mutation tests:
every statement commits on its own (no transaction around the read and the
writes of a transfer), so the bank checker must flag lost updates.

``statement_timeout_ms`` bounds every statement (``SET statement_timeout``
on each new connection; the runner passes `RunSpec.op_timeout`). A
statement that outlives it fails with SQLSTATE 57014 — or 40003 when the
deadline hit its COMMIT, which may have committed — and both are `info`.

The nemeses reach the tables through the same client: `split_at` (``ALTER
TABLE … SPLIT AT VALUES (k)``) and `ranges` (``SHOW RANGES FROM TABLE``)
run outside any transaction on the calling thread's connection, and
`table_for` names a workload's table. `target` and `table_suffix` let a
child process (the coordinator-crash nemesis, `crdb_py.jepsen.child`)
open its own client on the same tables.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from crdb_py.jepsen.client import DefiniteFailure
from crdb_py.util import errors

__all__ = ["RangeRow", "SQLClient", "is_definite"]


def is_definite(e: BaseException) -> bool:
    """True when `e` (a PEP 249 error) proves the transaction did not commit:
    SQLSTATE 40001 whose cause is not an ambiguous commit. A statement
    timeout (57014) is never definite: the session may have timed out a
    COMMIT that went through."""
    if getattr(e, "sqlstate", None) != "40001":
        return False
    cause = e.__cause__
    return not isinstance(cause, (errors.AmbiguousResultError,
                                  errors.IndeterminateCommitError))


@dataclass(frozen=True, slots=True)
class RangeRow:
    """One row of ``SHOW RANGES FROM TABLE t`` (keys pretty-printed)."""

    start_key: str
    end_key: str
    range_id: int
    lease_holder: int | None  # node id; None when the range could not be reached
    replicas: tuple[int, ...]  # node ids


class SQLClient:
    """`BankClient` and `ListAppendClient` over SQL, one connection per thread.

    `connect()` opens a PEP 249 connection; `table_suffix` names this run's
    tables (``accounts<suffix>``, ``lists<suffix>``) so runs can share a
    database; `target` is the ``host:port,...`` string `connect` dials
    (None for an embedded database)."""

    def __init__(self, connect: Callable[[], Any], *, table_suffix: str = "",
                 autocommit: bool = False, max_retries: int = 50,
                 statement_timeout_ms: float | None = None,
                 target: str | None = None) -> None:
        if table_suffix and not table_suffix.replace("_", "").isalnum():
            raise ValueError(f"bad table suffix {table_suffix!r}")
        self._connect = connect
        self.table_suffix = table_suffix
        self.accounts = f"accounts{table_suffix}"
        self.lists = f"lists{table_suffix}"
        self.autocommit = autocommit
        self.max_retries = max_retries
        self.statement_timeout_ms = statement_timeout_ms
        self.target = target
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: list[Any] = []

    # ---- connections ---------------------------------------------------------------

    def _conn(self) -> Any:
        c = getattr(self._local, "conn", None)
        if c is None:
            c = self._connect()
            if self.statement_timeout_ms:
                c.autocommit = True  # a session setting, outside any transaction
                try:
                    c.cursor().execute(f"SET statement_timeout = {int(self.statement_timeout_ms)}")
                except BaseException:
                    with contextlib.suppress(Exception):
                        c.close()
                    raise
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

    # ---- what the nemeses use ------------------------------------------------------------

    def table_for(self, workload: str) -> str:
        """The table holding `workload`'s rows (bank, list-append)."""
        tables = {"bank": self.accounts, "list-append": self.lists}
        if workload not in tables:
            raise ValueError(f"no SQL table for workload {workload!r}")
        return tables[workload]

    def _admin(self, stmt: str) -> list[tuple[Any, ...]]:
        """`stmt` outside any transaction on this thread's connection; its rows."""
        conn = self._conn()
        prev, conn.autocommit = conn.autocommit, True
        try:
            cur = conn.cursor()
            cur.execute(stmt)
            return list(cur.fetchall()) if cur.description else []
        except Exception:
            self._drop()
            raise
        finally:
            conn.autocommit = prev

    def split_at(self, table: str, k: int) -> str:
        """``ALTER TABLE table SPLIT AT VALUES (k)``; the split key, pretty
        (``/Table/<id>/1/<k>``). Splitting at an existing boundary is a no-op."""
        rows = self._admin(f"ALTER TABLE {table} SPLIT AT VALUES ({int(k)})")
        return str(rows[0][1]) if rows else ""

    def ranges(self, table: str) -> list[RangeRow]:
        """``SHOW RANGES FROM TABLE table``: the ranges overlapping its span."""
        out = []
        for start, end, rid, holder, reps in self._admin(f"SHOW RANGES FROM TABLE {table}"):
            ids = tuple(int(x) for x in str(reps).strip("{}").split(",") if x.strip())
            out.append(RangeRow(str(start), str(end), int(rid),
                                None if holder is None else int(holder), ids))
        return out

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
