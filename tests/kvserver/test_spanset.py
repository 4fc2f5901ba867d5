from __future__ import annotations

import doctest

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crdb_py.kvserver import spanset
from crdb_py.kvserver.spanset import DeclaredSpan, Span, SpanAccess, SpanSet, make_span
from crdb_py.util.errors import InternalError, InvalidArgumentError
from crdb_py.util.hlc import MIN_TIMESTAMP, Timestamp

R, W = SpanAccess.READ_ONLY, SpanAccess.READ_WRITE
T = Timestamp


def test_doctests():
    assert doctest.testmod(spanset).failed == 0


def test_span_point_and_range_geometry():
    p = Span(b"b")
    assert p.is_point and p.end == b"b\x00"
    r = Span(b"a", b"c")
    assert not r.is_point and r.end == b"c"
    assert p.overlaps(r) and r.overlaps(p)
    assert not Span(b"c").overlaps(r)  # end is exclusive
    assert Span(b"a").overlaps(r)
    assert not Span(b"a", b"b").overlaps(Span(b"b", b"c"))
    assert r.contains(p) and not p.contains(r)
    assert r.contains(Span(b"a", b"c")) and not r.contains(Span(b"a", b"c\x00"))
    assert r.contains_key(b"bzzz") and not r.contains_key(b"c")


@pytest.mark.parametrize("end", [b"a", b"0"])
def test_span_rejects_inverted_or_empty_range(end):
    with pytest.raises(InvalidArgumentError):
        Span(b"a", end)


def test_make_span_normalises_single_key_range_to_point():
    assert make_span(b"k", b"k\x00") == Span(b"k")
    assert make_span(b"k", None) == Span(b"k")
    assert make_span(b"k", b"") == Span(b"k")
    assert make_span(b"k", b"l") == Span(b"k", b"l")


def test_spanset_add_iter_len_and_copy():
    ss = SpanSet()
    ss.add(W, b"k", ts=T(5))
    ss.add(R, b"a", b"c", ts=T(7))
    ss.add_non_mvcc(W, b"\x01ktxn")
    assert len(ss) == 3
    assert [d.access for d in ss] == [R, W, W]  # reads first
    assert ss.spans(R) == [DeclaredSpan(Span(b"a", b"c"), R, T(7))]
    assert [d.is_mvcc for d in ss.spans(W)] == [True, False]
    cp = ss.copy()
    assert cp == ss
    cp.add(R, b"z")
    assert cp != ss and len(ss) == 3
    other = SpanSet()
    other.add(R, b"q")
    ss.merge(other)
    assert len(ss) == 4 and ss.check_allowed(R, b"q")


def test_add_mvcc_requires_timestamp():
    with pytest.raises(InternalError):
        SpanSet().add_mvcc(R, b"k", None, MIN_TIMESTAMP)


# (declared access, declared ts, accessed as, access ts, allowed)
_ALLOWED = [
    # non-MVCC declarations are mutexes: any timestamp goes
    (R, MIN_TIMESTAMP, R, T(100), True),
    (R, MIN_TIMESTAMP, R, MIN_TIMESTAMP, True),
    (R, MIN_TIMESTAMP, W, T(1), False),  # a read declaration never allows writes
    (W, MIN_TIMESTAMP, W, T(1), True),
    (W, MIN_TIMESTAMP, R, MIN_TIMESTAMP, True),
    # MVCC read at D: reads at or below D only, MVCC only
    (R, T(10), R, T(10), True),
    (R, T(10), R, T(9), True),
    (R, T(10), R, T(11), False),
    (R, T(10), R, MIN_TIMESTAMP, False),
    # MVCC write at D: reads at any ts; writes at or above D, MVCC only
    (W, T(10), R, T(50), True),
    (W, T(10), R, MIN_TIMESTAMP, True),
    (W, T(10), W, T(10), True),
    (W, T(10), W, T(11), True),
    (W, T(10), W, T(9), False),
    (W, T(10), W, MIN_TIMESTAMP, False),
]


@pytest.mark.parametrize("decl, decl_ts, acc, acc_ts, allowed", _ALLOWED)
def test_check_allowed_timestamp_rules(decl, decl_ts, acc, acc_ts, allowed):
    ss = SpanSet()
    ss.add(decl, b"a", b"m", ts=decl_ts)
    assert ss.check_allowed(acc, b"c", ts=acc_ts) is allowed
    assert ss.check_allowed(acc, b"c") is (decl is W or acc is R)  # ts=None ignores ts
    if allowed:
        ss.assert_allowed(acc, b"b", b"d", ts=acc_ts)
    else:
        with pytest.raises(InternalError, match="undeclared"):
            ss.assert_allowed(acc, b"b", b"d", ts=acc_ts)


def test_check_allowed_requires_containment_by_one_span():
    ss = SpanSet()
    ss.add(R, b"a", b"c")
    ss.add(R, b"c", b"e")
    assert ss.check_allowed(R, b"a", b"c")
    assert ss.check_allowed(R, b"d")
    assert not ss.check_allowed(R, b"b", b"d")  # straddles two declarations
    assert not ss.check_allowed(R, b"e")
    assert not ss.check_allowed(R, b"0", b"b")


def test_sort_and_dedupe_merges_overlapping_same_ts_spans():
    ss = SpanSet()
    ss.add(R, b"c", b"e", ts=T(1))
    ss.add(R, b"a", b"c", ts=T(1))
    ss.add(R, b"d")  # non-MVCC: different ts, kept apart
    ss.add(R, b"a", b"b", ts=T(1))
    ss.add(W, b"k", ts=T(2))
    ss.add(W, b"k", ts=T(2))
    ss.sort_and_dedupe()
    assert ss.spans(R) == [
        DeclaredSpan(Span(b"a", b"e"), R, T(1)),
        DeclaredSpan(Span(b"d"), R, MIN_TIMESTAMP),
    ]
    assert ss.spans(W) == [DeclaredSpan(Span(b"k"), W, T(2))]


_keys = st.sampled_from([b"a", b"b", b"c", b"d", b"e", b"f"])
_spans = st.tuples(_keys, st.one_of(st.none(), _keys)).map(
    lambda t: (t[0], None) if t[1] is None or t[1] <= t[0] else t
)
_decls = st.lists(
    st.tuples(st.sampled_from([R, W]), _spans, st.integers(0, 3)), min_size=1, max_size=8
)


@settings(max_examples=150, deadline=None)
@given(_decls, st.lists(st.tuples(st.sampled_from([R, W]), _spans, st.integers(0, 4)), max_size=10))
def test_sort_and_dedupe_never_disallows(decls, accesses):
    ss = SpanSet()
    for access, (k, e), ts in decls:
        ss.add(access, k, e, ts=T(ts))
    before = ss.copy()
    ss.sort_and_dedupe()
    assert len(ss) <= len(before)
    for access, (k, e), ts in accesses:
        for at in (T(ts), None):
            if before.check_allowed(access, k, e, ts=at):
                assert ss.check_allowed(access, k, e, ts=at)
            if e is None:  # points are allowed after iff before
                assert ss.check_allowed(access, k, e, ts=at) == before.check_allowed(
                    access, k, e, ts=at
                )
