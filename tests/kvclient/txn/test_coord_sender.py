"""TxnCoordSender: the stack, the txn header, sequences, restarts, the
gatekeeper, the heartbeater, settings, run_txn and the sync facade."""

from __future__ import annotations

import asyncio

import pytest

from crdb_py.kvclient import batch as kb
from crdb_py.kvclient.db import Batch
from crdb_py.kvclient.txn.coord_sender import describe_stack
from crdb_py.kvclient.txn.settings import (
    PARALLEL_COMMITS_ENABLED,
    WRITE_PIPELINING_ENABLED,
    TxnSettings,
)
from crdb_py.kvclient.txn.sync import LoopThread, SyncDB
from crdb_py.pb import data_pb2
from crdb_py.util import errors
from crdb_py.util.hlc import ts_from_proto
from tests.kvclient.txn.helpers import make_db, never, run


def test_stack_order() -> None:
    _, db = make_db(sleep=never)
    assert describe_stack(db.txn().coord) == [
        "lock_gatekeeper",
        "heartbeater",
        "seq_num_allocator",
        "pipeliner",
        "span_refresher",
        "committer",
        "metric_recorder",
    ]


def test_txn_proto_and_headers() -> None:
    server, db = make_db([b"m"], sleep=never)

    async def main():
        now = db.clock.peek()
        t = db.txn("x", priority=7)
        await t.get(b"q")
        await t.run(Batch().put(b"a", b"1").get(b"a").put(b"b", b"2"))
        await t.scan(b"a", b"c")
        await t.commit()
        return now, t

    now, t = run(main())
    txn = t.coord.txn
    assert len(txn.meta.id) == 16 and txn.name == "x" and txn.meta.priority == 7
    rts = ts_from_proto(txn.read_timestamp)
    assert rts > now
    assert ts_from_proto(txn.global_uncertainty_limit) == rts.add(500_000_000)
    assert txn.meta.key == b"a"  # anchor = first written key
    for b in server.log:
        assert b.header.txn.meta.id == txn.meta.id
    seqs = [[(kb.kind(r), kb.inner(r).header.sequence) for r in b.requests] for b in server.log]
    assert seqs[0] == [("get", 0)]
    assert seqs[1] == [("put", 1), ("get", 1), ("put", 2)]
    assert seqs[2] == [("scan", 2)]  # the mixed batch was synchronous: nothing to prove
    assert seqs[3][-1] == ("end_txn", 3)
    assert server.batches_of("end_txn")[0].requests[-1].end_txn.header.key == b"a"


def test_retryable_error_moves_to_next_epoch_same_id() -> None:
    server, db = make_db(sleep=never)

    async def main():
        t = db.txn()
        tid = t.id
        await t.put(b"a", b"1")
        before = t.commit_timestamp
        pushed = data_pb2.Transaction()
        pushed.CopyFrom(t.coord.txn)
        pushed.meta.write_timestamp.wall_time += 777
        server.fail_next("get", errors.TransactionRetryError("RETRY_ASYNC_WRITE_FAILURE", txn=pushed))
        with pytest.raises(errors.TransactionRetryError):
            await t.get(b"zz")
        assert t.id == tid and t.epoch == 1 and t.commit_timestamp.wall_time == before.wall_time + 777
        assert t.read_timestamp == t.commit_timestamp
        assert t.coord.seq.write_seq == 0 and not t.coord.pipeliner.in_flight
        await t.put(b"a", b"2")
        await t.commit()
        assert t.trace.restarts == 1

    run(main())
    assert server.committed_value(b"a") == b"2"


def test_concurrent_use_of_one_txn_fails_clearly() -> None:
    server, db = make_db(sleep=never)
    gate = asyncio.Event()
    orig = server.send

    async def slow_send(ba):
        await gate.wait()
        return await orig(ba)

    server.send = slow_send  # type: ignore[method-assign]

    async def main():
        t = db.txn()
        first = asyncio.ensure_future(t.put(b"a", b"1"))
        await asyncio.sleep(0)
        with pytest.raises(errors.ConcurrentTxnUseError):
            await t.get(b"b")
        gate.set()
        await first
        await t.commit()  # the txn is still fine
        return t

    t = run(main())
    assert t.committed and server.committed_value(b"a") == b"1"


def test_heartbeater_starts_with_first_write_and_stops_at_commit() -> None:
    ticks: list[asyncio.Future[None]] = []

    async def sleep(_: float) -> None:
        f = asyncio.get_running_loop().create_future()
        ticks.append(f)
        await f

    server, db = make_db(sleep=never, heartbeat_interval=1.0)
    db._heartbeat_sleep = sleep  # heartbeats driven by the test

    async def main():
        t = db.txn()
        await t.get(b"a")
        await asyncio.sleep(0)
        assert not ticks  # no write, no loop
        await t.put(b"k", b"1")
        for _ in range(3):
            await asyncio.sleep(0.001)
            ticks[-1].set_result(None)
        await asyncio.sleep(0.001)
        hbs = server.batches_of("heartbeat_txn")
        assert len(hbs) >= 2 and all(b.requests[0].heartbeat_txn.header.key == b"k" for b in hbs)
        assert server.records[t.id].status == data_pb2.PENDING
        await t.commit()
        assert not t.coord.heartbeater.running
        await t.drain()

    run(main())


def test_heartbeat_finding_abort_fails_the_txn_and_cleans_up() -> None:
    server, db = make_db(sleep=never)

    async def main():
        t = db.txn()
        await t.put(b"k", b"1")
        server.abort_record(t.id)
        server.intents.clear()
        await t.put(b"k2", b"1")  # an intent the async abort must clean
        assert not await t.coord.heartbeater.heartbeat_once()
        with pytest.raises(errors.TransactionAbortedError):
            await t.get(b"k")
        assert t.finished and not t.committed
        await t.drain()

    run(main())
    assert not server.intents
    rollbacks = [b for b in server.batches_of("end_txn") if not b.requests[0].end_txn.commit]
    assert rollbacks and {s.key for s in rollbacks[-1].requests[0].end_txn.lock_spans} >= {b"k2"}


def test_run_txn_retries_and_makes_a_new_txn_after_abort() -> None:
    server, db = make_db(sleep=never)
    ids: list[bytes] = []

    async def fn(txn):
        ids.append(txn.id)
        await txn.put(b"a", b"%d" % len(ids))
        if len(ids) == 1:
            server.abort_record(txn.id)
        return len(ids)

    n = run(db.run_txn(fn))
    # The abort removed the pipelined intent: the proof fails first (a restart,
    # same txn), then the commit finds the ABORTED record (a new txn).
    assert n == len(ids) >= 2
    assert len(set(ids)) == 2 and ids[-1] != ids[0]
    assert server.committed_value(b"a") == b"%d" % n


def test_run_txn_gives_up_after_max_retries_and_raises_non_retryable() -> None:
    server, db = make_db(sleep=never)

    async def always_retry(txn):
        raise errors.TransactionRetryError("RETRY_SERIALIZABLE")

    with pytest.raises(errors.TransactionRetryError):
        run(db.run_txn(always_retry, max_retries=3))

    calls = []

    async def cput_fails(txn):
        calls.append(1)
        await txn.put(b"x", b"1")
        await txn.cput(b"y", b"1", b"nope")

    with pytest.raises(errors.ConditionFailedError):
        run(db.run_txn(cput_fails))
    assert calls == [1]
    assert not server.intents  # rolled back


def test_settings_switch_at_run_time_applies_to_new_txns() -> None:
    settings = TxnSettings()
    server, db = make_db(sleep=never)
    db.settings = settings

    async def one():
        t = db.txn()
        await t.put(b"a", b"1")
        await t.commit()
        return t

    assert run(one()).trace.rounds == 1
    settings.set(PARALLEL_COMMITS_ENABLED, "false")
    assert settings.get(PARALLEL_COMMITS_ENABLED) is False
    assert run(one()).trace.rounds == 2
    settings.set(WRITE_PIPELINING_ENABLED, False)
    t = run(one())
    assert t.trace.rounds == 2 and not any(b.async_consensus for b in t.trace.batches)
    with pytest.raises(KeyError):
        settings.set("kv.nope", True)
    with pytest.raises(ValueError):
        settings.set(PARALLEL_COMMITS_ENABLED, "maybe")


@pytest.mark.parametrize("parallel", [True, False])
@pytest.mark.parametrize("pipelining", [True, False])
def test_four_settings_same_results(parallel: bool, pipelining: bool) -> None:
    server, db = make_db(
        [b"k3", b"k6"], sleep=never, parallel_commits=parallel, write_pipelining=pipelining
    )

    async def main():
        for i in range(9):
            await db.put(b"k%d" % i, b"100")

        async def transfer(txn, a: int, b: int) -> None:
            va = int(await txn.get(b"k%d" % a))
            vb = int(await txn.get(b"k%d" % b))
            await txn.put(b"k%d" % a, b"%d" % (va - 7))
            await txn.commit_in_batch(Batch().put(b"k%d" % b, b"%d" % (vb + 7)))

        for i in range(20):
            await db.run_txn(lambda t, i=i: transfer(t, i % 9, (i * 4 + 1) % 9))
        rows = await db.scan(b"k", b"l")
        return sum(int(v) for _, v in rows)

    assert run(main()) == 900
    assert not server.intents


def test_sync_facade_over_a_loop_thread() -> None:
    server, db = make_db([b"m"], sleep=never)
    lt = LoopThread()
    try:
        sdb = SyncDB(db, lt.loop, timeout=10)
        sdb.put(b"a", b"1")

        def fn(txn):
            v = txn.get(b"a")
            txn.put(b"z", v + b"!")
            return v

        assert sdb.run_txn(fn) == b"1"
        assert sdb.get(b"z") == b"1!"
        t = sdb.txn()
        t.put(b"q", b"1")
        t.rollback()
        assert sdb.get(b"q") is None
    finally:
        lt.close()
