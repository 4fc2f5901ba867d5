from __future__ import annotations

import pytest

from crdb_py.pb import data_pb2
from crdb_py.storage import compute_stats, mvcc_get_intent
from crdb_py.util.hlc import ts_from_proto
from tests.kvserver.batcheval.helpers import Env, batch, inner, k, make_txn, put, ts
from tests.kvserver.batcheval.txn_helpers import bumped, resolve

COMMITTED, ABORTED, PENDING = data_pb2.COMMITTED, data_pb2.ABORTED, data_pb2.PENDING


def _setup(env: Env) -> tuple[data_pb2.Transaction, data_pb2.Transaction]:
    env.write(k("a"), b"old", ts(5))
    t = make_txn(ts(10), anchor=k("a"))
    other = make_txn(ts(10), anchor=k("z"))
    env.run(batch(put(k("a"), b"ta", seq=1), put(k("b"), b"tb", seq=2), txn=t))
    env.run(batch(put(k("c"), b"oc", seq=1), txn=other))
    env.run(batch(put(k("d"), b"td", seq=3), txn=t))
    return t, other


def _stats_ok(env: Env) -> None:
    assert env.stats.counters() == compute_stats(env.engine).counters()


def test_resolve_commit_at_pushed_timestamp(any_env: Env) -> None:
    t, _ = _setup(any_env)
    _, res = any_env.run(batch(resolve(k("a"), bumped(t, ts(20)).meta, COMMITTED), at=ts(100)))
    assert mvcc_get_intent(any_env.engine, k("a")) is None
    assert any_env.value(k("a"), ts(19)) == b"old"
    assert any_env.value(k("a"), ts(20)) == b"ta"
    (up,) = res.resolved_locks
    assert up.span.key == k("a") and up.status == COMMITTED and up.txn.id == t.meta.id
    _stats_ok(any_env)


def test_resolve_abort_and_idempotence(env: Env) -> None:
    t, _ = _setup(env)
    for _ in range(2):
        env.run(batch(resolve(k("a"), t.meta, ABORTED), at=ts(100)))
        assert mvcc_get_intent(env.engine, k("a")) is None
        assert env.value(k("a")) == b"old"
    _stats_ok(env)


def test_resolve_pending_pushes_the_intent(env: Env) -> None:
    t, _ = _setup(env)
    env.run(batch(resolve(k("b"), bumped(t, ts(30)).meta, PENDING), at=ts(100)))
    md = mvcc_get_intent(env.engine, k("b"))
    assert md is not None and ts_from_proto(md.timestamp) == ts(30)
    _stats_ok(env)


def test_resolve_leaves_other_txns_alone(env: Env) -> None:
    t, other = _setup(env)
    env.run(batch(resolve(k("c"), t.meta, ABORTED), at=ts(100)))
    md = mvcc_get_intent(env.engine, k("c"))
    assert md is not None and md.txn.id == other.meta.id


@pytest.mark.parametrize("status", [COMMITTED, ABORTED])
def test_resolve_range(any_env: Env, status: int) -> None:
    t, other = _setup(any_env)
    _, res = any_env.run(batch(resolve(k("a"), t.meta, status, end=k("z")), at=ts(100)))
    for key in (k("a"), k("b"), k("d")):
        assert mvcc_get_intent(any_env.engine, key) is None
    assert mvcc_get_intent(any_env.engine, k("c")) is not None
    want_a = b"ta" if status == COMMITTED else b"old"
    assert any_env.value(k("a")) == want_a
    assert res.resolved_locks[0].span.end_key == k("z")
    _stats_ok(any_env)


def test_resolve_range_honours_the_key_limit(env: Env) -> None:
    t, _ = _setup(env)
    br, res = env.run(batch(resolve(k("a"), t.meta, COMMITTED, end=k("z")), at=ts(100), max_keys=2))
    r = inner(br.responses[0])
    assert r.header.num_keys == 2  # type: ignore[attr-defined]
    assert r.header.resume_span.key == k("d")  # type: ignore[attr-defined]
    assert r.header.resume_span.end_key == k("z")  # type: ignore[attr-defined]
    assert mvcc_get_intent(env.engine, k("d")) is not None
    assert (res.resolved_locks[0].span.key, res.resolved_locks[0].span.end_key) == (k("a"), k("d"))
    env.run(batch(resolve(k("d"), t.meta, COMMITTED, end=k("z")), at=ts(100), max_keys=2))
    assert mvcc_get_intent(env.engine, k("d")) is None


def test_resolve_with_ignored_seqnums(env: Env) -> None:
    t = make_txn(ts(10), anchor=k("a"))
    env.run(batch(put(k("a"), b"1", seq=1), put(k("a"), b"2", seq=2), txn=t))
    ru = resolve(k("a"), t.meta, COMMITTED)
    ru.resolve_intent.ignored_seqnums.add(start=2, end=2)
    env.run(batch(ru, at=ts(100)))
    assert env.value(k("a")) == b"1"
