"""TLS on the SQL port: SSLRequest answered 'S' and the stream upgraded.

Certificates are made on the fly with the `openssl` command (skipped, saying
why, when it is missing). Clients: psycopg (libpq) and psql.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from crdb_py.pgwire import messages as M
from crdb_py.pgwire.server import PGServer, make_tls_context
from tests.pgwire.conftest import Running, Wire
from tests.pgwire.fake_backend import FakeBackend


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl not found: cannot make a test certificate")
    d = tmp_path_factory.mktemp("certs")
    crt, key = d / "node.crt", d / "node.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(crt)],
                   check=True, capture_output=True, timeout=60)
    return str(crt), str(key)


def test_tls_with_psycopg(start_server: Callable[..., Running], cert: tuple[str, str]) -> None:
    r = start_server(tls=make_tls_context(*cert))
    with psycopg.connect(r.dsn() + " sslmode=require", connect_timeout=10) as conn:
        assert conn.pgconn.ssl_in_use
        assert conn.execute("SELECT 1").fetchall() == [(1,)]
    with psycopg.connect(r.dsn() + " sslmode=disable", connect_timeout=10) as conn:
        assert not conn.pgconn.ssl_in_use  # clear text still allowed unless required
        assert conn.execute("SELECT 2").fetchall() == [(2,)]


def test_require_tls_refuses_clear_text(start_server: Callable[..., Running],
                                        cert: tuple[str, str]) -> None:
    r = start_server(tls=make_tls_context(*cert), require_tls=True)
    with pytest.raises(psycopg.OperationalError) as ei:
        psycopg.connect(r.dsn() + " sslmode=disable", connect_timeout=10)
    assert "requires TLS" in str(ei.value)
    with psycopg.connect(r.dsn() + " sslmode=prefer", connect_timeout=10) as conn:
        assert conn.pgconn.ssl_in_use  # libpq's default asks for TLS first


def test_without_a_certificate_tls_is_refused(start_server: Callable[..., Running]) -> None:
    r = start_server()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(r.dsn() + " sslmode=require", connect_timeout=10)
    with psycopg.connect(r.dsn() + " sslmode=prefer", connect_timeout=10) as conn:
        assert not conn.pgconn.ssl_in_use


def test_require_tls_needs_a_context() -> None:
    with pytest.raises(ValueError):
        PGServer(FakeBackend(), require_tls=True)


def test_a_broken_handshake_harms_no_one(start_server: Callable[..., Running],
                                         cert: tuple[str, str]) -> None:
    r = start_server(tls=make_tls_context(*cert))
    w = Wire(r.host, r.port)
    w.send(struct.pack("!ii", 8, M.SSL_REQUEST))
    assert w._exact(1) == b"S"
    w.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # not a TLS ClientHello
    w.sock.settimeout(10)
    try:
        rest = w.sock.recv(4096)  # an alert or EOF: the connection is over
    except ConnectionError:
        rest = b""
    assert not rest.startswith(b"R")  # never an authentication message in clear
    with psycopg.connect(r.dsn() + " sslmode=require", connect_timeout=10) as conn:
        assert conn.execute("SELECT 3").fetchall() == [(3,)]


def test_psql_over_tls(start_server: Callable[..., Running], cert: tuple[str, str],
                       psql: str, tmp_path: Path) -> None:
    r = start_server(tls=make_tls_context(*cert), require_tls=True)
    env = dict(os.environ, PGSSLMODE="require", PGCONNECT_TIMEOUT="10")
    out = subprocess.run([psql, "-h", r.host, "-p", str(r.port), "-U", "root", "-d", "defaultdb",
                          "-A", "-t", "-c", "SELECT 41"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "41"


def test_node_with_tls_required(tmp_path: Path, cert: tuple[str, str]) -> None:
    """A real `crdb-py start --sql-cert --sql-key --sql-require-tls` node."""
    from tests.cli.procs import cli, reap, spawn, wait_file
    from tests.pgwire.test_node import _free_port

    port, sql_port = _free_port(), _free_port()
    ready = str(tmp_path / "ready.json")
    p = spawn(["start", "--store", "mem", "--listen-addr", f"127.0.0.1:{port}",
               "--sql-addr", f"127.0.0.1:{sql_port}", "--replication-factor", "1",
               "--sql-cert", cert[0], "--sql-key", cert[1], "--sql-require-tls",
               "--ready-file", ready, "--pid-file", str(tmp_path / "pid")],
              str(tmp_path / "n.log"))
    try:
        wait_file(str(tmp_path / "pid"), p)
        assert cli(["init", "--host", f"127.0.0.1:{port}"]).returncode == 0
        wait_file(ready, p, timeout=30)
        dsn = f"host=127.0.0.1 port={sql_port} user=root dbname=defaultdb connect_timeout=10"
        with psycopg.connect(dsn + " sslmode=require") as conn:
            assert conn.pgconn.ssl_in_use
            assert conn.execute("SELECT 5").fetchall() == [(5,)]
        with pytest.raises(psycopg.OperationalError, match="requires TLS"):
            psycopg.connect(dsn + " sslmode=disable")
    finally:
        reap(p)


@pytest.mark.parametrize("flags,message", [
    (["--sql-cert", "CERT"], "go together"),
    (["--sql-require-tls"], "needs --sql-cert"),
    (["--sql-cert", "/nonexistent.crt", "--sql-key", "/nonexistent.key"], "cannot use"),
])
def test_node_refuses_bad_tls_flags(tmp_path: Path, cert: tuple[str, str], flags: list[str],
                                    message: str) -> None:
    from tests.cli.procs import cli
    from tests.pgwire.test_node import _free_port

    flags = [cert[0] if f == "CERT" else f for f in flags]
    r = cli(["start", "--store", "mem", "--listen-addr", f"127.0.0.1:{_free_port()}",
             "--sql-addr", f"127.0.0.1:{_free_port()}", *flags])
    assert r.returncode != 0 and message in r.stderr, r.stderr
