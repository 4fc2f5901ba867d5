from __future__ import annotations

import pytest

from crdb_py.kvserver.batcheval import txn_record as tr
from crdb_py.pb import data_pb2
from crdb_py.util.errors import (
    InvalidArgumentError,
    TransactionAbortedError,
    TransactionStatusError,
)
from crdb_py.util.hlc import ts_from_proto
from tests.kvserver.batcheval.helpers import Env, batch, inner, k, make_txn, ts
from tests.kvserver.batcheval.txn_helpers import end_txn, heartbeat, push, query_txn, record


def test_heartbeat_creates_pending_record(any_env: Env) -> None:
    t = make_txn(ts(10))
    br, res = any_env.run(batch(heartbeat(t, ts(50)), txn=t))
    rec = record(any_env.engine, t.meta)
    assert rec is not None and rec.status == data_pb2.PENDING
    assert ts_from_proto(rec.last_heartbeat) == ts(50)
    assert rec.meta.id == t.meta.id and rec.meta.key == t.meta.key
    r = inner(br.responses[0])
    assert r.txn.status == data_pb2.PENDING  # type: ignore[attr-defined]
    assert res.updated_txn is not None and res.updated_txn.meta.id == t.meta.id
    assert ts_from_proto(br.header.txn.last_heartbeat) == ts(50)


def test_heartbeat_forwards_only(env: Env) -> None:
    t = make_txn(ts(10))
    env.run(batch(heartbeat(t, ts(50)), txn=t))
    env.run(batch(heartbeat(t, ts(40)), txn=t))
    rec = record(env.engine, t.meta)
    assert rec is not None and ts_from_proto(rec.last_heartbeat) == ts(50)
    env.run(batch(heartbeat(t, ts(70)), txn=t))
    rec = record(env.engine, t.meta)
    assert rec is not None and ts_from_proto(rec.last_heartbeat) == ts(70)


def test_heartbeat_defaults_to_leaseholder_clock(env: Env) -> None:
    t = make_txn(ts(10))
    env.run(batch(heartbeat(t), txn=t))
    rec = record(env.engine, t.meta)
    assert rec is not None and ts_from_proto(rec.last_heartbeat) == env.now


def test_heartbeat_keeps_staging(env: Env) -> None:
    t = make_txn(ts(10))
    env.run(batch(end_txn(t, in_flight=[(k("a"), 1)]), txn=t))
    env.run(batch(heartbeat(t, ts(60)), txn=t))
    rec = record(env.engine, t.meta)
    assert rec is not None and rec.status == data_pb2.STAGING
    assert [w.key for w in rec.in_flight_writes] == [k("a")]


def test_heartbeat_of_aborted_txn(env: Env) -> None:
    t = make_txn(ts(10))
    env.run(batch(push(t.meta, force=True)))
    with pytest.raises(TransactionAbortedError) as ei:
        env.run(batch(heartbeat(t, ts(20)), txn=t))
    assert ei.value.reason == "ABORTED_RECORD_FOUND"


def test_heartbeat_of_committed_txn(env: Env) -> None:
    t = make_txn(ts(10))
    env.run(batch(heartbeat(t, ts(20)), txn=t))
    env.run(batch(end_txn(t), txn=t))
    with pytest.raises(TransactionStatusError):
        env.run(batch(heartbeat(t, ts(30)), txn=t))
    rec = record(env.engine, t.meta)
    assert rec is not None and rec.status == data_pb2.COMMITTED


def test_heartbeat_must_address_the_anchor(env: Env) -> None:
    t = make_txn(ts(10))
    ru = heartbeat(t)
    ru.heartbeat_txn.header.key = k("elsewhere")
    with pytest.raises(InvalidArgumentError):
        env.run(batch(ru, txn=t))


def test_heartbeat_requires_txn(env: Env) -> None:
    t = make_txn(ts(10))
    with pytest.raises(InvalidArgumentError):
        env.run(batch(heartbeat(t), at=ts(10)))


def test_query_txn(env: Env) -> None:
    t = make_txn(ts(10))
    r = env.one(query_txn(t.meta))
    assert not r.txn_record_exists  # type: ignore[attr-defined]
    assert r.queried_txn.status == data_pb2.PENDING  # type: ignore[attr-defined]
    assert r.queried_txn.meta.id == t.meta.id  # type: ignore[attr-defined]
    env.run(batch(heartbeat(t, ts(20)), txn=t))
    env.run(batch(end_txn(t, in_flight=[(k("a"), 3)]), txn=t))
    r = env.one(query_txn(t.meta))
    assert r.txn_record_exists  # type: ignore[attr-defined]
    assert r.queried_txn.status == data_pb2.STAGING  # type: ignore[attr-defined]
    assert r.queried_txn.in_flight_writes[0].sequence == 3  # type: ignore[attr-defined]
    assert ts_from_proto(r.queried_txn.last_heartbeat) == ts(20)  # type: ignore[attr-defined]


def test_expiry() -> None:
    t = make_txn(ts(10))
    assert not tr.is_expired(ts(10 + tr.TXN_LIVENESS_THRESHOLD_NANOS), t)
    assert tr.is_expired(ts(11 + tr.TXN_LIVENESS_THRESHOLD_NANOS), t)
    t.last_heartbeat.wall_time = 100
    assert not tr.is_expired(ts(100 + tr.TXN_LIVENESS_THRESHOLD_NANOS), t)
    t.status = data_pb2.COMMITTED
    assert not tr.is_expired(ts(10**18), t)


def test_query_txn_waiting_txns_from_the_replica(env: Env) -> None:
    from crdb_py.kvserver.batcheval.cmd_query_txn import evaluate
    from crdb_py.kvserver.batcheval.command import CommandArgs
    from crdb_py.pb import api_pb2
    from crdb_py.storage import MVCCStats

    t = make_txn(ts(10))
    ru = query_txn(t.meta)
    resp = api_pb2.QueryTxnResponse()
    asked: list[bytes] = []
    cargs = CommandArgs(
        rw=env.engine,
        header=api_pb2.BatchHeader(),
        timestamp=ts(10),
        desc=env.desc,
        stats=MVCCStats(),
        now=ts(10),
        extras={"waiting_txns": lambda i: asked.append(i) or [b"w1", b"w2"]},
    )
    evaluate(cargs, ru.query_txn, resp)
    assert asked == [t.meta.id]
    assert list(resp.waiting_txns) == [b"w1", b"w2"]
