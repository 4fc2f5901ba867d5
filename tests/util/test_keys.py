from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from crdb_py.util import keys


@given(st.binary(max_size=20))
def test_escape_round_trip(b: bytes) -> None:
    enc = keys.encode_bytes_ascending(b)
    assert keys.decode_bytes_ascending(enc + b"tail") == (b, len(enc))


@given(st.binary(max_size=12), st.binary(max_size=12), st.binary(max_size=6), st.binary(max_size=6))
def test_range_local_keys_sort_by_anchor(a: bytes, b: bytes, sa: bytes, sb: bytes) -> None:
    ka = keys.make_range_local_key(a, sa)
    kb = keys.make_range_local_key(b, sb)
    if a < b:
        assert ka < kb
    lo, hi = keys.range_local_span(min(a, b), max(a, b))
    # anchored in [min, max) <=> in [lo, hi)
    assert (lo <= ka < hi) == (min(a, b) <= a < max(a, b))
    assert keys.addr(ka) == a


def test_record_keys() -> None:
    tid = bytes(range(16))
    k = keys.transaction_key(b"user\x00x", tid)
    assert keys.decode_range_local_key(k) == (b"user\x00x", b"txn-", tid)
    assert keys.addr(k) == b"user\x00x"
    rd = keys.range_descriptor_key(b"\x04a")
    assert keys.decode_range_local_key(rd) == (b"\x04a", b"rdsc", b"")
    assert keys.addr(b"\x04abc") == b"\x04abc"
    assert keys.meta_key(b"\x04z") == b"\x02\x04z"
    assert keys.meta_lookup_start(b"\x04z") == b"\x02\x04z\x00"


def test_raw_layout_exact_bytes() -> None:
    p = b"\x00i" + (7).to_bytes(8, "big")
    assert keys.range_id_prefix(7) == p
    assert keys.raft_log_key(7, 3) == p + b"rftl" + (3).to_bytes(8, "big")
    assert keys.raft_log_prefix(7) == p + b"rftl"
    assert keys.raft_hard_state_key(7) == p + b"rfth"
    assert keys.raft_truncated_state_key(7) == p + b"rftt"
    assert keys.range_applied_state_key(7) == p + b"rask"
    assert keys.range_lease_key(7) == p + b"rll-"
    assert keys.raft_log_key(7, 2) < keys.raft_log_key(7, 256) < keys.range_id_prefix(8)


def test_prefix_end_and_next() -> None:
    assert keys.prefix_end(b"ab") == b"ac"
    assert keys.prefix_end(b"a\xff") == b"b"
    assert keys.prefix_end(b"") == keys.KEY_MAX
    assert keys.prefix_end(b"\xff") == b"\xff"
    assert keys.next_key(b"a") == b"a\x00"


def test_spaces_ordered() -> None:
    assert keys.KEY_MIN < keys.LOCAL_PREFIX < keys.META_PREFIX < keys.META_MAX
    assert keys.META_MAX == keys.SYSTEM_PREFIX < keys.USER_KEY_MIN < keys.KEY_MAX
    assert keys.is_user_key(b"\x04") and not keys.is_user_key(b"\x03\xff")
    try:
        keys.addr(b"\x01z")
    except ValueError:
        pass
    else:
        raise AssertionError("non range-local local key must not be addressable")
