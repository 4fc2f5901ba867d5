from __future__ import annotations

import pytest

from crdb_py.pb import api_pb2, data_pb2
from crdb_py.storage import compute_stats, mvcc_get_intent
from crdb_py.util.errors import (
    TransactionAbortedError,
    TransactionRetryError,
    TransactionStatusError,
    WriteTooOldError,
)
from crdb_py.util.hlc import ts_from_proto
from tests.kvserver.batcheval.helpers import (
    Env,
    batch,
    delrange,
    get,
    inner,
    k,
    make_txn,
    put,
    ts,
)
from tests.kvserver.batcheval.txn_helpers import (
    bumped,
    end_txn,
    heartbeat,
    push,
    record,
    span,
)


def _write(env: Env, t: data_pb2.Transaction, *keys: bytes) -> None:
    env.run(batch(*(put(key, b"v-" + key, seq=i + 1) for i, key in enumerate(keys)), txn=t))


def _check_stats(env: Env) -> None:
    assert env.stats.counters() == compute_stats(env.engine).counters()


def test_staging_records_in_flight_writes(any_env: Env) -> None:
    t = make_txn(ts(10), anchor=k("a"))
    _write(any_env, t, k("a"))
    br, res = any_env.run(
        batch(
            put(k("b"), b"vb", seq=2),
            end_txn(t, locks=[span(k("a"))], in_flight=[(k("a"), 1), (k("b"), 2)]),
            txn=t,
        )
    )
    rec = record(any_env.engine, t.meta)
    assert rec is not None and rec.status == data_pb2.STAGING
    assert [(w.key, w.sequence) for w in rec.in_flight_writes] == [(k("a"), 1), (k("b"), 2)]
    assert [s.key for s in rec.lock_spans] == [k("a")]
    assert ts_from_proto(rec.meta.write_timestamp) == ts(10)
    assert br.header.txn.status == data_pb2.STAGING
    assert len(br.header.txn.in_flight_writes) == 2
    assert not inner(br.responses[1]).one_phase_commit  # type: ignore[attr-defined]
    # Nothing resolved: both intents are still there.
    assert res.resolved_locks == [] and res.resolve_intents == []
    assert mvcc_get_intent(any_env.engine, k("a")) is not None
    assert mvcc_get_intent(any_env.engine, k("b")) is not None
    assert res.updated_txn is not None and res.updated_txn.status == data_pb2.STAGING
    _check_stats(any_env)


def test_commit_resolves_local_intents_and_returns_the_rest(any_env: Env) -> None:
    any_env.desc = data_pb2.RangeDescriptor(range_id=2, start_key=k("a"), end_key=k("m"))
    t = make_txn(ts(10), anchor=k("b"))
    _write(any_env, t, k("b"), k("c"), k("d"))
    locks = [span(k("b")), span(k("c"), k("z")), span(k("x")), span(k("0"), k("b"))]
    br, res = any_env.run(batch(end_txn(t, locks=locks), txn=t))
    assert br.header.txn.status == data_pb2.COMMITTED
    for key in (k("b"), k("c"), k("d")):
        assert mvcc_get_intent(any_env.engine, key) is None
        assert any_env.value(key) == b"v-" + key
    local = sorted((u.span.key, u.span.end_key) for u in res.resolved_locks)
    assert local == [(k("a"), k("b")), (k("b"), b""), (k("c"), k("m"))]
    remote = sorted((u.span.key, u.span.end_key) for u in res.resolve_intents)
    assert remote == [(k("0"), k("a")), (k("m"), k("z")), (k("x"), b"")]
    assert all(u.status == data_pb2.COMMITTED for u in res.resolve_intents)
    assert all(u.txn.id == t.meta.id for u in res.resolve_intents)
    rec = record(any_env.engine, t.meta)
    assert rec is not None and rec.status == data_pb2.COMMITTED
    _check_stats(any_env)


def test_staging_then_explicit_commit(env: Env) -> None:
    t = make_txn(ts(10), anchor=k("a"))
    _write(env, t, k("a"), k("b"))
    env.run(batch(end_txn(t, locks=[span(k("a"))], in_flight=[(k("b"), 2)]), txn=t))
    br, res = env.run(batch(end_txn(t, locks=[span(k("a")), span(k("b"))]), txn=t))
    assert br.header.txn.status == data_pb2.COMMITTED
    assert env.value(k("b")) == b"v-" + k("b")
    rec = record(env.engine, t.meta)
    assert rec is not None and rec.status == data_pb2.COMMITTED
    assert list(rec.in_flight_writes) == []


def test_abort_removes_intents(env: Env) -> None:
    env.write(k("a"), b"old", ts(5))
    t = make_txn(ts(10), anchor=k("a"))
    _write(env, t, k("a"), k("b"))
    br, res = env.run(batch(end_txn(t, commit=False, locks=[span(k("a"), k("c"))]), txn=t))
    assert br.header.txn.status == data_pb2.ABORTED
    assert env.value(k("a")) == b"old" and env.value(k("b")) is None
    assert mvcc_get_intent(env.engine, k("a")) is None
    rec = record(env.engine, t.meta)
    assert rec is not None and rec.status == data_pb2.ABORTED
    assert [u.status for u in res.resolved_locks] == [data_pb2.ABORTED]
    _check_stats(env)


def test_commit_after_abort(env: Env) -> None:
    t = make_txn(ts(10), anchor=k("a"))
    _write(env, t, k("a"))
    env.run(batch(push(t.meta, force=True)))
    with pytest.raises(TransactionAbortedError) as ei:
        env.run(batch(end_txn(t, locks=[span(k("a"))]), txn=t))
    assert ei.value.reason == "ABORTED_RECORD_FOUND"
    assert ei.value.index == 0
    # Staging is refused the same way.
    with pytest.raises(TransactionAbortedError):
        env.run(batch(end_txn(t, in_flight=[(k("a"), 1)]), txn=t))
    # A rollback is fine and cleans up, also when the coordinator knows it aborted.
    t.status = data_pb2.ABORTED
    br, res = env.run(batch(end_txn(t, commit=False, locks=[span(k("a"))]), txn=t))
    assert br.header.txn.status == data_pb2.ABORTED
    assert mvcc_get_intent(env.engine, k("a")) is None
    rec = record(env.engine, t.meta)
    assert rec is not None and rec.status == data_pb2.ABORTED


def test_end_txn_after_commit(env: Env) -> None:
    t = make_txn(ts(10), anchor=k("a"))
    _write(env, t, k("a"))
    env.run(batch(end_txn(t, locks=[span(k("a"))]), txn=t))
    for commit in (True, False):
        with pytest.raises(TransactionStatusError):
            env.run(batch(end_txn(t, commit=commit, locks=[span(k("a"))]), txn=t))
    rec = record(env.engine, t.meta)
    assert rec is not None and rec.status == data_pb2.COMMITTED
    assert env.value(k("a")) == b"v-" + k("a")


def test_deadline(env: Env) -> None:
    t = make_txn(ts(10), anchor=k("a"))
    _write(env, t, k("a"))
    for deadline in (ts(10), ts(9)):
        with pytest.raises(TransactionRetryError) as ei:
            env.run(batch(end_txn(t, locks=[span(k("a"))], deadline=deadline), txn=t))
        assert ei.value.reason == "RETRY_COMMIT_DEADLINE_EXCEEDED"
    assert record(env.engine, t.meta) is None
    # A rollback ignores the deadline; a later deadline commits.
    br, _ = env.run(batch(end_txn(t, locks=[span(k("a"))], deadline=ts(11)), txn=t))
    assert br.header.txn.status == data_pb2.COMMITTED


def test_commit_above_read_timestamp_needs_refresh(env: Env) -> None:
    t = make_txn(ts(10), ts(15), anchor=k("a"))
    _write(env, t, k("a"))
    for ru in (end_txn(t, locks=[span(k("a"))]), end_txn(t, in_flight=[(k("a"), 1)])):
        with pytest.raises(TransactionRetryError) as ei:
            env.run(batch(ru, txn=t))
        assert ei.value.reason == "RETRY_SERIALIZABLE"
    # Rolling back is allowed at any timestamp.
    br, _ = env.run(batch(end_txn(t, commit=False, locks=[span(k("a"))]), txn=t))
    assert br.header.txn.status == data_pb2.ABORTED


def test_commit_of_pushed_record(env: Env) -> None:
    t = make_txn(ts(10), anchor=k("a"))
    _write(env, t, k("a"))
    env.run(batch(heartbeat(t, ts(10)), txn=t))
    pusher = make_txn(ts(30))
    pusher.meta.priority = 5
    env.run(batch(push(t.meta, pusher=pusher, kind=api_pb2.PUSH_TIMESTAMP, to=ts(30))))
    for ru in (end_txn(t, locks=[span(k("a"))]), end_txn(t, in_flight=[(k("a"), 1)])):
        with pytest.raises(TransactionRetryError) as ei:
            env.run(batch(ru, txn=t))
        assert ei.value.reason == "RETRY_SERIALIZABLE"
    # After refreshing to the pushed timestamp the commit goes through there.
    t2 = bumped(t, ts(30), read=ts(30))
    br, _ = env.run(batch(end_txn(t2, locks=[span(k("a"))]), txn=t2))
    assert br.header.txn.status == data_pb2.COMMITTED
    assert env.value(k("a"), ts(29)) is None
    assert env.value(k("a"), ts(30)) == b"v-" + k("a")


def test_epoch_regression(env: Env) -> None:
    t1 = make_txn(ts(10), anchor=k("a"), epoch=1)
    env.run(batch(heartbeat(t1, ts(10)), txn=t1))
    t0 = data_pb2.Transaction()
    t0.CopyFrom(t1)
    t0.meta.epoch = 0
    with pytest.raises(TransactionStatusError) as ei:
        env.run(batch(end_txn(t0), txn=t0))
    assert ei.value.reason == "epoch regression"
    rec = record(env.engine, t1.meta)
    assert rec is not None and rec.status == data_pb2.PENDING and rec.meta.epoch == 1


def test_newer_epoch_commits_and_removes_old_epoch_intents(env: Env) -> None:
    t0 = make_txn(ts(10), anchor=k("a"))
    _write(env, t0, k("a"), k("b"))
    env.run(batch(heartbeat(t0, ts(10)), txn=t0))
    t1 = bumped(t0, ts(20), read=ts(20))
    t1.meta.epoch = 1
    env.run(batch(put(k("a"), b"e1", seq=1), txn=t1))
    br, _ = env.run(batch(end_txn(t1, locks=[span(k("a"), k("c"))]), txn=t1))
    assert br.header.txn.status == data_pb2.COMMITTED
    assert env.value(k("a")) == b"e1"
    assert env.value(k("b")) is None  # written only at epoch 0
    rec = record(env.engine, t0.meta)
    assert rec is not None and rec.meta.epoch == 1
    _check_stats(env)


# ---- one-phase commit ----------------------------------------------------------------


def test_one_phase_commit(any_env: Env) -> None:
    t = make_txn(ts(10), anchor=k("a"))
    br, res = any_env.run(
        batch(
            put(k("a"), b"1", seq=1),
            put(k("b"), b"2", seq=2),
            get(k("a"), seq=3),
            end_txn(t, locks=[span(k("a")), span(k("b"))]),
            txn=t,
        )
    )
    assert inner(br.responses[3]).one_phase_commit  # type: ignore[attr-defined]
    assert inner(br.responses[2]).value.raw_bytes == b"1"  # type: ignore[attr-defined]
    assert br.header.txn.status == data_pb2.COMMITTED
    assert record(any_env.engine, t.meta) is None
    for key, v in ((k("a"), b"1"), (k("b"), b"2")):
        assert mvcc_get_intent(any_env.engine, key) is None
        assert any_env.value(key, ts(10)) == v
        assert any_env.value(key, ts(9)) is None
    assert res.updated_txn is not None and res.updated_txn.status == data_pb2.COMMITTED
    _check_stats(any_env)


def test_one_phase_commit_covers_delete_range(env: Env) -> None:
    env.write(k("b"), b"x", ts(5))
    t = make_txn(ts(10), anchor=k("a"))
    br, _ = env.run(
        batch(delrange(k("a"), k("c"), seq=1), end_txn(t, locks=[span(k("a"), k("c"))]), txn=t)
    )
    assert inner(br.responses[1]).one_phase_commit  # type: ignore[attr-defined]
    assert env.value(k("b")) is None


def test_one_phase_commit_falls_back_when_the_attempt_fails(env: Env) -> None:
    # Two writes of one key: the plain-write attempt fails, the txn path works.
    t = make_txn(ts(10), anchor=k("a"))
    br, res = env.run(
        batch(
            put(k("a"), b"1", seq=1),
            put(k("a"), b"2", seq=2),
            end_txn(t, locks=[span(k("a"))]),
            txn=t,
        )
    )
    assert not inner(br.responses[2]).one_phase_commit  # type: ignore[attr-defined]
    assert br.header.txn.status == data_pb2.COMMITTED
    assert env.value(k("a")) == b"2"
    assert mvcc_get_intent(env.engine, k("a")) is None
    rec = record(env.engine, t.meta)
    assert rec is not None and rec.status == data_pb2.COMMITTED
    _check_stats(env)


def test_one_phase_commit_not_used(env: Env) -> None:
    # Earlier writes (lock spans not written by this batch).
    t = make_txn(ts(10), anchor=k("a"))
    _write(env, t, k("z"))
    br, _ = env.run(
        batch(put(k("a"), b"1", seq=2), end_txn(t, locks=[span(k("a")), span(k("z"))]), txn=t)
    )
    assert not inner(br.responses[1]).one_phase_commit  # type: ignore[attr-defined]
    assert env.value(k("z")) == b"v-" + k("z")
    # A record exists already (heartbeat).
    t = make_txn(ts(10), anchor=k("b"))
    env.run(batch(heartbeat(t, ts(10)), txn=t))
    br, _ = env.run(batch(put(k("b"), b"1", seq=1), end_txn(t, locks=[span(k("b"))]), txn=t))
    assert not inner(br.responses[1]).one_phase_commit  # type: ignore[attr-defined]
    rec = record(env.engine, t.meta)
    assert rec is not None and rec.status == data_pb2.COMMITTED
    # A later epoch.
    t = make_txn(ts(10), anchor=k("c"), epoch=1)
    br, _ = env.run(batch(put(k("c"), b"1", seq=1), end_txn(t, locks=[span(k("c"))]), txn=t))
    assert not inner(br.responses[1]).one_phase_commit  # type: ignore[attr-defined]
    assert record(env.engine, t.meta) is not None


def test_require_one_phase_commit(env: Env) -> None:
    env.write(k("b"), b"newer", ts(20))
    t = make_txn(ts(10), anchor=k("a"))
    with pytest.raises(WriteTooOldError):
        env.run(
            batch(
                put(k("a"), b"1", seq=1),
                put(k("b"), b"2", seq=2),
                end_txn(t, locks=[span(k("a")), span(k("b"))], require_1pc=True),
                txn=t,
            )
        )
    with pytest.raises(TransactionStatusError):
        env.run(batch(end_txn(t, locks=[span(k("z"))], require_1pc=True), txn=t))
    assert env.value(k("a")) is None
    assert mvcc_get_intent(env.engine, k("a")) is None
    assert record(env.engine, t.meta) is None
