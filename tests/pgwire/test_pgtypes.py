"""Text and binary formats of values (crdb_py/pgwire/pgtypes.py)."""

from __future__ import annotations

import datetime as dt
import struct
import uuid
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crdb_py.pgwire import pgtypes as P


@pytest.mark.parametrize("value,oid,text", [
    (True, P.BOOL, "t"), (False, P.BOOL, "f"), (-5, P.INT8, "-5"), (1.5, P.FLOAT8, "1.5"),
    (float("nan"), P.FLOAT8, "NaN"), (Decimal("1.50"), P.NUMERIC, "1.50"),
    (b"\x01\xab", P.BYTEA, "\\x01ab"), (dt.date(2024, 2, 29), P.DATE, "2024-02-29"),
    (dt.datetime(2024, 1, 2, 3, 4, 5, 6), P.TIMESTAMP, "2024-01-02 03:04:05.000006"),
    (dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC), P.TIMESTAMPTZ, "2024-01-02 03:04:05+00"),
    (uuid.UUID(int=1), P.UUID, "00000000-0000-0000-0000-000000000001"), ("x'y", P.TEXT, "x'y"),
])
def test_text_format_round_trips(value: Any, oid: int, text: str) -> None:
    assert P.encode(value, oid, 0) == text.encode()
    back = P.decode(text.encode(), oid, 0)
    assert back == value or (value != value and back != back)


@pytest.mark.parametrize("value,oid", [
    (True, P.BOOL), (-(2**63), P.INT8), (-7, P.INT4), (3, P.INT2), (2.25, P.FLOAT8),
    (b"\x00z", P.BYTEA), (dt.date(1999, 12, 31), P.DATE), (uuid.UUID(int=99), P.UUID),
    (dt.datetime(1970, 1, 1, 0, 0, 1), P.TIMESTAMP),
    (dt.datetime(2030, 5, 6, 7, 8, 9, 10, tzinfo=dt.UTC), P.TIMESTAMPTZ), ("héllo", P.TEXT),
])
def test_binary_format_round_trips(value: Any, oid: int) -> None:
    assert P.decode(P.encode(value, oid, 1), oid, 1) == value


def test_binary_int8_layout() -> None:
    assert P.encode(258, P.INT8, 1) == struct.pack("!q", 258)


@given(st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(
    lambda d: abs(d.as_tuple().exponent) < 60 and len(d.as_tuple().digits) < 60))
def test_binary_numeric_round_trips(d: Decimal) -> None:
    assert P.decode(P.encode(d, P.NUMERIC, 1), P.NUMERIC, 1) == d


def test_bad_parameter_text_is_22P02() -> None:
    with pytest.raises(Exception) as ei:
        P.decode(b"abc", P.INT8, 0)
    assert getattr(ei.value, "sqlstate", None) == "22P02"
