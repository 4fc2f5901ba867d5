"""PostgreSQL type OIDs and the text / binary formats of values.

The server formats result values itself (the backend hands it Python
objects plus a type OID per column) and parses bound parameters from the
client's text or binary representation given the parameter's OID.
"""

from __future__ import annotations

import datetime as dt
import struct
import uuid
from decimal import Context, Decimal
from typing import Any

from crdb_py.util.errors import InvalidArgumentError

BOOL, BYTEA, NAME, INT8, INT2, INT4, TEXT, OID = 16, 17, 19, 20, 21, 23, 25, 26
FLOAT4, FLOAT8, UNKNOWN, BPCHAR, VARCHAR = 700, 701, 705, 1042, 1043
DATE, TIME, TIMESTAMP, TIMESTAMPTZ, INTERVAL, NUMERIC, UUID = 1082, 1083, 1114, 1184, 1186, 1700, 2950
CHAR, REGPROC, REGCLASS, JSONB, TEXT_ARRAY, INT2VECTOR, OIDVECTOR = 18, 24, 2205, 3802, 1009, 22, 30

NAMES = {BOOL: "bool", BYTEA: "bytea", NAME: "name", INT8: "int8", INT2: "int2", INT4: "int4",
         TEXT: "text", OID: "oid", FLOAT4: "float4", FLOAT8: "float8", UNKNOWN: "unknown",
         BPCHAR: "bpchar", VARCHAR: "varchar", DATE: "date", TIME: "time",
         TIMESTAMP: "timestamp", TIMESTAMPTZ: "timestamptz", INTERVAL: "interval",
         NUMERIC: "numeric", UUID: "uuid", CHAR: "char", REGPROC: "regproc"}
# typlen as pg_type reports it (-1 = varlena); RowDescription carries it
SIZES = {BOOL: 1, INT2: 2, INT4: 4, INT8: 8, OID: 4, FLOAT4: 4, FLOAT8: 8, DATE: 4,
         TIMESTAMP: 8, TIMESTAMPTZ: 8, UUID: 16, NAME: 64, CHAR: 1}

_PG_EPOCH = dt.datetime(2000, 1, 1)
_PG_EPOCH_TZ = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_PG_EPOCH_DATE = dt.date(2000, 1, 1)
_INTS = (INT2, INT4, INT8, OID)


def _bad(msg: str) -> InvalidArgumentError:
    e = InvalidArgumentError(msg)
    return e


# ---- results --------------------------------------------------------------------------------


def to_text(v: Any, oid: int = 0) -> str:
    """PostgreSQL's text output of a value."""
    if isinstance(v, bool):
        return "t" if v else "f"
    if isinstance(v, float):
        if v != v:
            return "NaN"
        if v in (float("inf"), float("-inf")):
            return "Infinity" if v > 0 else "-Infinity"
        return repr(v)
    if isinstance(v, bytes | bytearray | memoryview):
        return "\\x" + bytes(v).hex()
    if isinstance(v, dt.datetime):
        if v.tzinfo is not None:
            s = v.astimezone(dt.UTC).isoformat(sep=" ")
            return s[:-6] + "+00" if s.endswith("+00:00") else s
        return v.isoformat(sep=" ")
    if isinstance(v, dt.date | dt.time | uuid.UUID):
        return str(v)
    if isinstance(v, Decimal):
        return format(v, "f") if v.is_finite() else "NaN"
    return str(v)


def encode(v: Any, oid: int, fmt: int) -> bytes:
    """A value's wire bytes in format `fmt` (0 text, 1 binary)."""
    if fmt == 0:
        return to_text(v, oid).encode()
    if oid == BOOL:
        return b"\x01" if v else b"\x00"
    if oid == INT2:
        return struct.pack("!h", v)
    if oid in (INT4, OID):
        return struct.pack("!i", v)
    if oid == INT8:
        return struct.pack("!q", v)
    if oid == FLOAT4:
        return struct.pack("!f", v)
    if oid == FLOAT8:
        return struct.pack("!d", v)
    if oid == BYTEA:
        return bytes(v)
    if oid in (TEXT, VARCHAR, NAME, BPCHAR, UNKNOWN, CHAR):
        return str(v).encode()
    if oid == UUID:
        return v.bytes if isinstance(v, uuid.UUID) else uuid.UUID(str(v)).bytes
    if oid == DATE:
        return struct.pack("!i", (v - _PG_EPOCH_DATE).days)
    if oid in (TIMESTAMP, TIMESTAMPTZ):
        base = _PG_EPOCH_TZ if v.tzinfo is not None else _PG_EPOCH
        d = v - base
        return struct.pack("!q", (d.days * 86400 + d.seconds) * 1_000_000 + d.microseconds)
    if oid == NUMERIC:
        return _binary_numeric(Decimal(v))
    if oid == INTERVAL and hasattr(v, "months"):  # microseconds, days, months
        return struct.pack("!qii", v.micros, v.days, v.months)
    raise _bad(f"binary format is not supported for type {NAMES.get(oid, oid)}")


def _binary_numeric(v: Decimal) -> bytes:
    """numeric's binary form: base-10000 digits, weight of the first, sign, display scale."""
    if not v.is_finite():
        return struct.pack("!hhHH", 0, 0, 0xC000, 0)
    sign, digits, exp = v.as_tuple()
    assert isinstance(exp, int)
    s = "".join(map(str, digits)) + "0" * max(exp, 0)
    point = len(s) + min(exp, 0)  # digits before the decimal point
    if point < 0:
        s, point = "0" * -point + s, 0
    ip, fp = s[:point], s[point:]
    ip = "0" * (-len(ip) % 4) + ip
    fp = fp + "0" * (-len(fp) % 4)
    groups = [int(ip[i:i + 4]) for i in range(0, len(ip), 4)]
    weight = len(groups) - 1
    groups += [int(fp[i:i + 4]) for i in range(0, len(fp), 4)]
    while groups and groups[0] == 0:
        groups.pop(0)
        weight -= 1
    while groups and groups[-1] == 0:
        groups.pop()
    if not groups:
        weight = 0
    head = struct.pack("!hhHH", len(groups), weight, 0x4000 if sign else 0, max(-exp, 0))
    return head + struct.pack(f"!{len(groups)}H", *groups)


# ---- parameters -----------------------------------------------------------------------------


def decode(data: bytes, oid: int, fmt: int) -> Any:
    """A bound parameter's Python value. Unknown OIDs in text stay `str` (the
    SQL layer coerces untyped literals)."""
    try:
        return _decode_binary(data, oid) if fmt == 1 else _decode_text(data.decode(), oid)
    except (ValueError, struct.error, UnicodeDecodeError, ArithmeticError) as e:
        err = _bad(f"invalid input for parameter of type {NAMES.get(oid, oid)}: {e}")
        err.sqlstate = "22P02"  # type: ignore[misc]
        raise err from e


def _decode_text(s: str, oid: int) -> Any:
    if oid in _INTS:
        return int(s)
    if oid in (FLOAT4, FLOAT8):
        return float(s)
    if oid == NUMERIC:
        return Decimal(s)
    if oid == BOOL:
        low = s.strip().lower()
        if low in ("t", "true", "yes", "on", "1", "y"):
            return True
        if low in ("f", "false", "no", "off", "0", "n"):
            return False
        raise ValueError(f"invalid boolean {s!r}")
    if oid == BYTEA:
        return bytes.fromhex(s[2:]) if s.startswith("\\x") else s.encode()
    if oid == DATE:
        return dt.date.fromisoformat(s)
    if oid == TIMESTAMP:
        return dt.datetime.fromisoformat(s).replace(tzinfo=None)
    if oid == TIMESTAMPTZ:
        v = dt.datetime.fromisoformat(s if not s.endswith(("+00", "-00")) else s + ":00")
        return v if v.tzinfo else v.replace(tzinfo=dt.UTC)
    if oid == UUID:
        return uuid.UUID(s)
    return s


def _decode_binary(b: bytes, oid: int) -> Any:
    if oid == BOOL:
        return b != b"\x00"
    if oid == INT2:
        return struct.unpack("!h", b)[0]
    if oid in (INT4, OID):
        return struct.unpack("!i", b)[0]
    if oid == INT8:
        return struct.unpack("!q", b)[0]
    if oid == FLOAT4:
        return struct.unpack("!f", b)[0]
    if oid == FLOAT8:
        return struct.unpack("!d", b)[0]
    if oid == BYTEA:
        return bytes(b)
    if oid == UUID:
        return uuid.UUID(bytes=bytes(b))
    if oid == DATE:
        return _PG_EPOCH_DATE + dt.timedelta(days=struct.unpack("!i", b)[0])
    if oid in (TIMESTAMP, TIMESTAMPTZ):
        us = struct.unpack("!q", b)[0]
        return (_PG_EPOCH_TZ if oid == TIMESTAMPTZ else _PG_EPOCH) + dt.timedelta(microseconds=us)
    if oid == NUMERIC:
        return _numeric_binary(b)
    return b.decode()  # text-like (text, varchar, name, unknown): binary = UTF-8


def _numeric_binary(b: bytes) -> Decimal:
    ndigits, weight, sign, dscale = struct.unpack("!hhHH", b[:8])
    if sign == 0xC000:
        return Decimal("NaN")
    groups = struct.unpack(f"!{ndigits}H", b[8:8 + 2 * ndigits])
    s = "".join(f"{d:04d}" for d in groups) or "0"
    v = Decimal((1 if sign == 0x4000 else 0, tuple(int(c) for c in s), 4 * (weight - ndigits + 1)))
    return v.quantize(Decimal((0, (1,), -dscale)), context=Context(prec=len(s) + dscale + 8))
