"""The server half of parallel commits, end to end over one range:
stage, (coordinator dies), recover by QueryIntent + RecoverTxn, resolve."""

from __future__ import annotations

import pytest

from crdb_py.kvserver.tscache import TimestampCache
from crdb_py.pb import api_pb2, data_pb2
from crdb_py.storage import MemEngine, mvcc_get_intent
from crdb_py.util.errors import (
    IndeterminateCommitError,
    TransactionAbortedError,
    TransactionStatusError,
)
from crdb_py.util.hlc import Timestamp
from tests.kvserver.batcheval.helpers import Env, batch, inner, k, make_txn, put, ts
from tests.kvserver.batcheval.txn_helpers import (
    SECOND,
    bumped,
    end_txn,
    push,
    query_intent,
    recover,
    resolve,
    span,
)


def _resolve_all(env: Env, updates: list[data_pb2.LockUpdate]) -> None:
    for up in updates:
        env.run(batch(resolve(up.span.key, up.txn, up.status, end=up.span.end_key), at=ts(100)))


def _recover(env: Env, tsc: TimestampCache, staging: data_pb2.Transaction) -> int:
    """What TxnRecoveryManager does: query every in-flight write, then decide."""
    all_found = True
    for w in staging.in_flight_writes:
        br, res = env.run(batch(query_intent(staging.meta, w.key, w.sequence), at=ts(100)))
        for key, end, at in res.tscache_bumps:
            tsc.add(key, end or None, at, None)
        all_found = all_found and inner(br.responses[0]).found_intent  # type: ignore[attr-defined]
    br, res = env.run(batch(recover(staging.meta, all_found)))
    _resolve_all(env, res.resolve_intents)
    return inner(br.responses[0]).recovered_txn.status  # type: ignore[attr-defined]


def _stage(env: Env, *, write_b: bool) -> data_pb2.Transaction:
    t = make_txn(ts(10), anchor=k("a"))
    env.run(batch(put(k("a"), b"a1", seq=1), txn=t))
    if write_b:  # the last write, sent in parallel with the EndTxn
        env.run(batch(put(k("b"), b"b1", seq=2), txn=t))
    env.run(batch(end_txn(t, locks=[span(k("a"))], in_flight=[(k("b"), 2)]), txn=t))
    return t


def _push_expired(env: Env, t: data_pb2.Transaction) -> data_pb2.Transaction:
    env.now = Timestamp(10 + 6 * SECOND)
    pusher = make_txn(ts(env.now.wall_time), anchor=k("p"))
    try:
        env.run(batch(push(t.meta, pusher=pusher, kind=api_pb2.PUSH_ABORT)))
    except IndeterminateCommitError as e:
        return e.staging_txn  # type: ignore[no-any-return]
    raise AssertionError("push of an expired STAGING txn must need recovery")


def test_recovery_of_an_implicitly_committed_txn() -> None:
    env, tsc = Env(MemEngine()), TimestampCache(Timestamp(1))
    t = _stage(env, write_b=True)
    staging = _push_expired(env, t)
    assert _recover(env, tsc, staging) == data_pb2.COMMITTED
    assert env.value(k("a")) == b"a1" and env.value(k("b")) == b"b1"
    assert mvcc_get_intent(env.engine, k("a")) is None
    assert mvcc_get_intent(env.engine, k("b")) is None
    # The (slow) coordinator's explicit commit now finds it committed already.
    with pytest.raises(TransactionStatusError):
        env.run(batch(end_txn(t, locks=[span(k("a")), span(k("b"))]), txn=t))


def test_recovery_prevents_a_missing_write() -> None:
    env, tsc = Env(MemEngine()), TimestampCache(Timestamp(1))
    t = _stage(env, write_b=False)
    staging = _push_expired(env, t)
    assert _recover(env, tsc, staging) == data_pb2.ABORTED
    assert env.value(k("a")) is None and mvcc_get_intent(env.engine, k("a")) is None
    # The in-flight write arrives late: the timestamp cache pushes it above
    # the staging timestamp, so it can never make the attempt committed ...
    pushed = tsc.push_write_ts(k("b"), None, ts(10), t.meta.id)
    assert pushed > ts(10)
    late = bumped(t, pushed)
    env.run(batch(put(k("b"), b"b1", seq=2), txn=late))
    br, _ = env.run(batch(query_intent(staging.meta, k("b"), 2), at=ts(100)))
    assert not inner(br.responses[0]).found_intent  # type: ignore[attr-defined]
    # ... and the coordinator learns the txn was aborted.
    with pytest.raises(TransactionAbortedError):
        env.run(batch(end_txn(t, locks=[span(k("a")), span(k("b"))]), txn=t))
