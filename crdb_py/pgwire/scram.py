"""SCRAM-SHA-256 (RFC 5802 / RFC 7677) as PostgreSQL's SASL authentication.

Sans-IO: `ScramServer` consumes the client's two messages and produces the
server's two, and `make_verifier` builds what the SQL layer stores for a
password (`CREATE USER ... PASSWORD`), in PostgreSQL's own format::

    SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>

The exchange (the wire framing lives in server.py)::

    S: AuthenticationSASL ["SCRAM-SHA-256"]
    C: SASLInitialResponse  "n,,n=,r=<client nonce>"
    S: AuthenticationSASLContinue "r=<client nonce><server nonce>,s=<salt>,i=<iterations>"
    C: SASLResponse "c=biws,r=<nonce>,p=<ClientProof>"
    S: AuthenticationSASLFinal "v=<ServerSignature>"   (or ErrorResponse 28P01)

The server never sees the password: it checks that H(ClientProof XOR
HMAC(StoredKey, AuthMessage)) == StoredKey. Channel binding is not offered
(no TLS), so the GS2 header must be "n,," or "y,,". A user with no verifier
gets a mock exchange that fails at the end, so a client cannot tell unknown
users from wrong passwords.
"""

from __future__ import annotations

import base64
import hmac
import secrets

from crdb_py.util.scram import (  # noqa: F401  (make_verifier is re-exported)
    DEFAULT_ITERATIONS,
    MECHANISM,
    make_verifier,
)
from crdb_py.util.scram import b64 as _b64
from crdb_py.util.scram import h as _h
from crdb_py.util.scram import hmac256 as _hmac


class ScramError(Exception):
    """The exchange failed (bad message or wrong password)."""


def parse_verifier(v: str) -> tuple[int, bytes, bytes, bytes]:
    try:
        mech, it_salt, keys = v.split("$")
        it, salt = it_salt.split(":")
        stored, server = keys.split(":")
        if mech != MECHANISM:
            raise ValueError(mech)
        return int(it), base64.b64decode(salt), base64.b64decode(stored), base64.b64decode(server)
    except ValueError as e:
        raise ScramError(f"malformed SCRAM verifier: {e}") from e


def _attrs(msg: str) -> dict[str, str]:
    out = {}
    for part in msg.split(","):
        if len(part) < 2 or part[1] != "=":
            raise ScramError(f"malformed SCRAM message attribute {part!r}")
        out[part[0]] = part[2:]
    return out


class ScramServer:
    """One SCRAM-SHA-256 exchange, server side."""

    def __init__(self, verifier: str | None) -> None:
        self._mock = verifier is None
        if verifier is None:  # unknown user: a plausible exchange that cannot succeed
            verifier = make_verifier(secrets.token_hex(16))
        self.iterations, self.salt, self.stored_key, self.server_key = parse_verifier(verifier)
        self._client_first_bare = ""
        self._server_first = ""
        self._nonce = ""

    def first(self, client_first: bytes) -> bytes:
        msg = client_first.decode("utf-8", "replace")
        gs2, sep, bare = msg.partition(",,")  # "n,," (or "y,,"): no channel binding, no authzid
        if not sep or gs2 not in ("n", "y"):
            raise ScramError("channel binding is not supported; expected a 'n,,' GS2 header")
        a = _attrs(bare)
        if "r" not in a or not a["r"]:
            raise ScramError("client nonce missing")
        self._client_first_bare = bare
        self._nonce = a["r"] + _b64(secrets.token_bytes(18))
        self._server_first = f"r={self._nonce},s={_b64(self.salt)},i={self.iterations}"
        return self._server_first.encode()

    def final(self, client_final: bytes) -> bytes:
        msg = client_final.decode("utf-8", "replace")
        without_proof, sep, proof_b64 = msg.rpartition(",p=")
        if not sep:
            raise ScramError("client proof missing")
        a = _attrs(without_proof)
        if a.get("c") not in ("biws", "eSws"):  # base64 of "n,," / "y,,"
            raise ScramError("unexpected channel binding data")
        if a.get("r") != self._nonce:
            raise ScramError("nonce mismatch")
        try:
            proof = base64.b64decode(proof_b64, validate=True)
        except ValueError as e:
            raise ScramError("malformed client proof") from e
        auth_msg = f"{self._client_first_bare},{self._server_first},{without_proof}".encode()
        sig = _hmac(self.stored_key, auth_msg)
        if len(proof) != len(sig):
            raise ScramError("malformed client proof")
        client_key = bytes(x ^ y for x, y in zip(proof, sig, strict=True))
        if self._mock or not hmac.compare_digest(_h(client_key), self.stored_key):
            raise ScramError("password authentication failed")
        return f"v={_b64(_hmac(self.server_key, auth_msg))}".encode()
