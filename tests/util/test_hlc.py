from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crdb_py.util.errors import ClockOffsetError
from crdb_py.util.hlc import HLC, ManualClock, Timestamp


def test_now_is_monotonic_when_physical_clock_stalls_or_regresses():
    c = ManualClock(1000)
    h = HLC(c)
    a = h.now()
    b = h.now()
    assert b > a and b == Timestamp(1000, 1)
    c.set(500)  # physical clock jumps backwards
    d = h.now()
    assert d > b and d.wall_time == 1000
    c.set(2000)
    assert h.now() == Timestamp(2000, 0)


def test_update_ratchets_forward_and_never_back():
    c = ManualClock(1_000_000)
    h = HLC(c)
    h.update(Timestamp(1_200_000, 7))
    assert h.now() == Timestamp(1_200_000, 8)
    h.update(Timestamp(5, 0))  # older: ignored
    assert h.now() == Timestamp(1_200_000, 9)


def test_update_rejects_remote_beyond_max_offset_and_keeps_clock():
    c = ManualClock(10**9)
    h = HLC(c, max_offset_nanos=500_000_000)
    before = h.now()
    with pytest.raises(ClockOffsetError, match="maximum offset"):
        h.update(Timestamp(10**9 + 600_000_000, 0))
    assert h.peek() == before
    h.update(Timestamp(10**9 + 400_000_000, 0))  # within offset: accepted
    assert h.now() > Timestamp(10**9 + 400_000_000, 0)


def test_timestamp_helpers():
    t = Timestamp(10, 2)
    assert t.next() == Timestamp(10, 3)
    assert t.prev() == Timestamp(10, 1)
    assert Timestamp(10, 0).prev() < Timestamp(10, 0)
    assert t.forward(Timestamp(11, 0)) == Timestamp(11, 0)
    assert t.backward(Timestamp(11, 0)) == t
    with pytest.raises(ValueError):
        Timestamp(0, 0).prev()


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 10**6), st.integers(0, 5))))
def test_hlc_property_strictly_increasing_and_covers_updates(ops):
    c = ManualClock(10**6)
    h = HLC(c, max_offset_nanos=10**9)
    last = h.now()
    for is_update, delta, logical in ops:
        if is_update:
            remote = Timestamp(c() + delta, logical)
            h.update(remote)
            nxt = h.now()
            assert nxt > remote
        else:
            c.advance(delta - 500_000)  # may go backwards
            nxt = h.now()
        assert nxt > last
        last = nxt
