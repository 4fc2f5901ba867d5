from __future__ import annotations

import pytest

from crdb_py.kvserver.evaluate import declare_keys
from crdb_py.kvserver.spanset import DeclaredSpan, SpanAccess, SpanSet, make_span
from crdb_py.storage import compute_stats, mvcc_get_intent
from crdb_py.util import keys
from crdb_py.util.errors import (
    InternalError,
    InvalidArgumentError,
    WriteIntentError,
    WriteTooOldError,
)
from crdb_py.util.hlc import MIN_TIMESTAMP, ts_from_proto
from tests.kvserver.batcheval.helpers import (
    Env,
    batch,
    full_desc,
    get,
    k,
    make_txn,
    put,
    ts,
)


def test_put_then_get(any_env: Env) -> None:
    any_env.run(batch(put(k("a"), b"1"), at=ts(5)))
    any_env.run(batch(put(k("a"), b"2"), at=ts(8)))
    assert any_env.value(k("a"), ts(7)) == b"1"
    assert any_env.value(k("a"), ts(8)) == b"2"
    assert any_env.stats.counters() == compute_stats(any_env.engine).counters()


def test_put_write_too_old(env: Env) -> None:
    env.write(k("a"), b"new", ts(10))
    for at in (ts(10), ts(9)):
        with pytest.raises(WriteTooOldError) as ei:
            env.run(batch(put(k("b"), b"ok"), put(k("a"), b"old"), at=at))
        assert ei.value.actual_timestamp == ts(10).next()
        assert ei.value.index == 1
    # Nothing of the failed batches was applied.
    assert env.value(k("b")) is None
    assert env.value(k("a")) == b"new"


def test_put_on_another_txns_intent(env: Env) -> None:
    t1 = make_txn(ts(10))
    env.run(batch(put(k("a"), b"t1"), txn=t1))
    for ba in (batch(put(k("a"), b"x"), at=ts(20)), batch(put(k("a"), b"x"), txn=make_txn(ts(5)))):
        with pytest.raises(WriteIntentError) as ei:
            env.run(ba)
        assert [(i.key, i.txn.id) for i in ei.value.intents] == [(k("a"), t1.meta.id)]


def test_txn_put_writes_intent_at_write_timestamp_with_sequence(env: Env) -> None:
    t = make_txn(ts(10), ts(12))
    env.run(batch(put(k("a"), b"v1", seq=1), put(k("a"), b"v2", seq=2), txn=t))
    md = mvcc_get_intent(env.engine, k("a"))
    assert md is not None
    assert md.txn.id == t.meta.id
    assert md.txn.sequence == 2
    assert ts_from_proto(md.timestamp) == ts(12)
    assert [(sv.sequence, sv.value) for sv in md.intent_history] == [(1, b"v1")]
    # A replay of an earlier write (same sequence, same value) is a no-op...
    env.run(batch(put(k("a"), b"v1", seq=1), txn=t))
    # ... a different value at a used sequence is a bug, loudly.
    with pytest.raises(InternalError):
        env.run(batch(put(k("a"), b"other", seq=1), txn=t))
    # Reads at each sequence see that sequence's value.
    assert env.one(get(k("a"), seq=1), txn=t).value.raw_bytes == b"v1"
    assert env.one(get(k("a"), seq=2), txn=t).value.raw_bytes == b"v2"


def test_inline_put_at_zero_timestamp(env: Env) -> None:
    lk = keys.range_descriptor_key(k("a"))
    env.run(batch(put(lk, b"desc")))  # no timestamp: an unversioned value
    r = env.one(get(lk), at=MIN_TIMESTAMP)
    assert r.value.raw_bytes == b"desc"
    with pytest.raises(InvalidArgumentError):
        env.run(batch(put(lk, b"versioned"), at=ts(5)))  # inline and versions never mix


def test_put_declares_write_at_write_timestamp() -> None:
    desc = full_desc()
    assert declare_keys(desc, batch(put(k("a"), b"v"), at=ts(3))) == SpanSet(
        [DeclaredSpan(make_span(k("a")), SpanAccess.READ_WRITE, ts(3))]
    )
    txn = make_txn(ts(3), ts(8), uncertainty=ts(20))
    assert declare_keys(desc, batch(put(k("a"), b"v"), get(k("b")), txn=txn)) == SpanSet(
        [
            DeclaredSpan(make_span(k("a")), SpanAccess.READ_WRITE, ts(8)),
            DeclaredSpan(make_span(k("b")), SpanAccess.READ_ONLY, ts(20)),
        ]
    )
    # Zero timestamp (inline) and range-local keys: non-MVCC.
    lk = keys.transaction_key(k("a"), b"\x02" * 16)
    assert declare_keys(desc, batch(put(k("a"), b"v"), put(lk, b"r"))) == SpanSet(
        [
            DeclaredSpan(make_span(k("a")), SpanAccess.READ_WRITE, MIN_TIMESTAMP),
            DeclaredSpan(make_span(lk), SpanAccess.READ_WRITE, MIN_TIMESTAMP),
        ]
    )
