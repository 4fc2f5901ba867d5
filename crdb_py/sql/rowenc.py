"""Row and index encoding: SQL rows <-> KV pairs.

Keys (after CockroachDB's pkg/sql/rowenc; every key lives in the user key
space, ``>= b"\\x04"``)::

    primary index row   /Table/<table id>/<index id = 1>/<pk col>.../
    secondary (plain)   /Table/<table id>/<index id>/<idx col>.../<pk col>...
    secondary (unique)  /Table/<table id>/<index id>/<idx col>...      (no NULL in idx cols)

    /Table/<id>/<idx>  =  0x04 | table id (4 bytes BE) | index id (4 bytes BE)

A unique index entry whose indexed columns contain a NULL is written in the
plain form (PK appended), since NULLs never conflict.

Each key column is encoded order-preservingly, ascending, NULL first; a
leading marker byte makes each datum self-delimiting and sorts NULL below
everything::

    NULL        00
    BOOL        01 | 00/01
    INT/DATE/TS 02 | 8 bytes BE of (v XOR sign bit)      (DATE: days, TS: micros)
    FLOAT       03 | 8 bytes: IEEE bits, sign flipped (positives) or all
                     bits inverted (negatives); NaN sorts first
    DECIMAL     04 | sub-marker: 00 NaN, 01 -Inf, 03 negative, 04 zero,
                05 positive, 09 +Inf; a finite non-zero is
                05 | adjusted exponent (4 BE, biased 2^31) | ascii digits | 00,
                negatives the byte-inverse of that body (bigger magnitude
                sorts first)
    STRING      06 | escaped utf-8 (00 -> 00 ff, terminator 00 01)
    BYTES       07 | escaped bytes
    UUID        08 | 16 bytes

Values: the primary row's value is a msgpack map {column id: datum} of the
non-PK, non-NULL columns (a NULL column is absent). The value of a
secondary entry is a msgpack list of the PK datums (unique form) or an
empty list (plain form: the PK is in the key).
"""

from __future__ import annotations

import datetime as dt
import struct
import uuid
from decimal import Decimal
from typing import Any

import msgpack

from crdb_py.sql import types as T
from crdb_py.util.keys import USER_KEY_MIN, decode_bytes_ascending, encode_bytes_ascending

_EPOCH = dt.datetime(1970, 1, 1)
_SIGN = 1 << 63
_M = (1 << 64) - 1


def table_prefix(table_id: int) -> bytes:
    return USER_KEY_MIN + struct.pack(">I", table_id)


def index_prefix(table_id: int, index_id: int) -> bytes:
    return USER_KEY_MIN + struct.pack(">II", table_id, index_id)


def prefix_end(p: bytes) -> bytes:
    """The first key after every key with prefix `p`."""
    b = bytearray(p)
    while b and b[-1] == 0xFF:
        b.pop()
    if not b:
        raise ValueError("no prefix end for an all-0xff prefix")
    b[-1] += 1
    return bytes(b)


def _micros(v: dt.datetime) -> int:
    if v.tzinfo is not None:
        v = v.astimezone(T.UTC).replace(tzinfo=None)
    d = v - _EPOCH
    return (d.days * 86400 + d.seconds) * 1_000_000 + d.microseconds


def _from_micros(m: int, tz: bool) -> dt.datetime:
    v = _EPOCH + dt.timedelta(microseconds=m)
    return v.replace(tzinfo=T.UTC) if tz else v


def _u64(v: int) -> bytes:
    return struct.pack(">Q", (v ^ _SIGN) & _M)


def _enc_decimal(d: Decimal) -> bytes:
    if d.is_nan():
        return b"\x00"
    if d.is_zero():
        return b"\x04"
    if d.is_infinite():
        return b"\x09" if d > 0 else b"\x01"
    sign, digits, _ = d.as_tuple()  # not normalize(): it rounds to the context precision
    adj = d.adjusted()
    digits = tuple(digits)
    while len(digits) > 1 and digits[-1] == 0:
        digits = digits[:-1]
    body = struct.pack(">I", (adj + (1 << 31)) & 0xFFFFFFFF) + bytes(48 + x for x in digits) + b"\x00"
    if sign:
        return b"\x03" + bytes(0xFF - c for c in body)
    return b"\x05" + body


def _dec_decimal(b: bytes, i: int) -> tuple[Decimal, int]:
    m = b[i]
    if m == 0x00:
        return Decimal("NaN"), i + 1
    if m == 0x04:
        return Decimal(0), i + 1
    if m in (0x01, 0x09):
        return Decimal("-Infinity" if m == 0x01 else "Infinity"), i + 1
    neg = m == 0x03
    j = b.index(0xFF if neg else 0x00, i + 5)
    body = b[i + 1 : j + 1]
    if neg:
        body = bytes(0xFF - c for c in body)
    adj = struct.unpack(">I", body[:4])[0] - (1 << 31)
    digits = tuple(c - 48 for c in body[4:-1])
    return Decimal((1 if neg else 0, digits, adj - len(digits) + 1)), j + 1


def encode_key_datum(v: Any, t: T.SQLType) -> bytes:
    """Order-preserving encoding of one key datum of type `t`."""
    if v is None:
        return b"\x00"
    f = t.family
    if f == T.BOOL:
        return b"\x01\x01" if v else b"\x01\x00"
    if f == T.INT:
        return b"\x02" + _u64(v)
    if f == T.DATE:
        return b"\x02" + _u64(v.toordinal())
    if f in (T.TIMESTAMP, T.TIMESTAMPTZ):
        return b"\x02" + _u64(_micros(v))
    if f == T.FLOAT:
        bits = struct.unpack(">Q", struct.pack(">d", v))[0]
        if v != v:  # NaN sorts below every number
            return b"\x03" + bytes(8)
        bits = (~bits & _M) if bits & _SIGN else (bits | _SIGN)
        return b"\x03" + struct.pack(">Q", bits)
    if f == T.DECIMAL:
        return b"\x04" + _enc_decimal(v)
    if f == T.STRING:
        return b"\x06" + encode_bytes_ascending(v.encode())
    if f == T.BYTES:
        return b"\x07" + encode_bytes_ascending(v)
    if f == T.UUID:
        return b"\x08" + v.bytes
    raise ValueError(f"cannot key-encode type {t}")


def decode_key_datum(b: bytes, i: int, t: T.SQLType) -> tuple[Any, int]:
    """Inverse of `encode_key_datum` at offset `i`; returns (datum, next offset)."""
    m = b[i]
    if m == 0x00:
        return None, i + 1
    f = t.family
    if f == T.BOOL:
        return b[i + 1] == 1, i + 2
    if f in (T.INT, T.DATE, T.TIMESTAMP, T.TIMESTAMPTZ):
        n = struct.unpack(">Q", b[i + 1 : i + 9])[0] ^ _SIGN
        n = n - (1 << 64) if n & _SIGN else n
        if f == T.DATE:
            return dt.date.fromordinal(n), i + 9
        if f != T.INT:
            return _from_micros(n, f == T.TIMESTAMPTZ), i + 9
        return n, i + 9
    if f == T.FLOAT:
        bits = struct.unpack(">Q", b[i + 1 : i + 9])[0]
        if bits == 0:
            return float("nan"), i + 9
        bits = (bits & ~_SIGN & _M) if bits & _SIGN else (~bits & _M)
        return struct.unpack(">d", struct.pack(">Q", bits))[0], i + 9
    if f == T.DECIMAL:
        return _dec_decimal(b, i + 1)
    if f in (T.STRING, T.BYTES):
        raw, j = decode_bytes_ascending(b, i + 1)
        return (raw.decode() if f == T.STRING else raw), j
    if f == T.UUID:
        return uuid.UUID(bytes=b[i + 1 : i + 17]), i + 17
    raise ValueError(f"cannot key-decode type {t}")


def encode_key(prefix: bytes, vals: list[Any], types: list[T.SQLType]) -> bytes:
    return prefix + b"".join(encode_key_datum(v, t) for v, t in zip(vals, types))


def decode_key(key: bytes, prefix_len: int, types: list[T.SQLType]) -> list[Any]:
    out = []
    i = prefix_len
    for t in types:
        v, i = decode_key_datum(key, i, t)
        out.append(v)
    return out


# ---- values --------------------------------------------------------------------------


def to_wire(v: Any) -> Any:
    """A datum as a msgpack-able value (type restored by `from_wire`)."""
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, dt.datetime):
        return _micros(v)
    if isinstance(v, dt.date):
        return v.toordinal()
    if isinstance(v, uuid.UUID):
        return v.bytes
    return v


def from_wire(v: Any, t: T.SQLType) -> Any:
    if v is None:
        return None
    f = t.family
    if f == T.DECIMAL:
        return Decimal(v)
    if f == T.DATE:
        return dt.date.fromordinal(v)
    if f in (T.TIMESTAMP, T.TIMESTAMPTZ):
        return _from_micros(v, f == T.TIMESTAMPTZ)
    if f == T.UUID:
        return uuid.UUID(bytes=v)
    return v


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def unpack(b: bytes) -> Any:
    return msgpack.unpackb(b, raw=False, strict_map_key=False)
