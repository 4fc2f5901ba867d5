from __future__ import annotations

import pytest

from crdb_py.pb import data_pb2
from crdb_py.util.errors import InternalError, InvalidArgumentError, TransactionAbortedError
from tests.kvserver.batcheval.helpers import Env, batch, inner, k, make_txn, put, ts
from tests.kvserver.batcheval.txn_helpers import (
    bumped,
    end_txn,
    heartbeat,
    push,
    record,
    recover,
    span,
)


def _staging(env: Env, a: str = "a", b: str = "b") -> data_pb2.Transaction:
    t = make_txn(ts(10), anchor=k(a))
    env.run(batch(put(k(a), b"1", seq=1), txn=t))
    env.run(
        batch(
            put(k(b), b"2", seq=2),
            end_txn(t, locks=[span(k(a))], in_flight=[(k(b), 2)]),
            txn=t,
        )
    )
    return t


@pytest.mark.parametrize("committed", [True, False])
def test_recover_staging(any_env: Env, committed: bool) -> None:
    t = _staging(any_env)
    br, res = any_env.run(batch(recover(t.meta, committed)))
    want = data_pb2.COMMITTED if committed else data_pb2.ABORTED
    assert inner(br.responses[0]).recovered_txn.status == want  # type: ignore[attr-defined]
    rec = record(any_env.engine, t.meta)
    assert rec is not None and rec.status == want
    assert sorted(u.span.key for u in res.resolve_intents) == [k("a"), k("b")]
    assert all(u.status == want and u.txn.id == t.meta.id for u in res.resolve_intents)
    assert res.updated_txn is not None and res.updated_txn.status == want
    # Recovering again (a concurrent recoverer) agrees and writes nothing.
    br, res = any_env.run(batch(recover(t.meta, committed)))
    assert inner(br.responses[0]).recovered_txn.status == want  # type: ignore[attr-defined]
    assert res.resolve_intents == [] and res.updated_txn is None


def test_record_gone_is_aborted(env: Env) -> None:
    t = make_txn(ts(10), anchor=k("a"))
    r = env.one(recover(t.meta, False))
    assert r.recovered_txn.status == data_pb2.ABORTED  # type: ignore[attr-defined]
    rec = record(env.engine, t.meta)
    assert rec is not None and rec.status == data_pb2.ABORTED
    # The txn can no longer stage or commit.
    with pytest.raises(TransactionAbortedError):
        env.run(batch(end_txn(t, in_flight=[(k("a"), 1)]), txn=t))


def test_record_gone_but_implicitly_committed_is_a_bug(env: Env) -> None:
    t = make_txn(ts(10), anchor=k("a"))
    with pytest.raises(InternalError):
        env.run(batch(recover(t.meta, True)))
    assert record(env.engine, t.meta) is None


def test_already_final_record_is_returned(env: Env) -> None:
    t = _staging(env)
    env.run(batch(end_txn(t, locks=[span(k("a")), span(k("b"))]), txn=t))
    r = env.one(recover(t.meta, True))
    assert r.recovered_txn.status == data_pb2.COMMITTED  # type: ignore[attr-defined]
    # A prevented write of the same attempt cannot go with a COMMITTED record.
    with pytest.raises(InternalError):
        env.run(batch(recover(t.meta, False)))
    t2 = _staging(env, "c", "d")
    env.run(batch(end_txn(t2, commit=False, locks=[span(k("c")), span(k("d"))]), txn=t2))
    r = env.one(recover(t2.meta, False))
    assert r.recovered_txn.status == data_pb2.ABORTED  # type: ignore[attr-defined]
    with pytest.raises(InternalError):
        env.run(batch(recover(t2.meta, True)))


def test_moot_when_the_coordinator_moved_on(env: Env) -> None:
    # The record is PENDING (never staged).
    t = make_txn(ts(10), anchor=k("a"))
    env.run(batch(heartbeat(t, ts(10)), txn=t))
    br, res = env.run(batch(recover(t.meta, False)))
    assert inner(br.responses[0]).recovered_txn.status == data_pb2.PENDING  # type: ignore[attr-defined]
    assert res.updated_txn is None
    # The record re-staged at a newer timestamp than the recoverer saw.
    t = _staging(env, "c", "d")
    t2 = bumped(t, ts(20), read=ts(20))
    env.run(batch(end_txn(t2, locks=[span(k("c"))], in_flight=[(k("d"), 2)]), txn=t2))
    for committed in (True, False):
        r = env.one(recover(t.meta, committed))
        assert r.recovered_txn.status == data_pb2.STAGING  # type: ignore[attr-defined]
    rec = record(env.engine, t.meta)
    assert rec is not None and rec.status == data_pb2.STAGING


def test_recover_a_newer_attempt_than_the_record(env: Env) -> None:
    t = _staging(env)
    with pytest.raises(InvalidArgumentError):
        env.run(batch(recover(bumped(t, ts(30)).meta, True)))


def test_staging_record_pushed_pending_is_moot(env: Env) -> None:
    t = _staging(env)
    known = data_pb2.TxnMeta()
    known.CopyFrom(t.meta)
    known.write_timestamp.wall_time = 20
    pusher = make_txn(ts(50), anchor=k("p"))
    pusher.meta.priority = 9
    env.run(batch(push(known, pusher=pusher, kind=0, to=ts(50))))
    r = env.one(recover(t.meta, False))
    assert r.recovered_txn.status == data_pb2.PENDING  # type: ignore[attr-defined]
