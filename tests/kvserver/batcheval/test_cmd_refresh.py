from __future__ import annotations

import pytest

from crdb_py.kvserver.evaluate import declare_keys
from crdb_py.kvserver.spanset import SpanAccess
from crdb_py.util.errors import InvalidArgumentError, RefreshFailedError, TransactionRetryError
from tests.kvserver.batcheval.helpers import (
    Env,
    batch,
    delete,
    full_desc,
    k,
    make_txn,
    put,
    ts,
)
from tests.kvserver.batcheval.txn_helpers import refresh


def _refresher(frm: int = 10, to: int = 20):  # type: ignore[no-untyped-def]
    """The txn as the span refresher sends it: read = write = the new timestamp."""
    t = make_txn(ts(to), anchor=k("anchor"))
    return t, ts(frm)


def _refresh(env: Env, t, frm, key, end=b""):  # type: ignore[no-untyped-def]
    env.run(batch(refresh(key, frm, end), txn=t))


@pytest.mark.parametrize("ranged", [False, True])
def test_refresh_succeeds_with_older_and_newer_writes(any_env: Env, ranged: bool) -> None:
    any_env.write(k("a"), b"old", ts(10))  # at refresh_from: already seen
    any_env.write(k("a"), b"new", ts(21))  # above refresh_to: invisible
    t, frm = _refresher()
    # Another txn's intent above refresh_to does not matter either.
    other = make_txn(ts(25), anchor=k("b"))
    any_env.run(batch(put(k("b"), b"x", seq=1), txn=other))
    # The txn's own intent in the window is its own write.
    own = make_txn(ts(15), anchor=k("anchor"))
    own.meta.id = t.meta.id
    any_env.run(batch(put(k("c"), b"mine", seq=1), txn=own))
    if ranged:
        _refresh(any_env, t, frm, k("a"), k("z"))
    else:
        for key in (k("a"), k("b"), k("c"), k("nothing")):
            _refresh(any_env, t, frm, key)


@pytest.mark.parametrize("ranged", [False, True])
@pytest.mark.parametrize("at", [11, 20])
def test_refresh_fails_on_committed_value_in_window(env: Env, ranged: bool, at: int) -> None:
    env.write(k("a"), b"old", ts(5))
    env.write(k("m"), b"new", ts(at))
    t, frm = _refresher()
    with pytest.raises(RefreshFailedError) as ei:
        if ranged:
            _refresh(env, t, frm, k("a"), k("z"))
        else:
            _refresh(env, t, frm, k("m"))
    assert isinstance(ei.value, TransactionRetryError)
    assert ei.value.reason == "RETRY_REFRESH_FAIL"
    assert ei.value.key == k("m") and ei.value.existing_timestamp == ts(at)


@pytest.mark.parametrize("ranged", [False, True])
def test_refresh_fails_on_deletion_in_window(env: Env, ranged: bool) -> None:
    env.write(k("a"), b"old", ts(5))
    env.run(batch(delete(k("a")), at=ts(15)))
    t, frm = _refresher()
    with pytest.raises(RefreshFailedError):
        if ranged:
            _refresh(env, t, frm, k("a"), k("b"))
        else:
            _refresh(env, t, frm, k("a"))


@pytest.mark.parametrize("ranged", [False, True])
@pytest.mark.parametrize("at", [5, 15, 20])
def test_refresh_fails_on_other_intent_at_or_below_refresh_to(
    env: Env, ranged: bool, at: int
) -> None:
    other = make_txn(ts(at), anchor=k("q"))
    env.run(batch(put(k("q"), b"x", seq=1), txn=other))
    t, frm = _refresher()
    with pytest.raises(RefreshFailedError) as ei:
        if ranged:
            _refresh(env, t, frm, k("a"), k("z"))
        else:
            _refresh(env, t, frm, k("q"))
    assert ei.value.key == k("q")


def test_refresh_uses_the_write_timestamp_as_target(env: Env) -> None:
    # Sent with the old read timestamp and the pushed write timestamp.
    env.write(k("a"), b"new", ts(18))
    t = make_txn(ts(10), ts(20), anchor=k("anchor"))
    with pytest.raises(RefreshFailedError):
        _refresh(env, t, ts(10), k("a"))


def test_refresh_needs_refresh_from(env: Env) -> None:
    t, _ = _refresher()
    ru = refresh(k("a"), ts(1))
    ru.refresh.ClearField("refresh_from")
    with pytest.raises(InvalidArgumentError):
        env.run(batch(ru, txn=t))


def test_refresh_requires_a_txn(env: Env) -> None:
    with pytest.raises(InvalidArgumentError):
        env.run(batch(refresh(k("a"), ts(1)), at=ts(10)))


def test_refresh_declares_read_at_refresh_to() -> None:
    t = make_txn(ts(10), ts(20), anchor=k("anchor"))
    spans = declare_keys(full_desc(), batch(refresh(k("a"), ts(5), k("c")), txn=t))
    (d,) = list(spans)
    assert d.access is SpanAccess.READ_ONLY and d.ts == ts(20)
    assert (d.span.key, d.span.end_key) == (k("a"), k("c"))
