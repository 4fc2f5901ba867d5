"""A SQL session: statement cache, current database, and the transaction
state machine.

States (after PostgreSQL / CockroachDB's connExecutor)::

    NoTxn --BEGIN--> Open --COMMIT/ROLLBACK--> NoTxn
                      |  ^
        stmt error    v  | ROLLBACK TO SAVEPOINT s
                    Aborted --ROLLBACK--> NoTxn     (COMMIT in Aborted = ROLLBACK)
    Open --RELEASE SAVEPOINT cockroach_restart--> CommitWait --COMMIT--> NoTxn

* Outside BEGIN every statement is an *implicit* transaction: it runs and
  commits on its own and is retried automatically (fresh txn) on a
  retryable (40001) error, up to `max_retries` times.
* Inside BEGIN the client retries: a retryable error moves to Aborted and
  surfaces as SQLSTATE 40001 ("restart transaction"); the client runs
  ROLLBACK (and retries the whole txn), or, if it declared
  `SAVEPOINT cockroach_restart` first, `ROLLBACK TO SAVEPOINT
  cockroach_restart`, which restarts the transaction in place.
* Statement atomicity: every statement runs under an implicit savepoint of
  the write buffer (crdb_py/sql/kv.py); a failed statement is rolled back
  to it, so it leaves no partial writes, and the txn moves to Aborted
  (commands are refused with 25P02 until ROLLBACK / ROLLBACK TO).
* SAVEPOINT / RELEASE / ROLLBACK TO are savepoints of the write buffer. A
  retryable error cannot be undone by rolling back to a savepoint taken
  after the txn's first read (those reads are stale): only a savepoint at
  the very start of the txn (cockroach_restart style) restarts it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import itertools
import random
import re
import threading
import time
from typing import Any

from crdb_py.sql import cluster_settings, users
from crdb_py.sql import errors as E
from crdb_py.sql.catalog import DEFAULT_DB, Catalog
from crdb_py.sql.exec_ddl import drop_index, run_ddl
from crdb_py.sql.exec_dml import run_delete, run_insert, run_update
from crdb_py.sql.exec_select import run_query
from crdb_py.sql.historical import HistoricalTxn, parse_as_of, txn_modes
from crdb_py.sql.kv import KVStore, WriteBuffer
from crdb_py.sql.parse import Statement, StatementCache
from crdb_py.sql.plancache import PlanCache
from crdb_py.sql.planner import speculative_point_keys
from crdb_py.sql.runtime import Canceller, ExecCtx, Result
from crdb_py.sql.show import run_show
from crdb_py.sql.types import T_BOOL, T_INT, T_STRING, UTC
from crdb_py.util.errors import ConditionFailedError, CrdbError

RESTART_SAVEPOINT = "cockroach_restart"


class TxnState(enum.Enum):
    NO_TXN = "NoTxn"
    OPEN = "Open"
    ABORTED = "Aborted"
    COMMIT_WAIT = "CommitWait"


_rowid_lock = threading.Lock()
_rowid_last = 0


def unique_rowid() -> int:
    """A unique, roughly time-ordered INT8 (CockroachDB's unique_rowid shape)."""
    global _rowid_last
    with _rowid_lock:
        _rowid_last = max(_rowid_last + 1, int(time.time() * 1e5) << 12)
        return _rowid_last


_session_ids = itertools.count(1)
_SHARED_CACHE = StatementCache()
_SHARED_PLANS = PlanCache()


class Session:
    def __init__(self, store: KVStore, *, database: str = DEFAULT_DB,
                 cache: StatementCache | None = None, plans: PlanCache | None = None,
                 max_retries: int = 30) -> None:
        self.store = store
        self.database = database
        self.cache = cache or _SHARED_CACHE
        self.plans = plans if plans is not None else _SHARED_PLANS
        self.max_retries = max_retries
        self.state = TxnState.NO_TXN
        self.id = next(_session_ids)
        self.vars: dict[str, str] = {}
        self.retries = 0  # implicit-txn retries taken (for tests and EXPLAIN ANALYZE)
        self._txn: Any = None
        self._buf: WriteBuffer | None = None
        self._savepoints: list[tuple[str, int]] = []
        self._retry_error: CrdbError | None = None
        self._now = dt.datetime.now(UTC)
        self._bootstrapped = False
        self._table_ids: dict[tuple[int, str], int] = {}
        self._read_only = False
        self.canceller = Canceller()
        self._committing = False  # a statement timing out now has an ambiguous outcome

    # -- entry point ----------------------------------------------------------------------
    async def execute(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> Result:
        stmt = self.cache.get(sql)
        params = list(params)
        self.canceller.reset()
        timeout = self.statement_timeout
        if not timeout or stmt.kind == "txn" and stmt.arg[0] in ("rollback", "rollback_to"):
            return await self._execute(stmt, params)
        self._committing = False
        deadline = asyncio.timeout(timeout)
        try:
            async with deadline:
                return await self._execute(stmt, params)
        except TimeoutError:
            if not deadline.expired():  # not ours
                raise
            if self._committing:  # the commit may have happened: say so (40003)
                raise E.SQLError("statement timed out while committing: the result is "
                                 "ambiguous", "40003") from None
            raise E.SQLError("canceling statement due to statement timeout", "57014") from None

    @property
    def statement_timeout(self) -> float:
        """Seconds (`SET statement_timeout`, PostgreSQL units; 0 = none)."""
        v = self.vars.get("statement_timeout")
        return parse_duration_ms(v) / 1000 if v else 0.0

    async def _execute(self, stmt: Statement, params: list[Any]) -> Result:
        if not self._bootstrapped:
            await self._bootstrap()
        if stmt.kind == "empty":
            return Result(tag="")
        if stmt.kind == "txn":
            return await self._control(*stmt.arg)
        if self.state == TxnState.ABORTED:
            raise E.in_failed_txn()
        if self.state == TxnState.COMMIT_WAIT:
            raise E.SQLError("current transaction is committed, commands ignored until end "
                             "of transaction block", "25000")
        if self.state == TxnState.OPEN:
            return await self._in_explicit(stmt, params)
        return await self._implicit(stmt, params)

    def cancel(self) -> None:
        """Cancel the running statement (57014) at its next yield point."""
        self.canceller.cancel()

    async def close(self) -> None:
        if self._txn is not None:
            await self._safe_rollback()
        self.state = TxnState.NO_TXN

    @property
    def txn_status(self) -> str:
        return self.state.value

    # -- implicit transactions -------------------------------------------------------------
    async def _implicit(self, stmt: Statement, params: list[Any]) -> Result:
        attempt = 0
        await cluster_settings.refresh(self.store)
        # Uniqueness checked by the commit's ConditionalPuts instead of a read
        # per row; if one fails, the statement runs again with the reads, which
        # report the precise 23505 (or succeed: the row may be gone by then).
        defer = stmt.kind in _DEFER_KINDS
        while True:
            if isinstance(stmt.arg, tuple) and stmt.arg[0] == "aost":
                txn = HistoricalTxn(self.store, parse_as_of(stmt.arg[1], self.store))
            else:
                txn = self.store.txn(f"sql-{self.id}")
            buf = WriteBuffer(txn)
            buf.defer_unique = defer
            if stmt.kind == "explain_analyze":
                buf.spans = []
            self._now = dt.datetime.now(UTC)
            try:
                res = await self._run(stmt, params, buf)
                if stmt.kind == "explain":
                    await txn.rollback()
                else:
                    self._committing = True
                    await buf.commit()
                    self._committing = False
                if stmt.kind == "explain_analyze":
                    return await self._analyze(res, txn, buf, committed=True)
                if stmt.kind == "set_cluster":
                    cluster_settings.apply_local(self.store, *res.rows[0])
                    res.rows = []
                return res
            except CrdbError as e:
                await _quiet_rollback(txn)
                if isinstance(e, ConditionFailedError) and buf.defer_unique:
                    defer = False
                    continue
                if type(e).retryable and attempt < self.max_retries:
                    attempt += 1
                    self.retries += 1
                    await asyncio.sleep(_backoff(attempt))
                    continue
                raise
            except BaseException:
                await _quiet_rollback(txn)
                raise

    # -- explicit transactions --------------------------------------------------------------
    async def _in_explicit(self, stmt: Statement, params: list[Any]) -> Result:
        buf = self._buf
        assert buf is not None
        if stmt.kind == "set_cluster":
            raise E.SQLError("SET CLUSTER SETTING cannot be used inside a multi-statement "
                             "transaction", "25001")
        sp = buf.savepoint()
        try:
            if stmt.kind == "explain_analyze":
                buf.spans = []
            res = await self._run(stmt, params, buf)
            if stmt.kind == "explain":
                buf.rollback_to(sp)
            if stmt.kind == "explain_analyze":
                return await self._analyze(res, self._txn, buf, committed=False)
            return res
        except BaseException as e:
            buf.rollback_to(sp)
            self.state = TxnState.ABORTED
            if isinstance(e, CrdbError) and type(e).retryable:
                self._retry_error = e
            raise

    def _begin(self) -> None:
        self._txn = self.store.txn(f"sql-{self.id}")
        self._buf = WriteBuffer(self._txn)
        self._savepoints = []
        self._retry_error = None
        self._now = dt.datetime.now(UTC)

    async def _control(self, kind: str, arg: str) -> Result:
        st = self.state
        if kind == "begin":
            if st != TxnState.NO_TXN:
                raise E.SQLError("there is already a transaction in progress", "25001")
            modes = txn_modes(arg)
            await cluster_settings.refresh(self.store)
            self._begin()
            self._apply_modes(*modes)
            self.state = TxnState.OPEN
            return Result(tag="BEGIN")
        if kind == "set_txn":
            if st == TxnState.NO_TXN:
                raise E.SQLError("there is no transaction in progress", "25P01")
            self._apply_modes(*txn_modes(arg))
            return Result(tag="SET TRANSACTION")  # SERIALIZABLE is the only level
        if kind == "commit":
            if st == TxnState.NO_TXN:
                return Result(tag="COMMIT")  # PostgreSQL warns and does nothing
            if st == TxnState.ABORTED:
                await self._safe_rollback()
                return Result(tag="ROLLBACK")
            if st == TxnState.COMMIT_WAIT:
                self._finish()
                return Result(tag="COMMIT")
            try:
                assert self._buf is not None
                self._committing = True
                await self._buf.commit()
            except BaseException:
                await self._safe_rollback()
                raise
            self._finish()
            return Result(tag="COMMIT")
        if kind == "rollback":
            if st != TxnState.NO_TXN:
                await self._safe_rollback()
            return Result(tag="ROLLBACK")
        if st == TxnState.NO_TXN:
            raise E.SQLError(f"there is no transaction in progress ({kind.upper()})", "25P01")
        if kind == "savepoint":
            if st == TxnState.ABORTED:
                raise E.in_failed_txn()
            assert self._buf is not None
            self._savepoints.append((arg.lower(), self._buf.savepoint()))
            return Result(tag="SAVEPOINT")
        i = self._find_savepoint(arg.lower())
        if kind == "release":
            if st == TxnState.ABORTED:
                raise E.in_failed_txn()
            if arg.lower() != RESTART_SAVEPOINT:
                del self._savepoints[i:]
            else:  # CockroachDB: RELEASE commits; on 40001 ROLLBACK TO restarts
                try:
                    assert self._buf is not None
                    self._committing = True
                    await self._buf.commit()
                except BaseException as e:
                    self.state = TxnState.ABORTED
                    if isinstance(e, CrdbError) and type(e).retryable:
                        self._retry_error = e
                    raise
                del self._savepoints[i:]
                self.state = TxnState.COMMIT_WAIT
            return Result(tag="RELEASE")
        # rollback_to
        name, sp = self._savepoints[i]
        if self._retry_error is not None or st == TxnState.COMMIT_WAIT:
            if sp != 0:
                raise E.SQLError(
                    "restart transaction: the transaction must be retried from its start "
                    f"(savepoint {name} was taken after it read)", "40001")
            await _quiet_rollback(self._txn)
            self._begin()
            self._savepoints = [(name, 0)]
        else:
            assert self._buf is not None
            self._buf.rollback_to(sp)
            del self._savepoints[i + 1:]
        self.state = TxnState.OPEN
        return Result(tag="ROLLBACK")

    def _apply_modes(self, aost: str | None, prio: int | None, ro: bool | None) -> None:
        """BEGIN / SET TRANSACTION modes. AS OF SYSTEM TIME and PRIORITY replace
        the (still untouched) KV txn; READ ONLY refuses writes (25006)."""
        if ro is not None:
            self._read_only = ro
        if aost is None and prio is None:
            return
        assert self._buf is not None
        if self._buf.kv_reads or self._buf.writes:
            raise E.SQLError("SET TRANSACTION must precede all reads and writes", "25001")
        if aost is not None:
            self._txn = HistoricalTxn(self.store, parse_as_of(aost, self.store))
            self._read_only = True
        elif not isinstance(self._txn, HistoricalTxn):
            self._txn = self.store.txn(f"sql-{self.id}", priority=prio or 0)
        self._buf = WriteBuffer(self._txn)

    def _find_savepoint(self, name: str) -> int:
        for i in range(len(self._savepoints) - 1, -1, -1):
            if self._savepoints[i][0] == name:
                return i
        raise E.SQLError(f'savepoint "{name}" does not exist', "3B001")

    def _finish(self) -> None:
        self._read_only = False
        self._txn = self._buf = None
        self._savepoints = []
        self._retry_error = None
        self.state = TxnState.NO_TXN

    async def _safe_rollback(self) -> None:
        await _quiet_rollback(self._txn)
        self._finish()

    async def _analyze(self, res: Result, txn: Any, buf: WriteBuffer, *,
                       committed: bool) -> Result:
        """EXPLAIN ANALYZE: what the statement (and, if implicit, its commit) cost."""
        from crdb_py.sql.show_ranges import ranges_touched

        spans = list(buf.spans or []) + [(k, k + b"\x00") for k in buf.writes]
        buf.spans = None
        rtxn = self.store.txn("sql-explain") if committed else txn
        try:
            touched = await ranges_touched(rtxn, spans)
        finally:
            if committed:
                await _quiet_rollback(rtxn)
        tr = getattr(txn, "trace", None)
        lines = [f"rows: {res.rowcount if res.rowcount >= 0 else len(res.rows)}",
                 f"kv reads: {buf.kv_reads}", f"ranges touched: {touched}",
                 f"buffered writes: {len(buf.writes)}"]
        if tr is not None:
            pipelined = [b for b in tr.batches if b.async_consensus]
            # Pipelined writes: those of async-consensus batches, and, on a
            # parallel commit, those of the final batch (in flight beside the
            # STAGING record, proven by the commit itself).
            n_pipelined = sum(_n_writes(b.kinds) for b in pipelined)
            if committed and tr.commit_path.value == "parallel":
                final = [b for b in tr.batches if "end_txn" in b.kinds]
                n_pipelined += _n_writes(final[-1].kinds) if final else 0
            lines += [f"kv batches sent: {len(tr.batches)}",
                      f"consensus rounds: {tr.rounds}",
                      f"pipelined writes: {n_pipelined}",
                      f"pipelined write batches: {len(pipelined)}",
                      f"refreshes: {tr.refreshes}",
                      f"commit path: {tr.commit_path.value if committed else 'not committed yet'}"]
            lines += [f"  batch {i + 1}: {b.rounds} round(s)"
                      f"{' async' if b.async_consensus else ''}: {', '.join(b.kinds)}"
                      for i, b in enumerate(tr.batches)]
        return Result([("info", T_STRING)], [(ln,) for ln in lines], len(lines), "EXPLAIN ANALYZE")

    # -- one statement ----------------------------------------------------------------------
    async def _bootstrap(self) -> None:
        """Create `defaultdb` the first time any session needs it."""
        async def ensure(buf: WriteBuffer) -> None:
            cat = Catalog(buf)
            if await cat.database_id(DEFAULT_DB) is None:
                await cat.create_database(DEFAULT_DB)
        for attempt in range(self.max_retries + 1):
            txn = self.store.txn("sql-bootstrap")
            buf = WriteBuffer(txn)
            try:
                await ensure(buf)
                await buf.commit()
                break
            except CrdbError as e:
                await _quiet_rollback(txn)
                if not type(e).retryable or attempt == self.max_retries:
                    raise
        self._bootstrapped = True

    async def _run(self, stmt: Statement, params: list[Any], buf: WriteBuffer,
                   explain: list[str] | None = None) -> Result:
        if (self._read_only or isinstance(buf.txn, HistoricalTxn)) and stmt.kind not in (
                "query", "show", "explain", "set", "use", "show_users"):
            raise E.SQLError("cannot execute writes in a read-only transaction", "25006")
        catalog = Catalog(buf, self._table_ids)
        ctx = self.plans.checkout(stmt.kind, stmt.text, stmt.ast)
        ctx.reset(params, self._now, unique_rowid)
        if ctx.catalog_keys:  # a cached plan: catalog and point reads in one batch
            await buf.prefetch(ctx.catalog_keys + speculative_point_keys(ctx))
            ctx.point_scans = []
        db_id = await catalog.database_id(self.database)
        if db_id is None and stmt.kind not in ("use", "ddl", "show", "set", "set_cluster",
                                              "user", "show_users"):
            raise E.undefined_database(self.database)
        x = ExecCtx(buf, catalog, db_id or 0, self.database, ctx, explain=explain,
                    canceller=self.canceller)
        try:
            res = await self._dispatch(stmt, x)
            ctx.catalog_keys = catalog.keys_read[:8]
            self.plans.checkin(stmt.kind, stmt.text, stmt.ast, ctx)
            return res
        except CrdbError:
            raise
        except (TypeError, ValueError, ArithmeticError, OverflowError) as ex:
            raise E.SQLError(f"{type(ex).__name__}: {ex}", "22000") from ex

    async def _dispatch(self, stmt: Statement, x: ExecCtx) -> Result:
        k = stmt.kind
        if k == "query":
            rel = await run_query(x, stmt.ast)
            return Result([(c.name, c.type) for c in rel.scope.cols], rel.rows,
                          len(rel.rows), f"SELECT {len(rel.rows)}")
        if k in ("insert", "upsert"):
            r = await run_insert(x, stmt.ast, upsert=k == "upsert")
            r.tag = f"INSERT 0 {r.rowcount}"
            return r
        if k == "update":
            r = await run_update(x, stmt.ast)
            r.tag = f"UPDATE {r.rowcount}"
            return r
        if k == "delete":
            r = await run_delete(x, stmt.ast)
            r.tag = f"DELETE {r.rowcount}"
            return r
        if k == "ddl":
            if x.db_id == 0 and not _is_db_ddl(stmt):
                raise E.undefined_database(self.database)
            return await run_ddl(x, stmt.ast)
        if k in ("user", "show_users"):
            return await users.run(x.buf, stmt.arg)
        if k == "drop_index":
            table, name, if_exists = stmt.arg
            return await drop_index(x, table, name, if_exists)
        if k == "use":
            if await x.catalog.database_id(stmt.arg) is None:
                raise E.undefined_database(stmt.arg)
            self.database = stmt.arg
            return Result(tag="SET")
        if k == "set":
            name, val = stmt.arg
            val = val.strip().strip("'\"")
            if name == "statement_timeout":
                parse_duration_ms(val)  # 22023 on a bad value
            if name in ("timezone", "time_zone"):
                name, val = "timezone", _utc_only(val)
            self.vars[name] = val
            return Result(tag="SET")
        if k == "explain_analyze":
            inner = stmt.arg
            if inner.kind not in ("query", "insert", "upsert", "update", "delete"):
                raise E.unsupported(f"EXPLAIN ANALYZE {inner.kind}")
            return await self._dispatch(inner, x)
        if k == "split":
            from crdb_py.sql.show_ranges import split_at

            return await split_at(x, self.store, *stmt.arg)
        if k == "show" and re.match(r"(?i)^ranges\s+from\s+table\s+\w+$", stmt.arg.strip()):
            from crdb_py.sql.show_ranges import show_ranges

            return await show_ranges(x, self.store, stmt.arg.split()[-1].lower())
        if k == "set_cluster":
            name, val = stmt.arg
            return Result(rows=[cluster_settings.set_setting(x.buf, name, val)],
                          tag="SET CLUSTER SETTING")
        if k == "show" and re.match(r"(?i)^(all\s+)?cluster\s+settings?\b", stmt.arg):
            m = re.match(r"(?i)^cluster\s+setting\s+([\w.]+)$", stmt.arg.strip())
            pairs = ([(m.group(1).lower(), await cluster_settings.show_setting(
                x.buf, self.store, m.group(1)))] if m
                else await cluster_settings.show_all(x.buf, self.store))
            if m:
                v = pairs[0][1]
                return Result([(pairs[0][0], T_BOOL if isinstance(v, bool) else T_INT)],
                              [(v,)], 1)
            return Result([("variable", T_STRING), ("value", T_STRING)], pairs, len(pairs))
        if k == "show" and stmt.arg.strip().lower() in SESSION_VARS:
            name = stmt.arg.strip().lower()
            return Result([(name, T_STRING)], [(self.vars.get(name, SESSION_VARS[name]),)], 1)
        if k == "show":
            return await run_show(x, stmt.arg, self.txn_status)
        if k == "explain":
            inner: Statement = stmt.arg
            if inner.kind not in ("query", "insert", "upsert", "update", "delete"):
                raise E.unsupported(f"EXPLAIN {inner.kind}")
            lines: list[str] = []
            x.explain = lines
            sp = x.buf.savepoint()
            await self._dispatch(inner, x)
            writes = _writes_since(x.buf, sp)
            x.buf.rollback_to(sp)
            head = [f"statement: {inner.kind}"]
            descs = {d.id: d for d in x.catalog._tables.values() if d is not None}
            for key, is_del in writes[:20]:
                lines.append(f"{'del' if is_del else 'put'} {_pretty(key, descs)}")
            if len(writes) > 20:
                lines.append(f"... {len(writes) - 20} more writes")
            return Result([("info", T_STRING)], [(ln,) for ln in head + lines], len(lines) + 1)
        raise E.unsupported(f"statement kind {k}")


# SHOW-able session variables and their defaults
SESSION_VARS = {"statement_timeout": "0", "timezone": "UTC", "search_path": '"$user", public'}
_UTC_NAMES = {"utc", "z", "gmt", "etc/utc", "etc/gmt", "zulu", "+00", "+00:00", "0", "00:00",
              "default", "local"}


def _utc_only(val: str) -> str:
    """Timestamps are UTC throughout (TIMESTAMPTZ is stored and shown in UTC):
    setting another time zone is refused rather than silently ignored."""
    if val.strip().lower() not in _UTC_NAMES:
        raise E.SQLError(f"time zone {val!r} is not supported: only UTC", "0A000")
    return "UTC"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|ms|s|min|h)?\s*$", re.I)
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "min": 60_000.0, "h": 3_600_000.0}


def parse_duration_ms(v: str) -> float:
    """A PostgreSQL duration setting: a bare number is milliseconds."""
    m = _DURATION.match(v)
    if m is None:
        raise E.SQLError(f'invalid value for parameter "statement_timeout": "{v}"', "22023")
    return float(m.group(1)) * _UNIT_MS[(m.group(2) or "ms").lower()]


_DEFER_KINDS = frozenset({"insert", "upsert", "update", "delete", "explain_analyze"})
_WRITE_KINDS = frozenset({"put", "conditional_put", "increment", "delete", "delete_range"})


def _n_writes(kinds: tuple[str, ...]) -> int:
    return sum(1 for k in kinds if k in _WRITE_KINDS)


def _backoff(attempt: int) -> float:
    """Jittered exponential backoff between automatic retries (the first is immediate)."""
    if attempt <= 1:
        return 0.0
    return min(0.5, 0.002 * 2 ** min(attempt, 10)) * (0.5 + random.random() / 2)


def _writes_since(buf: WriteBuffer, sp: int) -> list[tuple[bytes, bool]]:
    seen: dict[bytes, bool] = {}
    for key, *_ in buf._undo[sp:]:
        seen[key] = buf.writes.get(key) is None
    return list(seen.items())


def _pretty(key: bytes, descs: dict[int, Any]) -> str:
    from crdb_py.sql.planner import pretty_key

    if key.startswith(b"\x04") and len(key) >= 9:
        desc = descs.get(int.from_bytes(key[1:5], "big"))
        idx_id = int.from_bytes(key[5:9], "big")
        idx = next((i for i in desc.all_indexes if i.id == idx_id), None) if desc else None
        if idx is not None:
            return pretty_key(desc, idx, key)
    return repr(key)


def _is_db_ddl(stmt: Statement) -> bool:
    return str(stmt.ast.args.get("kind", "")).upper() in ("DATABASE", "SCHEMA")


async def _quiet_rollback(txn: Any) -> None:
    if txn is None:
        return
    try:
        await txn.rollback()
    except Exception:  # best effort: the txn is abandoned either way
        pass
