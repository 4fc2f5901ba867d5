"""SQL types and values.

Each SQL type is a `SQLType` (a family plus an optional width); values are
plain Python objects, one class per family:

    INT (INT2/INT4/INT8)  int           FLOAT   float
    DECIMAL               Decimal       STRING  str
    BOOL                  bool          BYTES   bytes
    DATE                  datetime.date TIMESTAMP naive datetime (UTC)
    TIMESTAMPTZ           aware datetime (UTC)   UUID uuid.UUID
    INTERVAL              Interval (months, days, microseconds), as PostgreSQL

INTERVAL is a value type of expressions only (literals, casts, date/time
arithmetic, `ts - ts`); it cannot be a column type yet (42704).

NULL is Python `None` in every type. `assign` converts a value into a
column's type on INSERT/UPDATE (strict: a string is accepted for a
date/timestamp/uuid/bytes column, as PostgreSQL accepts an untyped literal;
anything else that does not fit raises 42804); `cast` is the explicit
`CAST(x AS T)` / `x::T` and parses text (22P02 when it cannot).
"""

from __future__ import annotations

import datetime as dt
import math
import re
import uuid
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlglot import exp

from crdb_py.sql import errors as E

INT, FLOAT, DECIMAL, STRING, BOOL, BYTES = "INT", "FLOAT", "DECIMAL", "STRING", "BOOL", "BYTES"
DATE, TIMESTAMP, TIMESTAMPTZ, UUID, UNKNOWN = "DATE", "TIMESTAMP", "TIMESTAMPTZ", "UUID", "UNKNOWN"
INTERVAL = "INTERVAL"

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
T_INTERVAL = SQLType(INTERVAL)

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


def cast_target(d: exp.DataType) -> SQLType:
    """The type of `CAST(x AS d)`: a column type, or INTERVAL (expressions only)."""
    if d.this == exp.DType.INTERVAL:
        return T_INTERVAL
    return from_datatype(d)


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
    if isinstance(v, Interval):
        return T_INTERVAL
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
        if f == INTERVAL:
            return parse_interval(s)
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
    if f == INTERVAL and isinstance(v, Interval):
        return v
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


_USEC = {"microsecond": 1, "us": 1, "usec": 1, "millisecond": 1000, "ms": 1000, "msec": 1000,
         "second": 1_000_000, "sec": 1_000_000, "s": 1_000_000,
         "minute": 60_000_000, "min": 60_000_000, "m": 60_000_000,
         "hour": 3_600_000_000, "hr": 3_600_000_000, "h": 3_600_000_000}
_DAYS = {"day": 1, "d": 1, "week": 7, "w": 7}
_MONTHS = {"month": 1, "mon": 1, "year": 12, "yr": 12, "y": 12, "decade": 120,
           "century": 1200, "millennium": 12000}
_DAY_USEC = 86_400_000_000


class Interval:
    """A PostgreSQL interval: months, days and microseconds kept apart (a
    month is not a fixed number of days, nor a day of hours across DST).
    Compared and hashed, as in PostgreSQL, on 30-day months and 24-hour days."""

    __slots__ = ("months", "days", "micros")

    def __init__(self, months: int = 0, days: int = 0, micros: int = 0) -> None:
        object.__setattr__(self, "months", months)
        object.__setattr__(self, "days", days)
        object.__setattr__(self, "micros", micros)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Interval is immutable")

    def _key(self) -> int:
        return (self.months * 30 + self.days) * _DAY_USEC + self.micros

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Interval) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(("interval", self._key()))

    def __lt__(self, other: Interval) -> bool:
        return self._key() < other._key()

    def __le__(self, other: Interval) -> bool:
        return self._key() <= other._key()

    def __gt__(self, other: Interval) -> bool:
        return self._key() > other._key()

    def __ge__(self, other: Interval) -> bool:
        return self._key() >= other._key()

    def __neg__(self) -> Interval:
        return Interval(-self.months, -self.days, -self.micros)

    def __add__(self, o: Interval) -> Interval:
        return Interval(self.months + o.months, self.days + o.days, self.micros + o.micros)

    def __sub__(self, o: Interval) -> Interval:
        return self + -o

    def scale(self, f: float | Decimal | int) -> Interval:
        """`self * f`, spilling fractions down (months -> 30 days -> microseconds)."""
        fd = Decimal(repr(f)) if isinstance(f, float) else Decimal(f)
        months = Decimal(self.months) * fd
        whole_m = int(months)
        days = Decimal(self.days) * fd + (months - whole_m) * 30
        whole_d = int(days)
        micros = Decimal(self.micros) * fd + (days - whole_d) * _DAY_USEC
        return Interval(whole_m, whole_d, int(micros.to_integral_value()))

    def __repr__(self) -> str:
        return f"Interval({self.months}, {self.days}, {self.micros})"

    def __str__(self) -> str:
        parts = []
        y, mo = divmod(abs(self.months), 12)
        if self.months < 0:
            y, mo = -y, -mo
        if y:  # PostgreSQL: singular only for exactly 1 ("-1 days")
            parts.append(f"{y} year{'s' if y != 1 else ''}")
        if mo:
            parts.append(f"{mo} mon{'s' if mo != 1 else ''}")
        if self.days:
            parts.append(f"{self.days} day{'s' if self.days != 1 else ''}")
        if self.micros or not parts:
            us = abs(self.micros)
            h, rest = divmod(us, 3_600_000_000)
            m, rest = divmod(rest, 60_000_000)
            s, frac = divmod(rest, 1_000_000)
            t = f"{h:02d}:{m:02d}:{s:02d}" + (f".{frac:06d}".rstrip("0") if frac else "")
            parts.append(("-" if self.micros < 0 else "") + t)
        return " ".join(parts)


_IV_TOKEN = re.compile(r"([+-]?\d+(?:\.\d*)?|[+-]?\.\d+)\s*([a-zµ]+)|"
                       r"([+-])?(\d+):(\d+)(?::(\d+(?:\.\d+)?))?", re.I)


def parse_interval(s: str, unit: str | None = None) -> Interval:
    """'1 year 2 mons 3 days 04:05:06', '90 minutes', '-1 day', '01:30'
    (and `INTERVAL '2' HOUR`: a bare number with `unit`)."""
    text = s.strip()
    if unit:
        text = f"{text} {unit}"
    months = days = 0
    micros = Decimal(0)
    pos = 0
    for m in _IV_TOKEN.finditer(text):
        if text[pos:m.start()].strip(" ,"):
            break
        pos = m.end()
        if m.group(1) is not None:
            n = Decimal(m.group(1))
            u = m.group(2).lower()
            if u.endswith("s") and u not in _USEC:
                u = u[:-1]
            if u == "millennia":
                u = "millennium"
            if u == "centurie":
                u = "century"
            if u in _USEC:
                micros += n * _USEC[u]
            elif u in _DAYS:
                d = n * _DAYS[u]
                days += int(d)
                micros += (d - int(d)) * _DAY_USEC
            elif u in _MONTHS:
                mo = n * _MONTHS[u]
                months += int(mo)
                d = (mo - int(mo)) * 30
                days += int(d)
                micros += (d - int(d)) * _DAY_USEC
            else:
                raise E.invalid_text(f'invalid input syntax for type interval: "{s}"')
        else:
            sec = Decimal(m.group(6) or 0)
            t = (int(m.group(4)) * 3600 + int(m.group(5)) * 60) * 1_000_000 + sec * 1_000_000
            micros += -t if m.group(3) == "-" else t
    if pos == 0 or text[pos:].strip():
        if text.strip().lstrip("+-").replace(".", "", 1).isdigit():  # a bare number is seconds
            return Interval(0, 0, int(Decimal(text.strip()) * 1_000_000))
        raise E.invalid_text(f'invalid input syntax for type interval: "{s}"')
    return Interval(months, days, int(micros.to_integral_value()))
