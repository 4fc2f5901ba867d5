"""MVCC garbage collection: the GC thresholds, GCRequest, and the GC queue.

Unit tests evaluate GCRequests on one engine (with the declared-span
assertion on, `Env`), one rule each; a hypothesis test checks GC against a
model of the history (every read above the threshold answers as before);
the cluster tests run the queue on an in-process 3-node cluster with a tiny
TTL. Each key check is shown able to fail: a GC that also removes the
newest version, a replica that ignores the threshold, a record check that
lets a removed record be re-created.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crdb_py.kvserver import abortspan, gcthreshold
from crdb_py.kvserver.batcheval import txn_record as tr
from crdb_py.kvserver.evaluate import declare_keys
from crdb_py.kvserver.replica import Replica
from crdb_py.kvserver.spanset import SpanAccess
from crdb_py.pb import api_pb2, data_pb2
from crdb_py.sim.kvcluster import InProcessKVCluster
from crdb_py.storage import MemEngine, compute_stats, mvcc_get, mvcc_intent
from crdb_py.storage.mvcc_intent import mvcc_find_garbage, mvcc_garbage_collect_keys
from crdb_py.util import keys
from crdb_py.util.errors import (
    BatchTimestampBeforeGCError,
    InternalError,
    InvalidArgumentError,
    TransactionAbortedError,
    TransactionStatusError,
)
from crdb_py.util.hlc import Timestamp, ts_to_proto
from tests.kvserver.batcheval.helpers import RU, Env, batch, delete, get, k, make_txn, put, ts
from tests.kvserver.batcheval.txn_helpers import end_txn, heartbeat, span

COMMITTED = data_pb2.COMMITTED
ABORTED = data_pb2.ABORTED


# ---- helpers ----------------------------------------------------------------------------


def gc_req(
    *gc_keys: tuple[bytes, Timestamp],
    threshold: Timestamp | None = None,
    txn_threshold: Timestamp | None = None,
    records: list[data_pb2.TxnMeta] | None = None,
    abort_ids: list[bytes] | None = None,
) -> RU:
    ru = RU()
    r = ru.gc
    r.header.key, r.header.end_key = keys.LOCAL_MAX, keys.KEY_MAX
    for key, t in gc_keys:
        ts_to_proto(t, r.keys.add(key=key).timestamp)
    if threshold is not None:
        ts_to_proto(threshold, r.threshold)
    if txn_threshold is not None:
        ts_to_proto(txn_threshold, r.txn_span_gc_threshold)
    r.txn_records.extend(records or [])
    r.abort_span_txn_ids.extend(abort_ids or [])
    return ru


def run_gc(env: Env, threshold: Timestamp, *, resume_every: int = 0) -> int:
    """What the GC queue does to versions: threshold first, then the garbage
    found in chunks. Returns the number of versions removed."""
    env.run(batch(gc_req(threshold=threshold), at=env.now))
    removed = 0
    start: bytes | None = keys.LOCAL_MAX
    while start is not None:
        found, start = mvcc_find_garbage(
            env.engine, start, keys.KEY_MAX, threshold, max_keys=resume_every
        )
        if found:
            br, _ = env.run(batch(gc_req(*found), at=env.now))
            removed += br.responses[0].gc.versions_removed
    return removed


def versions(env: Env, key: bytes) -> list[tuple[Timestamp, bytes]]:
    """(ts, raw value) of every version of `key`, newest first."""
    from crdb_py.storage.mvcc_key import decode_suffix, encode_prefix

    p = encode_prefix(key)
    return [
        (decode_suffix(ek[len(p):]), v)
        for ek, v in env.engine.iter_range(p, p + b"\xff" * 13)
        if len(ek) > len(p)
    ]


def assert_stats_exact(env: Env) -> None:
    assert env.stats.counters() == compute_stats(env.engine).counters()


# ---- which versions go -------------------------------------------------------------------


def test_shadowed_versions_go_and_the_newest_visible_at_the_threshold_stays() -> None:
    env = Env(MemEngine())
    for i, t in enumerate((10, 20, 30, 40)):
        env.write(k("a"), b"v%d" % i, ts(t))
    assert run_gc(env, ts(25)) == 1  # only v0@10: v1@20 is what a read at 25+ sees
    assert [t.wall_time for t, _ in versions(env, k("a"))] == [40, 30, 20]
    assert env.value(k("a"), at=ts(26)) == b"v1"
    assert env.value(k("a"), at=ts(35)) == b"v2"
    assert env.value(k("a")) == b"v3"
    assert_stats_exact(env)


def test_a_threshold_exactly_on_a_version_keeps_it() -> None:
    env = Env(MemEngine())
    env.write(k("a"), b"old", ts(10))
    env.write(k("a"), b"new", ts(20))
    run_gc(env, ts(20))
    assert [t.wall_time for t, _ in versions(env, k("a"))] == [20]
    assert env.value(k("a"), at=ts(21)) == b"new"
    assert_stats_exact(env)


def test_tombstone_newest_below_threshold_removes_the_key_entirely() -> None:
    env = Env(MemEngine())
    env.write(k("a"), b"x", ts(10))
    env.run(batch(delete(k("a")), at=ts(20)))
    env.write(k("b"), b"y", ts(10))
    before = compute_stats(env.engine).key_count
    assert run_gc(env, ts(30)) == 2
    assert versions(env, k("a")) == []
    assert compute_stats(env.engine).key_count == before - 1
    assert env.value(k("b"), at=ts(31)) == b"y"
    assert_stats_exact(env)


def test_a_tombstone_above_the_threshold_is_kept_and_shadows_nothing_below() -> None:
    env = Env(MemEngine())
    env.write(k("a"), b"x", ts(10))
    env.write(k("a"), b"y", ts(15))
    env.run(batch(delete(k("a")), at=ts(40)))
    run_gc(env, ts(30))
    assert [t.wall_time for t, _ in versions(env, k("a"))] == [40, 15]
    assert env.value(k("a"), at=ts(31)) == b"y"
    assert env.value(k("a")) is None
    assert_stats_exact(env)


def test_intents_are_never_collected_and_shield_the_newest_committed_value() -> None:
    env = Env(MemEngine())
    env.write(k("a"), b"c1", ts(10))
    env.write(k("a"), b"c2", ts(20))
    t = make_txn(ts(25), anchor=k("a"))
    env.run(batch(put(k("a"), b"prov", seq=1), txn=t))  # provisional value at 25
    run_gc(env, ts(50))
    vs = versions(env, k("a"))
    # c1 shadowed; c2 stays (the intent may abort); the provisional value stays
    assert [x.wall_time for x, _ in vs] == [25, 20]
    assert mvcc_intent.mvcc_get_intent(env.engine, k("a")) is not None
    assert_stats_exact(env)
    # GC asked to remove the provisional value refuses loudly
    with pytest.raises(InternalError, match="provisional"):
        env.run(batch(gc_req((k("a"), ts(25))), at=env.now))


def test_removing_the_newest_live_value_is_refused() -> None:
    env = Env(MemEngine())
    env.write(k("a"), b"only", ts(10))
    env.run(batch(gc_req(threshold=ts(50)), at=env.now))
    with pytest.raises(InternalError, match="newest, live"):
        env.run(batch(gc_req((k("a"), ts(10))), at=env.now))
    assert env.value(k("a")) == b"only"


def test_gc_keys_above_the_threshold_are_refused() -> None:
    env = Env(MemEngine())
    env.write(k("a"), b"x", ts(10))
    env.write(k("a"), b"y", ts(20))
    env.run(batch(gc_req(threshold=ts(5)), at=env.now))
    with pytest.raises(InvalidArgumentError, match="at or below the GC threshold"):
        env.run(batch(gc_req((k("a"), ts(10))), at=env.now))


def test_find_garbage_resumes_in_bounded_chunks() -> None:
    env = Env(MemEngine())
    for i in range(10):
        env.write(k(f"k{i:02d}"), b"a", ts(10))
        env.write(k(f"k{i:02d}"), b"b", ts(20))
    found, resume = mvcc_find_garbage(env.engine, keys.LOCAL_MAX, keys.KEY_MAX, ts(30), max_keys=3)
    assert [key for key, _ in found] == [k("k00"), k("k01"), k("k02")]
    assert resume == k("k03")
    _, resume = mvcc_find_garbage(env.engine, keys.LOCAL_MAX, keys.KEY_MAX, ts(30), max_records=5)
    assert resume is not None and resume <= k("k03")
    assert run_gc(env, ts(30), resume_every=3) == 10
    assert_stats_exact(env)


def test_a_gc_that_also_removed_the_newest_version_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """The read-equivalence check used below fails on a GC that removes the
    newest visible version (here: garbage reported one version too high)."""
    env = Env(MemEngine())
    env.write(k("a"), b"x", ts(10))
    env.write(k("a"), b"y", ts(20))
    env.write(k("a"), b"z", ts(40))
    real = mvcc_intent.mvcc_find_garbage

    def too_eager(*a: object, **kw: object) -> tuple[list[tuple[bytes, Timestamp]], bytes | None]:
        found, resume = real(*a, **kw)  # type: ignore[arg-type]
        return [(key, ts(20)) for key, _ in found], resume

    monkeypatch.setattr("tests.kvserver.test_gc.mvcc_find_garbage", too_eager)
    run_gc(env, ts(30))
    assert env.value(k("a"), at=ts(31)) != b"y"  # the broken GC changed a read above the threshold


# ---- thresholds -----------------------------------------------------------------------


def test_thresholds_only_move_forward() -> None:
    env = Env(MemEngine())
    _, res = env.run(batch(gc_req(threshold=ts(50), txn_threshold=ts(40)), at=env.now))
    assert (res.gc_threshold, res.txn_span_gc_threshold) == (ts(50), ts(40))
    assert gcthreshold.load(env.engine, 1) == (ts(50), ts(40))
    _, res = env.run(batch(gc_req(threshold=ts(30), txn_threshold=ts(10)), at=env.now))
    assert (res.gc_threshold, res.txn_span_gc_threshold) == (None, None)
    assert gcthreshold.load(env.engine, 1) == (ts(50), ts(40))


def test_gc_declares_write_latches_on_what_it_removes() -> None:
    env = Env(MemEngine())
    meta = make_txn(ts(5), anchor=k("r")).meta
    ba = batch(
        gc_req((k("a"), ts(1)), threshold=ts(9), txn_threshold=ts(9), records=[meta],
               abort_ids=[meta.id]),
        at=env.now,
    )
    spans = declare_keys(env.desc, ba)
    for key in (k("a"), tr.record_key(meta), abortspan.key(1, meta.id),
                keys.range_gc_threshold_key(1), keys.range_txn_span_gc_threshold_key(1)):
        assert spans.check_allowed(SpanAccess.READ_WRITE, key), key


def test_requests_at_or_below_the_threshold_are_refused() -> None:
    from crdb_py.kvserver.gcthreshold import earliest_active_timestamp

    class R:  # just what check_gc_threshold uses
        range_id = 7
        gc_threshold = ts(100)

    check = Replica.check_gc_threshold
    with pytest.raises(BatchTimestampBeforeGCError, match="must be after replica GC threshold") as ei:
        check(R(), batch(get(k("a")), at=ts(100)))  # type: ignore[arg-type]
    assert ei.value.sqlstate == "72000" and ei.value.threshold == ts(100)
    check(R(), batch(get(k("a")), at=ts(100, 1)))  # type: ignore[arg-type]
    t = make_txn(ts(90), ts(120))
    with pytest.raises(BatchTimestampBeforeGCError):
        check(R(), batch(put(k("a"), b"x"), txn=t))  # type: ignore[arg-type]
    # a refresh looks at (refresh_from, read ts]: its refresh_from counts
    ru = RU()
    ru.refresh.header.key = k("a")
    ts_to_proto(ts(99), ru.refresh.refresh_from)
    assert earliest_active_timestamp(batch(ru, txn=make_txn(ts(200)))) == ts(99, 1)
    with pytest.raises(BatchTimestampBeforeGCError):
        check(R(), batch(ru, txn=make_txn(ts(200))))  # type: ignore[arg-type]
    # an old txn can still finish: txn record commands are exempt
    check(R(), batch(heartbeat(t), txn=t))  # type: ignore[arg-type]
    assert earliest_active_timestamp(batch(end_txn(t, commit=False), txn=t)) is None


# ---- txn records and the abort span --------------------------------------------------------


def _finished_record(env: Env, status: int, start: int = 10) -> data_pb2.Transaction:
    t = make_txn(ts(start), anchor=k("anchor"))
    env.run(batch(heartbeat(t), txn=t))
    env.run(batch(end_txn(t, commit=status == COMMITTED), txn=t))
    return t


def test_finished_txn_records_are_removed_and_never_re_created() -> None:
    env = Env(MemEngine())
    committed = _finished_record(env, COMMITTED)
    aborted = _finished_record(env, ABORTED)
    stats_before = env.stats.copy()
    br, _ = env.run(batch(gc_req(txn_threshold=ts(50), records=[committed.meta, aborted.meta]),
                          at=env.now))
    assert br.responses[0].gc.txn_records_removed == 2
    assert tr.read_record(env.engine, committed.meta) is None
    assert env.stats.key_count == stats_before.key_count - 2
    assert_stats_exact(env)
    # The zombie coordinator: a heartbeat, a commit, a replayed commit — refused.
    for ru in (heartbeat(committed), end_txn(committed, commit=True)):
        with pytest.raises(TransactionAbortedError, match="POSSIBLE_REPLAY"):
            env.run(batch(ru, txn=committed))
    # ... not re-creating the record; a rollback only cleans up
    env.run(batch(end_txn(aborted, commit=False), txn=aborted))
    assert tr.read_record(env.engine, committed.meta) is None
    assert tr.read_record(env.engine, aborted.meta) is None
    # a pusher / QueryTxn finds it finished
    push = RU()
    p = push.push_txn
    p.header.key = committed.meta.key
    p.pushee_txn.CopyFrom(committed.meta)
    p.push_type = api_pb2.PUSH_ABORT
    br, _ = env.run(batch(push, at=env.now))
    assert br.responses[0].push_txn.pushee_txn.status == ABORTED
    assert tr.read_record(env.engine, committed.meta) is None
    # a txn that started above the threshold still creates its record
    fresh = make_txn(ts(60), anchor=k("anchor"))
    env.run(batch(heartbeat(fresh), txn=fresh))
    assert tr.read_record(env.engine, fresh.meta) is not None


def test_without_the_record_check_a_zombie_re_creates_its_removed_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The control: a broken `can_create_txn_record` lets the zombie commit a
    txn whose record was garbage-collected."""
    env = Env(MemEngine())
    t = _finished_record(env, ABORTED)
    env.run(batch(gc_req(txn_threshold=ts(50), records=[t.meta]), at=env.now))
    monkeypatch.setattr(gcthreshold, "can_create_txn_record", lambda meta, thr: True)
    env.run(batch(end_txn(t, commit=True), txn=t))
    rec = tr.read_record(env.engine, t.meta)
    assert rec is not None and rec.status == COMMITTED  # the aborted txn "committed"


def test_only_finished_records_under_the_threshold_can_be_removed() -> None:
    env = Env(MemEngine())
    pending = make_txn(ts(10), anchor=k("p"))
    env.run(batch(heartbeat(pending), txn=pending))
    with pytest.raises(InvalidArgumentError, match="PENDING"):
        env.run(batch(gc_req(txn_threshold=ts(50), records=[pending.meta]), at=env.now))
    young = _finished_record(env, COMMITTED, start=80)
    with pytest.raises(InvalidArgumentError, match="could be re-created"):
        env.run(batch(gc_req(txn_threshold=ts(50), records=[young.meta]), at=env.now))
    gone = make_txn(ts(10), anchor=k("q")).meta  # no record: a retried GC skips it
    br, _ = env.run(batch(gc_req(txn_threshold=ts(50), records=[gone]), at=env.now))
    assert br.responses[0].gc.txn_records_removed == 0


def test_one_phase_commit_below_the_txn_threshold_is_not_allowed() -> None:
    env = Env(MemEngine())
    env.run(batch(gc_req(txn_threshold=ts(50)), at=env.now))
    t = make_txn(ts(40), anchor=k("a"))
    with pytest.raises(TransactionAbortedError, match="POSSIBLE_REPLAY"):
        env.run(batch(put(k("a"), b"x", seq=1), end_txn(t, commit=True, locks=[span(k("a"))]), txn=t))


def test_old_abort_span_entries_are_removed_young_ones_stay() -> None:
    env = Env(MemEngine())
    old, young = uuid.uuid4().bytes, uuid.uuid4().bytes
    for txn_id, wall in ((old, 10), (young, 90)):
        e = api_pb2.AbortSpanEntry(key=k("a"))
        ts_to_proto(ts(wall), e.timestamp)
        abortspan.put(env.engine, 1, txn_id, e)
    br, _ = env.run(batch(gc_req(txn_threshold=ts(50), abort_ids=[old, young]), at=env.now))
    assert br.responses[0].gc.abort_span_entries_removed == 1
    assert abortspan.get(env.engine, 1, old) is None
    assert abortspan.get(env.engine, 1, young) is not None


# ---- property: GC never changes a read above the threshold ---------------------------------

_KEYS = [k(c) for c in "abcd"]


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[tuple[int, int, bytes | None]], list[int]]:
    n = draw(st.integers(1, 30))
    ops = [
        (draw(st.integers(0, 3)), 10 * (i + 1), draw(st.sampled_from([b"x", b"yy", b"zzz", None])))
        for i in range(n)
    ]
    gcs = sorted(draw(st.lists(st.integers(1, 10 * n + 20), min_size=1, max_size=3)))
    return ops, gcs


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_gc_at_random_thresholds_keeps_every_read_above_the_threshold(
    h: tuple[list[tuple[int, int, bytes | None]], list[int]],
) -> None:
    ops, gcs = h
    env = Env(MemEngine())
    for ki, wall, v in ops:
        ru = put(_KEYS[ki], v) if v is not None else delete(_KEYS[ki])
        env.run(batch(ru, at=ts(wall)))
    # Reads only change at a version's timestamp: probe there, just above,
    # and around each threshold.
    probes = sorted({w + d for _, w, _ in ops for d in (0, 1)} | {g + d for g in gcs for d in (0, 1)}
                    | {10 * len(ops) + 30})

    def read(key: bytes, t: int) -> bytes | None:
        return mvcc_get(env.engine, key, ts(t)).value

    before = {(key, t): read(key, t) for key in _KEYS for t in probes}
    for g in gcs:
        run_gc(env, ts(g))
        for (key, t), want in before.items():
            if t > g:
                assert read(key, t) == want, (key, t, g)
        assert_stats_exact(env)
        # nothing left that a later GC at the same threshold would remove
        assert mvcc_find_garbage(env.engine, keys.LOCAL_MAX, keys.KEY_MAX, ts(g))[0] == []


def test_collect_keys_refuses_stale_requests_idempotently() -> None:
    env = Env(MemEngine())
    env.write(k("a"), b"x", ts(10))
    env.write(k("a"), b"y", ts(20))
    ks = [(k("a"), ts(10))]
    assert mvcc_garbage_collect_keys(env.engine, ks) == 1
    assert mvcc_garbage_collect_keys(env.engine, ks) == 0  # a retry removes nothing


# ---- the queue on a cluster -----------------------------------------------------------------


def _run(coro: object) -> object:
    return asyncio.run(asyncio.wait_for(coro, 60))  # type: ignore[arg-type]


async def _cluster(**knobs: object) -> InProcessKVCluster:
    c = InProcessKVCluster(3, **knobs)  # type: ignore[arg-type]
    await c.start()
    await c.db().put(b"warm", b"x")
    await c.wait_replicated()
    return c


def _lh_replica(c: InProcessKVCluster, key: bytes) -> Replica:
    for n in c.nodes.values():
        if not n.running:
            continue
        for r in n.store.replicas.values():
            if r.desc is not None and r.desc.start_key <= key < r.desc.end_key and r.owns_valid_lease():
                return r
    raise AssertionError(f"no leaseholder for {key!r}")


async def _get_at(c: InProcessKVCluster, key: bytes, at: Timestamp) -> bytes | None:
    ba = api_pb2.BatchRequest()
    ts_to_proto(at, ba.header.timestamp)
    ba.requests.add().get.header.key = key
    br = await c.db().sender.send(ba)
    v = br.responses[0].get
    return v.value.raw_bytes if v.HasField("value") else None


def test_queue_end_to_end_on_a_cluster() -> None:
    async def main() -> None:
        c = await _cluster(gc_batch_keys=8)
        try:
            db = c.db()
            ks = [b"u%03d" % i for i in range(40)]
            for rnd in range(5):
                for key in ks:
                    await db.put(key, b"%s-%d" % (key, rnd))
            await db.delete(ks[0])
            old_ts = _lh_replica(c, ks[1]).store.clock.now()
            r = _lh_replica(c, ks[1])
            count_before = sum(1 for _ in r.store.engine.iter_range(b"\x01", b"\x02"))
            await asyncio.sleep(0.05)
            info = await r.store.gc_queue.run_now(r.range_id, ttl_seconds=0.01)
            assert info.versions_removed >= 4 * len(ks)
            assert info.requests >= 1 + len(ks) // 8  # thresholds, then bounded batches
            for n in c.nodes.values():  # every replica applied it and agrees
                eng = n.store.engine
                rep = n.store.replicas[r.range_id]
                assert rep.gc_threshold == info.threshold
                assert sum(1 for _ in eng.iter_range(b"\x01", b"\x02")) < count_before - 3 * len(ks)
                assert rep.stats.counters() == compute_stats(eng).counters()
            for key in ks[1:]:
                assert await db.get(key) == b"%s-4" % key
            assert await db.get(ks[0]) is None
            with pytest.raises(BatchTimestampBeforeGCError, match="GC threshold"):
                await _get_at(c, ks[1], old_ts)
        finally:
            await c.close()

    _run(main())


def test_queue_removes_old_txn_records_and_abort_span_entries_on_a_cluster() -> None:
    async def main() -> None:
        c = await _cluster(gc_txn_cleanup_threshold_nanos=1)
        try:
            db = c.db()

            async def txn_fn(txn: object) -> None:
                await txn.put(b"t1", b"a")  # type: ignore[attr-defined]
                await txn.put(b"t2", b"b")  # type: ignore[attr-defined]

            for _ in range(3):
                await db.run_txn(txn_fn)
            r = _lh_replica(c, b"t1")
            lo, hi = keys.range_local_span(r.desc.start_key, r.desc.end_key)  # type: ignore[union-attr]

            def records() -> int:
                return sum(
                    1 for ek, _ in r.store.engine.iter_range(b"\x01" + lo, b"\x01" + hi)
                    if b"txn-" in ek
                )

            e = api_pb2.AbortSpanEntry(key=b"t1")
            ts_to_proto(Timestamp(1, 0), e.timestamp)
            abortspan.put(r.store.engine, r.range_id, uuid.uuid4().bytes, e)  # an ancient entry
            await asyncio.sleep(0.05)
            info = await r.store.gc_queue.run_now(r.range_id)
            assert info.abort_span_removed == 1
            assert info.txn_records_removed >= 1 and records() == 0
            assert await db.get(b"t1") == b"a"
        finally:
            await c.close()

    _run(main())


def test_threshold_survives_split_snapshot_and_restart() -> None:
    async def main() -> None:
        c = await _cluster()
        try:
            db = c.db()
            for i in range(3):
                await db.put(b"s", b"%d" % i)
            r = _lh_replica(c, b"s")
            await asyncio.sleep(0.02)
            info = await r.store.gc_queue.run_now(r.range_id, ttl_seconds=0.01)
            thr = info.threshold
            left, right = await db.admin_split(b"p")
            await c.wait_replicated()
            for n in c.nodes.values():
                for rid in (left.range_id, right.range_id):
                    rep = n.store.replicas[rid]
                    assert rep.gc_threshold == thr
                    assert gcthreshold.gc_threshold(n.store.engine, rid) == thr
            await c.stop_node(2)
            await c.start_node(2)
            assert c.nodes[2].store.replicas[right.range_id].gc_threshold == thr
            # a snapshot carries it: ship one to a fresh engine
            rep = c.nodes[1].store.replicas[right.range_id]
            from crdb_py.raft import Snapshot, SnapshotMetadata

            data = rep.snapshot_data()
            fresh = c.nodes[3].store.replicas[right.range_id]
            fresh.gc_threshold = Timestamp()
            b = fresh.store.engine.new_batch()
            fresh.install_snapshot(
                Snapshot(data, SnapshotMetadata(fresh.raft_storage.conf_state(),
                                                rep.applied.raft_applied_index, 5)), b)
            assert fresh.gc_threshold == thr
            assert any(kk == keys.range_gc_threshold_key(right.range_id) for kk, _ in b.mutations())
        finally:
            await c.close()

    _run(main())


def test_a_replica_ignoring_the_threshold_serves_a_read_of_collected_history() -> None:
    """The control for the threshold check: without it a read below the
    threshold silently returns a wrong (collected) answer."""

    async def main() -> None:
        c = await _cluster()
        try:
            db = c.db()
            await db.put(b"h", b"old")
            t_old = _lh_replica(c, b"h").store.clock.now()
            await db.put(b"h", b"new")
            await asyncio.sleep(0.02)
            r = _lh_replica(c, b"h")
            await r.store.gc_queue.run_now(r.range_id, ttl_seconds=0.01)
            for n in c.nodes.values():
                for rep in n.store.replicas.values():
                    rep.check_gc_threshold = lambda ba: None  # type: ignore[method-assign]
            assert await _get_at(c, b"h", t_old) is None  # "old" was collected: wrong answer
        finally:
            await c.close()

    _run(main())


def test_the_queue_runs_by_itself_with_the_ttl_from_the_cluster_setting() -> None:
    """The store's queue tick runs the GC queue every `gc_queue_interval`;
    the TTL is the cluster setting gc.ttlseconds (the store default is 25 h,
    so nothing would be collected without it)."""
    from crdb_py.kvserver.gc_queue import GC_TTL_SETTING_KEY

    async def main() -> None:
        c = await _cluster(gc_queue_interval=0.1)
        try:
            db = c.db()
            await db.put(GC_TTL_SETTING_KEY, b"0.05")
            for i in range(3):
                await db.put(b"auto", b"%d" % i)
            r = _lh_replica(c, b"auto")
            assert await r.store.gc_queue.ttl_seconds() == 0.05
            with pytest.raises(InvalidArgumentError):
                await r.store.gc_queue.run_now(r.range_id, ttl_seconds=-1)
            deadline = asyncio.get_running_loop().time() + 20
            while r.gc_threshold.is_empty() or len(versions(Env(r.store.engine), b"auto")) > 1:
                assert asyncio.get_running_loop().time() < deadline, "the queue never ran"
                await asyncio.sleep(0.05)
            assert await db.get(b"auto") == b"2"
        finally:
            await c.close()

    _run(main())


def test_a_zombie_cannot_re_create_its_collected_record_on_a_cluster() -> None:
    """A committed txn's record is collected; the coordinator's replayed
    HeartbeatTxn / EndTxn then fail as aborted instead of writing it again."""
    import os

    from crdb_py.util.hlc import HLC
    from tests.kvserver.batcheval.txn_helpers import span

    async def main() -> None:
        c = await _cluster(gc_txn_cleanup_threshold_nanos=1)
        try:
            sender = c.db().sender
            t = data_pb2.Transaction(name="z", status=data_pb2.PENDING)
            t.meta.id, t.meta.key = os.urandom(16), b"z1"
            now = HLC().now()
            for f in (t.meta.write_timestamp, t.meta.min_timestamp, t.read_timestamp):
                ts_to_proto(now, f)

            def send(*reqs: RU) -> api_pb2.BatchRequest:
                ba = api_pb2.BatchRequest()
                ba.header.txn.CopyFrom(t)
                ba.requests.extend(reqs)
                return ba

            br = await sender.send(send(put(b"z1", b"v", seq=1), put(b"z2", b"w", seq=2)))
            t.CopyFrom(br.header.txn)
            locks = [span(b"z1"), span(b"z2")]
            await sender.send(send(heartbeat(t)))
            await sender.send(send(end_txn(t, commit=True, locks=locks)))
            with pytest.raises(TransactionStatusError, match="already COMMITTED"):
                await sender.send(send(end_txn(t, commit=True, locks=locks)))
            await asyncio.sleep(0.02)
            r = _lh_replica(c, b"z1")
            info = await r.store.gc_queue.run_now(r.range_id)
            assert info.txn_records_removed >= 1
            assert tr.read_record(r.store.engine, t.meta) is None
            for ru in (heartbeat(t), end_txn(t, commit=True, locks=locks)):
                with pytest.raises(TransactionAbortedError, match="POSSIBLE_REPLAY"):
                    await sender.send(send(ru))
            assert tr.read_record(r.store.engine, t.meta) is None
            assert (await c.db().get(b"z1"), await c.db().get(b"z2")) == (b"v", b"w")
        finally:
            await c.close()

    _run(main())
