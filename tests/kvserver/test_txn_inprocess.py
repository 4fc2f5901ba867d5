"""The server half of transactions on an in-process 3-node cluster, driven by
hand-built batches (the coordinator of M5 is not involved)."""

from __future__ import annotations

import asyncio
import os

from crdb_py.pb import api_pb2, data_pb2
from crdb_py.sim.kvcluster import InProcessKVCluster
from crdb_py.util.hlc import HLC, ts_to_proto


def new_txn(anchor: bytes, clock: HLC, priority: int = 1) -> data_pb2.Transaction:
    t = data_pb2.Transaction(name="t", status=data_pb2.PENDING)
    t.meta.id = os.urandom(16)
    t.meta.key = anchor
    t.meta.priority = priority
    now = clock.now()
    for f in (t.meta.write_timestamp, t.meta.min_timestamp, t.read_timestamp):
        ts_to_proto(now, f)
    ts_to_proto(now.add(500_000_000), t.global_uncertainty_limit)
    return t


def batch(txn: data_pb2.Transaction | None, *reqs: api_pb2.RequestUnion) -> api_pb2.BatchRequest:
    ba = api_pb2.BatchRequest()
    if txn is not None:
        ba.header.txn.CopyFrom(txn)
    ba.requests.extend(reqs)
    return ba


def put(key: bytes, value: bytes, seq: int) -> api_pb2.RequestUnion:
    ru = api_pb2.RequestUnion()
    ru.put.header.key = key
    ru.put.header.sequence = seq
    ru.put.value = value
    return ru


def end_txn(txn: data_pb2.Transaction, locks: list[bytes], commit: bool = True) -> api_pb2.RequestUnion:
    ru = api_pb2.RequestUnion()
    ru.end_txn.header.key = txn.meta.key
    ru.end_txn.commit = commit
    for k in locks:
        ru.end_txn.lock_spans.add(key=k)
    return ru


def heartbeat(txn: data_pb2.Transaction) -> api_pb2.RequestUnion:
    ru = api_pb2.RequestUnion()
    ru.heartbeat_txn.header.key = txn.meta.key
    return ru


async def started(n: int = 3) -> InProcessKVCluster:
    c = InProcessKVCluster(n)
    await c.start()
    db = c.db()
    await db.put(b"warm", b"x")
    await c.wait_replicated()
    await db.admin_split(b"m")
    await c.wait_replicated()
    return c


def test_two_range_txn_commits_and_readers_resolve_its_intents():
    async def main():
        c = await started()
        try:
            sender = c.db().sender
            clock = HLC()
            t = new_txn(b"a", clock)
            br = await sender.send(batch(t, put(b"a", b"1", 1), put(b"z", b"2", 2)))
            t.CopyFrom(br.header.txn)
            br = await sender.send(batch(t, end_txn(t, [b"a", b"z"])))
            assert br.header.txn.status == data_pb2.COMMITTED
            db = c.db()
            # z's intent is on another range than the record: resolved
            # asynchronously, or by the reader pushing a COMMITTED txn.
            assert await db.get(b"z") == b"2"
            assert await db.get(b"a") == b"1"
        finally:
            await c.close()

    asyncio.run(asyncio.wait_for(main(), 60))


def test_conflicting_writer_waits_for_holder_then_proceeds():
    async def main():
        c = await started()
        try:
            sender = c.db().sender
            clock = HLC()
            t1 = new_txn(b"k", clock)
            br = await sender.send(batch(t1, heartbeat(t1)))
            br = await sender.send(batch(t1, put(b"k", b"t1", 1)))
            t1.CopyFrom(br.header.txn)
            db = c.db()
            writer = asyncio.create_task(db.put(b"k", b"plain"))
            await asyncio.sleep(0.5)
            assert not writer.done(), "a write must wait for a live conflicting txn"
            br = await sender.send(batch(t1, end_txn(t1, [b"k"])))
            assert br.header.txn.status == data_pb2.COMMITTED
            await asyncio.wait_for(writer, 10)
            assert await db.get(b"k") == b"plain"
        finally:
            await c.close()

    asyncio.run(asyncio.wait_for(main(), 60))


def test_abandoned_txn_is_aborted_by_whoever_meets_it():
    """A txn whose coordinator stopped heartbeating is aborted once its
    heartbeat expires (5 s) by the reader that meets its intent."""

    async def main():
        c = await started()
        try:
            sender = c.db().sender
            clock = HLC()
            t1 = new_txn(b"r", clock)
            await sender.send(batch(t1, heartbeat(t1)))
            br = await sender.send(batch(t1, put(b"r", b"t1", 1)))
            t1.CopyFrom(br.header.txn)
            db = c.db()
            loop = asyncio.get_running_loop()
            start = loop.time()
            assert await asyncio.wait_for(db.get(b"r"), 20) is None
            waited = loop.time() - start
            assert waited >= 4.0, f"a live txn must not be aborted early ({waited:.1f}s)"
            try:
                await sender.send(batch(t1, end_txn(t1, [b"r"])))
                raise AssertionError("an aborted txn committed")
            except Exception as e:
                assert "TransactionAbortedError" in repr(e), e
            await db.put(b"r", b"next")
            assert await db.get(b"r") == b"next"
        finally:
            await c.close()

    asyncio.run(asyncio.wait_for(main(), 60))


def test_deadlock_across_ranges_is_detected_and_broken():
    """t1 holds a and wants z; t2 holds z and wants a. Both stay alive (they
    heartbeat), so only deadlock detection can free them: exactly one must be
    aborted, well before the 5 s expiry, and the other commits."""

    async def main():
        c = await started()
        try:
            sender = c.db().sender
            clock = HLC()
            t1, t2 = new_txn(b"a", clock), new_txn(b"z", clock)
            for t, k in ((t1, b"a"), (t2, b"z")):
                await sender.send(batch(t, heartbeat(t)))
                br = await sender.send(batch(t, put(k, b"held", 1)))
                t.CopyFrom(br.header.txn)

            async def beat() -> None:
                while True:
                    await asyncio.sleep(0.5)
                    for t in (t1, t2):
                        try:
                            await sender.send(batch(t, heartbeat(t)))
                        except Exception:
                            pass

            hb = asyncio.create_task(beat())
            loop = asyncio.get_running_loop()
            start = loop.time()

            async def cross(t: data_pb2.Transaction, k: bytes) -> str:
                try:
                    br = await sender.send(batch(t, put(k, b"want", 2)))
                    t.CopyFrom(br.header.txn)
                    br = await sender.send(batch(t, end_txn(t, [b"a", b"z"])))
                    return data_pb2.TransactionStatus.Name(br.header.txn.status)
                except Exception as e:
                    return type(e).__name__

            r1, r2 = await asyncio.gather(cross(t1, b"z"), cross(t2, b"a"))
            took = loop.time() - start
            hb.cancel()
            outcomes = sorted([r1, r2])
            assert "COMMITTED" in outcomes, outcomes
            # The loser must restart: aborted by the deadlock breaker, or (if the
            # winner's intents were resolved first) told its write is too old.
            retryable = ("TransactionAbortedError", "TransactionRetryError", "WriteTooOldError")
            assert any(o in retryable for o in outcomes), outcomes
            assert took < 4.5, f"deadlock broken only after {took:.1f}s (expiry, not detection)"
        finally:
            await c.close()

    asyncio.run(asyncio.wait_for(main(), 60))
