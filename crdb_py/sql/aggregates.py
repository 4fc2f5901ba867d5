"""Aggregate functions: the folds, and their compilation (a mixin of
`expr.Compiler`).

In aggregate mode a compiled expression takes a `(representative row,
group rows)` pair; an aggregate compiles its argument against the plain
row scope and folds the non-NULL values of the group. The folds
(`FOLDS`) are shared with window functions (exec_window.py), which apply
them to a frame of rows instead of a group.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from crdb_py.sql import errors as E
from crdb_py.sql import types as T

if TYPE_CHECKING:
    from crdb_py.sql.expr import Ctx, Fn, Scope

AGGS = (exp.Count, exp.Sum, exp.Avg, exp.Min, exp.Max, exp.GroupConcat, exp.LogicalAnd,
        exp.LogicalOr, exp.ArrayAgg)


def _add(a: Any, b: Any) -> Any:
    from crdb_py.sql.expr import num

    return a + b if isinstance(a, int) and isinstance(b, int) else num(a, b, "+")


def fold_sum(vs: list[Any]) -> Any:
    if not vs:
        return None
    if any(isinstance(v, bool) or not isinstance(v, int | float | Decimal) for v in vs):
        raise E.SQLError(f"unknown signature: sum({T.type_of(vs[0])})", "42883")
    return functools.reduce(_add, vs)


def fold_avg(vs: list[Any]) -> Any:
    if not vs:
        return None
    if any(isinstance(v, bool) or not isinstance(v, int | float | Decimal) for v in vs):
        raise E.SQLError(f"unknown signature: avg({T.type_of(vs[0])})", "42883")
    if any(isinstance(v, float) for v in vs):
        return sum(float(v) for v in vs) / len(vs)
    return sum(Decimal(v) for v in vs) / Decimal(len(vs))


def fold_min(vs: list[Any]) -> Any:
    from crdb_py.sql.expr import compare

    return functools.reduce(lambda a, b: a if compare(a, b) <= 0 else b, vs) if vs else None


def fold_max(vs: list[Any]) -> Any:
    from crdb_py.sql.expr import compare

    return functools.reduce(lambda a, b: a if compare(a, b) >= 0 else b, vs) if vs else None


def _bools(name: str, vs: list[Any]) -> list[bool]:
    for v in vs:
        if not isinstance(v, bool):
            raise E.SQLError(f"unknown signature: {name}({T.type_of(v)})", "42883")
    return vs


def fold_bool_and(vs: list[Any]) -> Any:
    return all(_bools("bool_and", vs)) if vs else None


def fold_bool_or(vs: list[Any]) -> Any:
    return any(_bools("bool_or", vs)) if vs else None


FOLDS: dict[type, Callable[[list[Any]], Any]] = {
    exp.Count: len, exp.Sum: fold_sum, exp.Avg: fold_avg, exp.Min: fold_min,
    exp.Max: fold_max, exp.LogicalAnd: fold_bool_and, exp.LogicalOr: fold_bool_or,
}


class AggregateMixin:
    """The aggregate methods of `expr.Compiler`."""

    scope: Scope
    ctx: Ctx
    agg: bool

    def compile(self, e: exp.Expression) -> Fn:  # provided by Compiler
        raise NotImplementedError

    def _inner(self) -> Any:
        return type(self)(self.scope, self.ctx)  # type: ignore[call-arg]

    def _agg(self, e: exp.Expression, fold: Callable[[list[Any]], Any]) -> Fn:
        if not self.agg:
            raise E.SQLError(f"aggregate functions are not allowed here: {e.sql('postgres')}", "42803")
        arg = e.this
        distinct = isinstance(arg, exp.Distinct)
        if distinct:
            arg = arg.expressions[0]
        inner = self._inner()  # nested in this compile: no memo lookup
        star = isinstance(arg, exp.Star)
        g = (lambda r: 1) if star else inner.compile(arg)

        def f(grp: Any) -> Any:
            vals = [v for r in grp[1] if (v := g(r)) is not None]
            if distinct:
                vals = list(dict.fromkeys(vals))
            return fold(vals)
        return f

    def _count(self, e: exp.Count) -> Fn:
        return self._agg(e, len)

    def _sum(self, e: exp.Sum) -> Fn:
        return self._agg(e, fold_sum)

    def _avg(self, e: exp.Avg) -> Fn:
        return self._agg(e, fold_avg)

    def _min(self, e: exp.Min) -> Fn:
        return self._agg(e, fold_min)

    def _max(self, e: exp.Max) -> Fn:
        return self._agg(e, fold_max)

    def _logicaland(self, e: exp.LogicalAnd) -> Fn:
        return self._agg(e, fold_bool_and)

    def _logicalor(self, e: exp.LogicalOr) -> Fn:
        return self._agg(e, fold_bool_or)

    def _arrayagg(self, e: exp.ArrayAgg) -> Fn:
        raise E.unsupported("array_agg: ARRAY values are not supported yet (use string_agg)")

    def _groupconcat(self, e: exp.GroupConcat) -> Fn:
        """string_agg(x, sep [ORDER BY ...]): NULL values are skipped; each
        value but the first is preceded by the separator of its own row."""
        from crdb_py.sql.expr import sort_key_cmp

        if not self.agg:
            raise E.SQLError(f"aggregate functions are not allowed here: {e.sql('postgres')}", "42803")
        arg = e.this
        order: list[tuple[Fn, bool]] = []
        inner = self._inner()
        if isinstance(arg, exp.Order):
            order = [(inner.compile(o.this), bool(o.args.get("desc"))) for o in arg.expressions]
            arg = arg.this
        distinct = isinstance(arg, exp.Distinct)
        if distinct:
            arg = arg.expressions[0]
        sep_node = e.args.get("separator")
        if sep_node is None:
            raise E.SQLError("unknown signature: string_agg() with 1 argument", "42883")
        g, sep = inner.compile(arg), inner.compile(sep_node)

        def cmp(a: tuple[Any, ...], b: tuple[Any, ...]) -> int:
            for (_, d), x, y in zip(order, a[0], b[0]):
                c = sort_key_cmp(x, y)
                if c:
                    return -c if d else c
            return 0

        def f(grp: Any) -> Any:
            rows = grp[1]
            if order:
                keyed = [(tuple(k(r) for k, _ in order), r) for r in rows]
                rows = [r for _, r in sorted(keyed, key=functools.cmp_to_key(cmp))]
            out: list[str] = []
            seen: set[Any] = set()
            for r in rows:
                v = g(r)
                if v is None:
                    continue
                if not isinstance(v, str):
                    raise E.SQLError(f"unknown signature: string_agg({T.type_of(v)}, string)",
                                     "42883")
                if distinct:
                    if v in seen:
                        continue
                    seen.add(v)
                if out:
                    s = sep(r)
                    if s is not None:
                        out.append(s)
                out.append(v)
            return "".join(out) if out else None
        return f
