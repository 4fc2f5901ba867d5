"""The intent resolver against a scripted KV sender: batching, bounded
concurrency, retries with backoff, the synchronous path, and end to end
against a range that evaluates the requests for real."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from crdb_py.kvserver.intentresolver import (
    IntentResolver,
    RetryOptions,
    resolve_batch,
    supersedes,
)
from crdb_py.pb import api_pb2, data_pb2
from crdb_py.storage import MemEngine, mvcc_get_intent
from crdb_py.util.errors import (
    AmbiguousResultError,
    InvalidArgumentError,
    NodeUnavailableError,
    TransactionPushError,
)
from crdb_py.util.hlc import Timestamp
from tests.kvserver.batcheval.helpers import Env, batch, k, make_txn, put, ts
from tests.kvserver.test_txnrecovery import EvalKV


def meta(tid: bytes = b"t" * 16) -> data_pb2.TxnMeta:
    m = data_pb2.TxnMeta(id=tid, key=k("anchor"), epoch=1)
    m.write_timestamp.wall_time = 10
    return m


def point(
    key: bytes, status: int = data_pb2.COMMITTED, tid: bytes = b"t" * 16
) -> data_pb2.LockUpdate:
    up = data_pb2.LockUpdate(status=status)
    up.span.key = key
    up.txn.CopyFrom(meta(tid))
    return up


class ScriptedKV:
    """Records every batch; optionally holds them at a gate and fails them."""

    def __init__(self) -> None:
        self.sent: list[api_pb2.BatchRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.gate: asyncio.Event | None = None
        self.fail: Callable[[int], BaseException | None] = lambda n: None

    async def send(self, ba: api_pb2.BatchRequest) -> api_pb2.BatchResponse:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            copy = api_pb2.BatchRequest()
            copy.CopyFrom(ba)
            self.sent.append(copy)
            n = len(self.sent)
            if self.gate is not None:
                await self.gate.wait()
            else:
                await asyncio.sleep(0)
            err = self.fail(n)
            if err is not None:
                raise err
            br = api_pb2.BatchResponse()
            for ru in ba.requests:
                getattr(br.responses.add(), ru.WhichOneof("value")).SetInParent()
            return br
        finally:
            self.in_flight -= 1

    def keys(self) -> list[bytes]:
        out = []
        for ba in self.sent:
            for ru in ba.requests:
                out.append(getattr(ru, ru.WhichOneof("value")).header.key)
        return out


class FakeSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, d: float) -> None:
        self.delays.append(d)
        await asyncio.sleep(0)


# ---- batching and concurrency ---------------------------------------------------------


def test_enqueue_batches_and_resolves_each_update_once() -> None:
    async def main() -> None:
        kv = ScriptedKV()
        ir = IntentResolver(kv, max_concurrency=2, batch_size=100)
        ir.enqueue(point(k(f"{i:04d}")) for i in range(250))
        await ir.drain()
        assert sorted(len(ba.requests) for ba in kv.sent) == [50, 100, 100]
        assert sorted(kv.keys()) == sorted(k(f"{i:04d}") for i in range(250))
        assert kv.max_in_flight <= 2
        assert ir.intents_resolved == 250 and ir.batches_sent == 3 and ir.pending == 0

    asyncio.run(main())


def test_never_more_than_max_concurrency_batches_in_flight() -> None:
    async def main() -> None:
        kv = ScriptedKV()
        kv.gate = asyncio.Event()
        ir = IntentResolver(kv, max_concurrency=3, batch_size=1)
        ir.enqueue(point(k(f"{i:02d}")) for i in range(20))
        for _ in range(10):
            await asyncio.sleep(0)
        assert kv.in_flight == 3  # the bound is reached, not exceeded
        assert ir.pending == 17
        ir.enqueue([point(k("late"))])  # more work does not start more workers
        for _ in range(10):
            await asyncio.sleep(0)
        assert kv.in_flight == 3
        kv.gate.set()
        await ir.drain()
        assert kv.max_in_flight == 3
        assert len(kv.sent) == 21 and ir.pending == 0

    asyncio.run(main())


def test_updates_enqueued_in_one_turn_or_while_busy_are_coalesced() -> None:
    async def main() -> None:
        kv = ScriptedKV()
        kv.gate = asyncio.Event()
        ir = IntentResolver(kv, max_concurrency=1, batch_size=100)
        for i in range(5):
            ir.enqueue([point(k(f"a{i}"))])
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert [len(ba.requests) for ba in kv.sent] == [5]
        for i in range(7):  # the only worker is busy: these wait together
            ir.enqueue([point(k(f"b{i}"))])
        kv.gate.set()
        await ir.drain()
        assert [len(ba.requests) for ba in kv.sent] == [5, 7]

    asyncio.run(main())


def test_pending_duplicate_keeps_the_more_informative_update() -> None:
    async def main() -> None:
        kv = ScriptedKV()
        ir = IntentResolver(kv)
        pushed = point(k("a"), data_pb2.PENDING)
        pushed.txn.write_timestamp.wall_time = 20
        ir.enqueue([pushed, point(k("b"), data_pb2.ABORTED), point(k("c"), data_pb2.PENDING)])
        ir.enqueue([point(k("a"), data_pb2.ABORTED)])  # final beats a push
        ir.enqueue([pushed])  # a push never replaces a final status
        higher = point(k("c"), data_pb2.PENDING)
        higher.txn.write_timestamp.wall_time = 30
        ir.enqueue([higher, point(k("c"), data_pb2.PENDING)])  # nor a lower push a higher one
        await ir.drain()
        reqs = [ru.resolve_intent for ru in kv.sent[0].requests]
        assert len(kv.sent) == 1 and [r.header.key for r in reqs] == [k("a"), k("b"), k("c")]
        assert [r.status for r in reqs] == [data_pb2.ABORTED, data_pb2.ABORTED, data_pb2.PENDING]
        assert reqs[2].intent_txn.write_timestamp.wall_time == 30

    asyncio.run(main())


def test_supersedes() -> None:
    old = point(k("a"), data_pb2.COMMITTED)
    newer_epoch = point(k("a"), data_pb2.PENDING)
    newer_epoch.txn.epoch = 2
    assert supersedes(newer_epoch, old) and not supersedes(old, newer_epoch)
    assert supersedes(point(k("a"), data_pb2.ABORTED), old)  # same finality: the later wins
    assert not supersedes(point(k("a"), data_pb2.PENDING), old)


def test_point_and_range_updates_become_the_right_requests() -> None:
    span = point(k("a"), data_pb2.ABORTED)
    span.span.end_key = k("m")
    span.ignored_seqnums.add(start=3, end=4)
    ba = resolve_batch([point(k("z")), span])
    assert [ru.WhichOneof("value") for ru in ba.requests] == [
        "resolve_intent",
        "resolve_intent_range",
    ]
    p, r = ba.requests[0].resolve_intent, ba.requests[1].resolve_intent_range
    assert p.header.key == k("z") and not p.header.end_key and p.status == data_pb2.COMMITTED
    assert (r.header.key, r.header.end_key, r.status) == (k("a"), k("m"), data_pb2.ABORTED)
    assert r.intent_txn == meta() and [(s.start, s.end) for s in r.ignored_seqnums] == [(3, 4)]
    assert not ba.header.HasField("txn")


# ---- retries ------------------------------------------------------------------------------


def test_retryable_errors_are_retried_with_exponential_backoff() -> None:
    async def main() -> None:
        kv = ScriptedKV()
        errs = [NodeUnavailableError(2), AmbiguousResultError("x"), NodeUnavailableError(3)]
        kv.fail = lambda n: errs[n - 1] if n <= len(errs) else None
        sleep = FakeSleep()
        ir = IntentResolver(kv, sleep=sleep, retry=RetryOptions(0.05, 0.15, 2.0, 6))
        ir.enqueue([point(k("a"))])
        await ir.drain()
        assert sleep.delays == [0.05, 0.1, 0.15]  # doubled, capped at max_backoff
        assert len(kv.sent) == 4 and ir.intents_resolved == 1 and ir.failures == 0

    asyncio.run(main())


def test_non_retryable_error_is_not_retried_and_raised_on_the_sync_path() -> None:
    async def main() -> None:
        kv = ScriptedKV()
        kv.fail = lambda n: InvalidArgumentError("bad") if n == 1 else None
        sleep = FakeSleep()
        ir = IntentResolver(kv, sleep=sleep)
        with pytest.raises(InvalidArgumentError):
            await ir.resolve_now([point(k("a"))])
        assert len(kv.sent) == 1 and sleep.delays == []
        # the async path logs it and carries on with the next batch
        kv.fail = lambda n: InvalidArgumentError("bad") if n == 2 else None
        ir.enqueue([point(k("b"))])
        await ir.drain()
        ir.enqueue([point(k("c"))])
        await ir.drain()
        assert ir.failures == 1 and ir.intents_resolved == 1 and kv.keys()[-1] == k("c")

    asyncio.run(main())


def test_gives_up_after_max_attempts() -> None:
    async def main() -> None:
        kv = ScriptedKV()
        kv.fail = lambda n: NodeUnavailableError(1)
        sleep = FakeSleep()
        ir = IntentResolver(kv, sleep=sleep, retry=RetryOptions(max_attempts=4))
        with pytest.raises(NodeUnavailableError):
            await ir.resolve_now([point(k("a"))])
        assert len(kv.sent) == 4 and len(sleep.delays) == 3
        ir.enqueue([point(k("b"))])
        await ir.drain()
        assert ir.failures == 1 and len(kv.sent) == 8

    asyncio.run(main())


# ---- synchronous path, cleanup, lifecycle ----------------------------------------------


def test_resolve_now_splits_into_batches_and_waits() -> None:
    async def main() -> None:
        kv = ScriptedKV()
        ir = IntentResolver(kv, batch_size=4)
        await ir.resolve_now([point(k(f"{i}")) for i in range(10)])
        assert sorted(len(ba.requests) for ba in kv.sent) == [2, 4, 4]
        assert ir.intents_resolved == 10
        await ir.resolve_now([])
        assert len(kv.sent) == 3

    asyncio.run(main())


def test_cleanup_txn_resolves_lock_spans_and_in_flight_writes() -> None:
    async def main() -> None:
        kv = ScriptedKV()
        ir = IntentResolver(kv)
        txn = data_pb2.Transaction(status=data_pb2.COMMITTED)
        txn.meta.CopyFrom(meta())
        txn.lock_spans.add(key=k("a"))
        txn.lock_spans.add(key=k("c"), end_key=k("f"))
        txn.in_flight_writes.add(key=k("d"), sequence=2)  # covered by [c, f)
        txn.in_flight_writes.add(key=k("x"), sequence=3)
        await ir.cleanup_txn(txn)
        assert sorted(kv.keys()) == [k("a"), k("c"), k("x")]
        assert all(
            getattr(ru, ru.WhichOneof("value")).status == data_pb2.COMMITTED
            for ru in kv.sent[0].requests
        )
        txn.status = data_pb2.STAGING
        with pytest.raises(InvalidArgumentError):
            await ir.cleanup_txn(txn)

    asyncio.run(main())


def test_close_drops_pending_and_refuses_new_work() -> None:
    async def main() -> None:
        kv = ScriptedKV()
        kv.gate = asyncio.Event()
        ir = IntentResolver(kv, max_concurrency=1, batch_size=1)
        ir.enqueue(point(k(f"{i}")) for i in range(5))
        await asyncio.sleep(0)
        ir.close()
        ir.enqueue([point(k("late"))])
        await ir.drain()
        assert ir.pending == 0 and len(kv.sent) == 1 and ir.intents_resolved == 0

    asyncio.run(main())


class FakeTouchPusher:
    def __init__(self, statuses: dict[bytes, int]) -> None:
        self.statuses = statuses
        self.pushed: list[tuple[bytes, int]] = []

    async def push_txn(self, pusher, pushee, push_type, push_to, *, force=False):  # type: ignore[no-untyped-def]
        self.pushed.append((pushee.id, push_type))
        st = self.statuses[pushee.id]
        if st == data_pb2.PENDING:
            raise TransactionPushError(None)
        out = data_pb2.Transaction(status=st)
        out.meta.CopyFrom(pushee)
        return out


def test_cleanup_intents_touches_owners_and_resolves_only_finished_ones() -> None:
    async def main() -> None:
        kv = ScriptedKV()
        ir = IntentResolver(kv)
        done, live = b"d" * 16, b"l" * 16
        pusher = FakeTouchPusher({done: data_pb2.ABORTED, live: data_pb2.PENDING})
        intents = [
            data_pb2.Intent(key=k("a"), txn=meta(done)),
            data_pb2.Intent(key=k("b"), txn=meta(live)),
            data_pb2.Intent(key=k("c"), txn=meta(done)),
        ]
        ir.cleanup_intents(intents, pusher, Timestamp(100))
        await ir.drain()
        assert sorted(pusher.pushed) == [(done, api_pb2.PUSH_TOUCH), (live, api_pb2.PUSH_TOUCH)]
        assert sorted(kv.keys()) == [k("a"), k("c")]
        assert all(ru.resolve_intent.status == data_pb2.ABORTED for ru in kv.sent[0].requests)

    asyncio.run(main())


# ---- end to end over an evaluating range --------------------------------------------------


def test_resolution_commits_and_aborts_real_intents() -> None:
    async def main() -> None:
        kv = EvalKV(Env(MemEngine()))
        env = kv.env
        t1 = make_txn(ts(10), anchor=k("a"))
        t2 = make_txn(ts(10), anchor=k("x"))
        for key, t in ((k("a"), t1), (k("b"), t1), (k("c"), t1), (k("x"), t2)):
            env.run(batch(put(key, b"v" + key[-1:], seq=1), txn=t))
        ir = IntentResolver(kv, batch_size=2)
        c = point(k("a"), data_pb2.COMMITTED)
        c.txn.CopyFrom(t1.meta)
        rng = point(k("b"), data_pb2.COMMITTED)
        rng.span.end_key = k("d")
        rng.txn.CopyFrom(t1.meta)
        ab = point(k("x"), data_pb2.ABORTED)
        ab.txn.CopyFrom(t2.meta)
        ir.enqueue([c, rng, ab])
        await ir.drain()
        for key in (k("a"), k("b"), k("c"), k("x")):
            assert mvcc_get_intent(env.engine, key) is None
        assert [env.value(key) for key in (k("a"), k("b"), k("c"))] == [b"va", b"vb", b"vc"]
        assert env.value(k("x")) is None
        assert len(kv.sent) == 2 and ir.failures == 0

    asyncio.run(main())


# ---- property: whatever the sizes, calls and failures, every update is resolved ----------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=60, deadline=None)
@given(
    conc=st.integers(1, 4),
    size=st.integers(1, 7),
    calls=st.lists(st.lists(st.integers(0, 40), max_size=12), max_size=8),
    failures=st.sets(st.integers(1, 40), max_size=10),
    yields=st.lists(st.integers(0, 3), min_size=8, max_size=8),
)
def test_every_enqueued_update_is_resolved_within_the_bounds(
    conc: int, size: int, calls: list[list[int]], failures: set[int], yields: list[int]
) -> None:
    async def main() -> None:
        kv = ScriptedKV()
        kv.fail = lambda n: NodeUnavailableError(1) if n in failures else None
        ir = IntentResolver(kv, max_concurrency=conc, batch_size=size, sleep=FakeSleep())
        for call, y in zip(calls, yields, strict=False):
            ir.enqueue(point(k(f"{i:02d}")) for i in call)
            for _ in range(y):
                await asyncio.sleep(0)
        await ir.drain()
        want = {k(f"{i:02d}") for call in calls for i in call}
        assert set(kv.keys()) == want  # nothing lost (no batch failed 6 times in a row here)
        assert kv.max_in_flight <= conc
        assert all(len(ba.requests) <= size for ba in kv.sent)
        assert ir.pending == 0 and ir.failures == 0

    asyncio.run(main())
