"""Users created with SQL log in over SCRAM-SHA-256 (sql/users.py -> sql_adapter.py -> server.py).

Two wire servers share one KV store, as two nodes of a cluster would: an
admin one that trusts its clients (where root runs CREATE USER) and one
that demands SCRAM, whose backend reads the verifiers from KV. The last
test runs a real node process."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import signal
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from crdb_py.pgwire.sql_adapter import SQLAdapterBackend
from tests.cli.procs import cli, reap, spawn, wait_file
from tests.pgwire.conftest import Running, Wire, fields
from tests.pgwire.test_node import _free_port
from tests.sql.fake_kv import FakeKV


@pytest.fixture
def pair(start_server: Callable[..., Running]) -> tuple[Running, Running]:
    kv = FakeKV()
    return start_server(SQLAdapterBackend(kv), auth="trust"), \
        start_server(SQLAdapterBackend(lambda: kv), auth="scram")


def _auth_fails(r: Running, user: str, password: str) -> None:
    with pytest.raises(psycopg.OperationalError) as ei:
        psycopg.connect(r.dsn(user=user, password=password), connect_timeout=10)
    assert f'password authentication failed for user "{user}"' in str(ei.value)


def test_created_user_logs_in_with_its_password_only(pair: tuple[Running, Running]) -> None:
    admin, scram = pair
    _auth_fails(scram, "alice", "s3cret")  # no such user yet
    with psycopg.connect(admin.dsn(), autocommit=True, connect_timeout=10) as conn:
        conn.execute("CREATE USER alice WITH PASSWORD 's3cret'")
        conn.execute("CREATE TABLE t (k INT PRIMARY KEY)")
        conn.execute("INSERT INTO t VALUES (7)")
        assert ("alice", "") in conn.execute("SHOW USERS").fetchall()
    with psycopg.connect(scram.dsn(user="alice", password="s3cret"), autocommit=True,
                         connect_timeout=10) as conn:
        assert conn.info.parameter_status("session_authorization") == "alice"
        assert conn.execute("SELECT k FROM t").fetchall() == [(7,)]
    _auth_fails(scram, "alice", "wrong")
    with psycopg.connect(admin.dsn(), autocommit=True, connect_timeout=10) as conn:
        conn.execute("ALTER USER alice WITH PASSWORD 'n3w'")
    _auth_fails(scram, "alice", "s3cret")
    psycopg.connect(scram.dsn(user="alice", password="n3w"), connect_timeout=10).close()
    with psycopg.connect(admin.dsn(), autocommit=True, connect_timeout=10) as conn:
        conn.execute("DROP USER alice")
    _auth_fails(scram, "alice", "n3w")


def _raw_scram_login(r: Running, user: str, password: str) -> tuple[str, bytes]:
    """A SCRAM-SHA-256 client over the raw protocol; the server's answer to the proof."""
    w = Wire(r.host, r.port)
    try:
        body = struct.pack("!i", 196608) + f"user\x00{user}\x00\x00".encode()
        w.send(struct.pack("!i", len(body) + 4) + body)
        kind, b = w.read()
        assert kind == "R" and b[:4] == struct.pack("!i", 10)
        bare = f"n=,r={base64.b64encode(secrets.token_bytes(18)).decode()}"
        first = f"n,,{bare}".encode()
        w.msg("p", b"SCRAM-SHA-256\x00" + struct.pack("!i", len(first)) + first)
        kind, b = w.read()
        assert kind == "R" and b[:4] == struct.pack("!i", 11)
        server_first = b[4:].decode()
        a = dict(part.split("=", 1) for part in server_first.split(","))
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(a["s"]),
                                     int(a["i"]))
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        without_proof = f"c=biws,r={a['r']}"
        auth_msg = f"{bare},{server_first},{without_proof}".encode()
        sig = hmac.new(hashlib.sha256(client_key).digest(), auth_msg, hashlib.sha256).digest()
        proof = base64.b64encode(bytes(x ^ y for x, y in zip(client_key, sig, strict=True)))
        w.msg("p", f"{without_proof},p={proof.decode()}".encode())
        return w.read()
    finally:
        w.sock.close()


def test_root_logs_in_over_scram_once_its_password_is_set(
        pair: tuple[Running, Running]) -> None:
    admin, scram = pair
    _auth_fails(scram, "root", "r00t")  # no password yet: root cannot log in over SCRAM
    with psycopg.connect(admin.dsn(), autocommit=True, connect_timeout=10) as conn:
        conn.execute("ALTER USER root WITH PASSWORD 'r00t'")
    with psycopg.connect(scram.dsn(user="root", password="r00t"), connect_timeout=10) as conn:
        assert conn.info.parameter_status("is_superuser") == "on"
    _auth_fails(scram, "root", "wrong")


def test_wrong_password_is_sqlstate_28P01(pair: tuple[Running, Running]) -> None:
    admin, scram = pair
    with psycopg.connect(admin.dsn(), autocommit=True, connect_timeout=10) as conn:
        conn.execute("CREATE USER bob PASSWORD 'pw'")
    kind, b = _raw_scram_login(scram, "bob", "nope")
    assert kind == "E" and fields(b)["C"] == "28P01"
    kind, b = _raw_scram_login(scram, "bob", "pw")  # the same client succeeds with the right one
    assert kind == "R" and b[:4] == struct.pack("!i", 12)


def test_psql_logs_in_as_a_created_user(pair: tuple[Running, Running], psql: str) -> None:
    admin, scram = pair
    with psycopg.connect(admin.dsn(), autocommit=True, connect_timeout=10) as conn:
        conn.execute("CREATE USER carol PASSWORD 'c4r0l'")

    def run(pw: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([psql, "-X", "-w", "-h", scram.host, "-p", str(scram.port),
                               "-U", "carol", "-d", "defaultdb", "-tA", "-c", "SELECT 40 + 2"],
                              capture_output=True, text=True, timeout=60,
                              env=dict(os.environ, PGPASSWORD=pw))

    ok = run("c4r0l")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == "42"
    bad = run("x")
    assert bad.returncode != 0 and "password authentication failed" in bad.stderr


def _non_loopback_ip() -> str | None:
    import ipaddress
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 9))  # no packet is sent: this only picks a route
        except OSError:
            return None
        ip = str(s.getsockname()[0])
    return None if ipaddress.ip_address(ip).is_loopback or ip == "0.0.0.0" else ip


def test_real_node_loopback_trust_then_scram_from_elsewhere(tmp_path: Path) -> None:
    """The default `--sql-auth loopback-trust`: root creates a user over loopback;
    the user then logs in over SCRAM from a non-loopback address."""
    ip = _non_loopback_ip()
    if ip is None:
        pytest.skip("no non-loopback IPv4 address to connect from")
    port, sql_port = _free_port(), _free_port()
    ready = str(tmp_path / "ready.json")
    p = spawn(["start", "--store", "mem", "--listen-addr", f"127.0.0.1:{port}",
               "--sql-addr", f"0.0.0.0:{sql_port}", "--replication-factor", "1",
               "--ready-file", ready, "--pid-file", str(tmp_path / "pid")], str(tmp_path / "n.log"))
    try:
        wait_file(str(tmp_path / "pid"), p)
        r = cli(["init", "--host", f"127.0.0.1:{port}"])
        assert r.returncode == 0, r.stderr
        wait_file(ready, p, timeout=30)
        with psycopg.connect(host="127.0.0.1", port=sql_port, user="root", dbname="defaultdb",
                             autocommit=True, connect_timeout=10) as conn:
            conn.execute("CREATE USER dave WITH PASSWORD 'd4ve'")
        with psycopg.connect(host=ip, port=sql_port, user="dave", password="d4ve",
                             dbname="defaultdb", connect_timeout=10) as conn:
            assert conn.execute("SELECT 6 * 7").fetchone() == (42,)
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(host=ip, port=sql_port, user="dave", password="wrong",
                            dbname="defaultdb", connect_timeout=10)
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(host=ip, port=sql_port, user="root", password="x",
                            dbname="defaultdb", connect_timeout=10)
        p.send_signal(signal.SIGTERM)
        assert p.wait(20) == 0
    finally:
        reap(p)
