"""SQL types and values.

Each SQL type is a `SQLType` (a family plus an optional width); values are
plain Python objects, one class per family:

    INT (INT2/INT4/INT8)  int           FLOAT   float
    DECIMAL               Decimal       STRING  str
    BOOL                  bool          BYTES   bytes
    DATE                  datetime.date TIMESTAMP naive datetime (UTC)
    TIMESTAMPTZ           aware datetime (UTC)   UUID uuid.UUID

NULL is Python `None` in every type. `assign` converts a value into a
column's type on INSERT/UPDATE (strict: a string is accepted for a
date/timestamp/uuid/bytes column, as PostgreSQL accepts an untyped literal;
anything else that does not fit raises 42804); `cast` is the explicit
`CAST(x AS T)` / `x::T` and parses text (22P02 when it cannot).
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlglot import exp

from crdb_py.sql import errors as E

INT, FLOAT, DECIMAL, STRING, BOOL, BYTES = "INT", "FLOAT", "DECIMAL", "STRING", "BOOL", "BYTES"
DATE, TIMESTAMP, TIMESTAMPTZ, UUID, UNKNOWN = "DATE", "TIMESTAMP", "TIMESTAMPTZ", "UUID", "UNKNOWN"

UTC = dt.UTC
_INT_BITS = {2: 16, 4: 32, 8: 64}


@dataclass(frozen=True, slots=True)
class SQLType:
    family: str
    width: int = 0  # INT: bytes (2/4/8); STRING: max chars (0 = unbounded)

    def __str__(self) -> str:
        if self.family == INT:
            return {2: "INT2", 4: "INT4"}.get(self.width, "INT8")
        if self.family == STRING and self.width:
            return f"VARCHAR({self.width})"
        return self.family


T_INT = SQLType(INT, 8)
T_FLOAT = SQLType(FLOAT)
T_DECIMAL = SQLType(DECIMAL)
T_STRING = SQLType(STRING)
T_BOOL = SQLType(BOOL)
T_BYTES = SQLType(BYTES)
T_DATE = SQLType(DATE)
T_TIMESTAMP = SQLType(TIMESTAMP)
T_TIMESTAMPTZ = SQLType(TIMESTAMPTZ)
T_UUID = SQLType(UUID)
T_UNKNOWN = SQLType(UNKNOWN)

_DTYPE: dict[str, SQLType] = {
    "INT": T_INT, "BIGINT": T_INT, "SMALLINT": SQLType(INT, 2), "TINYINT": SQLType(INT, 2),
    "SERIAL": T_INT, "BIGSERIAL": T_INT, "SMALLSERIAL": T_INT,
    "DOUBLE": T_FLOAT, "FLOAT": T_FLOAT,
    "DECIMAL": T_DECIMAL, "BIGDECIMAL": T_DECIMAL,
    "TEXT": T_STRING, "VARCHAR": T_STRING, "CHAR": T_STRING, "NVARCHAR": T_STRING, "NCHAR": T_STRING,
    "BOOLEAN": T_BOOL, "VARBINARY": T_BYTES, "BINARY": T_BYTES, "BLOB": T_BYTES,
    "DATE": T_DATE, "TIMESTAMP": T_TIMESTAMP, "DATETIME": T_TIMESTAMP,
    "TIMESTAMPTZ": T_TIMESTAMPTZ, "UUID": T_UUID,
}
_USERDEFINED = {"BYTES": T_BYTES, "STRING": T_STRING, "INT8": T_INT, "INT4": SQLType(INT, 4),
                "INT2": SQLType(INT, 2), "FLOAT8": T_FLOAT, "FLOAT4": T_FLOAT}
SERIAL_TYPES = {"SERIAL", "BIGSERIAL", "SMALLSERIAL"}


def from_datatype(d: exp.DataType) -> SQLType:
    """The SQLType of a sqlglot DataType (42704 if we do not support it)."""
    name = d.this.name
    if name == "USERDEFINED":
        t = _USERDEFINED.get(str(d.args.get("kind")).upper())
    else:
        t = _DTYPE.get(name)
    if t is None:
        raise E.SQLError(f"type {d.sql('postgres')} is not supported", "42704")
    if t.family == STRING and name in ("VARCHAR", "CHAR") and d.expressions:
        return SQLType(STRING, int(d.expressions[0].this.this))
    return t


def type_of(v: Any) -> SQLType:
    """The natural type of a Python value."""
    if v is None:
        return T_UNKNOWN
    if isinstance(v, bool):
        return T_BOOL
    if isinstance(v, int):
        return T_INT
    if isinstance(v, float):
        return T_FLOAT
    if isinstance(v, Decimal):
        return T_DECIMAL
    if isinstance(v, str):
        return T_STRING
    if isinstance(v, bytes | bytearray | memoryview):
        return T_BYTES
    if isinstance(v, dt.datetime):
        return T_TIMESTAMPTZ if v.tzinfo is not None else T_TIMESTAMP
    if isinstance(v, dt.date):
        return T_DATE
    if isinstance(v, uuid.UUID):
        return T_UUID
    raise E.datatype_mismatch(f"unsupported value of Python type {type(v).__name__}")


def check_int(v: int, width: int = 8) -> int:
    bits = _INT_BITS.get(width, 64)
    if not -(1 << (bits - 1)) <= v < (1 << (bits - 1)):
        raise E.out_of_range(f"integer out of range for type {SQLType(INT, width)}")
    return v


def _parse(v: str, t: SQLType) -> Any:
    s = v.strip()
    f = t.family
    try:
        if f == INT:
            return check_int(int(s), t.width)
        if f == FLOAT:
            return float(s)
        if f == DECIMAL:
            d = Decimal(s)
            if not d.is_finite() and not d.is_nan():
                return d
            return d
        if f == BOOL:
            low = s.lower()
            if low in ("t", "true", "yes", "on", "1", "y"):
                return True
            if low in ("f", "false", "no", "off", "0", "n"):
                return False
            raise ValueError(s)
        if f == BYTES:
            if s.startswith("\\x"):
                return bytes.fromhex(s[2:])
            return v.encode()
        if f == DATE:
            return dt.date.fromisoformat(s[:10])
        if f in (TIMESTAMP, TIMESTAMPTZ):
            ts = dt.datetime.fromisoformat(s)
            return _ts(ts, f)
        if f == UUID:
            return uuid.UUID(s)
        if f == STRING:
            return v
    except (ValueError, InvalidOperation):
        pass
    raise E.invalid_text(f'could not parse "{v}" as type {t}')


def _ts(v: dt.datetime, family: str) -> dt.datetime:
    if family == TIMESTAMPTZ:
        return v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)
    return v.astimezone(UTC).replace(tzinfo=None) if v.tzinfo is not None else v


def assign(v: Any, t: SQLType, col: str = "?") -> Any:
    """Convert `v` for storage in a column of type `t` (assignment cast)."""
    if v is None:
        return None
    f = t.family
    if isinstance(v, str) and f not in (STRING,):
        return _parse(v, t)
    if f == INT and isinstance(v, int) and not isinstance(v, bool):
        return check_int(v, t.width)
    if f == INT and isinstance(v, Decimal | float) and not isinstance(v, bool):
        if isinstance(v, float) and not math.isfinite(v):
            raise E.out_of_range("integer out of range")
        return check_int(int(Decimal(v).to_integral_value()), t.width)
    if f == FLOAT and isinstance(v, int | float | Decimal) and not isinstance(v, bool):
        return float(v)
    if f == DECIMAL and isinstance(v, int | float | Decimal) and not isinstance(v, bool):
        return Decimal(repr(v)) if isinstance(v, float) else Decimal(v)
    if f == STRING and isinstance(v, str):
        if t.width and len(v) > t.width:
            raise E.SQLError(f"value too long for type {t}", "22001")
        return v
    if f == BOOL and isinstance(v, bool):
        return v
    if f == BYTES and isinstance(v, bytes | bytearray | memoryview):
        return bytes(v)
    if f in (TIMESTAMP, TIMESTAMPTZ) and isinstance(v, dt.datetime):
        return _ts(v, f)
    if f in (TIMESTAMP, TIMESTAMPTZ) and isinstance(v, dt.date):
        return _ts(dt.datetime(v.year, v.month, v.day), f)
    if f == DATE and isinstance(v, dt.date):
        return v.date() if isinstance(v, dt.datetime) else v
    if f == UUID and isinstance(v, uuid.UUID):
        return v
    if f == UUID and isinstance(v, bytes) and len(v) == 16:
        return uuid.UUID(bytes=v)
    raise E.datatype_mismatch(
        f'value type {type_of(v)} doesn\'t match type {t} of column "{col}"'
    )


def cast(v: Any, t: SQLType) -> Any:
    """Explicit CAST: like `assign`, plus conversions to text and from bool."""
    if v is None:
        return None
    f = t.family
    if f == STRING:
        return to_text(v)
    if f == INT and isinstance(v, bool):
        return int(v)
    if f == BOOL and isinstance(v, int | float | Decimal):
        return v != 0
    if f == INT and isinstance(v, float | Decimal):
        return check_int(int(Decimal(v).quantize(Decimal(1), "ROUND_HALF_EVEN")), t.width)
    return assign(v, t)


def to_text(v: Any) -> str:
    """The PostgreSQL text form of a value."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, bytes):
        return "\\x" + v.hex()
    if isinstance(v, dt.datetime):
        return v.isoformat(sep=" ")
    if isinstance(v, float):
        if v == int(v) and abs(v) < 1e16:
            return str(int(v))
        return repr(v)
    return str(v)


def literal_value(e: exp.Literal) -> Any:
    """The value of a numeric or string literal (1 -> int, 1.5 -> Decimal)."""
    s = e.this
    if e.is_string:
        return s
    s = str(s)
    try:
        return int(s)
    except ValueError:
        try:
            return Decimal(s)
        except InvalidOperation as ex:
            raise E.invalid_text(f"invalid number: {s}") from ex
