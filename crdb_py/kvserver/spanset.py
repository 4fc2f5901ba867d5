"""Declared key spans: what a request may touch, how, and at which timestamp.

Every KV command declares, before it is evaluated, the spans of keys it will
read and write (`batcheval` does this per command). The declaration has three
uses:

* the **latch manager** (`spanlatch.py`) acquires one latch per declared span,
  so that requests touching overlapping keys are evaluated one after another;
* evaluation may **assert** that every key it reads or writes was declared
  (`SpanSet.assert_allowed`), which catches a command that forgot to declare a
  key — the bug would otherwise show up as a rare race;
* the declared timestamp makes latching **MVCC-aware**: a read at ts R only
  needs isolation from writes at or below R, so a read and a write at a higher
  timestamp on the same key may evaluate concurrently.

Vocabulary (after CockroachDB's `spanset` package):

    Span          [key, end_key) — or the single key `key` when end_key is empty.
    SpanAccess    READ_ONLY or READ_WRITE. READ_WRITE covers reads too.
    DeclaredSpan  (span, access, ts). ts == MIN_TIMESTAMP means non-MVCC: the
                  span is latched like a plain read/write mutex, regardless of
                  timestamps (used for range-local keys such as the txn record
                  and for commands that are not MVCC operations).

Timestamp rules for `check_allowed` (an access at ts A, a declaration at ts D):

    declared READ_ONLY  at D: reads at A <= D only (MVCC access required)
    declared READ_WRITE at D: reads at any A, non-MVCC reads too;
                              writes at A >= D only (MVCC access required)
    declared at MIN_TIMESTAMP: everything its access kind allows

See `docs/design/concurrency.md`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from crdb_py.util.errors import InternalError, InvalidArgumentError
from crdb_py.util.hlc import MIN_TIMESTAMP, Timestamp


class SpanAccess(enum.IntEnum):
    """How a span is accessed. Ordered: READ_WRITE permits everything READ_ONLY does."""

    READ_ONLY = 0
    READ_WRITE = 1


@dataclass(frozen=True, slots=True, order=True)
class Span:
    """A key span `[key, end_key)`; an empty `end_key` means the single key `key`.

    >>> Span(b"a").overlaps(Span(b"a", b"c"))
    True
    >>> Span(b"c").overlaps(Span(b"a", b"c"))
    False
    """

    key: bytes
    end_key: bytes = b""

    def __post_init__(self) -> None:
        if self.end_key and self.end_key <= self.key:
            raise InvalidArgumentError(
                f"invalid span [{self.key!r}, {self.end_key!r}): the end key must sort "
                f"after the start key (leave it empty for a single key)"
            )

    @property
    def is_point(self) -> bool:
        return not self.end_key

    @property
    def end(self) -> bytes:
        """The exclusive end: `end_key`, or the key right after `key` for a point."""
        return self.end_key or self.key + b"\x00"

    def overlaps(self, other: Span) -> bool:
        return self.key < other.end and other.key < self.end

    def contains(self, other: Span) -> bool:
        return self.key <= other.key and other.end <= self.end

    def contains_key(self, key: bytes) -> bool:
        return self.key <= key < self.end

    def __str__(self) -> str:
        if self.is_point:
            return repr(self.key)
        return f"[{self.key!r}, {self.end_key!r})"


def make_span(key: bytes, end_key: bytes | None = None) -> Span:
    """A Span, normalising `[k, k+0x00)` to the point `k` so both spell the same."""
    if end_key and end_key == key + b"\x00":
        end_key = b""
    return Span(key, end_key or b"")


@dataclass(frozen=True, slots=True)
class DeclaredSpan:
    """One entry of a SpanSet: a span, its access, and the MVCC timestamp it is
    accessed at (MIN_TIMESTAMP = non-MVCC)."""

    span: Span
    access: SpanAccess
    ts: Timestamp = MIN_TIMESTAMP

    @property
    def is_mvcc(self) -> bool:
        return not self.ts.is_empty()

    def __str__(self) -> str:
        kind = "rw" if self.access is SpanAccess.READ_WRITE else "r"
        at = f"@{self.ts}" if self.is_mvcc else " (non-MVCC)"
        return f"{kind} {self.span}{at}"


class SpanSet:
    """The spans a request declares, grouped by access.

    >>> ss = SpanSet()
    >>> ss.add(SpanAccess.READ_WRITE, b"k", ts=Timestamp(10))
    >>> ss.check_allowed(SpanAccess.READ_ONLY, b"k", ts=Timestamp(3))
    True
    >>> ss.check_allowed(SpanAccess.READ_WRITE, b"k", ts=Timestamp(3))
    False
    """

    __slots__ = ("_by_access",)

    def __init__(self, spans: Iterable[DeclaredSpan] = ()) -> None:
        self._by_access: tuple[list[DeclaredSpan], list[DeclaredSpan]] = ([], [])
        for ds in spans:
            self._by_access[ds.access].append(ds)

    # ---- declaring ---------------------------------------------------------

    def add(
        self,
        access: SpanAccess,
        key: bytes,
        end_key: bytes | None = None,
        ts: Timestamp = MIN_TIMESTAMP,
    ) -> None:
        """Declare `[key, end_key)` (or the point `key`) with `access` at `ts`."""
        self._by_access[access].append(DeclaredSpan(make_span(key, end_key), access, ts))

    def add_mvcc(
        self, access: SpanAccess, key: bytes, end_key: bytes | None, ts: Timestamp
    ) -> None:
        """Declare an MVCC access; the timestamp must be set."""
        if ts.is_empty():
            raise InternalError(f"MVCC span {key!r} declared without a timestamp")
        self.add(access, key, end_key, ts)

    def add_non_mvcc(self, access: SpanAccess, key: bytes, end_key: bytes | None = None) -> None:
        self.add(access, key, end_key, MIN_TIMESTAMP)

    def merge(self, other: SpanSet) -> None:
        """Add every span of `other` to this set."""
        for mine, theirs in zip(self._by_access, other._by_access):
            mine.extend(theirs)

    def copy(self) -> SpanSet:
        return SpanSet(self)

    def sort_and_dedupe(self) -> None:
        """Sort each access's spans and merge overlapping or adjacent spans that
        share a timestamp. Shrinks the number of latches; whatever was allowed
        stays allowed (a span across two merged neighbours becomes allowed too,
        which is harmless: the latches then cover it)."""
        for access, spans in enumerate(self._by_access):
            by_ts: dict[Timestamp, list[Span]] = {}
            for ds in spans:
                by_ts.setdefault(ds.ts, []).append(ds.span)
            merged: list[DeclaredSpan] = []
            for ts, group in by_ts.items():
                group.sort()
                cur_key, cur_end = group[0].key, group[0].end
                for sp in group[1:]:
                    if sp.key <= cur_end:
                        cur_end = max(cur_end, sp.end)
                    else:
                        merged.append(DeclaredSpan(make_span(cur_key, cur_end), SpanAccess(access), ts))
                        cur_key, cur_end = sp.key, sp.end
                merged.append(DeclaredSpan(make_span(cur_key, cur_end), SpanAccess(access), ts))
            merged.sort(key=lambda d: (d.span, d.ts))
            spans[:] = merged

    # ---- reading -----------------------------------------------------------

    def spans(self, access: SpanAccess | None = None) -> list[DeclaredSpan]:
        """The declared spans, of one access or (default) of both, reads first."""
        if access is None:
            return [*self._by_access[0], *self._by_access[1]]
        return list(self._by_access[access])

    def __iter__(self) -> Iterator[DeclaredSpan]:
        yield from self._by_access[0]
        yield from self._by_access[1]

    def __len__(self) -> int:
        return len(self._by_access[0]) + len(self._by_access[1])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SpanSet):
            return NotImplemented
        return self._by_access == other._by_access

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return "SpanSet(" + ", ".join(str(ds) for ds in self) + ")"

    # ---- checking accesses against the declaration -------------------------

    def check_allowed(
        self,
        access: SpanAccess,
        key: bytes,
        end_key: bytes | None = None,
        ts: Timestamp | None = None,
    ) -> bool:
        """Whether accessing `[key, end_key)` with `access` is covered by one
        declared span. `ts=None` ignores timestamps; `ts=MIN_TIMESTAMP` is a
        non-MVCC access; otherwise the module docstring's timestamp rules apply.
        """
        target = make_span(key, end_key)
        candidates = self._by_access[SpanAccess.READ_WRITE]
        if access is SpanAccess.READ_ONLY:
            candidates = [*self._by_access[SpanAccess.READ_ONLY], *candidates]
        for ds in candidates:
            if ds.span.contains(target) and (ts is None or _ts_allowed(ds, access, ts)):
                return True
        return False

    def assert_allowed(
        self,
        access: SpanAccess,
        key: bytes,
        end_key: bytes | None = None,
        ts: Timestamp | None = None,
    ) -> None:
        """Raise InternalError when the access was not declared: a command that
        touches an undeclared key is evaluating without isolation."""
        if not self.check_allowed(access, key, end_key, ts):
            what = "write" if access is SpanAccess.READ_WRITE else "read"
            at = "" if ts is None else f" at {ts}"
            raise InternalError(
                f"undeclared {what} of {make_span(key, end_key)}{at}; declared: {self!r}"
            )


def _ts_allowed(decl: DeclaredSpan, access: SpanAccess, ts: Timestamp) -> bool:
    if not decl.is_mvcc:
        return True  # a non-MVCC declaration is a plain mutex over the span
    mvcc_access = not ts.is_empty()
    if decl.access is SpanAccess.READ_ONLY:
        return mvcc_access and ts <= decl.ts
    if access is SpanAccess.READ_ONLY:
        return True  # a write latch at D isolates reads at any timestamp
    return mvcc_access and decl.ts <= ts
