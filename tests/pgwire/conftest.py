"""Fixtures: a PGServer on a background event loop, and a raw wire client."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import struct
import subprocess
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest

from crdb_py.pgwire.server import AuthMode, PGServer
from tests.pgwire.fake_backend import FakeBackend


class LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 20) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


class Running:
    def __init__(self, lt: LoopThread, server: PGServer, backend: Any) -> None:
        self.lt, self.server, self.backend = lt, server, backend
        self.host, self.port = server.address

    def dsn(self, user: str = "root", dbname: str = "defaultdb", password: str | None = None) -> str:
        pw = f" password={password}" if password is not None else ""
        return f"host={self.host} port={self.port} user={user} dbname={dbname}{pw}"


@pytest.fixture
def start_server() -> Iterator[Callable[..., Running]]:
    lt = LoopThread()
    servers: list[PGServer] = []

    def start(backend: Any = None, auth: AuthMode = "loopback-trust", **kw: Any) -> Running:
        backend = backend if backend is not None else FakeBackend()
        srv = PGServer(backend, "127.0.0.1", 0, auth=auth, **kw)
        lt.run(srv.start())
        servers.append(srv)
        return Running(lt, srv, backend)

    yield start
    for s in servers:
        lt.run(s.close())
    lt.stop()


@pytest.fixture
def srv(start_server: Callable[..., Running]) -> Running:
    return start_server()


def _install_psql() -> str | None:
    """psql, installed from Debian's postgresql-client when missing and we may
    (root with apt-get; CRDB_PY_NO_INSTALL=1 turns this off)."""
    path = shutil.which("psql")
    if path or os.environ.get("CRDB_PY_NO_INSTALL") == "1":
        return path
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        return None
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "install", "-y", "-q", "postgresql-client"],
                ["apt-get", "update", "-q"],
                ["apt-get", "install", "-y", "-q", "postgresql-client"]):
        try:
            subprocess.run(cmd, env=env, capture_output=True, timeout=300, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        path = shutil.which("psql")
        if path:
            return path
    return None


@pytest.fixture(scope="session")
def psql() -> str:
    """The psql binary; the test is skipped (saying why) only if it cannot be had."""
    path = _install_psql()
    if path is None:
        pytest.skip("psql not found and could not be installed: "
                    "apt-get install -y postgresql-client")
    return path


# ---- a raw protocol client ----------------------------------------------------------------------


def _c(s: str) -> bytes:
    return s.encode() + b"\x00"


class Wire:
    """Speaks the protocol byte by byte so tests can send anything."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=10)

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def msg(self, kind: str, body: bytes = b"") -> None:
        self.send(kind.encode() + struct.pack("!i", len(body) + 4) + body)

    def _exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise EOFError("server closed the connection")
            buf += chunk
        return buf

    def read(self) -> tuple[str, bytes]:
        head = self._exact(5)
        n = struct.unpack("!i", head[1:])[0]
        return chr(head[0]), self._exact(n - 4)

    def until_ready(self) -> list[tuple[str, bytes]]:
        out = []
        while True:
            m = self.read()
            out.append(m)
            if m[0] == "Z":
                return out

    def startup(self, user: str = "root", database: str = "defaultdb") -> list[tuple[str, bytes]]:
        body = struct.pack("!i", 196608) + _c("user") + _c(user) + _c("database") + _c(database)
        self.send(struct.pack("!i", len(body) + 4 + 1) + body + b"\x00")
        return self.until_ready()

    def query(self, sql: str) -> list[tuple[str, bytes]]:
        self.msg("Q", _c(sql))
        return self.until_ready()

    def parse(self, name: str, sql: str, oids: list[int] = []) -> None:  # noqa: B006
        self.msg("P", _c(name) + _c(sql) + struct.pack(f"!h{len(oids)}i", len(oids), *oids))

    def bind(self, portal: str, stmt: str, params: list[str | None],
             result_formats: list[int] = []) -> None:  # noqa: B006
        body = _c(portal) + _c(stmt) + struct.pack("!hh", 0, len(params))
        for p in params:
            body += struct.pack("!i", -1) if p is None else struct.pack("!i", len(p.encode())) + p.encode()
        body += struct.pack(f"!h{len(result_formats)}h", len(result_formats), *result_formats)
        self.msg("B", body)

    def describe(self, what: str, name: str) -> None:
        self.msg("D", what.encode() + _c(name))

    def execute(self, portal: str, max_rows: int = 0) -> None:
        self.msg("E", _c(portal) + struct.pack("!i", max_rows))

    def sync(self) -> list[tuple[str, bytes]]:
        self.msg("S")
        return self.until_ready()

    def close(self) -> None:
        self.sock.close()


def fields(body: bytes) -> dict[str, str]:
    """An ErrorResponse / NoticeResponse body as {field code: value}."""
    out = {}
    for part in body.rstrip(b"\x00").split(b"\x00"):
        if part:
            out[chr(part[0])] = part[1:].decode()
    return out


def rows(msgs: list[tuple[str, bytes]]) -> list[list[str | None]]:
    out = []
    for kind, body in msgs:
        if kind != "D":
            continue
        n = struct.unpack("!h", body[:2])[0]
        pos, row = 2, []
        for _ in range(n):
            ln = struct.unpack("!i", body[pos:pos + 4])[0]
            pos += 4
            if ln < 0:
                row.append(None)
            else:
                row.append(body[pos:pos + ln].decode())
                pos += ln
        out.append(row)
    return out


def kinds(msgs: list[tuple[str, bytes]]) -> str:
    return "".join(k for k, _ in msgs)


def column_names(body: bytes) -> list[str]:
    n = struct.unpack("!h", body[:2])[0]
    pos, names = 2, []
    for _ in range(n):
        end = body.index(b"\x00", pos)
        names.append(body[pos:end].decode())
        pos = end + 1 + 18
    return names


@pytest.fixture
def wire(srv: Running) -> Iterator[Wire]:
    w = Wire(srv.host, srv.port)
    w.startup()
    yield w
    w.close()
