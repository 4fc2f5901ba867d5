"""The scan planner: which index to read and which KV spans.

A small rule-based planner in the spirit of CockroachDB's index
constraints (pkg/sql/opt/idxconstraint). From the WHERE clause it takes the
top-level conjuncts of the forms

    col = c    col IN (c, ...)    col IS NULL    col <op> c    col BETWEEN a AND b

where `c` is a constant (literals, placeholders, already-run subqueries),
and for every index counts the leading index columns fixed by equalities,
then whether the next column has a range. The index with the longest
constrained prefix wins (ties: unique before non-unique, primary first); no
constraint at all means a full scan of the primary index. Spans are a
*superset* of the matching rows: the full WHERE is still applied to every
row read, so a constraint the planner cannot use exactly (e.g. an INT
column compared with 1.5) is simply dropped.

Span construction, for each combination of equality values ``v1..vk`` and an
optional range [lo, hi] on column k+1::

    prefix = /Table/t/i/enc(v1)...enc(vk)
    start  = prefix + enc(lo)              (lo inclusive)
           | end_of(prefix + enc(lo))      (lo exclusive)
           | prefix + 0x01                 (no lo: skip NULLs, which encode as 0x00)
    end    = end_of(prefix + enc(hi)) | prefix + enc(hi) | end_of(prefix)

A point lookup (every PK column fixed) is a Get instead of a Scan; the
Gets of an IN list, and the index join after a secondary-index scan, go in
one KV batch.
"""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from crdb_py.sql import errors as E
from crdb_py.sql import rowenc
from crdb_py.sql import types as T
from crdb_py.sql.catalog import Index, TableDesc
from crdb_py.sql.expr import Compiler, Ctx, Scope, compare, memoized
from crdb_py.sql.kv import WriteBuffer
from crdb_py.sql.tablerows import RowCodec

MAX_SPANS = 1000


@dataclass(frozen=True, slots=True)
class Span:
    start: bytes
    end: bytes


@dataclass(slots=True)
class ScanPlan:
    table: TableDesc
    index: Index
    spans: list[Span]
    point: bool = False  # every span is one primary key (a Get)
    constrained: int = 0  # number of index columns constrained

    @property
    def full(self) -> bool:
        return self.constrained == 0


@dataclass(slots=True)
class _Range:
    lo: Any = None
    lo_inc: bool = True
    has_lo: bool = False
    hi: Any = None
    hi_inc: bool = True
    has_hi: bool = False


def conjuncts(e: exp.Expression | None) -> list[exp.Expression]:
    if e is None:
        return []
    if isinstance(e, exp.Paren):
        return conjuncts(e.this)
    if isinstance(e, exp.And):
        return conjuncts(e.this) + conjuncts(e.expression)
    return [e]


def _is_const(e: exp.Expression) -> bool:
    return not any(isinstance(n, exp.Column | exp.AggFunc | exp.Star) for n in e.walk()) and \
        not any(isinstance(n, exp.Anonymous | exp.Uuid) for n in e.walk())


_FLIP = {exp.GT: exp.LT, exp.GTE: exp.LTE, exp.LT: exp.GT, exp.LTE: exp.GTE, exp.EQ: exp.EQ}


class _Constraints:
    def __init__(self, desc: TableDesc, alias: str, ctx: Ctx) -> None:
        self.desc, self.alias, self.ctx = desc, alias, ctx
        self.eq: dict[int, list[Any]] = {}
        self.rng: dict[int, _Range] = {}
        self.const = Compiler(Scope([]), ctx)

    def col(self, e: exp.Expression) -> int | None:
        if isinstance(e, exp.Column) and (not e.table or e.table == self.alias) \
                and self.desc.has_column(e.name):
            return self.desc.column(e.name).id
        return None

    def value(self, cid: int, e: exp.Expression) -> tuple[bool, Any]:
        """(usable, value converted exactly to the column's type)."""
        if not memoized(self.ctx, "is_const", e, lambda: _is_const(e)):
            return False, None
        try:
            v = self.const(e)(())
            if v is None:
                return True, None
            conv = T.assign(v, self.desc.col_by_id(cid).type)
            return compare(conv, v) == 0, conv
        except (E.SQLError, TypeError, ValueError):
            return False, None

    def add(self, c: exp.Expression) -> None:
        if type(c) in _FLIP:
            op = type(c)
            cid, other = self.col(c.this), c.expression
            if cid is None:
                cid, other, op = self.col(c.expression), c.this, _FLIP[type(c)]
            if cid is None:
                return
            ok, v = self.value(cid, other)
            if not ok or v is None:
                return
            if op is exp.EQ:
                self._eq(cid, [v])
            else:
                r = self.rng.setdefault(cid, _Range())
                if op in (exp.GT, exp.GTE):
                    self._lo(r, v, op is exp.GTE)
                else:
                    self._hi(r, v, op is exp.LTE)
        elif isinstance(c, exp.In) and not c.args.get("query") and self.col(c.this) is not None:
            cid = self.col(c.this)
            assert cid is not None
            vals = []
            for x in c.expressions:
                ok, v = self.value(cid, x)
                if not ok:
                    return
                if v is not None:
                    vals.append(v)
            self._eq(cid, vals)
        elif isinstance(c, exp.Is) and isinstance(c.expression, exp.Null) and \
                not c.args.get("negate") and self.col(c.this) is not None:
            cid = self.col(c.this)
            assert cid is not None
            self._eq(cid, [None])
        elif isinstance(c, exp.Between) and self.col(c.this) is not None:
            cid = self.col(c.this)
            assert cid is not None
            ok1, lo = self.value(cid, c.args["low"])
            ok2, hi = self.value(cid, c.args["high"])
            r = self.rng.setdefault(cid, _Range())
            if ok1 and lo is not None:
                self._lo(r, lo, True)
            if ok2 and hi is not None:
                self._hi(r, hi, True)

    def _eq(self, cid: int, vals: list[Any]) -> None:
        if cid in self.eq:  # intersect
            vals = [v for v in vals if any(_same(v, w) for w in self.eq[cid])]
        uniq: list[Any] = []
        for v in vals:
            if not any(_same(v, u) for u in uniq):
                uniq.append(v)
        self.eq[cid] = uniq

    @staticmethod
    def _lo(r: _Range, v: Any, inc: bool) -> None:
        if not r.has_lo or compare(v, r.lo) > 0 or (compare(v, r.lo) == 0 and not inc):
            r.lo, r.lo_inc, r.has_lo = v, inc, True

    @staticmethod
    def _hi(r: _Range, v: Any, inc: bool) -> None:
        if not r.has_hi or compare(v, r.hi) < 0 or (compare(v, r.hi) == 0 and not inc):
            r.hi, r.hi_inc, r.has_hi = v, inc, True


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    return compare(a, b) == 0


def plan_scan(desc: TableDesc, alias: str, where: exp.Expression | None, ctx: Ctx) -> ScanPlan:
    cons = _Constraints(desc, alias, ctx)
    for c in (memoized(ctx, "conjuncts", where, lambda: conjuncts(where))
              if where is not None else ()):
        cons.add(c)
    codec = RowCodec.of(desc)
    best: tuple[tuple[int, int, int, int], Index, int, bool] | None = None
    for n, idx in enumerate(desc.all_indexes):
        k = 0
        combos = 1
        for cid in idx.column_ids:
            if cid not in cons.eq:
                break
            combos *= max(1, len(cons.eq[cid]))
            if combos > MAX_SPANS:
                break
            k += 1
        has_rng = k < len(idx.column_ids) and idx.column_ids[k] in cons.rng
        full_unique = (idx.unique or n == 0) and k == len(idx.column_ids)
        score = (k + (1 if has_rng else 0), int(full_unique), int(idx.unique or n == 0), -n)
        if best is None or score > best[0]:
            best = (score, idx, k, has_rng)
    assert best is not None
    score, idx, k, has_rng = best
    if score[0] == 0:
        p = rowenc.index_prefix(desc.id, desc.primary.id)
        return ScanPlan(desc, desc.primary, [Span(p, rowenc.prefix_end(p))])
    types = codec.index_types(idx) if idx is not desc.primary else codec.pk_types
    prefix = rowenc.index_prefix(desc.id, idx.id)
    eq_lists = [cons.eq[cid] for cid in idx.column_ids[:k]]
    spans: list[Span] = []
    for combo in itertools.product(*eq_lists):
        p = rowenc.encode_key(prefix, list(combo), types[:k])
        if has_rng:
            r = cons.rng[idx.column_ids[k]]
            t = types[k]
            if r.has_lo:
                lo = p + rowenc.encode_key_datum(r.lo, t)
                start = lo if r.lo_inc else rowenc.prefix_end(lo)
            else:
                start = p + b"\x01"
            if r.has_hi:
                hi = p + rowenc.encode_key_datum(r.hi, t)
                end = rowenc.prefix_end(hi) if r.hi_inc else hi
            else:
                end = rowenc.prefix_end(p)
            if start < end:
                spans.append(Span(start, end))
        else:
            spans.append(Span(p, rowenc.prefix_end(p)))
    point = idx is desc.primary and k == len(idx.column_ids) and not has_rng
    return ScanPlan(desc, idx, spans, point=point, constrained=k + int(has_rng))


def speculative_point_keys(ctx: Ctx) -> list[bytes]:
    """The keys the point lookups of a cached plan's last execution would read
    with this execution's parameters, planned against the descriptors that
    execution saw. Read ahead in the catalog batch, they make a cached point
    SELECT one round trip. A stale guess (the schema changed) costs a wasted
    read, never a wrong row: prefetched values are values of *those* keys in
    this txn, used only if the real plan asks for them."""
    keys: list[bytes] = []
    for desc, alias, where in ctx.point_scans:
        try:
            plan = plan_scan(desc, alias, where, ctx)
        except Exception:  # the real execution reports it
            continue
        if plan.point:
            keys += [sp.start for sp in plan.spans[:16]]
    return keys


async def fetch(buf: WriteBuffer, plan: ScanPlan) -> list[tuple[Any, ...]]:
    """Every row of `plan.table` in the plan's spans (index order)."""
    codec = RowCodec.of(plan.table)
    out: list[tuple[Any, ...]] = []
    if plan.index is plan.table.primary:
        if plan.point:  # every Get in one batch
            keys = [sp.start for sp in plan.spans]
            for k, v in zip(keys, await buf.get_many(keys)):
                if v is not None:
                    out.append(codec.decode(k, v))
            return out
        for sp in plan.spans:
            for k, v in await buf.scan(sp.start, sp.end):
                out.append(codec.decode(k, v))
        return out
    pks = []  # secondary index, then an index join to the primary (one batch)
    for sp in plan.spans:
        for k, v in await buf.scan(sp.start, sp.end):
            pks.append(codec.pk_key_from_vals(codec.pk_from_index(plan.index, k, v)))
    for pk, row in zip(pks, await buf.get_many(pks)):
        if row is None:
            raise E.SQLError(f"index {plan.index.name} points at a missing row", "XX000")
        out.append(codec.decode(pk, row))
    return out


def pretty_key(desc: TableDesc, idx: Index, key: bytes) -> str:
    """/Table/<id>/<index>/<datums...> for EXPLAIN; an end key that is the
    prefix end of a decodable key prints as that key + "/PrefixEnd"."""
    s = _pretty(desc, idx, key)
    if s is None and key and key[-1] > 0:
        s = _pretty(desc, idx, key[:-1] + bytes([key[-1] - 1]))
        if s is not None:
            return s + "/PrefixEnd"
    if s is None:
        s = f"/Table/{desc.id}/{idx.id}/raw:{key.hex()}"
    return s


def _pretty(desc: TableDesc, idx: Index, key: bytes) -> str | None:
    prefix = rowenc.index_prefix(desc.id, idx.id)
    if not key.startswith(prefix):
        return None
    codec = RowCodec.of(desc)
    types = codec.index_types(idx) if idx is not desc.primary else codec.pk_types
    if idx is not desc.primary:
        types = types + codec.pk_types
    parts = [f"/Table/{desc.id}/{idx.id}"]
    i = len(prefix)
    for t in types:
        if i >= len(key):
            break
        if key[i] == 0x01 and i == len(key) - 1:
            parts.append("/!NULL")
            return "".join(parts)
        try:
            v, i = rowenc.decode_key_datum(key, i, t)
        except (ValueError, IndexError, UnicodeDecodeError, struct.error):
            return None
        parts.append("/NULL" if v is None else "/" + T.to_text(v))
    return "".join(parts) if i == len(key) else None


def pretty_span(desc: TableDesc, idx: Index, sp: Span) -> str:
    return f"{pretty_key(desc, idx, sp.start)} - {pretty_key(desc, idx, sp.end)}"
