"""Unit tests of the value functions in crdb_py/sql/builtins.py and the
INTERVAL value type (crdb_py/sql/types.py); SQL-level behaviour is in the
logic files builtins.txt / windows.txt."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crdb_py.sql import builtins as B
from crdb_py.sql import types as T
from crdb_py.sql.errors import SQLError

intervals = st.builds(T.Interval, st.integers(-300, 300), st.integers(-1000, 1000),
                      st.integers(-10**12, 10**12))
timestamps = st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1))


@given(intervals)
def test_interval_text_round_trips(iv: T.Interval) -> None:
    back = T.parse_interval(str(iv))
    assert (back.months, back.days, back.micros) == (iv.months, iv.days, iv.micros), str(iv)


@pytest.mark.parametrize("text, want", [
    ("1 day", (0, 1, 0)), ("2 hours 30 minutes", (0, 0, 9_000_000_000)),
    ("1 year 2 mons", (14, 0, 0)), ("1.5 days", (0, 1, 43_200_000_000)),
    ("-1 day +02:00:00", (0, -1, 7_200_000_000)), ("3 weeks", (0, 21, 0)),
    ("10", (0, 0, 10_000_000)), ("0.5 months", (0, 15, 0)),
])
def test_parse_interval(text: str, want: tuple[int, int, int]) -> None:
    iv = T.parse_interval(text)
    assert (iv.months, iv.days, iv.micros) == want


@pytest.mark.parametrize("text", ["", "day", "1 fortnight", "one day", "1 day garbage"])
def test_parse_interval_rejects(text: str) -> None:
    with pytest.raises(SQLError) as ei:
        T.parse_interval(text)
    assert ei.value.sqlstate == "22P02"


def test_interval_order_uses_30_day_months() -> None:
    assert T.parse_interval("1 mon") == T.parse_interval("30 days")
    assert T.parse_interval("1 day") < T.parse_interval("25 hours")
    assert hash(T.parse_interval("1 day")) == hash(T.parse_interval("24 hours"))


@given(timestamps, intervals)
def test_plus_then_minus_an_interval_without_months(ts: dt.datetime, iv: T.Interval) -> None:
    iv = T.Interval(0, iv.days, iv.micros)  # month arithmetic clamps days: not invertible
    assert B.temporal(B.temporal(ts, iv, "+"), iv, "-") == ts


def test_month_arithmetic_clamps_to_month_end() -> None:
    ts = dt.datetime(2024, 1, 31, 12)
    assert B.temporal(ts, T.Interval(1), "+") == dt.datetime(2024, 2, 29, 12)
    assert B.temporal(ts, T.Interval(13), "+") == dt.datetime(2025, 2, 28, 12)
    assert B.temporal(dt.date(2024, 3, 31), T.Interval(-1), "+") == dt.datetime(2024, 2, 29)


@given(timestamps, timestamps)
def test_timestamp_difference_adds_back(a: dt.datetime, b: dt.datetime) -> None:
    d = B.temporal(a, b, "-")
    assert isinstance(d, T.Interval) and d.months == 0
    assert B.temporal(b, d, "+") == a


@given(timestamps, st.sampled_from(["second", "minute", "hour", "day", "week", "month",
                                    "quarter", "year", "decade", "century"]))
def test_date_trunc_is_idempotent_and_not_later(ts: dt.datetime, unit: str) -> None:
    t = B.date_trunc(unit, ts)
    assert t <= ts
    assert B.date_trunc(unit, t) == t


@given(timestamps)
def test_extract_agrees_with_datetime(ts: dt.datetime) -> None:
    assert B.extract("year", ts) == ts.year
    assert B.extract("month", ts) == ts.month
    assert B.extract("dow", ts) == ts.isoweekday() % 7
    assert B.extract("doy", ts) == ts.timetuple().tm_yday
    assert B.extract("epoch", ts) == pytest.approx(ts.replace(tzinfo=dt.UTC).timestamp())


@given(st.text(max_size=8), st.integers(-10, 10))
def test_left_right_partition_the_string(s: str, n: int) -> None:
    if n >= 0:
        assert B.left(s, n) + B.right(s, max(len(s) - n, 0)) == s or n > len(s)
    else:
        assert B.left(s, n) == s[:max(len(s) + n, 0)]
        assert B.right(s, n) == s[min(-n, len(s)):]


@given(st.text(max_size=6), st.integers(0, 12), st.text(min_size=1, max_size=3))
def test_pad_length(s: str, n: int, fill: str) -> None:
    for left in (True, False):
        out = B.pad(s, n, fill, is_left=left)
        assert len(out) == n
        if n >= len(s):
            assert (out.endswith(s) if left else out.startswith(s))


def test_power_keeps_ints_and_checks_range() -> None:
    assert B.power(2, 10) == 1024 and isinstance(B.power(2, 10), int)
    assert B.power(Decimal("1.5"), 2) == Decimal("2.25")
    for args, code in [((2, 63), "22003"), ((2, -1), "22003"), ((Decimal(0), -1), "2201F"),
                       ((-8.0, 0.5), "2201F")]:
        with pytest.raises(SQLError) as ei:
            B.power(*args)
        assert ei.value.sqlstate == code, args


def test_signatures_are_checked() -> None:
    with pytest.raises(SQLError) as ei:
        B.BY_NAME["left"].call([1, 2])
    assert ei.value.sqlstate == "42883" and "left(int8, int8)" in str(ei.value)
    assert B.BY_NAME["left"].call([None, 2]) is None
    with pytest.raises(SQLError) as ei:
        B.BY_NAME["lpad"].check(4)
    assert ei.value.sqlstate == "42883"


@pytest.mark.parametrize("fmt", ["%Y-%m-%d %H:%M:%S", "%d/%m/%Y"])
def test_to_char_supported(fmt: str) -> None:
    ts = dt.datetime(2024, 3, 5, 14, 7, 9)
    assert B.to_char(ts, fmt) == ts.strftime(fmt)


@pytest.mark.parametrize("fmt", ["%A", "Q", "%Y Mon"])
def test_to_char_unsupported_is_0A000(fmt: str) -> None:
    with pytest.raises(SQLError) as ei:
        B.to_char(dt.datetime(2024, 1, 1), fmt)
    assert ei.value.sqlstate == "0A000"


def test_result_column_names_follow_postgres() -> None:
    import asyncio

    from crdb_py.sql.session import Session
    from tests.sql.fake_kv import FakeKV

    loop = asyncio.new_event_loop()
    try:
        s = Session(FakeKV())
        loop.run_until_complete(s.execute("CREATE TABLE cn (k INT PRIMARY KEY, v INT)"))
        res = loop.run_until_complete(s.execute(
            "SELECT row_number() OVER (), avg(k) OVER (), date_trunc('day', now()), "
            "lpad('a', 2), rpad('a', 2), strpos('a', 'b'), extract(year FROM now()), "
            "concat_ws(',', 'a'), version(), current_database(), upper('a'), "
            "lag(k) OVER (), k::STRING, string_agg('a', ',') AS s FROM cn GROUP BY k"))
        assert [c for c, _ in res.columns] == [
            "row_number", "avg", "date_trunc", "lpad", "rpad", "strpos", "extract",
            "concat_ws", "version", "current_database", "upper", "lag", "k", "s"]
    finally:
        loop.close()
