from __future__ import annotations

import pytest

from crdb_py.pb import api_pb2, data_pb2
from crdb_py.util.errors import (
    IndeterminateCommitError,
    InvalidArgumentError,
    TransactionPushError,
)
from crdb_py.util.hlc import Timestamp, ts_from_proto
from tests.kvserver.batcheval.helpers import Env, batch, inner, k, make_txn, ts
from tests.kvserver.batcheval.txn_helpers import (
    SECOND,
    end_txn,
    heartbeat,
    push,
    record,
)

TS_PUSH, ABORT, TOUCH = api_pb2.PUSH_TIMESTAMP, api_pb2.PUSH_ABORT, api_pb2.PUSH_TOUCH


def _txn(prio: int, anchor: str = "a", at: int = 10) -> data_pb2.Transaction:
    t = make_txn(ts(at), anchor=k(anchor))
    t.meta.priority = prio
    return t


def _pushee(env: Env, prio: int = 1, *, record_: bool = True) -> data_pb2.Transaction:
    t = _txn(prio)
    if record_:
        env.run(batch(heartbeat(t, ts(10)), txn=t))
    return t


@pytest.mark.parametrize("has_record", [True, False])
def test_push_abort_by_priority(env: Env, has_record: bool) -> None:
    pushee = _pushee(env, 1, record_=has_record)
    with pytest.raises(TransactionPushError) as ei:
        env.run(batch(push(pushee.meta, pusher=_txn(1, "p"), kind=ABORT)))  # tie
    assert ei.value.pushee.meta.id == pushee.meta.id
    r = env.one(push(pushee.meta, pusher=_txn(2, "p"), kind=ABORT))
    assert r.pushee_txn.status == data_pb2.ABORTED  # type: ignore[attr-defined]
    rec = record(env.engine, pushee.meta)
    assert rec is not None and rec.status == data_pb2.ABORTED


@pytest.mark.parametrize("has_record", [True, False])
def test_push_timestamp_by_priority(env: Env, has_record: bool) -> None:
    pushee = _pushee(env, 1, record_=has_record)
    with pytest.raises(TransactionPushError):
        env.run(batch(push(pushee.meta, pusher=_txn(0, "p"), kind=TS_PUSH, to=ts(50))))
    br, res = env.run(batch(push(pushee.meta, pusher=_txn(3, "p"), kind=TS_PUSH, to=ts(50))))
    r = inner(br.responses[0])
    assert r.pushee_txn.status == data_pb2.PENDING  # type: ignore[attr-defined]
    assert ts_from_proto(r.pushee_txn.meta.write_timestamp) == ts(50)  # type: ignore[attr-defined]
    rec = record(env.engine, pushee.meta)
    assert rec is not None and rec.status == data_pb2.PENDING
    assert ts_from_proto(rec.meta.write_timestamp) == ts(50)
    assert rec.meta.priority == 2  # raised to just below the pusher
    assert res.updated_txn is not None and res.updated_txn.meta.id == pushee.meta.id


def test_push_timestamp_already_above_needs_no_write(env: Env) -> None:
    pushee = _pushee(env, 5)
    before = record(env.engine, pushee.meta)
    # A losing pusher still succeeds: the pushee is already above push_to.
    br, res = env.run(batch(push(pushee.meta, pusher=_txn(0, "p"), kind=TS_PUSH, to=ts(10))))
    assert inner(br.responses[0]).pushee_txn.status == data_pb2.PENDING  # type: ignore[attr-defined]
    assert record(env.engine, pushee.meta) == before
    assert res.updated_txn is None


def test_pushes_are_idempotent(env: Env) -> None:
    pushee = _pushee(env, 1)
    pusher = _txn(5, "p")
    for _ in range(2):
        r = env.one(push(pushee.meta, pusher=pusher, kind=TS_PUSH, to=ts(40)))
        assert ts_from_proto(r.pushee_txn.meta.write_timestamp) == ts(40)  # type: ignore[attr-defined]
    rec1 = record(env.engine, pushee.meta)
    for _ in range(2):
        r = env.one(push(pushee.meta, pusher=pusher, kind=ABORT))
        assert r.pushee_txn.status == data_pb2.ABORTED  # type: ignore[attr-defined]
    rec2 = record(env.engine, pushee.meta)
    assert rec1 is not None and rec2 is not None
    assert rec2.status == data_pb2.ABORTED
    assert ts_from_proto(rec2.meta.write_timestamp) == ts(40)
    # A final record is simply returned, to anyone.
    r = env.one(push(pushee.meta, pusher=_txn(0, "q"), kind=TS_PUSH, to=ts(90)))
    assert r.pushee_txn.status == data_pb2.ABORTED  # type: ignore[attr-defined]
    assert record(env.engine, pushee.meta) == rec2


def test_push_of_committed_txn_returns_it(env: Env) -> None:
    pushee = _pushee(env, 1)
    env.run(batch(end_txn(pushee), txn=pushee))
    r = env.one(push(pushee.meta, pusher=_txn(9, "p"), kind=ABORT, force=True))
    assert r.pushee_txn.status == data_pb2.COMMITTED  # type: ignore[attr-defined]
    rec = record(env.engine, pushee.meta)
    assert rec is not None and rec.status == data_pb2.COMMITTED


def test_push_touch(env: Env) -> None:
    pushee = _pushee(env, 0)
    # Touch fails on a live txn whatever the priority.
    with pytest.raises(TransactionPushError):
        env.run(batch(push(pushee.meta, pusher=_txn(9, "p"), kind=TOUCH)))
    rec = record(env.engine, pushee.meta)
    assert rec is not None and rec.status == data_pb2.PENDING
    env.now = Timestamp(10 + 5 * SECOND + 1)
    r = env.one(push(pushee.meta, pusher=_txn(0, "p"), kind=TOUCH))
    assert r.pushee_txn.status == data_pb2.ABORTED  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", [TS_PUSH, ABORT, TOUCH])
def test_expired_pushee_is_aborted(env: Env, kind: int) -> None:
    pushee = _pushee(env, 9)
    env.run(batch(heartbeat(pushee, ts(2 * SECOND)), txn=pushee))
    env.now = Timestamp(7 * SECOND)  # exactly 5 s after the heartbeat: alive
    with pytest.raises(TransactionPushError):
        env.run(batch(push(pushee.meta, pusher=_txn(0, "p"), kind=kind, to=ts(50))))
    env.now = Timestamp(7 * SECOND + 1)
    r = env.one(push(pushee.meta, pusher=_txn(0, "p"), kind=kind, to=ts(50)))
    assert r.pushee_txn.status == data_pb2.ABORTED  # type: ignore[attr-defined]


def test_expiry_without_record_uses_min_timestamp(env: Env) -> None:
    pushee = _txn(9, at=SECOND)
    env.now = Timestamp(6 * SECOND)
    with pytest.raises(TransactionPushError):
        env.run(batch(push(pushee.meta, pusher=_txn(0, "p"), kind=ABORT)))
    assert record(env.engine, pushee.meta) is None
    env.now = Timestamp(6 * SECOND + 1)
    env.run(batch(push(pushee.meta, pusher=_txn(0, "p"), kind=ABORT)))
    rec = record(env.engine, pushee.meta)
    assert rec is not None and rec.status == data_pb2.ABORTED


def test_force_push(env: Env) -> None:
    pushee = _pushee(env, 9)
    r = env.one(push(pushee.meta, pusher=_txn(0, "p"), kind=ABORT, force=True))
    assert r.pushee_txn.status == data_pb2.ABORTED  # type: ignore[attr-defined]


def _staging(env: Env, prio: int = 1) -> data_pb2.Transaction:
    t = _pushee(env, prio)
    env.run(batch(end_txn(t, in_flight=[(k("a"), 1)]), txn=t))
    return t


def test_push_of_expired_staging_txn_needs_recovery(env: Env) -> None:
    t = _staging(env)
    before = record(env.engine, t.meta)
    env.now = Timestamp(10 + 5 * SECOND + 1)
    for kind in (TS_PUSH, ABORT, TOUCH):
        with pytest.raises(IndeterminateCommitError) as ei:
            env.run(batch(push(t.meta, pusher=_txn(0, "p"), kind=kind, to=ts(50))))
        assert ei.value.staging_txn.status == data_pb2.STAGING
        assert ei.value.staging_txn.in_flight_writes[0].key == k("a")
    assert record(env.engine, t.meta) == before


def test_push_of_live_staging_txn(env: Env) -> None:
    t = _staging(env, prio=5)
    before = record(env.engine, t.meta)
    # A loser fails like against any live txn ...
    with pytest.raises(TransactionPushError):
        env.run(batch(push(t.meta, pusher=_txn(1, "p"), kind=ABORT)))
    # ... a winner is sent to recovery rather than rewriting a possibly
    # implicitly committed record.
    with pytest.raises(IndeterminateCommitError):
        env.run(batch(push(t.meta, pusher=_txn(9, "p"), kind=ABORT)))
    with pytest.raises(IndeterminateCommitError):
        env.run(batch(push(t.meta, pusher=_txn(0, "p"), kind=TS_PUSH, to=ts(50), force=True)))
    assert record(env.engine, t.meta) == before


def test_staging_pushee_seen_past_its_attempt_is_pending(env: Env) -> None:
    t = _staging(env, prio=1)
    known = data_pb2.TxnMeta()
    known.CopyFrom(t.meta)
    known.write_timestamp.wall_time = 20  # the pusher saw an intent at 20 > staging ts 10
    r = env.one(push(known, pusher=_txn(9, "p"), kind=TS_PUSH, to=ts(50)))
    assert r.pushee_txn.status == data_pb2.PENDING  # type: ignore[attr-defined]
    rec = record(env.engine, t.meta)
    assert rec is not None and rec.status == data_pb2.PENDING
    assert list(rec.in_flight_writes) == []
    assert ts_from_proto(rec.meta.write_timestamp) == ts(50)


def test_push_must_address_the_pushee_anchor(env: Env) -> None:
    pushee = _txn(1)
    ru = push(pushee.meta, pusher=_txn(5, "p"))
    ru.push_txn.header.key = k("p")
    with pytest.raises(InvalidArgumentError):
        env.run(batch(ru))
