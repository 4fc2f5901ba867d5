from __future__ import annotations

import pytest

from crdb_py.kvserver.evaluate import declare_keys
from crdb_py.kvserver.spanset import DeclaredSpan, SpanAccess, SpanSet, make_span
from crdb_py.util import keys
from crdb_py.util.errors import ReadWithinUncertaintyIntervalError, WriteIntentError
from crdb_py.util.hlc import MIN_TIMESTAMP, ts_from_proto
from tests.kvserver.batcheval.helpers import (
    Env,
    batch,
    delete,
    full_desc,
    get,
    k,
    make_txn,
    put,
    ts,
)


def _history(env: Env) -> None:
    env.write(k("a"), b"a5", ts(5))
    env.write(k("a"), b"a9", ts(9))
    env.run(batch(put(k("b"), b"b3"), at=ts(3)))
    env.run(batch(put(k("b"), b""), at=ts(4)))  # an empty value is a value
    env.run(batch(put(k("c"), b"c1"), at=ts(1)))
    env.run(batch(delete(k("c")), at=ts(6)))


@pytest.mark.parametrize(
    ("key", "at", "want"),
    [
        (k("a"), 4, None),  # before the first version
        (k("a"), 5, (b"a5", 5)),
        (k("a"), 8, (b"a5", 5)),
        (k("a"), 9, (b"a9", 9)),
        (k("a"), 100, (b"a9", 9)),
        (k("b"), 3, (b"b3", 3)),
        (k("b"), 4, (b"", 4)),
        (k("c"), 5, (b"c1", 1)),
        (k("c"), 6, None),  # tombstone
        (k("zz"), 7, None),  # never written
    ],
)
def test_get_history(any_env: Env, key: bytes, at: int, want: tuple[bytes, int] | None) -> None:
    _history(any_env)
    r = any_env.one(get(key), at=ts(at))
    if want is None:
        assert not r.HasField("value")
        assert r.header.num_keys == 0
    else:
        assert r.HasField("value")
        assert (r.value.raw_bytes, ts_from_proto(r.value.timestamp)) == (want[0], ts(want[1]))
        assert r.header.num_keys == 1
        assert r.header.num_bytes == len(key) + len(want[0])


def test_get_own_intent_and_others_intent(env: Env) -> None:
    env.write(k("a"), b"old", ts(5))
    t1 = make_txn(ts(10))
    env.run(batch(put(k("a"), b"mine", seq=1), txn=t1))
    # The writer reads its own intent, as of the read's sequence number.
    assert env.one(get(k("a"), seq=0), txn=t1).value.raw_bytes == b"old"
    r = env.one(get(k("a"), seq=1), txn=t1)
    assert r.value.raw_bytes == b"mine"
    assert ts_from_proto(r.value.timestamp) == ts(10)
    # Another reader below the intent reads under it, unbothered.
    assert env.one(get(k("a")), at=ts(9)).value.raw_bytes == b"old"
    # At or above the intent, it conflicts and the error names the intent.
    with pytest.raises(WriteIntentError) as ei:
        env.one(get(k("a")), at=ts(10))
    assert [(i.key, i.txn.id) for i in ei.value.intents] == [(k("a"), t1.meta.id)]
    assert ei.value.index == 0
    # Another txn too.
    with pytest.raises(WriteIntentError):
        env.one(get(k("a")), txn=make_txn(ts(20)))


def test_get_inconsistent_reports_intent(env: Env) -> None:
    env.write(k("a"), b"old", ts(5))
    t1 = make_txn(ts(10))
    env.run(batch(put(k("a"), b"new", seq=1), txn=t1))
    br, res = env.run(batch(get(k("a")), at=ts(50), inconsistent=True))
    assert br.responses[0].get.value.raw_bytes == b"old"
    assert [(i.key, i.txn.id) for i in res.encountered_intents] == [(k("a"), t1.meta.id)]


def test_get_uncertainty(env: Env) -> None:
    env.write(k("a"), b"v", ts(15))
    with pytest.raises(ReadWithinUncertaintyIntervalError) as ei:
        env.one(get(k("a")), txn=make_txn(ts(10), uncertainty=ts(20)))
    assert ei.value.existing_timestamp == ts(15)
    # Outside the window: not uncertain.
    r = env.one(get(k("a")), txn=make_txn(ts(10), uncertainty=ts(14)))
    assert not r.HasField("value")
    # The caller's (e.g. observed-timestamp) limit wins over the txn's.
    r = env.one(get(k("a")), txn=make_txn(ts(10), uncertainty=ts(20)), uncertainty_limit=ts(12))
    assert not r.HasField("value")
    # Non-transactional reads get the caller's limit.
    with pytest.raises(ReadWithinUncertaintyIntervalError):
        env.one(get(k("a")), at=ts(10), uncertainty_limit=ts(16))


def test_get_declares_read_at_uncertainty_limit() -> None:
    desc = full_desc()
    assert declare_keys(desc, batch(get(k("a")), at=ts(7))) == SpanSet(
        [DeclaredSpan(make_span(k("a")), SpanAccess.READ_ONLY, ts(7))]
    )
    txn = make_txn(ts(7), ts(9), uncertainty=ts(12))
    assert declare_keys(desc, batch(get(k("a")), txn=txn)) == SpanSet(
        [DeclaredSpan(make_span(k("a")), SpanAccess.READ_ONLY, ts(12))]
    )
    # A range-local key is latched as a plain mutex (non-MVCC).
    lk = keys.transaction_key(k("a"), b"\x01" * 16)
    assert declare_keys(desc, batch(get(lk), at=ts(7))) == SpanSet(
        [DeclaredSpan(make_span(lk), SpanAccess.READ_ONLY, MIN_TIMESTAMP)]
    )
