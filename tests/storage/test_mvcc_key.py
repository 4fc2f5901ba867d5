from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from crdb_py.storage.mvcc_key import (
    decode_key,
    encode_key,
    encode_prefix,
    encode_suffix,
    span_bounds,
    split_engine_key,
)
from crdb_py.util.hlc import Timestamp

keys_ = st.binary(max_size=8)
tss = st.builds(Timestamp, st.integers(0, 2**63 - 1), st.integers(0, 2**31 - 1))


@given(keys_, tss)
def test_round_trip(k: bytes, ts: Timestamp) -> None:
    ek = encode_key(k, ts)
    assert ek[0] == 1
    assert decode_key(ek) == (k, ts)


@given(keys_, tss, keys_, tss)
def test_order_preserved(k1: bytes, t1: Timestamp, k2: bytes, t2: Timestamp) -> None:
    """User keys sort bytewise; for one key: metadata first, then newest first."""
    e1, e2 = encode_key(k1, t1), encode_key(k2, t2)
    if k1 != k2:
        assert (e1 < e2) == (k1 < k2)
    elif t1 != t2:
        if t1.is_empty():
            assert e1 < e2
        elif t2.is_empty():
            assert e2 < e1
        else:
            assert (e1 < e2) == (t2 < t1)
    else:
        assert e1 == e2


@given(keys_, tss, keys_, keys_)
def test_span_bounds_contain_exactly_the_span(k: bytes, ts: Timestamp, a: bytes, b: bytes) -> None:
    lo, hi = span_bounds(a, b)
    assert (lo <= encode_key(k, ts) < hi) == (a <= k < b)
    assert (lo <= encode_prefix(k) < hi) == (a <= k < b)


@given(tss, tss)
def test_suffix_compare_is_reverse_timestamp_order(a: Timestamp, b: Timestamp) -> None:
    assert (encode_suffix(a) >= encode_suffix(b)) == (a <= b)


def test_layout_is_as_drawn() -> None:
    ts = Timestamp(5, 7)
    assert encode_key(b"a\x00b", Timestamp()) == b"\x01a\x00\xffb\x00\x01"
    assert encode_key(b"a", ts) == (
        b"\x01a\x00\x01" + (2**64 - 1 - 5).to_bytes(8, "big") + (2**32 - 1 - 7).to_bytes(4, "big")
    )
    assert split_engine_key(encode_key(b"a\x00", ts)) == (b"a\x00", encode_suffix(ts))
