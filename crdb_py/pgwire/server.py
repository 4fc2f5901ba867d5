"""The PostgreSQL v3 wire server: one asyncio task per client connection.

A connection goes through three phases:

1. **Start-up.** An SSLRequest is answered 'S' and the connection upgraded
   to TLS when the server has a certificate (`tls=`, `make_tls_context`),
   else refused with 'N' (the client then continues in clear text, or gives
   up if it demands TLS); with `require_tls` a clear-text StartupMessage is
   refused (28000). GSSENCRequest gets 'N'. A CancelRequest names another
   connection's (pid, secret) and cancels its running statement; a v3
   StartupMessage carries user / database / options.
2. **Authentication.** `trust` accepts anyone; `scram` runs SCRAM-SHA-256
   (crdb_py/pgwire/scram.py) against the verifier the backend stores for
   the user; `loopback-trust` (the default) trusts loopback peers and asks
   everyone else for a password. Then ParameterStatus for what psycopg and
   psql read at start-up, BackendKeyData and ReadyForQuery.
3. **Queries.** The simple protocol ('Q': split into statements, each sends
   RowDescription? DataRow* CommandComplete, stop at the first error) and
   the extended protocol (Parse / Bind / Describe / Execute / Close / Sync /
   Flush, named and unnamed statements and portals). After an error in
   extended mode every message up to Sync is discarded, as PostgreSQL does.
   ReadyForQuery reports the session's transaction status (I / T / E).

A statement runs in its own task so that a CancelRequest can stop it: the
server calls `session.cancel()` and cancels the task, and the client gets
57014. A framing error (bad length, unknown message type, garbage start-up)
gets an ErrorResponse (08P01) and the connection is closed, since the byte
stream cannot be resynchronised; other connections are not affected.

Catalog queries psql sends for `\\l`, `\\dt`, `\\d t` are answered by
crdb_py/pgwire/pgcatalog.py from the session's `catalog()` introspector
before they reach the SQL layer. See docs/design/pgwire.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import logging
import secrets
import ssl
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from crdb_py.pgwire import copy as pgcopy
from crdb_py.pgwire import messages as M
from crdb_py.pgwire import pgcatalog, pgtypes
from crdb_py.pgwire.backend import Column, PreparedInfo, SQLBackend, SQLSession, StatementResult
from crdb_py.pgwire.messages import ProtocolViolation, Reader
from crdb_py.pgwire.scram import MECHANISM, ScramError, ScramServer

log = logging.getLogger(__name__)

AuthMode = Literal["trust", "scram", "loopback-trust"]
MAX_MESSAGE = 64 << 20
COPY_BATCH_ROWS = 500  # rows per INSERT statement of a COPY FROM
TLS_HANDSHAKE_TIMEOUT = 10.0  # seconds a client may take to finish the TLS handshake


def make_tls_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """A server-side TLS context (TLS 1.2+) from a PEM certificate chain and key."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_file, key_file)
    return ctx


class QueryCanceled(Exception):
    sqlstate = "57014"


@dataclass(slots=True)
class _Prepared:
    sql: str
    info: PreparedInfo


@dataclass(slots=True)
class _Portal:
    stmt: _Prepared
    params: list[Any]
    formats: list[int]  # result format per column (filled once columns are known)
    raw_formats: list[int]
    result: StatementResult | None = None
    sent: int = 0


@dataclass(slots=True, eq=False)
class _Conn:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    pid: int
    secret: int
    session: SQLSession | None = None
    running: asyncio.Task[Any] | None = None
    cancel_requested: bool = False
    tls: bool = False
    out: list[bytes] = field(default_factory=list)
    stmts: dict[str, _Prepared] = field(default_factory=dict)
    portals: dict[str, _Portal] = field(default_factory=dict)


class PGServer:
    """`PGServer(backend, host, port, auth=..., tls=..., require_tls=...)`;
    `await start()`, `.address`, `await close()`."""

    def __init__(self, backend: SQLBackend, host: str = "127.0.0.1", port: int = 0, *,
                 auth: AuthMode = "loopback-trust", max_message: int = MAX_MESSAGE,
                 tls: ssl.SSLContext | None = None, require_tls: bool = False) -> None:
        if require_tls and tls is None:
            raise ValueError("require_tls needs a TLS context (a certificate and key)")
        self.backend = backend
        self.host, self.port = host, port
        self.auth: AuthMode = auth
        self.tls = tls
        self.require_tls = require_tls
        self.max_message = max_message
        self._server: asyncio.base_events.Server | None = None
        self._conns: dict[int, _Conn] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._all: set[_Conn] = set()
        self._pids = itertools.count(1000)

    @property
    def address(self) -> tuple[str, int]:
        assert self._server is not None, "server not started"
        h, p = self._server.sockets[0].getsockname()[:2]
        return h, p

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        # Abort the sockets rather than cancel the tasks: each connection then
        # ends through its normal EOF path and closes its session.
        for c in list(self._all):
            if c.running is not None:
                c.running.cancel()
            c.writer.transport.abort()
        if self._tasks:
            _, pending = await asyncio.wait(list(self._tasks), timeout=5)
            for t in pending:
                t.cancel()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None

    # -- one connection -----------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        c = _Conn(reader, writer, next(self._pids), secrets.randbits(31))
        self._all.add(c)
        try:
            if await self._startup(c):
                self._conns[c.pid] = c
                await self._loop(c)
        except ProtocolViolation as e:
            await self._fatal(c, "08P01", str(e))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except Exception as e:  # a bug: tell the client, keep the server alive
            log.exception("pgwire connection %d failed", c.pid)
            await self._fatal(c, "XX000", f"internal error: {e}")
        finally:
            self._conns.pop(c.pid, None)
            self._all.discard(c)
            if c.running is not None:
                c.running.cancel()
            if c.session is not None:
                with contextlib.suppress(Exception):
                    await c.session.close()
            with contextlib.suppress(Exception):  # (no transport after a failed TLS handshake)
                writer.close()
                await writer.wait_closed()
            self._tasks.discard(task)

    async def _fatal(self, c: _Conn, code: str, message: str) -> None:
        with contextlib.suppress(Exception):
            c.writer.write(b"".join(c.out) + M.error_response(code, message, severity="FATAL"))
            c.out.clear()
            await c.writer.drain()

    async def _flush(self, c: _Conn) -> None:
        if c.out:
            c.writer.write(b"".join(c.out))
            c.out.clear()
        await c.writer.drain()

    async def _startup(self, c: _Conn) -> bool:
        while True:
            n = struct.unpack("!i", await c.reader.readexactly(4))[0]
            if not 8 <= n <= M.MAX_STARTUP_LEN:
                raise ProtocolViolation(f"invalid length of startup packet: {n}")
            body = await c.reader.readexactly(n - 4)
            code = struct.unpack("!i", body[:4])[0]
            if code == M.SSL_REQUEST and self.tls is not None and not c.tls:
                c.writer.write(b"S")
                await c.writer.drain()
                raw = c.writer.transport
                try:
                    await c.writer.start_tls(self.tls, ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT)
                except Exception as e:  # a bad handshake ends this connection only
                    log.info("pgwire connection %d: TLS handshake failed: %s", c.pid, e)
                    raw.abort()
                    if c.writer.transport is None:  # CPython 3.11 leaves the writer without
                        c.writer._transport = raw  # one; give it back so close() works
                    return False
                c.tls = True
                continue
            if code in (M.SSL_REQUEST, M.GSSENC_REQUEST):
                c.writer.write(b"N")
                await c.writer.drain()
                continue
            if code == M.CANCEL_REQUEST:
                if n == 16:
                    pid, secret = struct.unpack("!ii", body[4:12])
                    self._cancel(pid, secret)
                return False
            if code != M.PROTOCOL_V3:
                raise ProtocolViolation(
                    f"unsupported frontend protocol {code >> 16}.{code & 0xFFFF}: "
                    "server supports 3.0")
            params = M.parse_startup_params(body[4:])
            break
        if self.require_tls and not c.tls:
            await self._fatal(c, "28000", "this server requires TLS (sslmode=require)")
            return False
        user = params.get("user", "")
        if not user:
            await self._fatal(c, "28000", "no PostgreSQL user name specified in startup packet")
            return False
        database = params.get("database") or user
        if not await self._authenticate(c, user):
            return False
        try:
            c.session = await self.backend.new_session(user, database)
        except Exception as e:
            code, message = _error_fields(e)
            await self._fatal(c, code, message)
            return False
        status = dict(pgcatalog.SERVER_PARAMS) | {
            "is_superuser": "on" if user == "root" else "off", "session_authorization": user,
            "application_name": params.get("application_name", "")}
        c.out.append(M.auth(0))
        c.out.extend(M.parameter_status(k, v) for k, v in status.items())
        c.out.append(M.backend_key_data(c.pid, c.secret))
        c.out.append(M.ready_for_query("I"))
        await self._flush(c)
        return True

    async def _authenticate(self, c: _Conn, user: str) -> bool:
        mode = self.auth
        if mode == "loopback-trust":
            peer = c.writer.get_extra_info("peername")
            host = peer[0] if isinstance(peer, tuple) else ""
            with contextlib.suppress(ValueError):
                if ipaddress.ip_address(host).is_loopback:
                    return True
            mode = "scram"
        if mode == "trust":
            return True
        scram = ScramServer(await self.backend.password_verifier(user))
        c.writer.write(M.auth(10, M.cstr(MECHANISM) + b"\x00"))
        await c.writer.drain()
        try:
            r = Reader(await self._read_auth(c))
            if r.cstr() != MECHANISM:
                raise ScramError("unsupported SASL mechanism")
            n = r.i32()
            first = r.raw(n) if n >= 0 else b""
            c.writer.write(M.auth(11, scram.first(first)))
            await c.writer.drain()
            final = scram.final(await self._read_auth(c))
        except ScramError as e:
            log.info("pgwire: authentication of %r failed: %s", user, e)
            await self._fatal(c, "28P01", f'password authentication failed for user "{user}"')
            return False
        c.writer.write(M.auth(12, final))
        return True

    async def _read_auth(self, c: _Conn) -> bytes:
        kind, body = await self._read_message(c)
        if kind != "p":
            raise ProtocolViolation(f"expected SASL response, got message type {kind!r}")
        return body

    async def _read_message(self, c: _Conn) -> tuple[str, bytes]:
        head = await c.reader.readexactly(5)
        kind = chr(head[0])
        n = struct.unpack("!i", head[1:])[0]
        if n < 4 or n - 4 > self.max_message:
            raise ProtocolViolation(f"invalid message length {n} for message type {kind!r}")
        return kind, await c.reader.readexactly(n - 4)

    def _cancel(self, pid: int, secret: int) -> None:
        c = self._conns.get(pid)
        if c is None or c.secret != secret or c.running is None:
            return
        c.cancel_requested = True
        if c.session is not None:
            with contextlib.suppress(Exception):
                c.session.cancel()
        c.running.cancel()

    # -- the query loop ------------------------------------------------------------------------
    async def _loop(self, c: _Conn) -> None:
        skipping = False  # after an extended-protocol error: discard until Sync
        while True:
            kind, body = await self._read_message(c)
            if kind == "X":
                return
            if kind == "S":
                skipping = False
                status = self._status(c)
                if status == "I":  # portals live until their transaction ends (PostgreSQL)
                    c.portals.clear()
                c.out.append(M.ready_for_query(status))
                await self._flush(c)
                continue
            if kind == "H":
                await self._flush(c)
                continue
            if kind == "Q":
                await self._simple(c, Reader(body).cstr())
                c.out.append(M.ready_for_query(self._status(c)))
                await self._flush(c)
                continue
            handler = _EXTENDED.get(kind)
            if handler is None:
                raise ProtocolViolation(f"invalid frontend message type {ord(kind)}")
            if skipping:
                continue
            try:
                await handler(self, c, Reader(body))
            except ProtocolViolation:
                raise
            except Exception as e:
                c.out.append(_error_message(e))
                skipping = True
            if len(c.out) > 256:
                await self._flush(c)

    def _status(self, c: _Conn) -> str:
        assert c.session is not None
        return c.session.txn_status()

    async def _run(self, c: _Conn, sql: str, params: Sequence[Any] | None) -> StatementResult:
        assert c.session is not None
        fake = pgcatalog.answer(sql, c.session)
        coro = fake if fake is not None else c.session.execute(sql, params)
        c.cancel_requested = False
        c.running = asyncio.ensure_future(coro)
        try:
            return await asyncio.shield(c.running)
        except asyncio.CancelledError:
            if c.cancel_requested and c.running.cancelled():
                raise QueryCanceled("canceling statement due to user request") from None
            c.running.cancel()
            raise
        finally:
            c.running = None

    async def _simple(self, c: _Conn, sql: str) -> None:
        assert c.session is not None
        try:
            stmts = c.session.split(sql)
        except Exception as e:
            c.out.append(_error_message(e))
            return
        if not stmts:
            c.out.append(M.EMPTY_QUERY)
            return
        for s in stmts:
            if pgcopy.is_copy(s):
                try:
                    c.out.append(M.command_complete(await self._copy(c, s)))
                except Exception as e:
                    c.out.append(_error_message(e))
                    return
                continue
            try:
                res = await self._run(c, s, None)
            except Exception as e:
                c.out.append(_error_message(e))
                return
            if res.returns_rows:
                fmts = [0] * len(res.columns)
                c.out.append(M.row_description(res.columns, fmts))
                for row in res.rows:
                    c.out.append(_data_row(res, row, fmts))
                    if len(c.out) > 512:
                        await self._flush(c)
            c.out.append(M.command_complete(res.tag) if res.tag else M.EMPTY_QUERY)

    # -- COPY (crdb_py/pgwire/copy.py) --------------------------------------------------------
    async def _copy(self, c: _Conn, sql: str) -> str:
        """Run one COPY statement; returns its command tag ("COPY n")."""
        spec = pgcopy.parse(sql)
        if spec.direction == "out":
            return await self._copy_out(c, spec)
        cols = list(spec.columns)
        if not cols:  # every visible column, in table order
            cols = [col.name for col in (await self._run(
                c, f"SELECT * FROM {spec.table} LIMIT 0", None)).columns]
        await self._flush(c)
        c.writer.write(M.msg(b"G", struct.pack(f"!bh{len(cols)}h", 0, len(cols),
                                               *([0] * len(cols)))))
        await c.writer.drain()
        chunks: list[bytes] = []
        failed = None
        while True:  # PostgreSQL ignores Flush and Sync while copying in
            kind, body = await self._read_message(c)
            if kind == "d":
                chunks.append(body)
            elif kind == "c":
                break
            elif kind == "f":
                failed = Reader(body).cstr()
                break
            elif kind not in ("H", "S"):
                raise ProtocolViolation(f"unexpected message type {kind!r} during COPY")
        if failed is not None:
            raise _sql_error("57014", f"COPY from stdin failed: {failed}")
        rows = pgcopy.decode_rows(b"".join(chunks), spec)
        for i, r in enumerate(rows):
            if len(r) != len(cols):
                raise _sql_error("22P04", f"COPY {spec.table}, line {i + 1}: expected "
                                 f"{len(cols)} columns, got {len(r)}")
        began = self._status(c) == "I"  # the whole COPY is one transaction
        if began:
            await self._run(c, "BEGIN", None)
        try:
            collist = ", ".join(cols)
            for lo in range(0, len(rows), COPY_BATCH_ROWS):
                part = rows[lo:lo + COPY_BATCH_ROWS]
                k = len(cols)
                values = ", ".join(
                    "(" + ", ".join(f"${j * k + i + 1}" for i in range(k)) + ")"
                    for j in range(len(part)))
                await self._run(c, f"INSERT INTO {spec.table} ({collist}) VALUES {values}",
                                [f for r in part for f in r])
            if began:
                await self._run(c, "COMMIT", None)
        except BaseException:
            if began:
                with contextlib.suppress(Exception):
                    await self._run(c, "ROLLBACK", None)
            raise
        return f"COPY {len(rows)}"

    async def _copy_out(self, c: _Conn, spec: pgcopy.CopySpec) -> str:
        query = spec.query or (f"SELECT {', '.join(spec.columns) or '*'} FROM {spec.table}")
        res = await self._run(c, query, None)
        if not res.returns_rows:
            raise _sql_error("42601", "COPY (query) TO STDOUT needs a query that returns rows")
        n = len(res.columns)
        c.out.append(M.msg(b"H", struct.pack(f"!bh{n}h", 0, n, *([0] * n))))
        if spec.header:
            c.out.append(M.msg(b"d", pgcopy.encode_row([col.name for col in res.columns], spec)))
        for row in res.rows:
            fields = [None if v is None else pgtypes.to_text(v, col.type_oid)
                      for v, col in zip(row, res.columns, strict=True)]
            c.out.append(M.msg(b"d", pgcopy.encode_row(fields, spec)))
            if len(c.out) > 512:
                await self._flush(c)
        c.out.append(M.msg(b"c"))
        return f"COPY {len(res.rows)}"

    # -- extended protocol ---------------------------------------------------------------------
    async def _parse(self, c: _Conn, r: Reader) -> None:
        assert c.session is not None
        name, sql = r.cstr(), r.cstr()
        oids = [r.i32() for _ in range(r.i16())]
        r.done()
        if name and name in c.stmts:
            raise _sql_error("42P05", f'prepared statement "{name}" already exists')
        if pgcatalog.recognizes(sql):
            info = PreparedInfo(oids, None)
        else:
            info = await c.session.prepare(sql, oids)
        c.stmts[name] = _Prepared(sql, info)
        c.out.append(M.PARSE_COMPLETE)

    async def _bind(self, c: _Conn, r: Reader) -> None:
        portal, name = r.cstr(), r.cstr()
        stmt = c.stmts.get(name)
        if stmt is None:
            raise _sql_error("26000", f'prepared statement "{name}" does not exist')
        pfmts = [r.i16() for _ in range(r.i16())]
        raw = []
        for _ in range(r.i16()):
            n = r.i32()
            raw.append(None if n < 0 else r.raw(n))
        rfmts = [r.i16() for _ in range(r.i16())]
        r.done()
        oids = stmt.info.param_oids
        if len(pfmts) not in (0, 1, len(raw)) or (oids and len(raw) != len(oids)):
            raise _sql_error(
                "08P01", f"bind message supplies {len(raw)} parameters, but prepared statement "
                f'"{name}" requires {len(oids)}')
        params = []
        for i, b in enumerate(raw):
            fmt = pfmts[0] if len(pfmts) == 1 else (pfmts[i] if pfmts else 0)
            oid = oids[i] if i < len(oids) else 0
            params.append(None if b is None else pgtypes.decode(b, oid, fmt))
        if portal and portal in c.portals:
            raise _sql_error("42P03", f'portal "{portal}" already exists')
        c.portals[portal] = _Portal(stmt, params, [], rfmts)
        c.out.append(M.BIND_COMPLETE)

    async def _describe(self, c: _Conn, r: Reader) -> None:
        what, name = r.byte(), r.cstr()
        r.done()
        if what == "S":
            stmt = c.stmts.get(name)
            if stmt is None:
                raise _sql_error("26000", f'prepared statement "{name}" does not exist')
            c.out.append(M.parameter_description(
                [o or pgtypes.TEXT for o in stmt.info.param_oids]))
            cols = stmt.info.columns
            if cols is None:
                cols = await self._probe_columns(c, stmt)
            c.out.append(M.row_description(cols, [0] * len(cols)) if cols else M.NO_DATA)
            return
        if what != "P":
            raise ProtocolViolation(f"invalid DESCRIBE message subtype {what!r}")
        p = c.portals.get(name)
        if p is None:
            raise _sql_error("34000", f'portal "{name}" does not exist')
        cols = p.stmt.info.columns
        if cols is None:
            p.result = await self._run(c, p.stmt.sql, p.params)
            cols = p.result.columns if p.result.returns_rows else []
        p.formats = _formats(p.raw_formats, len(cols))
        c.out.append(M.row_description(cols, p.formats) if cols else M.NO_DATA)

    async def _probe_columns(self, c: _Conn, stmt: _Prepared) -> list[Column]:
        """The columns of a query whose shape only execution tells: run it with
        NULL parameters. Only outside a transaction block (where its error, if
        any, has no lasting effect) and only for read-only statement forms;
        otherwise the client is told NoData."""
        if not _looks_like_query(stmt.sql) or self._status(c) != "I":
            return []
        try:
            res = await self._run(c, stmt.sql, [None] * len(stmt.info.param_oids))
        except QueryCanceled:
            raise
        except Exception:
            return []
        return res.columns

    async def _execute(self, c: _Conn, r: Reader) -> None:
        name, max_rows = r.cstr(), r.i32()
        r.done()
        p = c.portals.get(name)
        if p is None:
            raise _sql_error("34000", f'portal "{name}" does not exist')
        if p.result is None:
            p.result = await self._run(c, p.stmt.sql, p.params)
        res = p.result
        if not res.tag and not res.columns:
            c.out.append(M.EMPTY_QUERY)
            return
        if len(p.formats) != len(res.columns):
            p.formats = _formats(p.raw_formats, len(res.columns))
        end = len(res.rows) if max_rows <= 0 else min(len(res.rows), p.sent + max_rows)
        for row in res.rows[p.sent:end]:
            c.out.append(_data_row(res, row, p.formats))
        p.sent = end
        if end < len(res.rows):
            c.out.append(M.PORTAL_SUSPENDED)
        else:
            c.out.append(M.command_complete(res.tag))

    async def _close(self, c: _Conn, r: Reader) -> None:
        what, name = r.byte(), r.cstr()
        r.done()
        if what == "S":
            c.stmts.pop(name, None)
        elif what == "P":
            c.portals.pop(name, None)
        else:
            raise ProtocolViolation(f"invalid CLOSE message subtype {what!r}")
        c.out.append(M.CLOSE_COMPLETE)


async def _bind_unnamed(srv: PGServer, c: _Conn, r: Reader) -> None:
    # Binding replaces the unnamed portal (PostgreSQL drops it implicitly).
    save = r.pos
    portal = r.cstr()
    r.pos = save
    if not portal:
        c.portals.pop("", None)
    await srv._bind(c, r)


async def _parse_unnamed(srv: PGServer, c: _Conn, r: Reader) -> None:
    save = r.pos
    name = r.cstr()
    r.pos = save
    if not name:
        c.stmts.pop("", None)
    await srv._parse(c, r)


_EXTENDED = {"P": _parse_unnamed, "B": _bind_unnamed, "D": PGServer._describe,
             "E": PGServer._execute, "C": PGServer._close}


def _formats(raw: list[int], n: int) -> list[int]:
    if not raw:
        return [0] * n
    if len(raw) == 1:
        return raw * n
    if len(raw) != n:
        raise ProtocolViolation(f"bind message has {len(raw)} result formats but query has {n} columns")
    return raw


def _data_row(res: StatementResult, row: Sequence[Any], fmts: Sequence[int]) -> bytes:
    return M.data_row([None if v is None else pgtypes.encode(v, col.type_oid, f)
                       for v, col, f in zip(row, res.columns, fmts, strict=True)])


def _looks_like_query(sql: str) -> bool:
    return sql.lstrip().split(None, 1)[0].lower() in ("select", "show", "values", "with", "table") \
        if sql.strip() else False


class _SQLStateError(Exception):
    def __init__(self, sqlstate: str, msg: str) -> None:
        super().__init__(msg)
        self.sqlstate = sqlstate


def _sql_error(code: str, msg: str) -> _SQLStateError:
    return _SQLStateError(code, msg)


def _error_fields(e: BaseException) -> tuple[str, str]:
    code = getattr(e, "sqlstate", None)
    if not isinstance(code, str) or len(code) != 5:
        log.warning("pgwire: error without SQLSTATE: %r", e)
        code = "XX000"
    return code, str(e) or type(e).__name__


def _error_message(e: BaseException) -> bytes:
    code, message = _error_fields(e)
    detail = None
    if "\nDETAIL: " in message:
        message, detail = message.split("\nDETAIL: ", 1)
    return M.error_response(code, message, detail=detail)
