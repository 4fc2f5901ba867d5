"""SCRAM-SHA-256 password verifiers in PostgreSQL's stored format.

Shared by the SQL layer (`CREATE USER ... PASSWORD` stores a verifier, never
the password) and the wire server (which runs the exchange against it)::

    SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

MECHANISM = "SCRAM-SHA-256"
DEFAULT_ITERATIONS = 4096


def h(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def hmac256(key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, hashlib.sha256).digest()


def b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def make_verifier(password: str, *, salt: bytes | None = None,
                  iterations: int = DEFAULT_ITERATIONS) -> str:
    """The stored form of a password (no SASLprep: ASCII passwords are exact)."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    stored = h(hmac256(salted, b"Client Key"))
    server = hmac256(salted, b"Server Key")
    return f"{MECHANISM}${iterations}:{b64(salt)}${b64(stored)}:{b64(server)}"
