"""The concurrency manager end to end over fake ranges, on virtual time."""

from __future__ import annotations

import asyncio

import pytest

from crdb_py.kvserver.concurrency import request_from_batch
from crdb_py.kvserver.spanset import SpanAccess, SpanSet
from crdb_py.pb import api_pb2, data_pb2
from crdb_py.sim import vloop
from crdb_py.util.errors import TransactionAbortedError, WriteIntentError
from crdb_py.util.hlc import Timestamp, ts_from_proto, ts_to_proto
from tests.kvserver.concurrency.harness import FakeCluster, FakeTxn, cancel_and_wait, read


def run(main, **kw):
    return vloop.run(main(), max_time=600.0, **kw)


def now() -> float:
    return asyncio.get_running_loop().time()


# ---- waiting for the holder ---------------------------------------------------------------


def test_writer_waits_for_holder_then_proceeds_without_polling():
    async def main():
        c = FakeCluster(b"ab")
        h = FakeTxn(c, b"a1", priority=5)
        await h.write(b"b1", b"h")
        w = FakeTxn(c, b"a2", priority=1)  # cannot push h: waits in h's txn wait queue
        t = asyncio.ensure_future(w.write(b"b1", b"w"))
        await asyncio.sleep(10.0)  # h heartbeats all along
        assert not t.done()
        lt = c.ranges[b"b"].mgr.lock_table
        assert lt.lock_holder(b"b1").id == h.id
        guard = next(iter(lt._locks[b"b1"].writers))[1]
        t0 = now()
        await h.finish(commit=True)
        await t
        assert now() - t0 < 0.01
        # one wake-up per holder change, not one per heartbeat or per tick
        assert guard.wakeups <= 2
        assert c.ranges[b"b"].mgr.waiter.pushes == 1
        assert c.ranges[b"b"].intents[b"b1"].id == w.id
        assert c.ranges[b"b"].values[b"b1"] == b"h"
        await w.finish(commit=True)
        c.assert_quiescent()

    run(main)


def test_fifo_wakeup_on_hot_key():
    async def main():
        c = FakeCluster(b"ab")
        h = FakeTxn(c, b"a0", priority=10)
        await h.write(b"b1", b"h")
        order: list[int] = []
        waiters = [FakeTxn(c, b"a" + bytes([i + 1]), priority=1) for i in range(5)]

        async def go(i: int) -> None:
            await waiters[i].write(b"b1", b"w%d" % i)
            order.append(i)
            await asyncio.sleep(0.5)  # hold the lock a while
            await waiters[i].finish(commit=True)

        tasks = []
        for i in range(5):
            tasks.append(asyncio.ensure_future(go(i)))
            await asyncio.sleep(0.01)
        lt = c.ranges[b"b"].mgr.lock_table
        assert len(lt.queued(b"b1")) == 5
        await h.finish(commit=True)
        await asyncio.gather(*tasks)
        assert order == [0, 1, 2, 3, 4]
        assert c.ranges[b"b"].values[b"b1"] == b"w4"
        c.assert_quiescent()

    run(main)


def test_fifo_is_broken_without_ordering():
    """The FIFO test can fail: a lock table that queues writers LIFO reorders them."""
    from crdb_py.kvserver.concurrency import lock_table as ltmod

    orig = ltmod.insort

    def lifo(lst, item, key=None):
        lst.insert(0, item)

    ltmod.insort = lifo
    try:
        with pytest.raises(AssertionError):
            test_fifo_wakeup_on_hot_key()
    finally:
        ltmod.insort = orig


# ---- pushes -------------------------------------------------------------------------------


def test_read_pushes_timestamp_after_delay():
    async def main():
        c = FakeCluster(b"ab", push_delay=0.05)
        h = FakeTxn(c, b"a1", priority=1)
        await h.write(b"b1", b"h")
        await asyncio.sleep(0.1)
        r = FakeTxn(c, b"a2", priority=9)
        rts = ts_from_proto(r.txn.read_timestamp)
        t0 = now()
        t = asyncio.ensure_future(read(c, b"b1", rts, r))
        await asyncio.sleep(0.04)
        assert not t.done() and c.push_calls == []  # not before the delay
        assert await t is None  # h's intent moved above the read; nothing committed
        assert 0.05 <= now() - t0 < 0.06
        assert c.push_calls == [(r.id, h.id, api_pb2.PUSH_TIMESTAMP, False)]
        rec = c.ranges[b"a"].records[h.id]
        assert rec.status == data_pb2.PENDING
        assert ts_from_proto(rec.meta.write_timestamp) == rts.next()
        assert ts_from_proto(c.ranges[b"b"].intents[b"b1"].write_timestamp) == rts.next()
        assert c.ranges[b"b"].mgr.lock_table.lock_holder(b"b1") is not None  # still h's lock
        await h.finish(commit=True)
        c.assert_quiescent()

    run(main)


def test_read_below_the_lock_does_not_wait():
    async def main():
        c = FakeCluster(b"ab")
        h = FakeTxn(c, b"a1")
        await h.write(b"b1", b"h")
        # a discovered lock at h's timestamp; a reader below it passes
        ss = SpanSet()
        below = ts_from_proto(h.meta.write_timestamp).prev()
        ss.add(SpanAccess.READ_ONLY, b"b1", ts=below)
        req = request_from_batch(_batch_get(b"b1", below), ss)
        m = c.ranges[b"b"].mgr
        m.lock_table.add_discovered_lock(None, b"b1", h.meta)
        g = await asyncio.wait_for(m.sequence(req), 0.001)
        m.finish(g)
        await h.finish(commit=False)
        c.assert_quiescent()

    run(main)


def test_write_pushes_abort():
    async def main():
        c = FakeCluster(b"ab")
        h = FakeTxn(c, b"a1", priority=1)
        await h.write(b"b1", b"h")
        w = FakeTxn(c, b"a2", priority=9)
        t0 = now()
        await w.write(b"b1", b"w")
        assert now() - t0 < 0.01  # txn writes push at once (deadlock_push_delay = 0)
        assert c.push_calls == [(w.id, h.id, api_pb2.PUSH_ABORT, False)]
        assert c.ranges[b"a"].records[h.id].status == data_pb2.ABORTED
        assert c.ranges[b"b"].intents[b"b1"].id == w.id
        await w.finish(commit=True)
        await h.finish(commit=True)  # h's coordinator finds itself aborted
        assert c.ranges[b"b"].values[b"b1"] == b"w"
        c.assert_quiescent()

    run(main)


def test_abandoned_holder_is_aborted_and_cleaned_by_waiter():
    async def main():
        c = FakeCluster(b"ab")
        h = FakeTxn(c, b"a1", priority=9, heartbeat=False)  # coordinator dead
        await h.write(b"b1", b"h")
        w = FakeTxn(c, b"a2", priority=1)
        t0 = now()
        await w.write(b"b1", b"w")
        waited = now() - t0
        assert 4.99 <= waited <= 5.2, waited  # ~ the liveness threshold
        assert c.ranges[b"a"].records[h.id].status == data_pb2.ABORTED
        assert c.ranges[b"b"].intents[b"b1"].id == w.id
        assert b"b1" not in c.ranges[b"b"].values  # h's value never committed
        await w.finish(commit=True)
        c.assert_quiescent()

    run(main)


def test_abandoned_holder_met_by_non_txn_reader():
    async def main():
        c = FakeCluster(b"ab")
        h = FakeTxn(c, b"a1", priority=9, heartbeat=False)
        await h.write(b"b1", b"h")
        await asyncio.sleep(1.0)
        ts = c.clock.now()
        assert await read(c, b"b1", ts) is None
        assert 4.99 <= now() <= 5.3
        c.assert_quiescent()

    run(main)


def test_pusher_aborted_while_waiting_fails_its_request():
    async def main():
        c = FakeCluster(b"ab")
        h = FakeTxn(c, b"a1", priority=9)
        await h.write(b"b1", b"h")
        w = FakeTxn(c, b"a2", priority=1)
        t = asyncio.ensure_future(w.write(b"b1", b"w"))
        await asyncio.sleep(1.0)
        rec = w.home.record(w.meta)
        rec.status = data_pb2.ABORTED  # someone else aborted w
        w.home.put_record(rec)
        with pytest.raises(TransactionAbortedError):
            await t
        assert now() < 1.2
        await h.finish(commit=True)
        c.assert_quiescent()

    run(main)


def test_cancelled_waiter_leaves_no_garbage():
    async def main():
        c = FakeCluster(b"ab")
        h = FakeTxn(c, b"a1", priority=9)
        await h.write(b"b1", b"h")
        w = FakeTxn(c, b"a2", priority=1)
        r = FakeTxn(c, b"a3", priority=1)
        t1 = asyncio.ensure_future(w.write(b"b1", b"w"))
        t2 = asyncio.ensure_future(read(c, b"b1", c.clock.now(), r))
        await asyncio.sleep(2.0)
        m = c.ranges[b"b"].mgr
        assert m.lock_table.waiter_count() == 2
        assert len(c.ranges[b"a"].mgr.txn_wait_queue) == 2
        await cancel_and_wait(t1)
        await cancel_and_wait(t2)
        await asyncio.sleep(0)
        assert m.lock_table.waiter_count() == 0
        assert len(m.latches) == 0
        assert len(c.ranges[b"a"].mgr.txn_wait_queue) == 0
        assert c.ranges[b"a"].mgr.waiting_txns(h.id) == []
        assert m.lock_table.lock_holder(b"b1").id == h.id  # h's lock itself stays
        await h.finish(commit=True)
        assert len(m.lock_table) == 0
        c.assert_quiescent()

    run(main)


# ---- deadlocks -----------------------------------------------------------------------------


async def _cycle(c: FakeCluster, txns: list[FakeTxn]) -> dict[bytes, str]:
    """Txn i writes its own key, then the key of txn i+1 (mod n)."""
    n = len(txns)
    for i, t in enumerate(txns):
        await t.write(t.meta.key + b"k", b"x%d" % i)
    outcome: dict[bytes, str] = {}

    async def second(i: int) -> None:
        t = txns[i]
        try:
            await t.write(txns[(i + 1) % n].meta.key + b"k", b"y%d" % i)
        except TransactionAbortedError:
            outcome[t.id] = "aborted"
            await t.finish(commit=False)
            return
        outcome[t.id] = "committed"
        await t.finish(commit=True)

    await asyncio.gather(*(second(i) for i in range(n)))
    return outcome


@pytest.mark.parametrize("n", [2, 3])
def test_deadlock_cycle_detected_and_one_txn_aborted(n):
    async def main():
        c = FakeCluster(b"abc")
        names = b"abc"[:n]
        # equal priorities; ids ascending along the cycle: only the edge from
        # the last txn to the first has a pusher outranking its pushee
        txns = [
            FakeTxn(c, bytes([names[i]]), priority=1, tid=bytes([0x10 + i]) * 4) for i in range(n)
        ]
        t0 = now()
        outcome = await _cycle(c, txns)
        elapsed = now() - t0
        assert elapsed < 0.5 * n, elapsed  # a few deadlock-check intervals, not an expiry
        aborted = [tid for tid, o in outcome.items() if o == "aborted"]
        assert aborted == [txns[0].id]
        assert all(outcome[t.id] == "committed" for t in txns[1:])
        deadlocks = sum(r.mgr.txn_wait_queue.deadlocks for r in c.ranges.values())
        assert deadlocks == 1
        for i in range(1, n):  # each survivor's second write committed
            key = txns[(i + 1) % n].meta.key + b"k"
            assert c.route(key).values[key] == b"y%d" % i
        c.assert_quiescent()

    run(main)


def test_deadlock_with_mixed_priorities_breaks_at_least_one_edge():
    async def main():
        c = FakeCluster(b"abc")
        prios = [3, 1, 2]
        txns = [FakeTxn(c, bytes([b"abc"[i]]), priority=prios[i]) for i in range(3)]
        outcome = await _cycle(c, txns)
        assert now() < 2.0
        assert "aborted" in outcome.values()
        assert len(outcome) == 3
        # the txn with the highest priority is never the victim
        assert outcome[txns[0].id] == "committed"
        c.assert_quiescent()

    run(main)


@pytest.mark.parametrize("n", [2, 3])
def test_deadlock_hangs_without_detection(n):
    """The broken variant: with detection off, the cycle never resolves (the
    txns heartbeat, so nobody expires). This is what the detector test catches."""

    async def main():
        c = FakeCluster(b"abc", detect_deadlocks=False)
        txns = [
            FakeTxn(c, bytes([b"abc"[i]]), priority=1, tid=bytes([0x10 + i]) * 4) for i in range(n)
        ]
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(_cycle(c, txns), timeout=30.0)
        for t in txns:
            t.stop_heartbeat()

    run(main)


def test_deadlock_detection_is_deterministic():
    def once():
        trace = []

        async def main(loop):
            c = FakeCluster(b"abc")
            txns = [FakeTxn(c, bytes([b"abc"[i]]), tid=bytes([0x20 + i]) * 4) for i in range(3)]
            await _cycle(c, txns)
            trace.extend(c.push_calls)
            trace.append(loop.time())

        vloop.run(main, seed=3, max_time=600.0)
        return trace

    assert once() == once()


# ---- building requests ----------------------------------------------------------------------


def _batch_get(key: bytes, ts: Timestamp) -> api_pb2.BatchRequest:
    ba = api_pb2.BatchRequest()
    ts_to_proto(ts, ba.header.timestamp)
    ba.requests.add().get.header.key = key
    return ba


def test_request_from_batch_lock_spans():
    ba = api_pb2.BatchRequest()
    ts_to_proto(Timestamp(10), ba.header.txn.read_timestamp)
    ts_to_proto(Timestamp(15), ba.header.txn.global_uncertainty_limit)
    ba.header.txn.meta.id = b"t"
    ba.requests.add().get.header.key = b"a"
    sc = ba.requests.add().scan.header
    sc.key, sc.end_key = b"b", b"c"
    ba.requests.add().put.header.key = b"d"
    ri = ba.requests.add().resolve_intent.header
    ri.key = b"e"
    ba.requests.add().end_txn.header.key = b"a"
    req = request_from_batch(ba, SpanSet())
    got = [(str(d.span), d.access, d.ts) for d in req.lock_spans]
    assert got == [
        ("b'a'", SpanAccess.READ_ONLY, Timestamp(15)),
        ("[b'b', b'c')", SpanAccess.READ_ONLY, Timestamp(15)),
        ("b'd'", SpanAccess.READ_WRITE, Timestamp()),
    ]
    assert req.txn_id == b"t"
    # non-transactional: the batch timestamp, forwarded to a given limit
    req2 = request_from_batch(_batch_get(b"a", Timestamp(7)), SpanSet(), uncertainty_limit=Timestamp(9))
    assert [d.ts for d in req2.lock_spans] == [Timestamp(9)]
    assert req2.txn_id is None


def test_clear_wakes_waiters_who_rediscover_the_intent():
    async def main():
        c = FakeCluster(b"ab")
        h = FakeTxn(c, b"a1", priority=9)
        await h.write(b"b1", b"h")
        w = FakeTxn(c, b"a2", priority=1)
        t = asyncio.ensure_future(w.write(b"b1", b"w"))
        await asyncio.sleep(1.0)
        m = c.ranges[b"b"].mgr
        m.clear()  # lease lost and regained: the table forgot everything
        await asyncio.sleep(0.5)
        assert not t.done()
        assert m.lock_table.lock_holder(b"b1").id == h.id  # rediscovered
        assert m.lock_table.waiter_count() == 1
        await h.finish(commit=True)
        await t
        await w.finish(commit=True)
        assert c.ranges[b"b"].values[b"b1"] == b"w"
        c.assert_quiescent()

    run(main)


def test_intent_error_with_several_intents_waits_for_each():
    async def main():
        c = FakeCluster(b"ab")
        h1, h2 = FakeTxn(c, b"a1", priority=9), FakeTxn(c, b"a2", priority=9)
        await h1.write(b"b1", b"1")
        await h2.write(b"b2", b"2")
        m = c.ranges[b"b"].mgr
        ss = SpanSet()
        ts = c.clock.now()
        ss.add(SpanAccess.READ_ONLY, b"b1", b"b3", ts)
        req = request_from_batch(_batch_scan(b"b1", b"b3", ts), ss)
        g = await m.sequence(req)
        intents = []
        for k, h in ((b"b1", h1), (b"b2", h2)):
            it = data_pb2.Intent(key=k)
            it.txn.CopyFrom(h.meta)
            intents.append(it)
        t = asyncio.ensure_future(m.handle_write_intent_error(g, WriteIntentError(intents)))
        await asyncio.sleep(1.0)  # non-txn reader cannot push live high-priority txns
        assert not t.done() and len(m.latches) == 0
        assert g.ltg.wait_state.key == b"b1"
        await h1.finish(commit=True)
        await asyncio.sleep(0.1)
        assert not t.done() and g.ltg.wait_state.key == b"b2"
        await h2.finish(commit=False)
        g2 = await t
        assert g2 is g and g.holds_latches
        m.finish(g)
        c.assert_quiescent()

    run(main)


def _batch_scan(key: bytes, end: bytes, ts: Timestamp) -> api_pb2.BatchRequest:
    ba = api_pb2.BatchRequest()
    ts_to_proto(ts, ba.header.timestamp)
    h = ba.requests.add().scan.header
    h.key, h.end_key = key, end
    return ba


async def _reservation_cycle() -> None:
    """R1 (txn T1) reserves A, then must wait on T2's lock on B; R2 (txn T2)
    queues on A behind R1. With equal priorities nobody wins a push."""
    c = FakeCluster(b"ab")
    h = FakeTxn(c, b"a3", priority=9)
    t1, t2 = FakeTxn(c, b"a1", priority=1), FakeTxn(c, b"a2", priority=1)
    await h.write(b"bA", b"h")
    await t2.write(b"bB", b"t2")
    r1 = asyncio.ensure_future(t1.write_batch([b"bA", b"bB"], b"t1"))
    await asyncio.sleep(0.01)
    r2 = asyncio.ensure_future(t2.write(b"bA", b"t2"))
    await asyncio.sleep(0.01)
    await h.finish(commit=True)  # A goes to R1 as a reservation
    await r2
    assert await t2.finish(commit=True) == data_pb2.COMMITTED
    await r1
    assert await t1.finish(commit=True) == data_pb2.COMMITTED
    assert c.ranges[b"b"].values == {b"bA": b"t1", b"bB": b"t1"}
    c.assert_quiescent()


def test_waiting_request_gives_up_its_reservations():
    async def main():
        await asyncio.wait_for(_reservation_cycle(), timeout=30.0)
        assert now() < 1.0

    run(main)


def test_keeping_reservations_while_waiting_deadlocks_undetected():
    """The broken variant: a waiting request that keeps its reservation
    forms a cycle the txn-level detector cannot see."""
    from crdb_py.kvserver.concurrency.lock_table import LockTable

    orig = LockTable._enqueue

    def keep_reservations(self, g, lock, access, ts):
        self._release_reservations = lambda g: None
        try:
            orig(self, g, lock, access, ts)
        finally:
            del self._release_reservations

    async def main():
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(_reservation_cycle(), timeout=30.0)

    LockTable._enqueue = keep_reservations
    try:
        run(main)
    finally:
        LockTable._enqueue = orig


async def _hot_key(n: int, hold: float) -> tuple[list[int], int, int]:
    """n writers queue on one key; each holds its intent `hold` seconds."""
    c = FakeCluster(b"ab")
    h = FakeTxn(c, b"a0", priority=10)
    await h.write(b"b1", b"h")
    ws = [FakeTxn(c, b"a%d" % (i + 1), priority=1) for i in range(n)]

    async def go(w: FakeTxn) -> None:
        await w.write(b"b1", b"x")
        await asyncio.sleep(hold)
        await w.finish(commit=True)

    tasks = [asyncio.ensure_future(go(w)) for w in ws]
    await asyncio.sleep(0.001)
    lt = c.ranges[b"b"].mgr.lock_table
    guards = [g for _, g in lt._locks[b"b1"].writers]
    assert len(guards) == n
    await h.finish(commit=True)
    await asyncio.gather(*tasks)
    c.assert_quiescent()
    return [g.wakeups for g in guards], len(c.push_calls), c.resolve_calls


def test_hot_key_costs_constant_wakeups_and_pushes_per_waiter():
    async def main():
        wakeups, pushes, _ = await _hot_key(60, hold=0.01)  # queue moves faster than push_delay
        assert max(wakeups) <= 4, wakeups
        assert pushes <= 3 * 60, pushes

    run(main)


def test_hot_key_wakeups_grow_if_every_waiter_hears_of_every_holder(monkeypatch):
    """The wake-up bound can fail: telling every waiter about each new
    holder (instead of the head only) makes wake-ups grow with the queue."""
    from crdb_py.kvserver.concurrency.lock_table import LockTable

    orig = LockTable._set_holder

    def tell_everyone(self, lock, holder):
        changed = lock.holder is None or lock.holder.id != holder.id
        orig(self, lock, holder)
        if changed:
            for w in lock.waiters():
                w._notify()

    monkeypatch.setattr(LockTable, "_set_holder", tell_everyone)

    async def main():
        wakeups, _, _ = await _hot_key(60, hold=0.01)
        assert max(wakeups) > 4

    run(main)
