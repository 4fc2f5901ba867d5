from __future__ import annotations

import pytest

from crdb_py.kvserver.evaluate import declare_keys
from crdb_py.kvserver.spanset import SpanAccess
from crdb_py.util.errors import IntentMissingError
from tests.kvserver.batcheval.helpers import Env, batch, full_desc, inner, k, make_txn, put, ts
from tests.kvserver.batcheval.txn_helpers import bumped, query_intent, resolve


def _found(env: Env, ru: object) -> tuple[bool, list[tuple[bytes, bytes, object]]]:
    br, res = env.run(batch(ru, at=ts(100)))  # type: ignore[arg-type]
    return inner(br.responses[0]).found_intent, res.tscache_bumps  # type: ignore[attr-defined]


def test_found(any_env: Env) -> None:
    t = make_txn(ts(10), anchor=k("a"))
    any_env.run(batch(put(k("a"), b"1", seq=1), put(k("a"), b"2", seq=3), txn=t))
    for seq in (1, 2, 3):
        found, bumps = _found(any_env, query_intent(t.meta, k("a"), seq))
        assert found and bumps == []
    # Queried at a higher timestamp than the intent's: still found.
    found, _ = _found(any_env, query_intent(t.meta, k("a"), 3, at=ts(12)))
    assert found


@pytest.mark.parametrize("case", ["seq", "epoch", "ts", "other_txn", "absent"])
def test_missing_is_prevented(env: Env, case: str) -> None:
    t = make_txn(ts(10), anchor=k("a"))
    env.run(batch(put(k("a"), b"1", seq=2), txn=t))
    meta, key, seq, at = t.meta, k("a"), 2, None
    if case == "seq":
        seq = 3  # a later write that never landed
    elif case == "epoch":
        meta = make_txn(ts(10), epoch=1).meta
        meta.id = t.meta.id
    elif case == "ts":
        # The intent was pushed to 20; the staging txn is at 15.
        env.run(batch(resolve(k("a"), bumped(t, ts(20)).meta, 0), at=ts(100)))
        at = ts(15)
    elif case == "other_txn":
        meta = make_txn(ts(10), anchor=k("a")).meta
    else:
        key = k("b")
    found, bumps = _found(env, query_intent(meta, key, seq, at=at))
    assert not found
    assert bumps == [(key, b"", at or ts(10))]
    with pytest.raises(IntentMissingError) as ei:
        env.run(batch(query_intent(meta, key, seq, at=at, error_if_missing=True), at=ts(100)))
    assert ei.value.tscache_bumps == [(key, b"", at or ts(10))]  # type: ignore[attr-defined]


def test_bumps_of_earlier_queries_ride_on_a_later_error(env: Env) -> None:
    t = make_txn(ts(10), anchor=k("a"))
    env.run(batch(put(k("b"), b"1", seq=1), txn=t))
    with pytest.raises(IntentMissingError) as ei:
        env.run(
            batch(
                query_intent(t.meta, k("a"), 1),
                query_intent(t.meta, k("b"), 1, error_if_missing=True),
                query_intent(t.meta, k("c"), 1, error_if_missing=True),
                at=ts(100),
            )
        )
    assert ei.value.index == 2
    assert [b[0] for b in ei.value.tscache_bumps] == [k("a"), k("c")]  # type: ignore[attr-defined]


def test_declares_read_at_the_txn_write_timestamp() -> None:
    t = make_txn(ts(10), ts(12), anchor=k("a"))
    spans = declare_keys(full_desc(), batch(query_intent(t.meta, k("q"), 1), at=ts(100)))
    (d,) = list(spans)
    assert d.access is SpanAccess.READ_ONLY and d.is_mvcc and d.ts == ts(12)
    assert d.span.key == k("q")
