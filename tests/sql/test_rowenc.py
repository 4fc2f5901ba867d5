"""Key encoding is order-preserving and round-trips, for every type."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from crdb_py.sql import rowenc
from crdb_py.sql import types as T
from crdb_py.sql.expr import sort_key_cmp

STRATS = {
    T.T_INT: st.integers(-(2**63), 2**63 - 1),
    T.T_FLOAT: st.floats(allow_nan=False),
    T.T_DECIMAL: st.decimals(allow_nan=False, allow_infinity=False, places=None,
                             min_value=Decimal("-1e30"), max_value=Decimal("1e30")),
    T.T_STRING: st.text(),
    T.T_BYTES: st.binary(),
    T.T_BOOL: st.booleans(),
    T.T_DATE: st.dates(),
    T.T_TIMESTAMP: st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30)),
    T.T_UUID: st.uuids(),
}


def _check_pair(t: T.SQLType, a: object, b: object) -> None:
    ka, kb = rowenc.encode_key_datum(a, t), rowenc.encode_key_datum(b, t)
    want = sort_key_cmp(a, b)
    got = (ka > kb) - (ka < kb)
    if t == T.T_FLOAT and a == b:  # -0.0 == 0.0 but encode differently; order is still total
        return
    assert got == want, (t, a, b, ka, kb)
    for v, k in ((a, ka), (b, kb)):
        dec, n = rowenc.decode_key_datum(k + b"\xffjunk", 0, t)
        assert n == len(k)
        assert dec == v


def _test_type(t: T.SQLType) -> None:
    @settings(max_examples=60, deadline=None)
    @given(a=st.none() | STRATS[t], b=st.none() | STRATS[t])
    def check(a: object, b: object) -> None:
        _check_pair(t, a, b)
    check()


def test_int() -> None:
    _test_type(T.T_INT)


def test_float() -> None:
    _test_type(T.T_FLOAT)


def test_decimal() -> None:
    _test_type(T.T_DECIMAL)


def test_string_bytes_bool() -> None:
    for t in (T.T_STRING, T.T_BYTES, T.T_BOOL):
        _test_type(t)


def test_time_and_uuid() -> None:
    for t in (T.T_DATE, T.T_TIMESTAMP, T.T_UUID):
        _test_type(t)


def test_decimal_equal_values_encode_equal() -> None:
    # 1.0 and 1.00 are the same key (normalised), so a PK cannot hold both
    e = [rowenc.encode_key_datum(Decimal(s), T.T_DECIMAL) for s in ("1", "1.0", "1.00")]
    assert len(set(e)) == 1


@given(st.lists(st.tuples(st.integers(-5, 5) | st.none(), st.text(max_size=3)), min_size=2))
@settings(max_examples=60, deadline=None)
def test_composite_keys_sort_like_tuples(rows: list[tuple[int | None, str]]) -> None:
    types = [T.T_INT, T.T_STRING]
    keys = sorted((rowenc.encode_key(b"\x04p", list(r), types), r) for r in rows)
    decoded = [tuple(rowenc.decode_key(k, 2, types)) for k, _ in keys]
    assert decoded == [r for _, r in keys]
    expect = sorted(rows, key=lambda r: ((r[0] is not None, r[0] or 0), r[1].encode()))
    assert decoded == expect


def test_row_value_roundtrip() -> None:
    vals = [Decimal("1.5"), dt.date(2020, 1, 2), dt.datetime(2020, 1, 2, 3, 4, 5, 6),
            uuid.UUID(int=5), b"\x00", "s", 3, 1.5, True]
    tys = [T.T_DECIMAL, T.T_DATE, T.T_TIMESTAMP, T.T_UUID, T.T_BYTES, T.T_STRING, T.T_INT,
           T.T_FLOAT, T.T_BOOL]
    packed = rowenc.pack([rowenc.to_wire(v) for v in vals])
    assert [rowenc.from_wire(w, t) for w, t in zip(rowenc.unpack(packed), tys)] == vals
