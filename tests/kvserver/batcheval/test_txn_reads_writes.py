"""Transactional Get/Scan/Put/... as the txn commands rely on them."""

from __future__ import annotations

import pytest

from crdb_py.pb import data_pb2
from crdb_py.storage import mvcc_get_intent
from crdb_py.util.errors import ReadWithinUncertaintyIntervalError, WriteTooOldError
from crdb_py.util.hlc import ts_from_proto
from tests.kvserver.batcheval.helpers import (
    Env,
    batch,
    cput,
    delete,
    get,
    inner,
    k,
    make_txn,
    put,
    rscan,
    scan,
    ts,
)


def test_txn_reads_its_own_writes_by_sequence(any_env: Env) -> None:
    any_env.write(k("a"), b"committed", ts(5))
    t = make_txn(ts(10), anchor=k("a"))
    br, _ = any_env.run(
        batch(
            put(k("a"), b"1", seq=1),
            put(k("b"), b"b1", seq=2),
            put(k("a"), b"2", seq=3),
            delete(k("b"), seq=4),
            get(k("a"), seq=0),
            get(k("a"), seq=2),
            get(k("a"), seq=3),
            scan(k("a"), k("z"), seq=2),
            rscan(k("a"), k("z"), seq=5),
            txn=t,
        )
    )
    r = [inner(x) for x in br.responses]
    assert r[4].value.raw_bytes == b"committed"  # type: ignore[attr-defined]
    assert r[5].value.raw_bytes == b"1"  # type: ignore[attr-defined]
    assert r[6].value.raw_bytes == b"2"  # type: ignore[attr-defined]
    assert [(x.key, x.value.raw_bytes) for x in r[7].rows] == [  # type: ignore[attr-defined]
        (k("a"), b"1"),
        (k("b"), b"b1"),
    ]
    assert [(x.key, x.value.raw_bytes) for x in r[8].rows] == [(k("a"), b"2")]  # type: ignore[attr-defined]
    # Sequence numbers are per request; the header's own one comes back unchanged.
    assert br.header.txn.meta.sequence == t.meta.sequence
    md = mvcc_get_intent(any_env.engine, k("a"))
    assert md is not None and md.txn.sequence == 3
    assert [sv.sequence for sv in md.intent_history] == [1]


def test_txn_writes_at_its_write_timestamp(env: Env) -> None:
    t = make_txn(ts(10), ts(14), anchor=k("a"))
    env.run(batch(put(k("a"), b"1", seq=7), cput(k("b"), b"2", seq=8), txn=t))
    for key, seq in ((k("a"), 7), (k("b"), 8)):
        md = mvcc_get_intent(env.engine, key)
        assert md is not None
        assert ts_from_proto(md.timestamp) == ts(14) and md.txn.sequence == seq
        assert md.txn.id == t.meta.id


def test_txn_write_too_old(env: Env) -> None:
    env.write(k("a"), b"newer", ts(20))
    t = make_txn(ts(10), anchor=k("a"))
    with pytest.raises(WriteTooOldError) as ei:
        env.run(batch(put(k("a"), b"1", seq=1), txn=t))
    assert ei.value.actual_timestamp == ts(20).next()
    assert mvcc_get_intent(env.engine, k("a")) is None


def test_txn_read_uncertainty_from_the_txn(env: Env) -> None:
    env.write(k("a"), b"later", ts(15))
    t = make_txn(ts(10), anchor=k("a"), uncertainty=ts(20))
    with pytest.raises(ReadWithinUncertaintyIntervalError) as ei:
        env.run(batch(get(k("a")), txn=t))
    assert ei.value.existing_timestamp == ts(15)
    t = make_txn(ts(10), anchor=k("a"), uncertainty=ts(12))
    br, _ = env.run(batch(get(k("a")), txn=t))
    assert not inner(br.responses[0]).HasField("value")  # type: ignore[attr-defined]


def test_response_carries_the_txn(env: Env) -> None:
    t = make_txn(ts(10), ts(12), anchor=k("a"))
    br, _ = env.run(batch(put(k("a"), b"1", seq=1), txn=t))
    assert br.header.txn.meta.id == t.meta.id
    assert br.header.txn.status == data_pb2.PENDING
    assert ts_from_proto(br.header.txn.meta.write_timestamp) == ts(12)
