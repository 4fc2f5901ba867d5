"""Scalar expressions: sqlglot AST -> Python closures over a row tuple.

`compile_expr(e, scope, ctx)` resolves column references against a `Scope`
(the columns of the relation being read, with their table aliases) once,
and returns `fn(row) -> value`. NULL is None and logic is three-valued
(`AND`/`OR`/`NOT` over True/False/None). In *aggregate mode* (GROUP BY or
an aggregate in the select list) the closures take a `(representative row,
group rows)` pair instead: column references read the representative row
and aggregates fold over the group.

Uncorrelated subqueries are run before the statement by the executor and
their results handed in through `Ctx.subqueries` (keyed by node identity).
Comparisons between a string literal and a typed value cast the string, as
PostgreSQL does for untyped literals; arithmetic mixes INT and DECIMAL
exactly and turns to FLOAT when either side is FLOAT; INT / INT is DECIMAL
(CockroachDB semantics), `//` is integer floor division.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import random
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, DivisionByZero, InvalidOperation
from typing import Any

from sqlglot import exp

from crdb_py.sql import builtins as B
from crdb_py.sql import errors as E
from crdb_py.sql import types as T
from crdb_py.sql.aggregates import AGGS, AggregateMixin

Fn = Callable[[Any], Any]
__all__ = ["AGGS"]


@dataclass(frozen=True, slots=True)
class ScopeCol:
    table: str | None
    name: str
    type: T.SQLType
    hidden: bool = False


@dataclass(slots=True)
class Scope:
    cols: list[ScopeCol]

    def resolve(self, table: str | None, name: str) -> int:
        hits = [i for i, c in enumerate(self.cols)
                if c.name == name and (table is None or c.table == table)]
        if not hits:
            raise E.undefined_column(f"{table}.{name}" if table else name)
        if len(hits) > 1:
            shown = [i for i in hits if not self.cols[i].hidden]
            if table is None and len(shown) == 1:  # JOIN ... USING hides the other copy
                return shown[0]
            raise E.ambiguous_column(name)
        return hits[0]

    def __add__(self, other: Scope) -> Scope:
        return Scope(self.cols + other.cols)


MEMO_MAX = 2048  # entries per plan; beyond it nothing more is memoised


@dataclass(slots=True)
class Ctx:
    """Per-execution evaluation context, and the plan memo that outlives it.

    Compiled closures read everything that changes between executions
    (parameters, `now`, subquery results, the row-id generator) from the
    `Ctx` they were compiled with, at run time. So a `Ctx` with a `memo` is
    a reusable *plan*: `reset()` it for the next execution of the same
    statement and every compiled expression, scan analysis and AST walk
    recorded in the memo is reused (see `memoized`). One execution at a
    time uses a `Ctx` (crdb_py/sql/plancache.py hands them out).
    """

    params: list[Any] = field(default_factory=list)
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(T.UTC))
    subqueries: dict[int, Any] = field(default_factory=dict)
    next_placeholder: int = 0
    unique_rowid: Callable[[], int] = lambda: 0
    outer: list[tuple[Scope, tuple[Any, ...]]] = field(default_factory=list)  # correlated subqueries
    memo: dict[Any, tuple[Any, Any]] | None = None  # None: nothing is memoised
    params_needed: int = 0  # highest placeholder number a compiled expression reads
    catalog_keys: list[bytes] = field(default_factory=list)  # read by the last execution
    point_scans: list[Any] = field(default_factory=list)  # its point lookups (planner)
    executions: int = 0
    database: str = ""  # current_database(); set per execution by runtime.ExecCtx
    windows: dict[int, list[Any]] = field(default_factory=dict)  # window node -> value per row
    window_row: int = 0  # the output row being projected (exec_window.py)

    def reset(self, params: list[Any], now: dt.datetime,
              unique_rowid: Callable[[], int]) -> None:
        """Ready this plan for another execution with new parameters."""
        if len(params) < self.params_needed:
            raise E.SQLError(f"no value provided for placeholder ${len(params) + 1}", "08P01")
        for v in params:
            if v is not None:
                T.type_of(v)  # unsupported parameter types fail here, as at compile time
        self.params = params
        self.now = now
        self.unique_rowid = unique_rowid
        self.subqueries = {}
        self.outer = []
        self.next_placeholder = 0
        self.windows = {}
        self.executions += 1


def memoized(ctx: Ctx, tag: Any, node: Any, build: Callable[[], Any]) -> Any:
    """`build()`, remembered in the plan memo under (`tag`, `node`).

    `node` is an AST node (or any object) the result depends on; the memo
    keeps a reference to it, so its id cannot be reused by another object
    while the entry lives, and an entry only hits for that very object.
    `tag` must capture every other input of `build` (a scope signature, a
    descriptor, ...)."""
    m = ctx.memo
    if m is None:
        return build()
    key = (tag, id(node))
    hit = m.get(key)
    if hit is not None and hit[0] is node:
        return hit[1]
    v = build()
    if len(m) < MEMO_MAX:
        m[key] = (node, v)
    return v


class Correlated:
    """A subquery that references outer columns: its value per outer row
    (keyed by the row tuple's identity), filled by the SELECT executor."""

    __slots__ = ("per_row",)

    def __init__(self) -> None:
        self.per_row: dict[int, Any] = {}

    def value(self, r: Any) -> Any:
        try:
            return self.per_row[id(r)]
        except KeyError:
            raise E.unsupported("correlated subquery in this position") from None


def _sub_value(v: Any, r: Any) -> Any:
    return v.value(r) if isinstance(v, Correlated) else v


def has_agg(e: exp.Expression) -> bool:
    """An aggregate under `e` (not in a subquery, and not a window function's)."""
    return any(isinstance(n, AGGS) and not isinstance(n.parent, exp.Window)
               for n in e.walk() if not _inside_subquery(n, e))


def _inside_subquery(n: exp.Expression, root: exp.Expression) -> bool:
    if n is root:
        return False
    p = n.parent
    while p is not None and p is not root:
        if isinstance(p, exp.Subquery | exp.Select):
            return True
        p = p.parent
    return False


def and_(a: Any, b: Any) -> Any:
    if a is False or b is False:
        return False
    if a is None or b is None:
        return None
    return True


def or_(a: Any, b: Any) -> Any:
    if a is True or b is True:
        return True
    if a is None or b is None:
        return None
    return False


def coerce_pair(a: Any, b: Any, cast_a: bool = True, cast_b: bool = True) -> tuple[Any, Any]:
    """Make two non-NULL values comparable: a string that came from a literal
    or placeholder (`cast_*`) is cast to the other side's type, as PostgreSQL
    types an untyped literal; a typed STRING never is (42883)."""
    if type(a) is type(b):
        return a, b
    if isinstance(a, str) and not isinstance(b, str):
        if not cast_a:
            raise _no_operator(a, b)
        return T.cast(a, T.type_of(b)), b
    if isinstance(b, str) and not isinstance(a, str):
        if not cast_b:
            raise _no_operator(a, b)
        return a, T.cast(b, T.type_of(a))
    if isinstance(a, float) and isinstance(b, Decimal):
        return a, float(b)
    if isinstance(b, float) and isinstance(a, Decimal):
        return float(a), b
    if isinstance(a, bool) != isinstance(b, bool) or (
        isinstance(a, int | float | Decimal) != isinstance(b, int | float | Decimal)
    ):
        raise _no_operator(a, b)
    if isinstance(a, dt.datetime) and isinstance(b, dt.datetime):
        return T.assign(a, T.T_TIMESTAMPTZ), T.assign(b, T.T_TIMESTAMPTZ)
    if isinstance(a, dt.date) and isinstance(b, dt.date):
        return T.assign(a, T.T_TIMESTAMP), T.assign(b, T.T_TIMESTAMP)
    return a, b


def _no_operator(a: Any, b: Any) -> E.SQLError:
    return E.SQLError(
        f"unsupported comparison operator: {T.type_of(a)} vs {T.type_of(b)}", "42883")


def compare(a: Any, b: Any, cast_a: bool = True, cast_b: bool = True) -> int:
    """-1/0/1 for non-NULL values."""
    a, b = coerce_pair(a, b, cast_a, cast_b)
    try:
        return (a > b) - (a < b)
    except TypeError as ex:
        raise E.datatype_mismatch(
            f"cannot compare {T.type_of(a)} with {T.type_of(b)}"
        ) from ex


def sort_key_cmp(a: Any, b: Any) -> int:
    """Total order for sorting: NULL first, then `compare`."""
    if a is None or b is None:
        return (a is not None) - (b is not None)
    return compare(a, b)


_CMP: dict[type, Callable[[int], bool]] = {
    exp.EQ: lambda c: c == 0, exp.NEQ: lambda c: c != 0, exp.LT: lambda c: c < 0,
    exp.LTE: lambda c: c <= 0, exp.GT: lambda c: c > 0, exp.GTE: lambda c: c >= 0,
}


def num(a: Any, b: Any, op: str) -> Any:
    """Arithmetic on two non-NULL values (numbers, or dates/times/intervals)."""
    if isinstance(a, str) or isinstance(b, str):
        a, b = coerce_pair(a, b)
    if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, int | float | Decimal) \
            or not isinstance(b, int | float | Decimal):
        r = B.temporal(a, b, op)
        if r is not NotImplemented:
            return r
        raise E.SQLError(
            f"unsupported binary operator: {T.type_of(a)} {op} {T.type_of(b)}", "42883"
        )
    if isinstance(a, float) or isinstance(b, float):
        a, b = float(a), float(b)
    try:
        if op == "+":
            r = a + b
        elif op == "-":
            r = a - b
        elif op == "*":
            r = a * b
        elif op == "/":
            if b == 0:
                raise E.division_by_zero()
            r = Decimal(a) / Decimal(b) if isinstance(a, int) and isinstance(b, int) else a / b
        elif op == "//":
            if b == 0:
                raise E.division_by_zero()
            r = a // b
        else:  # %
            if b == 0:
                raise E.division_by_zero()
            r = math.fmod(a, b) if isinstance(a, float) else (
                abs(a) % abs(b) * (-1 if a < 0 else 1))
    except (DivisionByZero, InvalidOperation, ZeroDivisionError) as ex:
        raise E.division_by_zero() from ex
    if isinstance(r, int):
        T.check_int(r)
    return r


def like_regex(pattern: str, ci: bool) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return re.compile("".join(out), re.S | (re.I if ci else 0))


def _length(s: Any) -> int:
    return len(s)


# functions of expr.py's own (the rest are builtins.BY_NAME)
SCALAR: dict[str, Callable[..., Any]] = {
    "round": B.round_, "substring": B.substring, "substr": B.substring,
    "floor": lambda v: v.__floor__() if isinstance(v, Decimal) else float(math.floor(v)),
    "ceil": lambda v: v.__ceil__() if isinstance(v, Decimal) else float(math.ceil(v)),
    "ceiling": lambda v: v.__ceil__() if isinstance(v, Decimal) else float(math.ceil(v)),
}
_CLASS_FN = {exp.Round: "round", exp.Floor: "floor", exp.Ceil: "ceil"}


class Compiler(AggregateMixin):
    """Compiles expressions against one scope (see module docstring)."""

    def __init__(self, scope: Scope, ctx: Ctx, *, agg: bool = False) -> None:
        self.scope = scope
        self.ctx = ctx
        self.agg = agg

    def __call__(self, e: exp.Expression) -> Fn:
        """The compiled `e`, from the plan memo when the context has one.

        Inside a correlated subquery (`ctx.outer` set) outer columns compile
        to constants of the current outer row: never memoised."""
        if self.ctx.memo is None or self.ctx.outer:
            return self.compile(e)
        sig = ("fn", self.agg, tuple((c.table, c.name, c.hidden) for c in self.scope.cols))
        return memoized(self.ctx, sig, e, lambda: self.compile(e))

    def compile(self, e: exp.Expression) -> Fn:
        m = getattr(self, "_" + type(e).__name__.lower(), None)
        if m is not None:
            return m(e)
        if type(e) in _CMP:
            return self._cmp(e, _CMP[type(e)])
        if type(e) in _CLASS_FN:
            return self._call(SCALAR[_CLASS_FN[type(e)]], [a for a in (e.this, e.args.get("decimals"), e.expression) if a is not None])
        if type(e) in B.BY_CLASS:
            b, names = B.BY_CLASS[type(e)]
            return self._builtin(b, [e.args[n] for n in names if e.args.get(n) is not None])
        raise E.unsupported(f"expression {e.sql('postgres')!r} ({type(e).__name__})")

    # -- leaves ----------------------------------------------------------------------
    def _column(self, e: exp.Column) -> Fn:
        table = e.table or None
        name = e.name
        if isinstance(e.this, exp.Star):
            raise E.syntax("unexpected *")
        try:
            i = self.scope.resolve(table, name)
        except E.SQLError as ex:
            if ex.sqlstate != "42703":
                raise
            for scope, row in reversed(self.ctx.outer):  # an outer column: a constant here
                try:
                    v = row[scope.resolve(table, name)]
                except E.SQLError:
                    continue
                return lambda r: v
            raise
        if self.agg:
            return lambda g: g[0][i] if g[0] is not None else None
        return lambda r: r[i]

    def _literal(self, e: exp.Literal) -> Fn:
        v = T.literal_value(e)
        return lambda r: v

    def _null(self, e: exp.Null) -> Fn:
        return lambda r: None

    def _boolean(self, e: exp.Boolean) -> Fn:
        v = bool(e.this)
        return lambda r: v

    def _paren(self, e: exp.Paren) -> Fn:
        return self.compile(e.this)

    def _placeholder(self, e: exp.Placeholder) -> Fn:
        i = self.ctx.next_placeholder
        self.ctx.next_placeholder += 1
        return self._param(i)

    def _parameter(self, e: exp.Parameter) -> Fn:
        return self._param(int(e.this.this) - 1)

    def _param(self, i: int) -> Fn:
        ctx = self.ctx
        if i >= len(ctx.params) or i < 0:
            raise E.SQLError(f"no value provided for placeholder ${i + 1}", "08P01")
        v = ctx.params[i]
        if v is not None:
            T.type_of(v)
        ctx.params_needed = max(ctx.params_needed, i + 1)
        return lambda r: ctx.params[i]  # read per execution: the plan may be reused

    # -- operators -------------------------------------------------------------------
    def _cmp(self, e: exp.Binary, ok: Callable[[int], bool]) -> Fn:
        arr, is_all = B.quantified(e.expression)  # x op ANY / ALL (ARRAY[...])
        if arr is not None:
            a, items = self.compile(e.this), [self.compile(i) for i in arr]
            return lambda r: B.any_all(a(r), [g(r) for g in items], ok, is_all, compare)
        a, b = self.compile(e.this), self.compile(e.expression)
        ca, cb = _untyped(e.this), _untyped(e.expression)

        def f(r: Any) -> Any:
            x, y = a(r), b(r)
            if x is None or y is None:
                return None
            return ok(compare(x, y, ca, cb))
        return f

    def _nullsafeeq(self, e: exp.Expression) -> Fn:
        a, b = self.compile(e.this), self.compile(e.expression)
        return lambda r: sort_key_cmp(a(r), b(r)) == 0

    def _nullsafeneq(self, e: exp.Expression) -> Fn:
        a, b = self.compile(e.this), self.compile(e.expression)
        return lambda r: sort_key_cmp(a(r), b(r)) != 0

    def _and(self, e: exp.And) -> Fn:
        a, b = self.compile(e.this), self.compile(e.expression)
        return lambda r: and_(a(r), b(r))

    def _or(self, e: exp.Or) -> Fn:
        a, b = self.compile(e.this), self.compile(e.expression)
        return lambda r: or_(a(r), b(r))

    def _not(self, e: exp.Not) -> Fn:
        a = self.compile(e.this)

        def f(r: Any) -> Any:
            v = a(r)
            return None if v is None else not _bool(v)
        return f

    def _neg(self, e: exp.Neg) -> Fn:
        a = self.compile(e.this)
        return lambda r: None if (v := a(r)) is None else (
            -v if isinstance(v, T.Interval) else num(0, v, "-"))

    def _arith(self, e: exp.Binary, op: str) -> Fn:
        a, b = self.compile(e.this), self.compile(e.expression)

        def f(r: Any) -> Any:
            x, y = a(r), b(r)
            return None if x is None or y is None else num(x, y, op)
        return f

    def _add(self, e: exp.Add) -> Fn:
        return self._arith(e, "+")

    def _sub(self, e: exp.Sub) -> Fn:
        return self._arith(e, "-")

    def _mul(self, e: exp.Mul) -> Fn:
        return self._arith(e, "*")

    def _div(self, e: exp.Div) -> Fn:
        return self._arith(e, "/")

    def _intdiv(self, e: exp.IntDiv) -> Fn:
        return self._arith(e, "//")

    def _mod(self, e: exp.Mod) -> Fn:
        return self._arith(e, "%")

    def _dpipe(self, e: exp.DPipe) -> Fn:
        a, b = self.compile(e.this), self.compile(e.expression)

        def f(r: Any) -> Any:
            x, y = a(r), b(r)
            if x is None or y is None:
                return None
            if isinstance(x, bytes) and isinstance(y, bytes):
                return x + y
            return T.to_text(x) + T.to_text(y)
        return f

    def _is(self, e: exp.Is) -> Fn:
        a = self.compile(e.this)
        rhs = e.expression
        neg = bool(e.args.get("negate"))
        if isinstance(rhs, exp.Null):
            return lambda r: (a(r) is None) != neg
        if isinstance(rhs, exp.Boolean):
            want = bool(rhs.this)
            return lambda r: (a(r) is want) != neg
        raise E.unsupported(f"IS {rhs.sql('postgres')}")

    def _between(self, e: exp.Between) -> Fn:
        a = self.compile(e.this)
        lo, hi = self.compile(e.args["low"]), self.compile(e.args["high"])

        def f(r: Any) -> Any:
            v, x, y = a(r), lo(r), hi(r)
            c1 = None if v is None or x is None else compare(v, x) >= 0
            c2 = None if v is None or y is None else compare(v, y) <= 0
            return and_(c1, c2)
        return f

    def _in(self, e: exp.In) -> Fn:
        a = self.compile(e.this)
        q = e.args.get("query")
        if q is not None:
            key = id(q)

            def items(r: Any) -> list[Any]:
                return _sub_value(self.ctx.subqueries[key], r)
        else:
            fns = [self.compile(x) for x in e.expressions]

            def items(r: Any) -> list[Any]:
                return [fn(r) for fn in fns]

        def f(r: Any) -> Any:
            v = a(r)
            xs = items(r)
            if not xs:
                return False  # x IN (empty) is false even for a NULL x
            if v is None:
                return None
            saw_null = False
            for x in xs:
                if x is None:
                    saw_null = True
                elif compare(v, x) == 0:
                    return True
            return None if saw_null else False
        return f

    def _like(self, e: exp.Expression, ci: bool = False) -> Fn:
        a, p = self.compile(e.this), self.compile(e.expression)
        cache: dict[str, re.Pattern[str]] = {}

        def f(r: Any) -> Any:
            v, pat = a(r), p(r)
            if v is None or pat is None:
                return None
            rx = cache.get(pat)
            if rx is None:
                if len(cache) > 64:  # a reused plan sees many patterns
                    cache.clear()
                rx = cache[pat] = like_regex(pat, ci)
            return rx.fullmatch(v) is not None
        return f

    def _ilike(self, e: exp.ILike) -> Fn:
        return self._like(e, ci=True)

    def _escape(self, e: exp.Escape) -> Fn:
        raise E.unsupported("LIKE ... ESCAPE")

    def _case(self, e: exp.Case) -> Fn:
        base = self.compile(e.this) if e.this is not None else None
        arms = [(self.compile(w.this), self.compile(w.args["true"])) for w in e.args["ifs"]]
        dflt = self.compile(e.args["default"]) if e.args.get("default") else (lambda r: None)

        def f(r: Any) -> Any:
            b = base(r) if base is not None else None
            for cond, val in arms:
                c = cond(r)
                if base is not None:
                    if b is not None and c is not None and compare(b, c) == 0:
                        return val(r)
                elif c is True:
                    return val(r)
            return dflt(r)
        return f

    def _if(self, e: exp.If) -> Fn:
        c, t = self.compile(e.this), self.compile(e.args["true"])
        fl = self.compile(e.args["false"]) if e.args.get("false") else (lambda r: None)
        return lambda r: t(r) if c(r) is True else fl(r)

    def _cast(self, e: exp.Cast) -> Fn:
        a = self.compile(e.this)
        t = T.cast_target(e.to)
        return lambda r: T.cast(a(r), t)

    def _trycast(self, e: exp.Cast) -> Fn:
        return self._cast(e)

    def _subquery(self, e: exp.Subquery) -> Fn:
        key = id(e)
        return lambda r: _sub_value(self.ctx.subqueries[key], r)

    def _exists(self, e: exp.Exists) -> Fn:
        key = id(e)
        return lambda r: _sub_value(self.ctx.subqueries[key], r)

    # -- functions --------------------------------------------------------------------
    def _call(self, fn: Callable[..., Any], args: list[exp.Expression]) -> Fn:
        fns = [self.compile(a) for a in args]

        def f(r: Any) -> Any:
            vals = [g(r) for g in fns]
            if any(v is None for v in vals):
                return None
            try:
                return fn(*vals)
            except (TypeError, AttributeError) as ex:
                raise E.SQLError(f"invalid argument types: {ex}", "42883") from ex
            except ValueError as ex:
                raise E.SQLError(str(ex), "22023") from ex
        return f

    def _substring(self, e: exp.Substring) -> Fn:
        args = [e.this, e.args.get("start") or exp.Literal.number(1)]
        if e.args.get("length") is not None:
            args.append(e.args["length"])
        return self._call(B.substring, args)

    def _trim(self, e: exp.Trim) -> Fn:
        pos = str(e.args.get("position") or "BOTH").upper()
        name = {"LEADING": "ltrim", "TRAILING": "rtrim"}.get(pos, "btrim")
        return self._builtin(B.BY_NAME[name], [a for a in (e.this, e.expression) if a is not None])

    def _concat(self, e: exp.Concat) -> Fn:
        fns = [self.compile(a) for a in e.expressions]
        return lambda r: "".join(T.to_text(v) for g in fns if (v := g(r)) is not None)

    def _coalesce(self, e: exp.Coalesce) -> Fn:
        fns = [self.compile(a) for a in [e.this, *e.expressions]]

        def f(r: Any) -> Any:
            for g in fns:
                v = g(r)
                if v is not None:
                    return v
            return None
        return f

    def _nullif(self, e: exp.Nullif) -> Fn:
        a, b = self.compile(e.this), self.compile(e.expression)

        def f(r: Any) -> Any:
            x, y = a(r), b(r)
            return None if x is not None and y is not None and compare(x, y) == 0 else x
        return f

    def _greatest(self, e: exp.Expression, sign: int = 1) -> Fn:
        fns = [self.compile(a) for a in [e.this, *e.expressions]]

        def f(r: Any) -> Any:
            vals = [v for g in fns if (v := g(r)) is not None]
            if not vals:
                return None
            return functools.reduce(lambda x, y: x if compare(x, y) * sign >= 0 else y, vals)
        return f

    def _least(self, e: exp.Expression) -> Fn:
        return self._greatest(e, -1)

    def _currenttimestamp(self, e: exp.Expression) -> Fn:
        return lambda r: self.ctx.now

    def _uuid(self, e: exp.Expression) -> Fn:
        return lambda r: uuid.uuid4()

    def _builtin(self, b: B.Builtin, args: list[exp.Expression]) -> Fn:
        b.check(len(args))
        fns = [self.compile(a) for a in args]

        def f(r: Any) -> Any:
            return b.call([g(r) for g in fns])
        return f

    def _concatws(self, e: exp.ConcatWs) -> Fn:
        return self._builtin(B.BY_NAME["concat_ws"], list(e.expressions))

    def _pad(self, e: exp.Pad) -> Fn:
        name = "lpad" if e.args.get("is_left") else "rpad"
        args = [e.this, e.expression] + ([e.args["fill_pattern"]] if e.args.get("fill_pattern") else [])
        return self._builtin(B.BY_NAME[name], args)

    def _extract(self, e: exp.Extract) -> Fn:
        unit = exp.Literal.string(B.unit_name(e.this))
        return self._builtin(B.BY_NAME["extract"], [unit, e.expression])

    def _timestamptrunc(self, e: exp.TimestampTrunc) -> Fn:
        unit = exp.Literal.string(B.unit_name(e.args.get("unit")))
        return self._builtin(B.BY_NAME["date_trunc"], [unit, e.this])

    def _datetrunc(self, e: exp.Expression) -> Fn:
        return self._timestamptrunc(e)  # type: ignore[arg-type]

    def _interval(self, e: exp.Interval) -> Fn:
        unit = e.args.get("unit")
        v = T.parse_interval(str(e.this.name if e.this is not None else ""),
                             unit.name if unit is not None else None)
        return lambda r: v

    def _rand(self, e: exp.Rand) -> Fn:
        if e.this is not None:
            raise E.SQLError("unknown signature: random() with 1 argument", "42883")
        return lambda r: random.random()

    def _currentdatabase(self, e: exp.Expression) -> Fn:
        ctx = self.ctx
        return lambda r: ctx.database  # read per execution (plans outlive a USE)

    def _currentuser(self, e: exp.Expression) -> Fn:
        return lambda r: "root"

    def _currentdate(self, e: exp.Expression) -> Fn:
        ctx = self.ctx
        return lambda r: ctx.now.date()

    def _window(self, e: exp.Window) -> Fn:
        ctx, key = self.ctx, id(e)

        def f(r: Any) -> Any:
            vals = ctx.windows.get(key)
            if vals is None:
                raise E.SQLError(f"window functions are not allowed here: {e.sql('postgres')}",
                                 "42P20")
            return vals[ctx.window_row]
        return f

    def _anonymous(self, e: exp.Anonymous) -> Fn:
        name = str(e.this).lower()
        if name == "unique_rowid":
            return lambda r: self.ctx.unique_rowid()
        if name in ("now", "current_timestamp", "transaction_timestamp", "statement_timestamp"):
            return lambda r: self.ctx.now
        if name == "gen_random_uuid":
            return lambda r: uuid.uuid4()
        if name == "current_database":
            return self._currentdatabase(e)
        if name in ("current_user", "session_user"):
            return self._currentuser(e)
        if name in ("every",):
            raise E.unsupported("every(): use bool_and()")
        fn = SCALAR.get(name)
        if fn is None:
            b = B.BY_NAME.get(name)
            if b is None:
                raise E.undefined_function(name)
            return self._builtin(b, list(e.expressions))
        return self._call(fn, list(e.expressions))


def _untyped(e: exp.Expression) -> bool:
    """A string literal or placeholder: its type comes from the other operand."""
    return isinstance(e, exp.Parameter | exp.Placeholder) or (
        isinstance(e, exp.Literal) and e.is_string)


def _bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    raise E.datatype_mismatch(f"argument of NOT must be type bool, not type {T.type_of(v)}")


def truthy(v: Any) -> bool:
    """WHERE/HAVING/CHECK filter: only TRUE passes (NULL and FALSE do not)."""
    if v is None or v is False:
        return False
    if v is True:
        return True
    raise E.datatype_mismatch(f"argument of WHERE must be type bool, not type {T.type_of(v)}")


def output_name(e: exp.Expression) -> str:
    if isinstance(e, exp.Alias):
        return e.alias
    if isinstance(e, exp.Column):
        return e.name
    if isinstance(e, exp.Anonymous):
        return str(e.this).lower()
    if isinstance(e, exp.Window | exp.Cast):
        return output_name(e.this)
    if isinstance(e, exp.Func):
        return B.output_name(e)
    return "?column?"
