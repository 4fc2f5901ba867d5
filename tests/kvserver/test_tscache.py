from __future__ import annotations

import doctest
import random
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crdb_py.kvserver import tscache
from crdb_py.kvserver.tscache import TimestampCache
from crdb_py.util.errors import InvalidArgumentError
from crdb_py.util.hlc import Timestamp

T = Timestamp
LW = T(10)


def test_doctests():
    assert doctest.testmod(tscache).failed == 0


def test_empty_cache_answers_the_low_water_mark():
    c = TimestampCache(LW)
    assert c.get_max(b"k") == (LW, None)
    assert c.get_max(b"a", b"z") == (LW, None)
    assert len(c) == 0


def test_point_read_pushes_only_that_key():
    c = TimestampCache(LW)
    c.add(b"k", None, T(20), b"t1")
    assert c.get_max(b"k") == (T(20), b"t1")
    assert c.get_max(b"k\x00") == (LW, None)
    assert c.get_max(b"j") == (LW, None)
    assert c.get_max(b"j", b"k") == (LW, None)  # end exclusive
    assert c.get_max(b"j", b"k\x00") == (T(20), b"t1")
    c.add(b"m", b"", T(21), b"t2")  # empty end = point too
    assert c.get_max(b"m") == (T(21), b"t2") and c.get_max(b"m\x00") == (LW, None)


def test_overlapping_spans_keep_the_max_per_key():
    c = TimestampCache(LW)
    c.add(b"a", b"m", T(20), b"t1")
    c.add(b"f", b"z", T(30), b"t2")
    c.add(b"c", b"d", T(15), b"t3")  # below what is there: no effect
    assert c.get_max(b"a") == (T(20), b"t1")
    assert c.get_max(b"c") == (T(20), b"t1")
    assert c.get_max(b"e", b"f") == (T(20), b"t1")
    assert c.get_max(b"f") == (T(30), b"t2")
    assert c.get_max(b"a", b"g") == (T(30), b"t2")
    assert c.get_max(b"y") == (T(30), b"t2")
    assert c.get_max(b"z") == (LW, None)
    c.add(b"b", None, T(40), b"t4")
    assert c.get_max(b"a", b"c") == (T(40), b"t4")
    assert c.get_max(b"a") == (T(20), b"t1")


def test_ties_between_different_readers_have_no_owner():
    c = TimestampCache(LW)
    c.add(b"a", b"c", T(20), b"t1")
    c.add(b"b", None, T(20), b"t2")
    assert c.get_max(b"a") == (T(20), b"t1")
    assert c.get_max(b"b") == (T(20), None)
    assert c.get_max(b"a", b"c") == (T(20), None)
    c.add(b"a", None, T(20), b"t1")  # same owner again: still t1
    assert c.get_max(b"a") == (T(20), b"t1")
    c.add(b"a", None, T(20), None)  # non-transactional read at the same ts
    assert c.get_max(b"a") == (T(20), None)


def test_tie_across_separate_segments_of_a_query_has_no_owner():
    c = TimestampCache(LW)
    c.add(b"a", None, T(20), b"t1")
    c.add(b"c", None, T(20), b"t2")
    assert c.get_max(b"a", b"b") == (T(20), b"t1")
    assert c.get_max(b"a", b"d") == (T(20), None)


def test_low_water_moves_forward_only_and_drops_dominated_entries():
    c = TimestampCache(LW)
    c.add(b"a", None, T(20), b"t1")
    c.add(b"b", None, T(40), b"t2")
    c.set_low_water(T(5))  # backwards: ignored
    assert c.low_water == LW and c.get_max(b"x") == (LW, None)
    c.set_low_water(T(20))
    assert c.low_water == T(20)
    assert c.get_max(b"a") == (T(20), None)  # tie with the low-water mark: no owner
    assert c.get_max(b"b") == (T(40), b"t2")
    assert c.get_max(b"x") == (T(20), None)
    assert len(c) == 2  # only b's segment is left: [b, b\x00)
    c.add(b"q", None, T(19), b"t3")  # below the low-water mark: nothing to record
    assert len(c) == 2 and c.get_max(b"q") == (T(20), None)


def test_clear_never_moves_answers_down():
    c = TimestampCache(LW)
    c.add(b"a", None, T(50), b"t1")
    c.clear(T(30))
    assert len(c) == 0
    assert c.low_water == T(50)  # not 30: a write to `a` at 40 would slip under the read
    c.clear(T(60))
    assert c.get_max(b"a") == (T(60), None)


def test_repeated_reads_do_not_grow_the_cache():
    c = TimestampCache(LW)
    for i in range(200):
        c.add(b"a", b"m", T(20 + i), b"t1")
        c.add(b"k", None, T(20 + i), b"t1")
    assert len(c) <= 4
    c2 = TimestampCache(LW)
    for i in range(50):
        c2.add(bytes([97 + i % 5]), None, T(30), b"t1")
    assert len(c2) == 10  # five disjoint points: a start and end boundary each


@pytest.mark.parametrize("start, end", [(b"b", b"a"), (b"b", b"b")])
def test_invalid_spans_are_rejected(start, end):
    c = TimestampCache(LW)
    with pytest.raises(InvalidArgumentError):
        c.add(start, end, T(20), None)
    with pytest.raises(InvalidArgumentError):
        c.get_max(start, end)


def test_eviction_bounds_memory_and_ratchets_the_low_water_mark():
    budget = 40 * (tscache.ENTRY_OVERHEAD_BYTES + 8)
    c = TimestampCache(LW, max_bytes=budget)
    rng = random.Random(7)
    added: list[tuple[bytes, Timestamp]] = []
    for i in range(2000):
        key = rng.getrandbits(48).to_bytes(6, "big")
        ts = T(100 + i // 3, rng.randint(0, 3))
        c.add(key, None, ts, b"t%d" % (i % 4))
        added.append((key, ts))
        assert c.approx_bytes <= budget
    assert c.evictions > 0 and c.low_water > LW
    for key, ts in added:
        assert c.get_max(key)[0] >= ts  # never below any recorded read
    assert len(c) <= 40


# ---- model-based property test -------------------------------------------------


@dataclass
class _Model:
    """Brute force: every add ever made, plus the explicitly set low-water mark."""

    low_water: Timestamp
    adds: list[tuple[bytes, bytes, Timestamp, bytes | None]] = field(default_factory=list)

    def get_max(self, start: bytes, end: bytes | None) -> tuple[Timestamp, bytes | None]:
        e = end or start + b"\x00"
        best_ts, owners = self.low_water, {None}
        for a, b, ts, txn in self.adds:
            if a < e and start < b:
                if ts > best_ts:
                    best_ts, owners = ts, {txn}
                elif ts == best_ts:
                    owners.add(txn)
        return best_ts, (next(iter(owners)) if len(owners) == 1 else None)


_KEYS = [b"", b"a", b"a\x00", b"b", b"bb", b"c", b"d", b"e"]
_key = st.sampled_from(_KEYS)
_span = st.tuples(_key, st.one_of(st.none(), _key)).map(
    lambda t: (t[0], None) if t[1] is None or t[1] <= t[0] else t
)
_ts = st.builds(T, st.integers(1, 6), st.integers(0, 2))
_txn = st.sampled_from([None, b"t1", b"t2", b"t3"])
_op = st.one_of(
    st.tuples(st.just("add"), _span, _ts, _txn),
    st.tuples(st.just("get"), _span),
    st.tuples(st.just("low"), _ts),
)


def canonical_form_violations(c: TimestampCache) -> list[str]:
    """The boundary map must stay minimal: no boundary repeating its
    predecessor's value, none at or below the low-water mark, and the byte
    accounting must match."""
    bad = []
    prev = None
    size = 0
    for k, v in c._bounds.items():
        size += len(k) + tscache.ENTRY_OVERHEAD_BYTES
        if v == prev:
            bad.append(f"redundant boundary {k!r} -> {v}")
        if v is not None and v[0] <= c.low_water:
            bad.append(f"boundary {k!r} -> {v} at or below the low-water mark")
        prev = v
    if prev is not None:
        bad.append("the last segment must be open (None)")
    if size != c.approx_bytes:
        bad.append(f"byte accounting {c.approx_bytes} != {size}")
    return bad


def check_against_model(ops: list[tuple], max_bytes: int) -> list[str]:
    """Run `ops` on a cache and on the model; return every property violation."""
    c = TimestampCache(T(1), max_bytes=max_bytes)
    model = _Model(T(1))
    last: dict[tuple[bytes, bytes | None], Timestamp] = {}
    bad: list[str] = []

    def probe(start: bytes, end: bytes | None) -> None:
        got, want = c.get_max(start, end), model.get_max(start, end)
        if got[0] < want[0]:
            bad.append(f"get_max{start, end} = {got} below the model's {want}")
        if c.evictions == 0 and got != want:
            bad.append(f"get_max{start, end} = {got} != model {want} without eviction")
        if got[0] < last.get((start, end), T(0)):
            bad.append(f"get_max{start, end} went back from {last[(start, end)]} to {got[0]}")
        last[(start, end)] = got[0]

    for op in ops:
        if op[0] == "add":
            (start, end), ts, txn = op[1], op[2], op[3]
            c.add(start, end, ts, txn)
            model.adds.append((start, end or start + b"\x00", ts, txn))
        elif op[0] == "low":
            c.set_low_water(op[1])
            model.low_water = model.low_water.forward(op[1])
        else:
            probe(*op[1])
        for probe_span in last:  # every span asked before: monotonic
            probe(*probe_span)
        bad.extend(canonical_form_violations(c))
    for k in _KEYS:
        probe(k, None)
    probe(b"", b"\xff")
    return bad


@settings(max_examples=300, deadline=None)
@given(st.lists(_op, max_size=40))
def test_model_without_eviction_is_exact(ops):
    assert check_against_model(ops, max_bytes=1 << 30) == []


@settings(max_examples=300, deadline=None)
@given(st.lists(_op, max_size=40), st.integers(1, 8))
def test_model_with_eviction_never_below_and_monotonic(ops, entries):
    assert check_against_model(ops, max_bytes=entries * (tscache.ENTRY_OVERHEAD_BYTES + 2)) == []


_EVICTING_OPS = [
    ("add", (b"a", None), T(3), b"t1"),
    ("get", (b"a", None)),
    ("add", (b"c", b"e"), T(5), b"t2"),
    ("add", (b"d", None), T(2), b"t3"),
    ("add", (b"b", None), T(4), b"t1"),
    ("get", (b"a", b"e")),
]


def test_model_check_catches_eviction_without_ratcheting(monkeypatch):
    """Broken variant: evicting by dropping the oldest entries without raising
    the low-water mark loses reads; the model check must notice."""

    def evict_and_forget(self):
        while self._bytes > self._max_bytes and self._bounds:
            self.evictions += 1
            key = self._bounds.keys()[0]
            self._del(key)

    assert check_against_model(_EVICTING_OPS, max_bytes=3 * tscache.ENTRY_OVERHEAD_BYTES) == []
    monkeypatch.setattr(TimestampCache, "_evict", evict_and_forget)
    bad = check_against_model(_EVICTING_OPS, max_bytes=3 * tscache.ENTRY_OVERHEAD_BYTES)
    assert any("below the model" in b for b in bad)


def test_model_check_catches_a_wrong_tie_rule(monkeypatch):
    """Broken variant: letting the later reader own a tie would stop pushing
    the other txn's writes; the exact check must notice."""

    def last_wins(cur, ts, txn_id):
        return (ts, txn_id) if cur is None or cur[0] <= ts else cur

    ops = [("add", (b"a", None), T(3), b"t1"), ("add", (b"a", None), T(3), b"t2"), ("get", (b"a", None))]
    assert check_against_model(ops, max_bytes=1 << 30) == []
    monkeypatch.setattr(tscache, "_ratchet", last_wins)
    assert any("!= model" in b for b in check_against_model(ops, max_bytes=1 << 30))


def test_push_write_ts_moves_writes_above_reads_by_others():
    c = TimestampCache(LW)
    c.add(b"k", None, T(20), b"t1")
    assert c.push_write_ts(b"k", None, T(25), b"t2") == T(25)  # above the read
    assert c.push_write_ts(b"k", None, T(20), b"t2") == T(20, 1)  # at the read: pushed
    assert c.push_write_ts(b"k", None, T(15), b"t2") == T(20, 1)
    assert c.push_write_ts(b"k", None, T(15), b"t1") == T(15)  # own read: not pushed
    assert c.push_write_ts(b"k", None, T(15), None) == T(20, 1)  # non-txn write owns nothing
    assert c.push_write_ts(b"j", b"l", T(18), b"t1") == T(18)  # span max owned by t1
    assert c.push_write_ts(b"j", b"l", T(18), b"t3") == T(20, 1)
    assert c.push_write_ts(b"x", None, T(5), b"t1") == LW.next()  # below the low-water mark
    assert c.push_write_ts(b"x", None, LW, b"t1") == LW.next()


def test_canonical_form_check_catches_missing_coalescing(monkeypatch):
    ops = [
        ("add", (b"a", b"c"), T(3), b"t1"),
        ("add", (b"b", b"d"), T(3), b"t1"),
        ("add", (b"d", None), T(3), b"t1"),
    ]
    assert check_against_model(ops, max_bytes=1 << 30) == []
    monkeypatch.setattr(TimestampCache, "_coalesce", lambda self, start, end: None)
    assert any("redundant" in b for b in check_against_model(ops, max_bytes=1 << 30))
