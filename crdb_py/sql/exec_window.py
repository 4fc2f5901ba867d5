"""Window functions: `f(...) OVER (PARTITION BY ... ORDER BY ... [frame])`.

They run, as in PostgreSQL, over the rows that reach the SELECT list: after
WHERE, GROUP BY and HAVING (so in an aggregating query a window function
sees one item per group, and may order by an aggregate), before ORDER BY,
DISTINCT and LIMIT. `compute_windows` evaluates every window node of the
select list and ORDER BY once over all the items and stores one value per
item in `Ctx.windows[id(node)]`; the compiled `Window` expression
(`expr.Compiler._window`) reads the value of the item being projected
(`Ctx.window_row`). Keying by node identity keeps plans reusable: the
values are per execution, the compiled closures are not.

Per window: items are partitioned (hash on the PARTITION BY values), each
partition sorted by the ORDER BY keys (NULLs first ascending, as ORDER BY
here and in CockroachDB), and *peers* (equal ORDER BY keys) grouped.

Functions: row_number, rank, dense_rank, percent_rank, cume_dist, ntile,
lag/lead(x[, n[, default]]), first_value/last_value/nth_value, and the
aggregates count/sum/avg/min/max/bool_and/bool_or over the frame.

Frames: the default is RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
(the current row and its peers) with ORDER BY, the whole partition without.
Explicit `ROWS` frames with UNBOUNDED / n PRECEDING / CURRENT ROW / n
FOLLOWING bounds are supported, and `RANGE` frames with UNBOUNDED and
CURRENT ROW bounds; offset RANGE frames, GROUPS and EXCLUDE are 0A000.
Aggregates over a frame that starts at the partition's first row are
accumulated incrementally (a running sum is linear, not quadratic).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sqlglot import exp

from crdb_py.sql import errors as E
from crdb_py.sql.aggregates import FOLDS, _add
from crdb_py.sql.expr import Compiler, Ctx, Fn, Scope, _inside_subquery, compare, sort_key_cmp
from crdb_py.sql.runtime import ExecCtx

_RANKING = (exp.RowNumber, exp.Rank, exp.DenseRank, exp.PercentRank, exp.CumeDist, exp.Ntile)
_OFFSET = (exp.Lag, exp.Lead)
_VALUE = (exp.FirstValue, exp.LastValue, exp.NthValue)


def window_nodes(exprs: list[exp.Expression | None]) -> list[exp.Window]:
    """The window function calls under `exprs` (not inside subqueries)."""
    out: list[exp.Window] = []
    for e in exprs:
        if e is None:
            continue
        for n in e.walk():
            if isinstance(n, exp.Window) and not _inside_subquery(n, e):
                out.append(n)
    return out


async def compute_windows(x: ExecCtx, nodes: list[exp.Window], scope: Scope,
                          items: list[Any], aggregating: bool) -> None:
    comp = Compiler(scope, x.ctx, agg=aggregating)
    for w in nodes:
        for n in w.this.walk():
            if n is not w.this and isinstance(n, exp.Window):
                raise E.SQLError("window function calls cannot be nested", "42P20")
        x.ctx.windows[id(w)] = await _one(x, w, comp, items)


def _frame(w: exp.Window) -> tuple[str, Any, Any]:
    """(kind, start, end) with bounds as ("unbounded"|"current"|int offset)
    where a negative offset is PRECEDING."""
    spec = w.args.get("spec")
    if spec is None:
        return ("default", None, None)
    kind = str(spec.args.get("kind") or "").lower()
    if kind not in ("rows", "range"):
        raise E.unsupported(f"window frame {kind.upper()}")
    if spec.args.get("exclude"):
        raise E.unsupported("window frame EXCLUDE")

    def bound(v: Any, side: Any) -> Any:
        if v is None:
            return "current"
        text = v if isinstance(v, str) else (v.name if isinstance(v, exp.Expression) else str(v))
        if str(text).upper() == "UNBOUNDED":
            return "unbounded_" + str(side or "").lower()
        if str(text).upper() == "CURRENT ROW":
            return "current"
        if kind == "range":
            raise E.unsupported("RANGE frames with an offset (use ROWS)")
        if not (isinstance(v, exp.Literal) and not v.is_string):
            raise E.unsupported("window frame offsets other than integer constants")
        n = int(v.this)
        if n < 0:
            raise E.SQLError("frame starting offset must not be negative", "22013")
        return -n if str(side).lower() == "preceding" else n

    start = bound(spec.args.get("start"), spec.args.get("start_side"))
    end = bound(spec.args.get("end"), spec.args.get("end_side"))
    if start == "unbounded_following" or end == "unbounded_preceding":
        raise E.SQLError("frame bound cannot be UNBOUNDED in that position", "42P20")
    return (kind, start, end)


async def _one(x: ExecCtx, w: exp.Window, comp: Compiler, items: list[Any]) -> list[Any]:
    f = w.this
    pfns = [comp(p) for p in w.args.get("partition_by") or []]
    order = w.args.get("order")
    ords = [(comp(o.this), bool(o.args.get("desc"))) for o in (order.expressions if order else [])]
    parts: dict[tuple[Any, ...], list[int]] = {}
    await x.canceller.tick(len(items))
    for i, it in enumerate(items):
        parts.setdefault(tuple(g(it) for g in pfns), []).append(i)
    keys = [tuple(g(it) for g, _ in ords) for it in items] if ords else []
    desc = [d for _, d in ords]

    def cmp(a: int, b: int) -> int:
        for ka, kb, d in zip(keys[a], keys[b], desc):
            c = sort_key_cmp(ka, kb)
            if c:
                return -c if d else c
        return 0

    out: list[Any] = [None] * len(items)
    frame = _frame(w)
    evaluate = _evaluator(f, comp, items, x.ctx)
    for idxs in parts.values():
        if ords:
            idxs = sorted(idxs, key=functools.cmp_to_key(cmp))
        # peer groups: peer_lo[k] / peer_hi[k] bound the peers of position k
        n = len(idxs)
        peer_lo, peer_hi, group_no = [0] * n, [0] * n, [0] * n
        g = lo = 0
        for k in range(1, n + 1):
            if k == n or not ords or cmp(idxs[k], idxs[lo]) != 0:
                for j in range(lo, k):
                    peer_lo[j], peer_hi[j], group_no[j] = lo, k - 1, g
                g += 1
                lo = k
        if not ords:  # without ORDER BY every row of the partition is a peer
            peer_lo, peer_hi, group_no = [0] * n, [n - 1] * n, [0] * n
        evaluate(idxs, peer_lo, peer_hi, group_no, _bounds(frame, n, peer_lo, peer_hi,
                                                            bool(ords)), out)
        await x.canceller.tick(n)
    return out


def _bounds(frame: tuple[str, Any, Any], n: int, peer_lo: list[int], peer_hi: list[int],
            ordered: bool) -> list[tuple[int, int]]:
    """The frame of each position as an inclusive (lo, hi); lo > hi is empty."""
    kind, start, end = frame
    if kind == "default":
        if ordered:
            return [(0, peer_hi[k]) for k in range(n)]
        return [(0, n - 1)] * n

    def pos(b: Any, k: int, is_start: bool) -> int:
        if b == "unbounded_preceding":
            return 0
        if b == "unbounded_following":
            return n - 1
        if b == "current":
            if kind == "range":
                return peer_lo[k] if is_start else peer_hi[k]
            return k
        return k + b

    out = []
    for k in range(n):
        lo, hi = max(pos(start, k, True), 0), min(pos(end, k, False), n - 1)
        out.append((lo, hi))
    return out


Evaluator = Callable[[list[int], list[int], list[int], list[int], list[tuple[int, int]],
                      list[Any]], None]


def _evaluator(f: exp.Expression, comp: Compiler, items: list[Any], ctx: Ctx) -> Evaluator:
    """How to fill `out[idx]` for the positions of one sorted partition."""
    if isinstance(f, exp.RowNumber):
        def row_number(idxs, plo, phi, grp, fr, out):  # type: ignore[no-untyped-def]
            for k, i in enumerate(idxs):
                out[i] = k + 1
        return row_number
    if isinstance(f, exp.Rank):
        def rank(idxs, plo, phi, grp, fr, out):  # type: ignore[no-untyped-def]
            for k, i in enumerate(idxs):
                out[i] = plo[k] + 1
        return rank
    if isinstance(f, exp.DenseRank):
        def dense_rank(idxs, plo, phi, grp, fr, out):  # type: ignore[no-untyped-def]
            for k, i in enumerate(idxs):
                out[i] = grp[k] + 1
        return dense_rank
    if isinstance(f, exp.PercentRank):
        def percent_rank(idxs, plo, phi, grp, fr, out):  # type: ignore[no-untyped-def]
            n = len(idxs)
            for k, i in enumerate(idxs):
                out[i] = 0.0 if n == 1 else plo[k] / (n - 1)
        return percent_rank
    if isinstance(f, exp.CumeDist):
        def cume_dist(idxs, plo, phi, grp, fr, out):  # type: ignore[no-untyped-def]
            n = len(idxs)
            for k, i in enumerate(idxs):
                out[i] = (phi[k] + 1) / n
        return cume_dist
    if isinstance(f, exp.Ntile):
        nf = comp(f.this)

        def ntile(idxs, plo, phi, grp, fr, out):  # type: ignore[no-untyped-def]
            n = len(idxs)
            for k, i in enumerate(idxs):
                b = nf(items[i])
                if b is None:
                    out[i] = None
                    continue
                if not isinstance(b, int) or b <= 0:
                    raise E.SQLError("argument of ntile() must be greater than zero", "22014")
                size, extra = divmod(n, b)
                # the first `extra` buckets hold size + 1 rows
                cut = extra * (size + 1)
                out[i] = k // (size + 1) + 1 if k < cut else extra + (k - cut) // max(size, 1) + 1
        return ntile
    if isinstance(f, _OFFSET):
        val = comp(f.this)
        off = comp(f.args["offset"]) if f.args.get("offset") is not None else (lambda r: 1)
        dflt = comp(f.args["default"]) if f.args.get("default") is not None else (lambda r: None)
        sign = -1 if isinstance(f, exp.Lag) else 1

        def lag_lead(idxs, plo, phi, grp, fr, out):  # type: ignore[no-untyped-def]
            for k, i in enumerate(idxs):
                o = off(items[i])
                if o is None:
                    out[i] = None
                    continue
                j = k + sign * int(o)
                out[i] = val(items[idxs[j]]) if 0 <= j < len(idxs) else dflt(items[i])
        return lag_lead
    if isinstance(f, _VALUE):
        val = comp(f.this)
        nth = comp(f.args["offset"]) if isinstance(f, exp.NthValue) else None

        def value(idxs, plo, phi, grp, fr, out):  # type: ignore[no-untyped-def]
            for k, i in enumerate(idxs):
                lo, hi = fr[k]
                if isinstance(f, exp.FirstValue):
                    j = lo
                elif isinstance(f, exp.LastValue):
                    j = hi
                else:
                    m = nth(items[i])  # type: ignore[misc]
                    if m is None or m <= 0:
                        raise E.SQLError("argument of nth_value() must be greater than zero",
                                         "22016")
                    j = lo + int(m) - 1
                out[i] = val(items[idxs[j]]) if lo <= j <= hi else None
        return value
    if type(f) in FOLDS:
        return _aggregate(f, comp, items)
    raise E.unsupported(f"window function {f.sql('postgres')[:60]}")


def _aggregate(f: exp.Expression, comp: Compiler, items: list[Any]) -> Evaluator:
    fold = FOLDS[type(f)]
    arg = f.this
    if isinstance(arg, exp.Distinct):
        raise E.unsupported("DISTINCT in a window aggregate")
    g: Fn = (lambda r: 1) if isinstance(arg, exp.Star) else comp(arg)
    kind = type(f)

    def agg(idxs, plo, phi, grp, fr, out):  # type: ignore[no-untyped-def]
        vals = [g(items[i]) for i in idxs]
        if all(lo == 0 for lo, _ in fr) and kind in _RUNNING:
            running = _RUNNING[kind]()
            upto = -1
            for k, i in enumerate(idxs):
                hi = fr[k][1]
                while upto < hi:
                    upto += 1
                    if vals[upto] is not None:
                        running.add(vals[upto])
                out[i] = running.value() if hi >= 0 else fold([])
            return
        if len(idxs) > 32 and kind in _MONOID:  # sliding frames: O(log n) per row
            tree = _SegTree(vals, *_MONOID[kind])
            for k, i in enumerate(idxs):
                lo, hi = fr[k]
                out[i] = tree.query(lo, hi) if lo <= hi else fold([])
            return
        cache: dict[tuple[int, int], Any] = {}
        for k, i in enumerate(idxs):
            lo, hi = fr[k]
            if (lo, hi) not in cache:
                cache[(lo, hi)] = fold([v for v in vals[lo:hi + 1] if v is not None])
            out[i] = cache[(lo, hi)]
    return agg


class _SegTree:
    """A segment tree over a partition's values for one aggregate monoid
    (`leaf(v)`, `combine(a, b)` with `None` as identity, `final(acc)`), so
    any frame is answered in O(log n): a frame sliding over the partition
    (`ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING`, wide offsets)
    would be quadratic as one fold per row."""

    __slots__ = ("n", "t", "combine", "final")

    def __init__(self, vals: list[Any], leaf: Callable[[Any], Any],
                 combine: Callable[[Any, Any], Any], final: Callable[[Any], Any]) -> None:
        self.n = n = len(vals)
        self.combine, self.final = combine, final
        self.t: list[Any] = [None] * n + [None if v is None else leaf(v) for v in vals]
        for i in range(n - 1, 0, -1):
            self.t[i] = _opt(combine, self.t[2 * i], self.t[2 * i + 1])

    def query(self, lo: int, hi: int) -> Any:
        left: Any = None
        right: Any = None
        lo += self.n
        hi += self.n + 1
        c, t = self.combine, self.t
        while lo < hi:  # left and right parts kept apart: min/max ties stay in order
            if lo & 1:
                left = _opt(c, left, t[lo])
                lo += 1
            if hi & 1:
                hi -= 1
                right = _opt(c, t[hi], right)
            lo >>= 1
            hi >>= 1
        return self.final(_opt(c, left, right))


def _opt(c: Callable[[Any, Any], Any], a: Any, b: Any) -> Any:
    return b if a is None else a if b is None else c(a, b)


def _num_leaf(v: Any) -> Any:
    FOLDS[exp.Sum]([v])  # 42883 for a non-number, as the plain aggregate
    return v


def _avg_final(acc: Any) -> Any:
    if acc is None:
        return None
    s, n, floaty = acc
    return float(s) / n if floaty else Decimal(s) / Decimal(n)


_MONOID: dict[type, tuple[Callable[[Any], Any], Callable[[Any, Any], Any],
                          Callable[[Any], Any]]] = {
    exp.Count: (lambda v: 1, lambda a, b: a + b, lambda acc: acc or 0),
    exp.Sum: (_num_leaf, _add, lambda acc: acc),
    exp.Avg: (lambda v: (_num_leaf(v), 1, isinstance(v, float)),
              lambda a, b: (_add(a[0], b[0]), a[1] + b[1], a[2] or b[2]), _avg_final),
    exp.Min: (lambda v: v, lambda a, b: a if compare(a, b) <= 0 else b, lambda acc: acc),
    exp.Max: (lambda v: v, lambda a, b: a if compare(a, b) >= 0 else b, lambda acc: acc),
}


class _Running:
    """An aggregate accumulated one value at a time (frames from the start)."""

    __slots__ = ("n", "acc", "floaty")

    def __init__(self) -> None:
        self.n = 0
        self.acc: Any = None
        self.floaty = False

    def add(self, v: Any) -> None:
        self.n += 1
        self.acc = v if self.acc is None else self.step(self.acc, v)

    def step(self, a: Any, v: Any) -> Any:
        raise NotImplementedError

    def value(self) -> Any:
        return self.acc


class _Count(_Running):
    def add(self, v: Any) -> None:
        self.n += 1

    def value(self) -> Any:
        return self.n


class _Sum(_Running):
    def add(self, v: Any) -> None:
        FOLDS[exp.Sum]([v])  # type check
        super().add(v)

    def step(self, a: Any, v: Any) -> Any:
        return _add(a, v)


class _Avg(_Sum):
    def add(self, v: Any) -> None:
        super().add(v)
        self.floaty = self.floaty or isinstance(v, float)

    def value(self) -> Any:
        if not self.n:
            return None
        if self.floaty:
            return float(self.acc) / self.n
        return Decimal(self.acc) / Decimal(self.n)


class _Min(_Running):
    def step(self, a: Any, v: Any) -> Any:
        return a if compare(a, v) <= 0 else v


class _Max(_Running):
    def step(self, a: Any, v: Any) -> Any:
        return a if compare(a, v) >= 0 else v


_RUNNING: dict[type, type[_Running]] = {exp.Count: _Count, exp.Sum: _Sum, exp.Avg: _Avg,
                                        exp.Min: _Min, exp.Max: _Max}
