"""Built-in scalar functions: the values they compute and the signatures
they accept.

`expr.Compiler` compiles a call into a closure that evaluates the
arguments and hands them to a `Builtin`; everything here is a pure
function of argument values (the few functions that read the session —
`now()`, `current_database()`, `random()` — are compiled in expr.py, since
a cached plan must read them from its `Ctx` at run time).

Semantics follow CockroachDB / PostgreSQL: NULL in -> NULL out (unless the
entry says `strict=False`), a wrong argument type is 42883 ("unknown
signature"), a bad argument value 22023 (or the specific SQLSTATE
PostgreSQL uses: 2201E for a logarithm of zero, 22012 for division by
zero). Integers stay integers where CockroachDB keeps them (`2 ^ 10` is
INT 1024); `ln`/`exp`/`log` of an INT are FLOAT, of a DECIMAL DECIMAL.

`temporal(a, b, op)` is the date/time arithmetic (`ts ± interval`,
`date ± int`, `ts - ts`, `interval * n`), called by the arithmetic
operators when an operand is not a number.
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation, localcontext
from typing import Any

from sqlglot import exp

from crdb_py.sql import errors as E
from crdb_py.sql import types as T

NUM = (int, float, Decimal)


def _is_num(v: Any) -> bool:
    return isinstance(v, NUM) and not isinstance(v, bool)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_time(v: Any) -> bool:
    return isinstance(v, dt.date)


# argument kinds: s string, i int, n number, t date/timestamp, b bool, * anything
_KIND_OK: dict[str, Callable[[Any], bool]] = {
    "s": lambda v: isinstance(v, str), "i": _is_int, "n": _is_num, "t": _is_time,
    "b": lambda v: isinstance(v, bool), "*": lambda v: True,
}


@dataclass(frozen=True, slots=True)
class Builtin:
    """A scalar function: `kinds` is one letter per argument (see _KIND_OK),
    the last ones optional from `min_args` on; `...` repeats the last kind."""

    name: str
    fn: Callable[..., Any]
    kinds: str
    min_args: int = -1
    strict: bool = True  # NULL in -> NULL out

    def check(self, n: int) -> None:
        lo = len(self.kinds.rstrip(".")) if self.min_args < 0 else self.min_args
        hi = 1 << 30 if self.kinds.endswith("...") else len(self.kinds)
        if not lo <= n <= hi:
            raise E.SQLError(f"unknown signature: {self.name}() with {n} argument"
                             f"{'s' if n != 1 else ''}", "42883")

    def call(self, vals: list[Any]) -> Any:
        if self.strict and any(v is None for v in vals):
            return None
        kinds = self.kinds.rstrip(".")
        for i, v in enumerate(vals):
            k = kinds[min(i, len(kinds) - 1)]
            if v is not None and not _KIND_OK[k](v):
                sig = ", ".join(str(T.type_of(x)).lower() if x is not None else "unknown"
                                for x in vals)
                raise E.SQLError(f"unknown signature: {self.name}({sig})", "42883")
        try:
            return self.fn(*vals)
        except (InvalidOperation, OverflowError) as ex:
            raise E.out_of_range(f"{self.name}(): value out of range") from ex


# -- strings ---------------------------------------------------------------------------
def left(s: str, n: int) -> str:
    return s[:n] if n >= 0 else s[:max(len(s) + n, 0)]


def right(s: str, n: int) -> str:
    return (s[-n:] if n > 0 else "") if n >= 0 else s[min(-n, len(s)):]


def pad(s: str, n: int, fill: str = " ", *, is_left: bool) -> str:
    if n <= len(s):
        return s[:max(n, 0)]
    if not fill:
        return s
    k = n - len(s)
    f = (fill * (k // len(fill) + 1))[:k]
    return f + s if is_left else s + f


def split_part(s: str, delim: str, n: int) -> str:
    if n == 0:
        raise E.SQLError("field position must not be zero", "22023")
    parts = s.split(delim) if delim else [s]
    idx = n - 1 if n > 0 else len(parts) + n
    return parts[idx] if 0 <= idx < len(parts) else ""


def initcap(s: str) -> str:
    out, start = [], True
    for ch in s:
        out.append(ch.upper() if start else ch.lower())
        start = not ch.isalnum()
    return "".join(out)


def concat_ws(sep: Any, *args: Any) -> Any:
    if sep is None:
        return None
    if not isinstance(sep, str):
        raise E.SQLError(f"unknown signature: concat_ws({T.type_of(sep)}, ...)", "42883")
    return sep.join(T.to_text(a) for a in args if a is not None)


def repeat(s: str, n: int) -> str:
    if n > 0 and len(s) * n > 64 << 20:
        raise E.SQLError("requested length too large", "54000")
    return s * max(n, 0)


# -- numbers ---------------------------------------------------------------------------
def round_(v: Any, n: int = 0) -> Any:
    if isinstance(v, float):
        return float(round(Decimal(repr(v)), n)) if math.isfinite(v) else v
    if isinstance(v, Decimal):
        return v.quantize(Decimal(1).scaleb(-n), "ROUND_HALF_UP")
    return v


def substring(s: Any, start: Any = 1, length: Any = None) -> Any:
    begin = start - 1
    end = None if length is None else start - 1 + length
    if length is not None and length < 0:
        raise E.SQLError("negative substring length not allowed", "22011")
    return s[max(begin, 0): None if end is None else max(end, 0)]


def power(a: Any, b: Any) -> Any:
    if _is_int(a) and _is_int(b):
        if b < 0:
            raise E.SQLError("integer out of range: negative exponent", "22003")
        if b > 64 and abs(a) > 1:
            raise E.out_of_range("integer out of range")
        return T.check_int(a ** b)
    if isinstance(a, float) or isinstance(b, float):
        try:
            r = math.pow(float(a), float(b))
        except ValueError as ex:
            raise E.SQLError("a negative number raised to a non-integer power yields a "
                             "complex result", "2201F") from ex
        return r
    da, db = Decimal(a), Decimal(b)
    if da == 0 and db < 0:
        raise E.SQLError("zero raised to a negative power is undefined", "2201F")
    if da < 0 and db != db.to_integral_value():
        raise E.SQLError("a negative number raised to a non-integer power yields a "
                         "complex result", "2201F")
    return da ** db


def sign(v: Any) -> Any:
    s = (v > 0) - (v < 0)
    return type(v)(s) if not isinstance(v, int) else s


def trunc(v: Any, n: int | None = None) -> Any:
    if isinstance(v, float):
        if n is None:
            return float(math.trunc(v)) if math.isfinite(v) else v
        return float(trunc(Decimal(repr(v)), n))
    d = Decimal(v)
    if not d.is_finite():
        return d
    n = n or 0
    if n < 0:  # trunc(1234.5, -2) = 1200
        return d.scaleb(n).to_integral_value("ROUND_DOWN").scaleb(-n).quantize(Decimal(1))
    return d.quantize(Decimal(1).scaleb(-n), rounding="ROUND_DOWN")


def _log_arg(v: Any) -> None:
    if v == 0:
        raise E.SQLError("cannot take logarithm of zero", "2201E")
    if v < 0:
        raise E.SQLError("cannot take logarithm of a negative number", "2201E")


def ln(v: Any) -> Any:
    _log_arg(v)
    return v.ln() if isinstance(v, Decimal) else math.log(v)


def log(a: Any, b: Any = None) -> Any:
    if b is None:  # log(x) is base 10
        _log_arg(a)
        return a.log10() if isinstance(a, Decimal) else math.log10(a)
    _log_arg(a)
    _log_arg(b)
    if a == 1:
        raise E.division_by_zero()
    if isinstance(a, Decimal) or isinstance(b, Decimal):
        with localcontext() as c:  # extra digits, then 16 places as PostgreSQL shows
            c.prec = 50
            r = Decimal(b).ln() / Decimal(a).ln()
            return r.quantize(Decimal("1E-16"))
    return math.log(b) / math.log(a)


def exp_(v: Any) -> Any:
    return v.exp() if isinstance(v, Decimal) else math.exp(v)


def sqrt(v: Any) -> Any:
    if v < 0:
        raise E.SQLError("cannot take square root of a negative number", "2201F")
    return v.sqrt() if isinstance(v, Decimal) else math.sqrt(v)


def cbrt(v: Any) -> float:
    f = float(v)
    return math.copysign(abs(f) ** (1 / 3), f)


def mod(a: Any, b: Any) -> Any:
    if b == 0:
        raise E.division_by_zero()
    if isinstance(a, float) or isinstance(b, float):
        return math.fmod(a, b)
    if _is_int(a) and _is_int(b):
        return abs(a) % abs(b) * (-1 if a < 0 else 1)
    return Decimal(a) % Decimal(b)


def abs_(v: Any) -> Any:
    return abs(v)


# -- dates and times -------------------------------------------------------------------
_TS_FIELDS = ("year", "month", "day", "hour", "minute", "second", "millisecond",
              "microsecond", "dow", "isodow", "doy", "epoch", "quarter", "week",
              "decade", "century", "millennium", "isoyear")


def _field(f: str) -> str:
    f = f.lower().rstrip("s") if f.lower() not in ("dow", "isodow", "doy") else f.lower()
    return {"milliseconds": "millisecond", "microseconds": "microsecond", "min": "minute",
            "sec": "second", "hr": "hour", "yr": "year", "mon": "month", "millisecon": "millisecond",
            "microsecon": "microsecond", "millennia": "millennium", "centurie": "century",
            "epoch": "epoch"}.get(f, f)


def extract(field: str, v: Any) -> float:
    """extract(field FROM ts|date): FLOAT, as CockroachDB returns it."""
    f = _field(field)
    if not isinstance(v, dt.date):
        raise E.SQLError(f"unknown signature: extract(string, {T.type_of(v)})", "42883")
    ts = v if isinstance(v, dt.datetime) else dt.datetime(v.year, v.month, v.day)
    if f == "year":
        r: float = ts.year
    elif f == "month":
        r = ts.month
    elif f == "day":
        r = ts.day
    elif f == "hour":
        r = ts.hour
    elif f == "minute":
        r = ts.minute
    elif f == "second":
        r = ts.second + ts.microsecond / 1e6
    elif f == "millisecond":
        r = ts.second * 1000 + ts.microsecond / 1000
    elif f == "microsecond":
        r = ts.second * 1_000_000 + ts.microsecond
    elif f == "dow":
        r = (ts.weekday() + 1) % 7
    elif f == "isodow":
        r = ts.isoweekday()
    elif f == "doy":
        r = ts.timetuple().tm_yday
    elif f == "quarter":
        r = (ts.month - 1) // 3 + 1
    elif f == "week":
        r = ts.isocalendar()[1]
    elif f == "isoyear":
        r = ts.isocalendar()[0]
    elif f == "decade":
        r = ts.year // 10
    elif f == "century":
        r = (ts.year + 99) // 100
    elif f == "millennium":
        r = (ts.year + 999) // 1000
    elif f == "epoch":
        aware = ts if ts.tzinfo is not None else ts.replace(tzinfo=T.UTC)
        r = aware.timestamp()
    else:
        raise E.SQLError(f"unsupported timespan: {field}", "22023")
    return float(r)


def date_trunc(unit: str, v: Any) -> dt.datetime:
    u = _field(unit)
    if not isinstance(v, dt.date):
        raise E.SQLError(f"unknown signature: date_trunc(string, {T.type_of(v)})", "42883")
    if isinstance(v, dt.datetime):
        ts = v
    else:  # date_trunc(unit, date) is a TIMESTAMPTZ, as in CockroachDB
        ts = dt.datetime(v.year, v.month, v.day, tzinfo=T.UTC)
    if u == "microsecond":
        return ts
    if u == "millisecond":
        return ts.replace(microsecond=ts.microsecond // 1000 * 1000)
    if u == "second":
        return ts.replace(microsecond=0)
    if u == "minute":
        return ts.replace(second=0, microsecond=0)
    if u == "hour":
        return ts.replace(minute=0, second=0, microsecond=0)
    day = ts.replace(hour=0, minute=0, second=0, microsecond=0)
    if u == "day":
        return day
    if u == "week":
        return day - dt.timedelta(days=day.weekday())
    if u == "month":
        return day.replace(day=1)
    if u == "quarter":
        return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    if u == "year":
        return day.replace(month=1, day=1)
    if u == "decade":
        return day.replace(year=day.year // 10 * 10, month=1, day=1)
    if u == "century":
        return day.replace(year=(day.year - 1) // 100 * 100 + 1, month=1, day=1)
    if u == "millennium":
        return day.replace(year=(day.year - 1) // 1000 * 1000 + 1, month=1, day=1)
    raise E.SQLError(f"unsupported timespan: {unit}", "22023")


_STRFTIME_OK = frozenset("YmdHMSIjy%")


def to_char(v: Any, fmt: str) -> str:
    """to_char(ts, pattern), pattern already turned into strftime codes by
    sqlglot; only the common fields are supported (0A000 for the rest)."""
    if not isinstance(v, dt.date):
        raise E.unsupported(f"to_char for {T.type_of(v)}")
    i = 0
    while i < len(fmt):
        ch = fmt[i]
        if ch == "%":
            if i + 1 >= len(fmt) or fmt[i + 1] not in _STRFTIME_OK:
                raise E.unsupported(f"to_char pattern {fmt!r}: only YYYY YY MM DD DDD HH24 "
                                    "HH12 MI SS are supported")
            i += 2
            continue
        if ch.isalpha():
            raise E.unsupported(f"to_char pattern element near {fmt[i:]!r}")
        i += 1
    return v.strftime(fmt)


def add_months(ts: Any, months: int) -> Any:
    if not months:
        return ts
    y, m = divmod(ts.month - 1 + months, 12)
    year = ts.year + y
    day = min(ts.day, calendar.monthrange(year, m + 1)[1])
    return ts.replace(year=year, month=m + 1, day=day)


def _plus_interval(v: Any, iv: T.Interval) -> Any:
    ts = v if isinstance(v, dt.datetime) else dt.datetime(v.year, v.month, v.day)
    try:
        ts = add_months(ts, iv.months)
        return ts + dt.timedelta(days=iv.days, microseconds=iv.micros)
    except (OverflowError, ValueError) as ex:
        raise E.out_of_range("timestamp out of range") from ex


def temporal(a: Any, b: Any, op: str) -> Any:
    """Date/time arithmetic, or NotImplemented when neither rule applies."""
    ia, ib = isinstance(a, T.Interval), isinstance(b, T.Interval)
    if op in ("+", "-") and _is_time(a) and ib:
        return _plus_interval(a, b if op == "+" else -b)
    if op == "+" and ia and _is_time(b):
        return _plus_interval(b, a)
    if ia and ib and op in ("+", "-"):
        return a + b if op == "+" else a - b
    if op == "*" and ia and _is_num(b):
        return a.scale(b)
    if op == "*" and ib and _is_num(a):
        return b.scale(a)
    if op == "/" and ia and _is_num(b):
        if b == 0:
            raise E.division_by_zero()
        return a.scale(1 / Decimal(repr(b) if isinstance(b, float) else b))
    date_a = _is_time(a) and not isinstance(a, dt.datetime)
    date_b = _is_time(b) and not isinstance(b, dt.datetime)
    if date_a and _is_int(b) and op in ("+", "-"):
        return a + dt.timedelta(days=b if op == "+" else -b)
    if date_b and _is_int(a) and op == "+":
        return b + dt.timedelta(days=a)
    if op == "-" and date_a and date_b:
        return (a - b).days
    if op == "-" and _is_time(a) and _is_time(b):
        x = T.assign(a, T.T_TIMESTAMPTZ)
        y = T.assign(b, T.T_TIMESTAMPTZ)
        d = x - y
        return T.Interval(0, d.days, d.seconds * 1_000_000 + d.microseconds)
    return NotImplemented


# -- the table ---------------------------------------------------------------------------
def _version() -> str:
    import sys

    import crdb_py

    return (f"crdb-py {crdb_py.__version__} (CockroachDB-style SQL over Python "
            f"{sys.version_info.major}.{sys.version_info.minor})")


BY_NAME: dict[str, Builtin] = {b.name: b for b in [
    Builtin("lower", str.lower, "s"), Builtin("upper", str.upper, "s"),
    Builtin("length", len, "s"), Builtin("char_length", len, "s"),
    Builtin("character_length", len, "s"), Builtin("octet_length", lambda s: len(s.encode()), "s"),
    Builtin("btrim", lambda s, c=" ": s.strip(c), "ss", 1),
    Builtin("ltrim", lambda s, c=" ": s.lstrip(c), "ss", 1),
    Builtin("rtrim", lambda s, c=" ": s.rstrip(c), "ss", 1),
    Builtin("replace", lambda s, a, b: s.replace(a, b), "sss"),
    Builtin("reverse", lambda s: s[::-1], "s"),
    Builtin("strpos", lambda s, sub: s.find(sub) + 1, "ss"),
    Builtin("left", left, "si"), Builtin("right", right, "si"),
    Builtin("lpad", lambda s, n, f=" ": pad(s, n, f, is_left=True), "sis", 2),
    Builtin("rpad", lambda s, n, f=" ": pad(s, n, f, is_left=False), "sis", 2),
    Builtin("split_part", split_part, "ssi"), Builtin("initcap", initcap, "s"),
    Builtin("repeat", repeat, "si"), Builtin("starts_with", str.startswith, "ss"),
    Builtin("concat_ws", concat_ws, "**...", 1, strict=False),
    Builtin("to_hex", lambda v: format(v, "x") if v >= 0 else format(v & (2**64 - 1), "x"), "i"),
    Builtin("abs", abs_, "n"), Builtin("sign", sign, "n"), Builtin("trunc", trunc, "ni", 1),
    Builtin("mod", mod, "nn"), Builtin("power", power, "nn"), Builtin("pow", power, "nn"),
    Builtin("sqrt", sqrt, "n"), Builtin("cbrt", cbrt, "n"),
    Builtin("exp", exp_, "n"), Builtin("ln", ln, "n"), Builtin("log", log, "nn", 1),
    Builtin("log10", lambda v: log(v), "n"),
    Builtin("degrees", lambda v: math.degrees(v), "n"),
    Builtin("radians", lambda v: math.radians(v), "n"),
    Builtin("pi", lambda: math.pi, ""),
    Builtin("version", _version, ""),
    Builtin("extract", extract, "st"), Builtin("date_part", extract, "st"),
    Builtin("date_trunc", date_trunc, "st"), Builtin("to_char", to_char, "*s"),
]}

# sqlglot node class -> (builtin, the arg names holding its arguments, in order)
BY_CLASS: dict[type, tuple[Builtin, tuple[str, ...]]] = {
    exp.Lower: (BY_NAME["lower"], ("this",)), exp.Upper: (BY_NAME["upper"], ("this",)),
    exp.Length: (BY_NAME["length"], ("this",)), exp.Abs: (BY_NAME["abs"], ("this",)),
    exp.Sqrt: (BY_NAME["sqrt"], ("this",)), exp.Cbrt: (BY_NAME["cbrt"], ("this",)),
    exp.StrPosition: (BY_NAME["strpos"], ("this", "substr")),
    exp.Pow: (BY_NAME["power"], ("this", "expression")),
    exp.Left: (BY_NAME["left"], ("this", "expression")),
    exp.Right: (BY_NAME["right"], ("this", "expression")),
    exp.SplitPart: (BY_NAME["split_part"], ("this", "delimiter", "part_index")),
    exp.Initcap: (BY_NAME["initcap"], ("this",)),
    exp.Repeat: (BY_NAME["repeat"], ("this", "times")),
    exp.StartsWith: (BY_NAME["starts_with"], ("this", "expression")),
    exp.Sign: (BY_NAME["sign"], ("this",)), exp.Trunc: (BY_NAME["trunc"], ("this", "decimals")),
    exp.Exp: (BY_NAME["exp"], ("this",)), exp.Ln: (BY_NAME["ln"], ("this",)),
    exp.Log: (BY_NAME["log"], ("this", "expression")),
    exp.Degrees: (BY_NAME["degrees"], ("this",)), exp.Radians: (BY_NAME["radians"], ("this",)),
    exp.Replace: (BY_NAME["replace"], ("this", "expression", "replacement")),
    exp.Reverse: (BY_NAME["reverse"], ("this",)), exp.Hex: (BY_NAME["to_hex"], ("this",)),
    exp.Pi: (BY_NAME["pi"], ()), exp.CurrentVersion: (BY_NAME["version"], ()),
    exp.TimeToStr: (BY_NAME["to_char"], ("this", "format")),
}

def quantified(e: exp.Expression) -> tuple[list[exp.Expression] | None, bool]:
    """(the elements, is ALL) of `ANY (ARRAY[...])` / `ALL (ARRAY[...])`;
    (None, False) for anything else. Other operands (a subquery, an array
    parameter) need ARRAY values: 0A000."""
    is_all = isinstance(e, exp.Anonymous) and str(e.this).upper() == "ALL"
    if not (isinstance(e, exp.Any) or is_all):
        return None, False
    inner = e.expressions[0] if is_all and e.expressions else e.this
    while isinstance(inner, exp.Paren):
        inner = inner.this
    if not isinstance(inner, exp.Array):
        raise E.unsupported(f"{'ALL' if is_all else 'ANY'} over anything but an ARRAY[...] literal")
    return list(inner.expressions), is_all


def any_all(v: Any, xs: list[Any], ok: Callable[[int], bool], is_all: bool,
            compare: Callable[[Any, Any], int]) -> Any:
    """Three-valued `v op ANY/ALL (xs)` (an empty array: ANY false, ALL true)."""
    if not xs:
        return is_all
    if v is None:
        return None
    saw_null = False
    for x in xs:
        if x is None:
            saw_null = True
        elif ok(compare(v, x)) != is_all:
            return not is_all
    return None if saw_null else is_all


# Column names PostgreSQL gives calls that sqlglot parses into its own classes.
_OUTPUT_NAMES = {
    exp.TimestampTrunc: "date_trunc", exp.StrPosition: "strpos", exp.ConcatWs: "concat_ws",
    exp.TimeToStr: "to_char", exp.GroupConcat: "string_agg", exp.LogicalAnd: "bool_and",
    exp.LogicalOr: "bool_or", exp.CurrentVersion: "version", exp.CurrentUser: "current_user",
    exp.CurrentDatabase: "current_database", exp.CurrentDate: "current_date",
    exp.CurrentTimestamp: "now", exp.Rand: "random", exp.SplitPart: "split_part",
    exp.StartsWith: "starts_with", exp.Hex: "to_hex", exp.RowNumber: "row_number",
    exp.DenseRank: "dense_rank", exp.PercentRank: "percent_rank", exp.CumeDist: "cume_dist",
    exp.FirstValue: "first_value", exp.LastValue: "last_value", exp.NthValue: "nth_value",
    exp.ArrayAgg: "array_agg", exp.Pow: "power",
}


def output_name(e: exp.Func) -> str:
    """The result column name of a function call without an alias."""
    if isinstance(e, exp.Pad):
        return "lpad" if e.args.get("is_left") else "rpad"
    return _OUTPUT_NAMES.get(type(e)) or type(e).__name__.lower()


_UNIT_WORD = re.compile(r"^[a-z]+$", re.I)


def unit_name(node: exp.Expression | None) -> str:
    """The text of a unit argument (`Var(DAY)` or a string literal)."""
    if node is None:
        raise E.SQLError("missing time unit", "22023")
    name = node.name
    if not _UNIT_WORD.match(name or ""):
        raise E.SQLError(f"unsupported timespan: {name}", "22023")
    return name.lower()
