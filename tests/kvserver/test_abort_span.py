"""The abort span: a zombie txn (aborted by a pusher, its coordinator not yet
told) cannot read around its removed intents, nor write, on a poisoned range.

Unit tests evaluate batches on one engine (with the declared-span assertion
on); the cluster tests run an in-process 3-node cluster: replication,
splits, restarts, snapshots, and the zombie scenario end to end — with a
control run where the check is a no-op and the zombie reads a value that
never existed for it.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import msgpack
import pytest

from crdb_py.kvclient.db import DB
from crdb_py.kvserver import abortspan
from crdb_py.kvserver.evaluate import declare_keys
from crdb_py.kvserver.intentresolver import IntentResolver
from crdb_py.kvserver.spanset import SpanAccess
from crdb_py.pb import api_pb2, data_pb2
from crdb_py.sim.kvcluster import InProcessKVCluster
from crdb_py.storage import MemEngine
from crdb_py.util import keys
from crdb_py.util.errors import InternalError, TransactionAbortedError
from crdb_py.util.hlc import HLC, ts_to_proto
from tests.kvserver.batcheval.helpers import RU, Env, batch, get, k, make_txn, put, scan, ts
from tests.kvserver.batcheval.txn_helpers import end_txn, heartbeat, resolve, span

ABORTED = data_pb2.ABORTED
COMMITTED = data_pb2.COMMITTED


def poisoned(ru: RU, poison: bool = True) -> RU:
    getattr(ru, ru.WhichOneof("value")).poison = poison
    return ru


def env_with_intent(key: bytes = k("x")) -> tuple[Env, data_pb2.Transaction]:
    """A range where `key` holds "old" and txn T's intent "new"."""
    env = Env(MemEngine())
    env.write(key, b"old", ts(10))
    t = make_txn(ts(20), anchor=key)
    t.meta.priority = 7
    env.run(batch(put(key, b"new", seq=1), txn=t))
    return env, t


def txn_read(env: Env, t: data_pb2.Transaction, key: bytes = k("x")) -> bytes | None:
    br, _ = env.run(batch(get(key, seq=10), txn=t))
    v = br.responses[0].get
    return v.value.raw_bytes if v.HasField("value") else None


# ---- poison / check / clear on one range ---------------------------------------------


def test_poisoned_resolution_writes_the_entry_in_the_same_batch() -> None:
    env, t = env_with_intent()
    assert abortspan.get(env.engine, 1, t.meta.id) is None
    env.run(batch(poisoned(resolve(k("x"), t.meta, ABORTED)), at=ts(30)))
    e = abortspan.get(env.engine, 1, t.meta.id)
    assert e is not None
    assert (e.key, e.priority) == (k("x"), 7)
    assert e.timestamp.wall_time == t.meta.write_timestamp.wall_time
    assert env.value(k("x")) == b"old"  # the intent is gone
    # the entry is keyed by range and txn id, under the range's raw prefix
    assert env.engine.get(keys.abort_span_key(1, t.meta.id)) is not None
    assert keys.abort_span_key(1, t.meta.id).startswith(keys.range_id_prefix(1))


def test_txn_read_sees_its_intent_until_poisoned_then_fails() -> None:
    env, t = env_with_intent()
    assert txn_read(env, t) == b"new"
    env.run(batch(poisoned(resolve(k("x"), t.meta, ABORTED)), at=ts(30)))
    with pytest.raises(TransactionAbortedError) as ei:
        txn_read(env, t)
    assert ei.value.reason == abortspan.ABORT_REASON_ABORT_SPAN
    assert ei.value.txn.status == ABORTED
    # writes fail too, and so do reads of keys the txn never wrote
    with pytest.raises(TransactionAbortedError):
        env.run(batch(put(k("y"), b"z", seq=2), txn=t))
    with pytest.raises(TransactionAbortedError):
        env.run(batch(scan(k("a"), k("z")), txn=t))
    assert env.value(k("y")) is None


def test_a_one_phase_commit_batch_is_checked_too() -> None:
    env, t = env_with_intent()
    env.run(batch(poisoned(resolve(k("x"), t.meta, ABORTED)), at=ts(30)))
    t.meta.priority = 3
    ba = batch(put(k("w"), b"1pc", seq=5), end_txn(t, locks=[span(k("w"))]), txn=t)
    with pytest.raises(TransactionAbortedError) as ei:
        env.run(ba)
    assert ei.value.txn.meta.priority == 7  # the entry's, the higher one
    assert env.value(k("w")) is None


def test_the_check_ignores_other_txns_and_non_txn_requests() -> None:
    env, t = env_with_intent()
    env.run(batch(poisoned(resolve(k("x"), t.meta, ABORTED)), at=ts(30)))
    other = make_txn(ts(40), anchor=k("o"))
    assert txn_read(env, other) == b"old"
    env.run(batch(put(k("o"), b"w", seq=1), txn=other))
    assert env.value(k("x")) == b"old"


def test_lone_rollback_and_heartbeat_are_exempt() -> None:
    env, t = env_with_intent()
    env.run(batch(heartbeat(t, ts(25)), txn=t))
    env.run(batch(poisoned(resolve(k("x"), t.meta, ABORTED)), at=ts(30)))
    br, _ = env.run(batch(heartbeat(t, ts(31)), txn=t))
    assert br.responses[0].heartbeat_txn.txn.meta.id == t.meta.id
    # a commit is refused by the abort span, a rollback goes through
    with pytest.raises(TransactionAbortedError) as ei:
        env.run(batch(end_txn(t, commit=True, locks=[span(k("x"))]), txn=t))
    assert ei.value.reason == abortspan.ABORT_REASON_ABORT_SPAN
    br, _ = env.run(batch(end_txn(t, commit=False, locks=[span(k("x"))]), txn=t))
    assert br.header.txn.status == ABORTED


def test_poison_without_a_removed_intent_writes_nothing() -> None:
    env, t = env_with_intent()
    env.run(batch(poisoned(resolve(k("nothing-here"), t.meta, ABORTED)), at=ts(30)))
    assert abortspan.get(env.engine, 1, t.meta.id) is None
    # a push that resolves COMMITTED or PENDING never poisons
    env.run(batch(poisoned(resolve(k("x"), t.meta, COMMITTED)), at=ts(30)))
    assert abortspan.get(env.engine, 1, t.meta.id) is None
    assert env.value(k("x")) == b"new"


def test_resolution_without_poison_clears_the_entry() -> None:
    env, t = env_with_intent()
    env.run(batch(poisoned(resolve(k("x"), t.meta, ABORTED)), at=ts(30)))
    assert abortspan.get(env.engine, 1, t.meta.id) is not None
    # an unpoisoned ABORTED resolution (the coordinator's own cleanup) clears
    # it even where no intent is left
    env.run(batch(poisoned(resolve(k("x"), t.meta, ABORTED), False), at=ts(31)))
    assert abortspan.get(env.engine, 1, t.meta.id) is None
    assert txn_read(env, t) == b"old"


def test_resolve_intent_range_poisons_and_clears() -> None:
    env, t = env_with_intent(k("b"))
    env.run(batch(put(k("c"), b"new-c", seq=2), txn=t))
    env.run(batch(poisoned(resolve(k("a"), t.meta, ABORTED, end=k("z"))), at=ts(30)))
    assert abortspan.get(env.engine, 1, t.meta.id) is not None
    assert env.value(k("c")) is None
    with pytest.raises(TransactionAbortedError):
        txn_read(env, t, k("c"))
    env.run(batch(poisoned(resolve(k("a"), t.meta, ABORTED, end=k("z")), False), at=ts(31)))
    assert abortspan.get(env.engine, 1, t.meta.id) is None


def test_end_txn_rollback_clears_or_poisons_and_commit_never_writes() -> None:
    env, t = env_with_intent()
    env.run(batch(poisoned(resolve(k("x"), t.meta, ABORTED)), at=ts(30)))
    env.run(batch(end_txn(t, commit=False, locks=[span(k("x"))]), txn=t))
    assert abortspan.get(env.engine, 1, t.meta.id) is None  # poison false: cleared

    env2, t2 = env_with_intent()
    ru = end_txn(t2, commit=False, locks=[span(k("x"))])
    ru.end_txn.poison = True
    env2.run(batch(ru, txn=t2))
    assert abortspan.get(env2.engine, 1, t2.meta.id) is not None
    assert env2.value(k("x")) == b"old"

    env3, t3 = env_with_intent()
    env3.run(batch(end_txn(t3, commit=True, locks=[span(k("x"))]), txn=t3))
    assert abortspan.get(env3.engine, 1, t3.meta.id) is None
    assert env3.value(k("x")) == b"new"


def test_resolutions_and_rollbacks_declare_the_entry_they_may_write() -> None:
    _, t = env_with_intent()
    desc = data_pb2.RangeDescriptor(range_id=5, start_key=b"", end_key=keys.KEY_MAX)
    key = keys.abort_span_key(5, t.meta.id)
    res = declare_keys(desc, batch(resolve(k("x"), t.meta, ABORTED), at=ts(30)))
    assert res.check_allowed(SpanAccess.READ_WRITE, key)
    commit = declare_keys(desc, batch(resolve(k("x"), t.meta, COMMITTED), at=ts(30)))
    assert not commit.check_allowed(SpanAccess.READ_ONLY, key)
    rollback = declare_keys(desc, batch(end_txn(t, commit=False), txn=t))
    assert rollback.check_allowed(SpanAccess.READ_WRITE, key)
    # and the assertion catches an undeclared access of an entry
    from crdb_py.kvserver.evaluate import CheckedReadWriter

    crw = CheckedReadWriter(MemEngine(), commit)
    with pytest.raises(InternalError):
        crw.get(key)


def test_copy_to_skips_entries_past_the_gc_threshold() -> None:
    eng = MemEngine()
    a, b = make_txn(ts(100)), make_txn(ts(5))
    for t in (a, b):
        abortspan.update(eng, 3, t.meta, True)
    assert abortspan.copy_to(eng, eng, 3, 4, threshold=ts(50)) == 1
    assert abortspan.get(eng, 4, a.meta.id) is not None
    assert abortspan.get(eng, 4, b.meta.id) is None
    assert {i for i, _ in abortspan.iterate(eng, 3)} == {a.meta.id, b.meta.id}


# ---- the intent resolver sends the flag --------------------------------------------


class _RecordingKV:
    def __init__(self) -> None:
        self.batches: list[api_pb2.BatchRequest] = []

    async def send(self, ba: api_pb2.BatchRequest) -> api_pb2.BatchResponse:
        self.batches.append(ba)
        return api_pb2.BatchResponse()


def test_intent_resolver_carries_poison_per_update() -> None:
    async def main() -> None:
        kv = _RecordingKV()
        ir = IntentResolver(kv)
        t = make_txn(ts(1))
        up = data_pb2.LockUpdate(status=ABORTED)
        up.span.key = k("a")
        up.txn.CopyFrom(t.meta)
        await ir.resolve_now([up], poison=True)
        await ir.resolve_now([up])
        flags = [b.requests[0].resolve_intent.poison for b in kv.batches]
        assert flags == [True, False]
        # enqueued twice: an ABORTED update keeps the poison of either
        ir.enqueue([up], poison=True)
        ir.enqueue([up])
        await ir.drain()
        assert kv.batches[-1].requests[0].resolve_intent.poison is True

    asyncio.run(main())


# ---- on a cluster --------------------------------------------------------------------


def new_txn(anchor: bytes, clock: HLC, priority: int = 1) -> data_pb2.Transaction:
    t = data_pb2.Transaction(name="t", status=data_pb2.PENDING)
    t.meta.id = os.urandom(16)
    t.meta.key = anchor
    t.meta.priority = priority
    now = clock.now()
    for f in (t.meta.write_timestamp, t.meta.min_timestamp, t.read_timestamp):
        ts_to_proto(now, f)
    return t


def txn_batch(t: data_pb2.Transaction | None, *reqs: RU) -> api_pb2.BatchRequest:
    ba = api_pb2.BatchRequest()
    if t is not None:
        ba.header.txn.CopyFrom(t)
    ba.requests.extend(reqs)
    return ba


async def _started() -> InProcessKVCluster:
    c = InProcessKVCluster(3)
    await c.start()
    db = c.db()
    await db.put(b"warm", b"x")
    await c.wait_replicated()
    await db.admin_split(b"m")
    await c.wait_replicated()
    return c


def _range_id(c: InProcessKVCluster, key: bytes) -> int:
    for n in c.nodes.values():
        for r in n.store.replicas.values():
            if r.desc is not None and r.desc.start_key <= key < r.desc.end_key:
                return r.range_id
    raise AssertionError(f"no range holds {key!r}")


async def _zombie(c: InProcessKVCluster, keys_: list[bytes]) -> data_pb2.Transaction:
    """A txn that wrote `keys_` (its anchor the first) and whose intents were
    then resolved ABORTED with poison, as a pusher would."""
    sender = c.db().sender
    for key in keys_:
        await c.db().put(key, b"old")
    t = new_txn(keys_[0], HLC())
    br = await sender.send(txn_batch(t, *(put(key, b"new", seq=i + 1) for i, key in enumerate(keys_))))
    t.CopyFrom(br.header.txn)
    reqs = [poisoned(resolve(key, t.meta, ABORTED)) for key in keys_]
    await sender.send(txn_batch(None, *reqs))
    return t


async def _read_as(c: InProcessKVCluster, t: data_pb2.Transaction, key: bytes) -> bytes | None:
    br = await c.db().sender.send(txn_batch(t, get(key)))
    v = br.responses[0].get
    return v.value.raw_bytes if v.HasField("value") else None


async def _until(pred: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not pred():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.02)


def test_entry_is_replicated_caught_up_survives_restart_and_ships_in_snapshots() -> None:
    async def main() -> None:
        c = await _started()
        try:
            rid = _range_id(c, b"p")
            busy = {c.leaseholder(rid), c.leaseholder(_range_id(c, b"warm"))}
            down = next(i for i in c.nodes if i not in busy)
            await c.stop_node(down)  # misses the poisoning
            t = await _zombie(c, [b"p"])
            assert abortspan.get(c.nodes[down].engine, rid, t.meta.id) is None
            await c.start_node(down)
            # every replica applies it from the raft log (followers only
            # apply); the one that was down catches up on restart
            await _until(
                lambda: all(abortspan.get(n.engine, rid, t.meta.id) for n in c.nodes.values())
            )
            with pytest.raises(TransactionAbortedError):
                await _read_as(c, t, b"p")
            # what a snapshot ships includes the entry
            lh = c.leaseholder(rid)
            assert lh is not None
            snap = msgpack.unpackb(c.nodes[lh].store.replicas[rid].snapshot_data(), raw=False)
            assert keys.abort_span_key(rid, t.meta.id) in snap["kv"][0::2]
            # restart every node: the entry is still there and still enforced
            for i in list(c.nodes):
                await c.stop_node(i)
            for i in list(c.nodes):
                await c.start_node(i)
            with pytest.raises(TransactionAbortedError) as ei:
                await asyncio.wait_for(_read_as(c, t, b"p"), 20)
            assert ei.value.reason == abortspan.ABORT_REASON_ABORT_SPAN
            assert await c.db().get(b"p") == b"old"
        finally:
            await c.close()

    asyncio.run(asyncio.wait_for(main(), 90))


def test_split_copies_the_abort_span_to_both_sides() -> None:
    async def main() -> None:
        c = await _started()
        try:
            t = await _zombie(c, [b"p", b"x"])
            left_id = _range_id(c, b"p")
            left, right = await c.db().admin_split(b"t")
            assert left.range_id == left_id and right.range_id != left_id
            await c.wait_replicated()
            await _until(
                lambda: all(
                    abortspan.get(n.engine, rid, t.meta.id)
                    for n in c.nodes.values()
                    for rid in (left.range_id, right.range_id)
                )
            )
            for key in (b"p", b"x"):  # left and right of the split
                with pytest.raises(TransactionAbortedError):
                    await _read_as(c, t, key)
            other = new_txn(b"q", HLC())
            assert await _read_as(c, other, b"x") == b"old"
        finally:
            await c.close()

    asyncio.run(asyncio.wait_for(main(), 90))


@pytest.mark.parametrize("check", [True, False], ids=["abort-span", "no-check-control"])
def test_zombie_read_after_a_high_priority_abort(check: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """A low-priority txn writes x and reads it back; a high-priority txn
    writing x aborts it (PUSH_ABORT), removes its intent (poisoned) and
    then rolls back. The zombie, told nothing (no heartbeats), reads x
    again: the abort span fails the read. With the check a no-op, the
    zombie reads "old" — not what it wrote, a state that never existed."""
    if not check:
        monkeypatch.setattr(abortspan, "check_if_txn_aborted", lambda *a, **kw: None)

    async def main() -> None:
        c = await _started()
        try:
            never: asyncio.Future[None] = asyncio.get_running_loop().create_future()

            async def no_heartbeats(_s: float) -> None:
                await never

            db = DB(c.db().sender, heartbeat_sleep=no_heartbeats)
            await db.put(b"x", b"old")
            lo = db.txn("lo", priority=1)
            await lo.put(b"x", b"new")
            assert await lo.get(b"x") == b"new"
            hi = db.txn("hi", priority=100)
            await asyncio.wait_for(hi.put(b"x", b"hi"), 20)  # pushes lo out of the way
            await hi.rollback()
            rid = _range_id(c, b"x")
            lh = c.leaseholder(rid)
            assert lh is not None
            assert abortspan.get(c.nodes[lh].engine, rid, lo.id) is not None
            if check:
                with pytest.raises(TransactionAbortedError) as ei:
                    await lo.get(b"x")
                assert ei.value.reason == abortspan.ABORT_REASON_ABORT_SPAN
                assert lo.finished and not lo.committed
                # the coordinator now knows: its own (unpoisoned) rollback
                # clears the entry on every replica
                await lo.drain()
                await _until(
                    lambda: all(
                        abortspan.get(n.engine, rid, lo.id) is None for n in c.nodes.values()
                    )
                )
            else:
                assert await lo.get(b"x") == b"old"  # the anomaly the abort span prevents
            with pytest.raises(TransactionAbortedError):
                await lo.commit()
            assert await db.get(b"x") == b"old"
        finally:
            await c.close()

    asyncio.run(asyncio.wait_for(main(), 90))
