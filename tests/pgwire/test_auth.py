"""Authentication: trust, SCRAM-SHA-256 (psycopg/libpq as the client), loopback-trust."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest

from crdb_py.pgwire import scram
from tests.pgwire.conftest import Running, Wire, fields
from tests.pgwire.fake_backend import FakeBackend


def _backend() -> FakeBackend:
    return FakeBackend(users={"alice": scram.make_verifier("s3cret", iterations=1024)})


def test_scram_success(start_server: Callable[..., Running]) -> None:
    r = start_server(_backend(), auth="scram")
    with psycopg.connect(r.dsn(user="alice", password="s3cret"), connect_timeout=10) as conn:
        assert conn.execute("SELECT 42").fetchone() == (42,)
        assert conn.info.parameter_status("session_authorization") == "alice"


@pytest.mark.parametrize("user,password", [("alice", "wrong"), ("mallory", "s3cret")])
def test_scram_wrong_password_or_unknown_user(start_server: Callable[..., Running],
                                              user: str, password: str) -> None:
    r = start_server(_backend(), auth="scram")
    with pytest.raises(psycopg.OperationalError) as ei:
        psycopg.connect(r.dsn(user=user, password=password), connect_timeout=10)
    assert f"password authentication failed for user \"{user}\"" in str(ei.value)
    # the server is still fine
    with psycopg.connect(r.dsn(user="alice", password="s3cret"), connect_timeout=10) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_scram_asks_for_a_password(start_server: Callable[..., Running]) -> None:
    r = start_server(_backend(), auth="scram")
    w = Wire(r.host, r.port)
    import struct
    body = struct.pack("!i", 196608) + b"user\x00alice\x00\x00"
    w.send(struct.pack("!i", len(body) + 4) + body)
    kind, b = w.read()
    assert kind == "R" and b[:4] == struct.pack("!i", 10) and b"SCRAM-SHA-256" in b
    w.send(b"p" + struct.pack("!i", 8) + b"junk")  # not a SASLInitialResponse
    kind, b = w.read()
    assert kind == "E" and fields(b)["C"] in ("28P01", "08P01")


def test_loopback_is_trusted_by_default(start_server: Callable[..., Running]) -> None:
    r = start_server(_backend())  # loopback-trust
    with psycopg.connect(r.dsn(user="alice"), connect_timeout=10) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_scram_server_rejects_tampered_proof() -> None:
    """Sans-IO: a correct proof passes and any flipped bit fails."""
    import base64
    import hashlib
    import hmac

    v = scram.make_verifier("pw", salt=b"0123456789abcdef", iterations=16)

    def client_final(srv: scram.ScramServer, password: str, flip: bool) -> bytes:
        sf = srv.first(b"n,,n=,r=abc").decode()
        attrs = dict(p.split("=", 1) for p in sf.split(","))
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(attrs["s"]),
                                     int(attrs["i"]))
        ck = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored = hashlib.sha256(ck).digest()
        without = f"c=biws,r={attrs['r']}"
        am = f"n=,r=abc,{sf},{without}".encode()
        proof = bytearray(a ^ b for a, b in zip(ck, hmac.new(stored, am, hashlib.sha256).digest()))
        if flip:
            proof[0] ^= 1
        return f"{without},p={base64.b64encode(bytes(proof)).decode()}".encode()

    ok = scram.ScramServer(v)
    assert ok.final(client_final(ok, "pw", False)).startswith(b"v=")
    bad = scram.ScramServer(v)
    with pytest.raises(scram.ScramError):
        bad.final(client_final(bad, "pw", True))
    wrong = scram.ScramServer(v)
    with pytest.raises(scram.ScramError):
        wrong.final(client_final(wrong, "other", False))
