"""The txn wait queue against a scripted seam, on virtual time."""

from __future__ import annotations

import asyncio

import pytest

from crdb_py.kvserver.concurrency import PushWaitResult, TxnWaitQueue
from crdb_py.pb import api_pb2, data_pb2
from crdb_py.sim import vloop
from crdb_py.util.errors import TransactionAbortedError, TransactionStatusError
from crdb_py.util.hlc import HLC, ManualClock, Timestamp, ts_from_proto, ts_to_proto
from tests.kvserver.concurrency.harness import cancel_and_wait

S = 1_000_000_000


def run(main):
    return vloop.run(main(), max_time=600.0)


def txn(tid: bytes, prio: int = 1, ts: int = 10 * S, hb: int = 10 * S) -> data_pb2.Transaction:
    t = data_pb2.Transaction(status=data_pb2.PENDING)
    t.meta.id, t.meta.key, t.meta.priority = tid, tid, prio
    ts_to_proto(Timestamp(ts), t.meta.write_timestamp)
    ts_to_proto(Timestamp(ts), t.meta.min_timestamp)
    ts_to_proto(Timestamp(hb), t.last_heartbeat)
    return t


def push(pushee: data_pb2.Transaction, kind: int = api_pb2.PUSH_ABORT, to: int = 0) -> api_pb2.PushTxnRequest:
    p = api_pb2.PushTxnRequest(push_type=kind)
    p.pushee_txn.CopyFrom(pushee.meta)
    ts_to_proto(Timestamp(to), p.push_to)
    return p


class Seam:
    """query_txn answers from `records` and `waiting`; pushes are not used."""

    def __init__(self) -> None:
        self.records: dict[bytes, data_pb2.Transaction] = {}
        self.waiting: dict[bytes, list[bytes]] = {}
        self.queries: list[bytes] = []

    async def query_txn(self, meta):
        await asyncio.sleep(0)
        self.queries.append(meta.id)
        return self.records[meta.id], list(self.waiting.get(meta.id, []))

    async def push_txn(self, *a, **k):  # pragma: no cover - not used here
        raise AssertionError("the queue never pushes")

    async def resolve_intent(self, update):  # pragma: no cover
        raise AssertionError("the queue never resolves")


def make(seam: Seam, clock=None, **kw) -> tuple[TxnWaitQueue, ManualClock]:
    manual = ManualClock(11 * S)
    q = TxnWaitQueue(seam, clock or HLC(manual).now, **kw)
    return q, manual


def test_record_update_that_satisfies_the_push_wakes_it():
    async def main():
        seam = Seam()
        e, p = txn(b"e"), txn(b"p")
        seam.records = {b"e": e, b"p": p}
        q, _ = make(seam)
        t = asyncio.ensure_future(q.wait_for_pushee(push(e), p, pushee_record=e))
        await asyncio.sleep(0.5)
        assert not t.done() and len(q) == 1
        hb = txn(b"e", hb=11 * S)
        q.on_txn_record_updated(hb)  # a heartbeat does not satisfy an abort push
        await asyncio.sleep(0.1)
        assert not t.done()
        done = txn(b"e")
        done.status = data_pb2.COMMITTED
        q.on_txn_record_updated(done)
        assert await t is PushWaitResult.PUSHEE_UPDATED
        assert len(q) == 0 and q.tracked() == []

    run(main)


def test_timestamp_push_satisfied_by_a_pushed_record():
    async def main():
        seam = Seam()
        e, p = txn(b"e"), txn(b"p")
        seam.records = {b"e": e, b"p": p}
        q, _ = make(seam)
        t = asyncio.ensure_future(
            q.wait_for_pushee(push(e, api_pb2.PUSH_TIMESTAMP, 20 * S), p, pushee_record=e)
        )
        await asyncio.sleep(0.2)
        q.on_txn_record_updated(txn(b"e", ts=19 * S))
        await asyncio.sleep(0.2)
        assert not t.done()
        q.on_txn_record_updated(txn(b"e", ts=20 * S))
        assert await t is PushWaitResult.PUSHEE_UPDATED

    run(main)


def test_expiry_is_noticed_against_the_injected_clock():
    async def main():
        seam = Seam()
        e, p = txn(b"e", hb=10 * S), txn(b"p")
        seam.records = {b"e": e, b"p": p}
        q, manual = make(seam)
        t = asyncio.ensure_future(q.wait_for_pushee(push(e), p))  # queries the pushee first
        await asyncio.sleep(3.0)
        assert not t.done()
        manual.set(15 * S + 1)  # 5 s since the last heartbeat
        t0 = asyncio.get_running_loop().time()
        assert await t is PushWaitResult.PUSHEE_EXPIRED
        assert asyncio.get_running_loop().time() - t0 <= 1.0  # within one check interval
        assert seam.queries.count(b"e") >= 2

    run(main)


def test_heartbeats_keep_the_pushee_alive():
    async def main():
        seam = Seam()
        e, p = txn(b"e", hb=10 * S), txn(b"p")
        seam.records = {b"e": e, b"p": p}
        q, manual = make(seam)
        t = asyncio.ensure_future(q.wait_for_pushee(push(e), p, pushee_record=e))
        for i in range(1, 20):
            await asyncio.sleep(1.0)
            manual.set((10 + i) * S)
            seam.records[b"e"] = txn(b"e", hb=(10 + i) * S)
        assert not t.done()
        await cancel_and_wait(t)
        assert len(q) == 0

    run(main)


def test_waiting_txns_are_transitive():
    async def main():
        seam = Seam()
        e, p1, p2 = txn(b"e"), txn(b"p1"), txn(b"p2")
        seam.records = {b"e": e, b"p1": p1, b"p2": p2}
        seam.waiting = {b"p1": [b"x", b"y"], b"p2": []}
        q, _ = make(seam)
        t1 = asyncio.ensure_future(q.wait_for_pushee(push(e), p1, pushee_record=e))
        t2 = asyncio.ensure_future(q.wait_for_pushee(push(e), p2, pushee_record=e))
        t3 = asyncio.ensure_future(q.wait_for_pushee(push(e), None, pushee_record=e))  # non-txn
        await asyncio.sleep(0.25)
        assert q.waiting_txns(b"e") == [b"p1", b"x", b"y", b"p2"]
        assert q.waiting_txns(b"p1") == []
        for t in (t1, t2, t3):
            await cancel_and_wait(t)
        assert q.waiting_txns(b"e") == [] and len(q) == 0

    run(main)


@pytest.mark.parametrize(("pusher_prio", "pushee_prio", "breaks"), [(2, 1, True), (1, 2, False), (1, 1, None)])
def test_deadlock_is_broken_only_by_the_outranking_pusher(pusher_prio, pushee_prio, breaks):
    async def main():
        seam = Seam()
        e, p = txn(b"e", pushee_prio), txn(b"p", pusher_prio)
        seam.records = {b"e": e, b"p": p}
        seam.waiting = {b"p": [b"e"]}  # e waits for p: a cycle
        q, _ = make(seam, deadlock_check_interval=0.1)
        t = asyncio.ensure_future(q.wait_for_pushee(push(e), p, pushee_record=e))
        await asyncio.sleep(0.15)
        # equal priorities: the larger id wins; b"p" > b"e"
        if breaks is None or breaks:
            assert t.done() and t.result() is PushWaitResult.DEADLOCK
            assert q.deadlocks == 1
        else:
            await asyncio.sleep(2.0)
            assert not t.done()
            await cancel_and_wait(t)
        assert len(q) == (0 if t.done() else 1)

    run(main)


def test_deadlock_not_reported_without_a_cycle():
    async def main():
        seam = Seam()
        e, p = txn(b"e", 1), txn(b"p", 9)
        seam.records = {b"e": e, b"p": p}
        seam.waiting = {b"p": [b"x"]}
        q, _ = make(seam, deadlock_check_interval=0.1)
        t = asyncio.ensure_future(q.wait_for_pushee(push(e), p, pushee_record=e))
        await asyncio.sleep(2.0)
        assert not t.done()
        n = len(seam.queries)
        assert 15 <= n <= 25  # one query per interval while blocked
        await cancel_and_wait(t)
        await asyncio.sleep(1.0)
        assert len(seam.queries) == n  # the detector stopped with the push
        assert q.deadlocks == 0

    run(main)


@pytest.mark.parametrize(
    ("status", "exc"),
    [(data_pb2.ABORTED, TransactionAbortedError), (data_pb2.COMMITTED, TransactionStatusError)],
)
def test_finished_pusher_ends_its_wait(status, exc):
    async def main():
        seam = Seam()
        e, p = txn(b"e"), txn(b"p")
        seam.records = {b"e": e, b"p": p}
        q, _ = make(seam)
        t = asyncio.ensure_future(q.wait_for_pushee(push(e), p, pushee_record=e))
        await asyncio.sleep(0.5)
        fin = txn(b"p")
        fin.status = status
        seam.records[b"p"] = fin
        with pytest.raises(exc):
            await t
        assert len(q) == 0

    run(main)


def test_clear_lets_every_push_out():
    async def main():
        seam = Seam()
        e, f, p = txn(b"e"), txn(b"f"), txn(b"p")
        seam.records = {b"e": e, b"f": f, b"p": p}
        q, _ = make(seam)
        ts = [
            asyncio.ensure_future(q.wait_for_pushee(push(x), p, pushee_record=x)) for x in (e, f)
        ]
        await asyncio.sleep(0.05)
        q.clear()
        assert [await t for t in ts] == [PushWaitResult.QUEUE_CLEARED] * 2
        assert len(q) == 0

    run(main)


def test_record_knowledge_only_moves_forward():
    async def main():
        seam = Seam()
        e, p = txn(b"e"), txn(b"p")
        seam.records = {b"e": e, b"p": p}
        q, _ = make(seam)
        t = asyncio.ensure_future(q.wait_for_pushee(push(e, api_pb2.PUSH_TIMESTAMP, 30 * S), p, pushee_record=e))
        await asyncio.sleep(0.01)
        q.on_txn_record_updated(txn(b"e", ts=25 * S))
        q.on_txn_record_updated(txn(b"e", ts=12 * S))  # stale: ignored
        assert q._records[b"e"].meta.write_timestamp.wall_time == 25 * S
        await cancel_and_wait(t)

    run(main)


def test_a_satisfied_push_learns_what_satisfied_it():
    """Two pushes of one pushee wait together; the second one's failed attempt
    saw a newer intent of the pushee (write ts 25) than the first (10). The
    queue's merged record satisfies the first push's target (20) — so the
    first push must leave with the pushee's meta forwarded to 25, or its
    re-evaluation (which reads no record: it was never written) fails again
    and comes straight back: a livelock found by the bank simulation, seed 207."""
    async def main():
        seam = Seam()
        e, p1, p2 = txn(b"e"), txn(b"p1"), txn(b"p2")
        seam.records = {b"e": e, b"p1": p1, b"p2": p2}
        q, _ = make(seam)
        first = push(e, api_pb2.PUSH_TIMESTAMP, 20 * S)
        t1 = asyncio.ensure_future(q.wait_for_pushee(first, p1, pushee_record=e))
        await asyncio.sleep(0.05)
        newer = txn(b"e", ts=25 * S)
        second = push(newer, api_pb2.PUSH_TIMESTAMP, 30 * S)
        t2 = asyncio.ensure_future(q.wait_for_pushee(second, p2, pushee_record=newer))
        assert await t1 is PushWaitResult.PUSHEE_UPDATED
        assert ts_from_proto(first.pushee_txn.write_timestamp) == Timestamp(25 * S)
        assert not t2.done()  # 25 does not satisfy a push to 30
        t2.cancel()

    run(main)
