"""An Elle-style checker for list-append histories: infer dependencies, find cycles, name them.

After Kingsbury & Alvaro, "Elle: Inferring Isolation Anomalies from
Experimental Observations" (VLDB 2020), restricted to the list-append model.
See docs/design/testing.md for how to read its reports.

The workload. Each transaction is a list of micro-ops on keys whose values
are lists: `["append", k, v]` adds `v` to the end of `k`'s list (each `v` is
appended at most once per key across the whole history) and `["r", k, L]`
reads the whole list `L` (None on the invoke: unknown until it completes).
A transaction ends `ok` (committed, reads filled in), `fail` (certainly not
committed) or `info` (ambiguous: may or may not have committed, reads
unknown).

Why list-append. A read returns the entire version history of the key up to
the version it observed, so the *version order* of every key is recoverable
from the history alone: if the database is serializable (even just "reads
see committed prefixes"), all reads of a key are prefixes of one another and
the longest read spells out the order in which the appends were installed.
Reads that are not prefixes of each other (`incompatible-order`) are an
anomaly in themselves — two observers disagree about history — and such a key
is left out of the dependency graph, as no version order can be trusted.

The dependency graph (Adya's DSG). Nodes are the transactions that may have
committed (`ok` and `info`; a `fail` transaction never did). For each key
with version order v1 < v2 < ... (the longest read), and writer(v) the
transaction that appended v:

- ww: writer(vi) -> writer(vi+1): the later append overwrote the earlier
  version;
- wr: writer(last element of a read) -> reader: the reader saw that write;
- rw: reader -> writer(the version right after what it read): the reader
  did not see a write that was installed after the state it read (an
  anti-dependency; an empty read anti-depends on writer(v1));
- rt (only with `realtime=True`, for strict serializability): T1 -> T2 when
  T1 completed before T2 was invoked. Computed as a small transitive
  reduction (each invoke links from the current "frontier" of completions),
  so the edge count stays proportional to concurrency, not n².

A transaction's reads of its own appends are discounted: the part of a read
that ends with the reader's own appends says nothing about other
transactions (it is checked by the `internal` consistency rule instead).

A serializable history has an acyclic graph. Cycles are found with Tarjan's
SCC algorithm (iterative) and then, inside each non-trivial component, a
breadth-first search for the shortest cycle of each class, most severe
first, as Elle does:

- G0 (write cycle): only ww edges;
- G1c (circular information flow): ww and wr edges, at least one wr;
- G-single (read skew): exactly one rw edge — found by searching, for each
  rw edge a -> b, a path b ~> a that uses no rw edge;
- G2 (anti-dependency cycle; for item reads and writes this is G2-item):
  two or more rw edges — a rw edge that closes a cycle only through another
  rw edge;
- <class>-realtime: a cycle that needs an rt edge; the class is that of its
  remaining edges.

Non-cycle anomalies, found directly: G1a (aborted read: a committed read
contains a value appended by a `fail` transaction), G1b (intermediate read:
a read ends on a value that its writer followed with a later append to the
same key), `incompatible-order`, `duplicate-elements` (a read holds a value
twice), `garbage-read` (a value nobody appended) and `internal` (a
transaction's read disagrees with its own earlier read and appends).

Ambiguity. `info` transactions are nodes (their appends may be visible, and
then they committed) but have no reads, so they only gain edges through what
others observed. An `info` append that nobody observed adds nothing — it
may as well not have happened.

The broken variant (MODEL-CHECKS.md): `edge_types=("ww", "wr")` is the
checker with anti-dependencies disabled; tests show it accepts a G-single
history the real checker rejects.

Cost. Parsing and edge inference are linear in the size of the history (a
read is compared to the version order as one tuple slice); Tarjan is linear
in the graph; the per-component searches are bounded by `search_budget`
BFS runs per component, so a huge anomalous component cannot make the
checker quadratic without bound. Valid histories have only trivial
components and cost nothing there.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from crdb_py.jepsen.checkers.base import Result
from crdb_py.jepsen.history import History, Op, history_ops, operations

__all__ = ["Cycle", "Edge", "Txn", "check", "txns_of"]

EdgeType = Literal["ww", "wr", "rw", "rt"]
MicroOp = tuple[str, Any, Any]
# When several edges join the same pair, the path prefers the mildest.
_PREFERENCE: tuple[EdgeType, ...] = ("ww", "wr", "rt", "rw")


@dataclass(frozen=True, slots=True)
class Txn:
    """A list-append transaction; `id` is its position in invoke order."""

    id: int
    process: int
    status: Literal["ok", "fail", "info"]
    mops: tuple[MicroOp, ...]
    call: int
    ret: float

    def __str__(self) -> str:
        body = " ".join(_fmt_mop(m) for m in self.mops)
        return f"T{self.id} (process {self.process}, {self.status}): {body}"


@dataclass(frozen=True, slots=True)
class Edge:
    src: int
    dst: int
    type: EdgeType
    key: Any
    why: str


@dataclass(frozen=True, slots=True)
class Cycle:
    name: str
    txns: tuple[int, ...]  # T0 -> T1 -> ... -> back to T0
    edges: tuple[Edge, ...]


def _fmt_mop(m: MicroOp) -> str:
    f, k, v = m
    if f == "append":
        return f"[append {k!r} {v!r}]"
    return f"[r {k!r} {'?' if v is None else _fmt_list(v)}]"


def _fmt_list(v: Sequence[Any], keep: int = 4) -> str:
    """A read as a list literal; long ones keep their ends (the end is what
    the dependencies are about) and say how many elements were elided."""
    if len(v) <= 2 * keep + 1:
        return repr(list(v))
    head = ", ".join(repr(x) for x in v[:keep])
    tail = ", ".join(repr(x) for x in v[-keep:])
    return f"[{head}, ... {len(v) - 2 * keep} more ..., {tail}]"


def txns_of(history: History | Sequence[Op]) -> list[Txn]:
    """The list-append transactions of a history (operations with f == "txn")."""
    out: list[Txn] = []
    for o in operations(history_ops(history)):
        if o.f != "txn":
            continue
        mops = tuple(_norm_mop(m) for m in (o.value or ()))
        if o.status != "ok":  # reads of fail / info txns are unknown
            mops = tuple((f, k, None) if f == "r" else (f, k, v) for f, k, v in mops)
        out.append(Txn(len(out), o.process, o.status, mops, o.call, o.ret))
    return out


def _norm_mop(m: Any) -> MicroOp:
    f, k, v = m
    if f in ("r", "read"):
        return ("r", k, None if v is None else tuple(v))
    if f == "append":
        return ("append", k, v)
    raise ValueError(f"unknown micro-op {m!r} (expected append or r)")


class _Graph:
    def __init__(self) -> None:
        self.adj: dict[int, dict[int, dict[str, Edge]]] = {}

    def add(self, e: Edge) -> None:
        if e.src == e.dst:
            return
        self.adj.setdefault(e.src, {}).setdefault(e.dst, {}).setdefault(e.type, e)

    def succ(self, n: int, types: Collection[str], within: set[int] | None = None) -> Iterable[int]:
        for dst, by_type in self.adj.get(n, {}).items():
            if (within is None or dst in within) and any(t in by_type for t in types):
                yield dst

    def edge(self, a: int, b: int, types: Collection[str]) -> Edge:
        by_type = self.adj[a][b]
        for t in _PREFERENCE:
            if t in types and t in by_type:
                return by_type[t]
        raise KeyError((a, b))

    def edges_of_type(self, nodes: set[int], t: str) -> list[Edge]:
        return [by[t] for a in sorted(nodes) for b, by in self.adj.get(a, {}).items()
                if b in nodes and t in by]

    def sccs(self, nodes: Iterable[int], types: Collection[str]) -> list[set[int]]:
        """Tarjan's algorithm, iterative; only components of size > 1."""
        nodes = list(nodes)
        allowed = set(nodes)
        index: dict[int, int] = {}
        low: dict[int, int] = {}
        on_stack: set[int] = set()
        stack: list[int] = []
        out: list[set[int]] = []
        counter = 0
        for root in nodes:
            if root in index:
                continue
            work = [(root, iter(list(self.succ(root, types, allowed))))]
            index[root] = low[root] = counter
            counter += 1
            stack.append(root)
            on_stack.add(root)
            while work:
                v, it = work[-1]
                advanced = False
                for w in it:
                    if w not in index:
                        index[w] = low[w] = counter
                        counter += 1
                        stack.append(w)
                        on_stack.add(w)
                        work.append((w, iter(list(self.succ(w, types, allowed)))))
                        advanced = True
                        break
                    if w in on_stack:
                        low[v] = min(low[v], index[w])
                if advanced:
                    continue
                work.pop()
                if work:
                    u = work[-1][0]
                    low[u] = min(low[u], low[v])
                if low[v] == index[v]:
                    comp = set()
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.add(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(comp)
        return out

    def path(self, src: int, dst: int, types: Collection[str], within: set[int]) -> list[int] | None:
        """Shortest path src ~> dst (BFS) over `types`, inside `within`."""
        if src == dst:
            return [src]
        parent = {src: src}
        q = deque([src])
        while q:
            n = q.popleft()
            for m in self.succ(n, types, within):
                if m in parent:
                    continue
                parent[m] = n
                if m == dst:
                    out = [m]
                    while out[-1] != src:
                        out.append(parent[out[-1]])
                    return out[::-1]
                q.append(m)
        return None


def check(
    history: History | Sequence[Op],
    *,
    realtime: bool = False,
    edge_types: Collection[str] = ("ww", "wr", "rw"),
    search_budget: int = 500,
) -> Result:
    """Check a list-append history for serializability (and, with
    `realtime=True`, strict serializability). `edge_types` exists for the
    checker's own mutation tests; leave it alone."""
    txns = txns_of(history)
    res = Result("elle", counts=count_statuses_txns(txns))
    by_id = {t.id: t for t in txns}

    # Who appended what.
    writer: dict[tuple[Any, Any], int] = {}
    appends: dict[int, dict[Any, list[Any]]] = {}
    for t in txns:
        for f, k, v in t.mops:
            if f != "append":
                continue
            if (k, v) in writer:
                raise ValueError(f"value {v!r} appended to key {k!r} twice (T{writer[(k, v)]}, "
                                 f"T{t.id}): list-append workloads must append unique values")
            writer[(k, v)] = t.id
            appends.setdefault(t.id, {}).setdefault(k, []).append(v)

    _internal(txns, res)

    # Reads by committed txns: (reader, key, list, external prefix).
    reads: list[tuple[int, Any, tuple[Any, ...], tuple[Any, ...]]] = []
    for t in txns:
        if t.status != "ok":
            continue
        for f, k, v in t.mops:
            if f != "r" or v is None:
                continue
            own = set(appends.get(t.id, {}).get(k, ()))
            ext = v
            while ext and ext[-1] in own:
                ext = ext[:-1]
            reads.append((t.id, k, v, ext))

    # Per-read anomalies: duplicates, garbage, aborted and intermediate reads.
    for rid, k, v, ext in reads:
        if len(set(v)) != len(v):
            dups = sorted({x for x in v if v.count(x) > 1}, key=repr)
            res.add("duplicate-elements",
                    f"T{rid} read {k!r} = {_fmt_list(v)}: {dups!r} appear more than once",
                    (rid, k, v))
        garbage = [x for x in v if (k, x) not in writer]
        if garbage:
            res.add("garbage-read",
                    f"T{rid} read {k!r} = {_fmt_list(v)}: nobody appended {garbage!r}",
                    (rid, k, v))
        for x in v:
            w = writer.get((k, x))
            if w is not None and w != rid and by_id[w].status == "fail":
                res.add("G1a", f"T{rid} read {k!r} = {_fmt_list(v)}, which includes {x!r} "
                        f"appended by failed T{w}\n  {by_id[w]}", (rid, w, k, x))
        if ext:
            w = writer.get((k, ext[-1]))
            if w is not None and w != rid and by_id[w].status != "fail":
                mine = appends[w][k]
                if mine[-1] != ext[-1]:
                    res.add("G1b", f"T{rid} read {k!r} = {_fmt_list(v)}, ending at {ext[-1]!r}, an "
                            f"intermediate append of T{w} (its final append to {k!r} is "
                            f"{mine[-1]!r})\n  {by_id[w]}", (rid, w, k, ext[-1]))

    # Version orders: every read of a key must be a prefix of the longest.
    by_key: dict[Any, list[tuple[int, tuple[Any, ...], tuple[Any, ...]]]] = {}
    for rid, k, v, ext in reads:
        if len(set(v)) == len(v):
            by_key.setdefault(k, []).append((rid, v, ext))
    order: dict[Any, tuple[Any, ...]] = {}
    for k, rs in by_key.items():
        longest = max(rs, key=lambda r: len(r[1]))
        bad = [r for r in rs if r[1] != longest[1][: len(r[1])]]
        if bad:
            rid, v, _ = bad[0]
            res.add("incompatible-order",
                    f"key {k!r}: T{rid} read {_fmt_list(v)} but T{longest[0]} read "
                    f"{_fmt_list(longest[1])}; neither is a prefix of the other "
                    f"({len(bad)} read(s) disagree with the longest)", (k, v, longest[1]))
            continue
        order[k] = longest[1]

    g = _Graph()
    nodes = {t.id for t in txns if t.status != "fail"}

    def node_writer(k: Any, x: Any) -> int | None:
        w = writer.get((k, x))
        return w if w in nodes else None

    types = set(edge_types)
    for k, vo in order.items():
        if "ww" in types:
            prev: tuple[int, Any] | None = None
            for x in vo:
                w = node_writer(k, x)
                if w is None:
                    continue
                if prev is not None and prev[0] != w:
                    g.add(Edge(prev[0], w, "ww", k,
                               f"T{prev[0]} appended {prev[1]!r} to {k!r} before T{w} appended {x!r}"))
                prev = (w, x)
        for rid, v, ext in by_key[k]:
            if ext and "wr" in types:
                w = node_writer(k, ext[-1])
                if w is not None:
                    g.add(Edge(w, rid, "wr", k, f"T{rid} read {k!r} = {_fmt_list(v)}, which ends "
                               f"with T{w}'s append of {ext[-1]!r}"))
            if "rw" in types:
                # The writer of the next version. If that is the writer of the
                # version read, the read was intermediate: G1b, reported above.
                last = writer.get((k, ext[-1])) if ext else None
                for x in vo[len(ext):]:
                    w = node_writer(k, x)
                    if w is None:
                        continue
                    if w != rid and w != last:
                        seen = f"{_fmt_list(ext)}" if ext else "[] (nothing)"
                        g.add(Edge(rid, w, "rw", k, f"T{rid} read {k!r} = {seen} and did not "
                                   f"see T{w}'s append of {x!r}, the next version"))
                    break
    if realtime:
        _realtime_edges(txns, g)

    _find_cycles(g, nodes, by_id, res, realtime, search_budget)
    return res


def count_statuses_txns(txns: Sequence[Txn]) -> dict[str, int]:
    counts = {"ok": 0, "fail": 0, "info": 0}
    for t in txns:
        counts[t.status] += 1
    return counts


def _internal(txns: Sequence[Txn], res: Result) -> None:
    """Within one committed txn, reads must agree with its earlier reads and
    end with its own earlier appends."""
    for t in txns:
        if t.status != "ok":
            continue
        known: dict[Any, tuple[Any, ...]] = {}
        own: dict[Any, list[Any]] = {}
        for f, k, v in t.mops:
            if f == "append":
                if k in known:
                    known[k] = (*known[k], v)
                else:
                    own.setdefault(k, []).append(v)
                continue
            if v is None:
                continue
            if k in known:
                expect = known[k]
                if v != expect:
                    res.add("internal", f"T{t.id} read {k!r} = {_fmt_list(v)} but its own earlier "
                            f"reads and appends imply {_fmt_list(expect)}\n  {t}", (t.id, k))
            elif own.get(k):
                tail = tuple(own[k])
                if v[-len(tail):] != tail:
                    res.add("internal", f"T{t.id} read {k!r} = {_fmt_list(v)}, which does not end "
                            f"with its own appends {list(tail)!r}\n  {t}", (t.id, k))
            known[k] = v


def _realtime_edges(txns: Sequence[Txn], g: _Graph) -> None:
    events: list[tuple[float, int, int]] = []  # (time, 0 = complete / 1 = invoke, txn)
    for t in txns:
        if t.status == "fail":
            continue
        events.append((t.call, 1, t.id))
        if t.status == "ok":
            events.append((t.ret, 0, t.id))
    events.sort()
    frontier: set[int] = set()
    preds: dict[int, list[int]] = {}
    for _, kind, tid in events:
        if kind == 1:
            preds[tid] = sorted(frontier)
            for p in preds[tid]:
                g.add(Edge(p, tid, "rt", None, f"T{p} completed before T{tid} was invoked"))
        else:
            frontier.difference_update(preds.get(tid, ()))
            frontier.add(tid)


def _find_cycles(g: _Graph, nodes: set[int], by_id: dict[int, Txn], res: Result,
                 realtime: bool, budget: int) -> None:
    base = ("ww", "wr", "rw")
    all_types = (*base, "rt") if realtime else base
    for comp in g.sccs(sorted(nodes), all_types):
        found = False
        for sub in g.sccs(sorted(comp), ("ww",)):
            found |= _report_from(g, sub, next(iter(sorted(sub))), ("ww",), "G0", by_id, res)
        for sub in g.sccs(sorted(comp), ("ww", "wr")):
            for e in g.edges_of_type(sub, "wr")[:budget]:
                p = g.path(e.dst, e.src, ("ww", "wr"), sub)
                if p is not None:
                    _report(g, [e.src, *p], e, ("ww", "wr"), "G1c", by_id, res)
                    found = True
                    break
        single = False
        no_single: list[Edge] = []
        for e in g.edges_of_type(comp, "rw")[:budget]:
            p = g.path(e.dst, e.src, ("ww", "wr"), comp)
            if p is not None:
                _report(g, [e.src, *p], e, ("ww", "wr"), "G-single", by_id, res)
                single = found = True
                break
            no_single.append(e)
        for e in [] if single else no_single:
            p = g.path(e.dst, e.src, base, comp)
            if p is not None:
                _report(g, [e.src, *p], e, base, "G2", by_id, res)
                found = True
                break
        if found or not realtime:
            continue
        for e in g.edges_of_type(comp, "rt")[:budget]:
            p = g.path(e.dst, e.src, all_types, comp)
            if p is not None:
                _report(g, [e.src, *p], e, all_types, None, by_id, res)
                break


def _report_from(g: _Graph, comp: set[int], start: int, types: Collection[str], name: str,
                 by_id: dict[int, Txn], res: Result) -> bool:
    for nxt in g.succ(start, types, comp):
        p = g.path(nxt, start, types, comp)
        if p is not None:
            _report(g, [start, *p], g.edge(start, nxt, types), types, name, by_id, res)
            return True
    return False


def _report(g: _Graph, walk: list[int], first: Edge, types: Collection[str], name: str | None,
            by_id: dict[int, Txn], res: Result) -> None:
    """`walk` is [a, b, ..., a] where a -> b is `first`."""
    edges = [first] + [g.edge(a, b, types) for a, b in zip(walk[1:-1], walk[2:], strict=True)]
    if name is None:  # a cycle that needs real time: classify by its other edges
        rw = sum(e.type == "rw" for e in edges)
        if rw == 0:
            base = "G0" if all(e.type in ("ww", "rt") for e in edges) else "G1c"
        else:
            base = "G-single" if rw == 1 else "G2"
        name = f"{base}-realtime"
    txns = tuple(walk[:-1])
    lines = [f"{name}: a cycle of {len(edges)} transactions: "
             + " ".join(f"T{a} -{e.type}->" for a, e in zip(walk, edges, strict=False))
             + f" T{walk[-1]}", "  Let:"]
    lines += [f"    {by_id[t]}" for t in txns]
    lines.append("  Then:")
    lines += [f"    T{e.src} < T{e.dst} ({e.type}): {e.why}" for e in edges]
    res.add(name, "\n".join(lines), Cycle(name, txns, tuple(edges)))
