"""SQL users: CREATE / ALTER / DROP USER and SHOW USERS, stored in KV.

A user is one key in the system key space, ``\\x03sql/users/<name>``, whose
value is the SCRAM-SHA-256 verifier of its password in PostgreSQL's stored
format (crdb_py/util/scram.py), or `NO_PASSWORD` for a user without one (who
can then only log in where the server trusts the connection). The password
itself is never stored. `root` always exists and cannot be created or
dropped; `ALTER USER root WITH PASSWORD` gives it a password so it can log
in where the server asks for one (`--sql-auth scram`).

Grammar (CockroachDB's; ROLE is accepted as a synonym of USER)::

    CREATE USER [IF NOT EXISTS] name [[WITH] [LOGIN] PASSWORD 'pw' | PASSWORD NULL]
    ALTER USER [IF EXISTS] name [WITH] PASSWORD 'pw' | PASSWORD NULL
    DROP USER [IF EXISTS] name [, name ...]
    SHOW USERS | SHOW ROLES

The wire server authenticates against these rows through `lookup_verifier`,
which reads the key in its own short transaction.
"""

from __future__ import annotations

import re
from typing import Any

from crdb_py.sql import errors as E
from crdb_py.sql.kv import WriteBuffer
from crdb_py.sql.runtime import Result
from crdb_py.sql.types import T_STRING
from crdb_py.util.scram import make_verifier

PREFIX = b"\x03sql/users/"
ROOT = "root"
NO_PASSWORD = b"!"  # not empty: an empty value would read as a deletion in MVCC

_NAME = r"(\"(?:[^\"]|\"\")+\"|[A-Za-z_][\w.$-]*)"
_PW = r"(?:\s+(?:WITH\s+)?(?:LOGIN\s+)?PASSWORD\s+('(?:[^']|'')*'|NULL))?"
_CREATE = re.compile(rf"^CREATE\s+(?:USER|ROLE)\s+(IF\s+NOT\s+EXISTS\s+)?{_NAME}{_PW}(?:\s+LOGIN)?$",
                     re.I | re.S)
_ALTER = re.compile(rf"^ALTER\s+(?:USER|ROLE)\s+(IF\s+EXISTS\s+)?{_NAME}{_PW}$", re.I | re.S)
_DROP = re.compile(rf"^DROP\s+(?:USER|ROLE)\s+(IF\s+EXISTS\s+)?({_NAME[1:-1]}(?:\s*,\s*{_NAME[1:-1]})*)$",
                   re.I | re.S)
_SHOW = re.compile(r"^SHOW\s+(?:USERS|ROLES)$", re.I)
_ONE_NAME = re.compile(_NAME)


def user_key(name: str) -> bytes:
    return PREFIX + name.encode()


def _norm(raw: str) -> str:
    if raw.startswith('"'):
        return raw[1:-1].replace('""', '"')
    return raw.lower()


def _password(raw: str | None) -> str | None:
    if raw is None or raw.upper() == "NULL":
        return None
    return raw[1:-1].replace("''", "'")


def parse(text: str) -> tuple[Any, ...] | None:
    """The operands of a user statement, or None if `text` is not one.

    ("create", name, if_not_exists, password | None) / ("alter", name,
    if_exists, password | None, has_password_clause) / ("drop", [names],
    if_exists) / ("show",)."""
    if _SHOW.match(text):
        return ("show",)
    m = _CREATE.match(text)
    if m:
        return ("create", _norm(m.group(2)), bool(m.group(1)), _password(m.group(3)))
    m = _ALTER.match(text)
    if m:
        if m.group(3) is None:
            raise E.unsupported("ALTER USER without PASSWORD")
        return ("alter", _norm(m.group(2)), bool(m.group(1)), _password(m.group(3)))
    m = _DROP.match(text)
    if m:
        return ("drop", [_norm(n) for n in _ONE_NAME.findall(m.group(2))], bool(m.group(1)))
    return None


def _verifier(password: str | None) -> bytes:
    if password is None:
        return NO_PASSWORD
    if password == "":
        raise E.SQLError("empty passwords are not allowed; use PASSWORD NULL", "22023")
    return make_verifier(password).encode()


def _no_root(name: str, verb: str) -> None:
    if name == ROOT:
        raise E.SQLError(f"cannot {verb} the {ROOT} user", "42501")


async def run(buf: WriteBuffer, arg: tuple[Any, ...]) -> Result:
    op = arg[0]
    if op == "show":
        rows = [(k[len(PREFIX):].decode(errors="replace"), "")
                for k, _ in await buf.scan(PREFIX, PREFIX + b"\xff")]
        rows = [r for r in rows if r[0] != ROOT]
        rows = sorted([(ROOT, ""), *rows])
        return Result([("username", T_STRING), ("options", T_STRING)], rows, len(rows))
    if op == "create":
        _, name, if_not_exists, pw = arg
        if name == ROOT or await buf.get(user_key(name)) is not None:
            if if_not_exists:
                return Result(tag="CREATE ROLE")
            raise E.SQLError(f'a role/user named {name} already exists', "42710")
        buf.put(user_key(name), _verifier(pw))
        return Result(tag="CREATE ROLE")
    if op == "alter":
        _, name, if_exists, pw = arg
        if name == ROOT:  # root always exists; its password may be set (for --sql-auth scram)
            buf.put(user_key(name), _verifier(pw))
            return Result(tag="ALTER ROLE")
        if await buf.get(user_key(name)) is None:
            if if_exists:
                return Result(tag="ALTER ROLE")
            raise E.SQLError(f'role/user "{name}" does not exist', "42704")
        buf.put(user_key(name), _verifier(pw))
        return Result(tag="ALTER ROLE")
    if op == "drop":
        _, names, if_exists = arg
        for name in names:
            _no_root(name, "drop")
            if await buf.get(user_key(name)) is None:
                if if_exists:
                    continue
                raise E.SQLError(f'role/user "{name}" does not exist', "42704")
            buf.delete(user_key(name))
        return Result(tag="DROP ROLE")
    raise E.unsupported(f"user statement {op}")


async def lookup_verifier(store: Any, name: str) -> str | None:
    """The stored SCRAM verifier of `name` (None: no such user, or no password)."""
    txn = store.txn("sql-auth")
    try:
        raw = await txn.get(user_key(name))
        await txn.commit()
    except BaseException:
        try:
            await txn.rollback()
        except Exception:  # best effort
            pass
        raise
    return raw.decode() if raw and raw != NO_PASSWORD else None
