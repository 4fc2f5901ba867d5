"""Each interceptor alone over a scripted wrapped sender (no server model)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from crdb_py.kvclient import batch as kb
from crdb_py.kvclient.txn.committer import Committer
from crdb_py.kvclient.txn.heartbeater import Heartbeater
from crdb_py.kvclient.txn.interceptor import Interceptor, TxnState
from crdb_py.kvclient.txn.lock_gatekeeper import LockGatekeeper
from crdb_py.kvclient.txn.metric_recorder import MetricRecorder
from crdb_py.kvclient.txn.rounds import CommitPath
from crdb_py.kvclient.txn.seq_num_allocator import SeqNumAllocator
from crdb_py.kvclient.txn.settings import TxnConfig
from crdb_py.kvclient.txn.span_refresher import SpanRefresher
from crdb_py.pb import api_pb2, data_pb2
from crdb_py.util import errors
from crdb_py.util.hlc import HLC, ManualClock, Timestamp, ts_from_proto, ts_to_proto
from tests.kvclient.txn.helpers import run

Reply = Callable[[api_pb2.BatchRequest], api_pb2.BatchResponse]


class Script:
    """A wrapped sender answering with `reply(ba)` (default: echo, success)."""

    def __init__(self, reply: Reply | None = None) -> None:
        self.sent: list[api_pb2.BatchRequest] = []
        self.reply = reply or echo

    async def send(self, ba: api_pb2.BatchRequest) -> api_pb2.BatchResponse:
        c = api_pb2.BatchRequest()
        c.CopyFrom(ba)
        self.sent.append(c)
        return self.reply(c)


def echo(ba: api_pb2.BatchRequest, status: int | None = None) -> api_pb2.BatchResponse:
    br = api_pb2.BatchResponse()
    for r in ba.requests:
        out = br.responses.add()
        getattr(out, kb.kind(r)).SetInParent()
        if kb.kind(r) == "query_intent":
            out.query_intent.found_intent = True
    br.header.txn.CopyFrom(ba.header.txn)
    if status is not None:
        br.header.txn.status = status
    return br


def state(raw: Script, **cfg: object) -> TxnState:
    txn = data_pb2.Transaction()
    txn.meta.id = b"i" * 16
    txn.meta.key = b"a"
    ts_to_proto(Timestamp(100), txn.meta.write_timestamp)
    ts_to_proto(Timestamp(100), txn.read_timestamp)
    return TxnState(txn, config=TxnConfig(**cfg), clock=HLC(ManualClock(1000)), raw=raw)


def wire(i: Interceptor, below: Script) -> Interceptor:
    i.wrapped = below
    return i


def txn_batch(st: TxnState, *reqs: api_pb2.RequestUnion) -> api_pb2.BatchRequest:
    ba = kb.batch(*reqs)
    ba.header.txn.CopyFrom(st.txn)
    return ba


def end_txn(commit: bool = True, ifw: list[tuple[bytes, int]] = (), locks=()) -> api_pb2.RequestUnion:  # type: ignore[assignment]
    ru = api_pb2.RequestUnion()
    et = ru.end_txn
    et.header.key = b"a"
    et.commit = commit
    for k, s in ifw:
        et.in_flight_writes.add(key=k, sequence=s)
    for k in locks:
        et.lock_spans.add(key=k)
    return ru


def put(k: bytes, seq: int) -> api_pb2.RequestUnion:
    ru = kb.put_request(k, b"v")
    ru.put.header.sequence = seq
    return ru


# ---- seq num allocator ---------------------------------------------------------------


def test_seq_allocator_numbers_writes_and_reads() -> None:
    s = Script()
    st = state(s)
    a = wire(SeqNumAllocator(st), s)
    run(a.send(txn_batch(st, kb.get_request(b"x"), put(b"x", 0), kb.get_request(b"x"))))
    run(a.send(txn_batch(st, kb.delete_range_request(b"a", b"b"), end_txn())))
    seqs = [[kb.inner(r).header.sequence for r in b.requests] for b in s.sent]
    assert seqs == [[0, 1, 1], [2, 3]]
    a.epoch_bumped()
    run(a.send(txn_batch(st, put(b"y", 0))))
    assert s.sent[-1].requests[0].put.header.sequence == 1


# ---- gatekeeper ---------------------------------------------------------------------------


def test_gatekeeper_rejects_a_second_concurrent_batch() -> None:
    gate = asyncio.Event()

    class Slow(Script):
        async def send(self, ba):  # type: ignore[no-untyped-def]
            await gate.wait()
            return await super().send(ba)

    s = Slow()
    st = state(s)
    g = wire(LockGatekeeper(st), s)

    async def main() -> None:
        first = asyncio.ensure_future(g.send(txn_batch(st, kb.get_request(b"x"))))
        await asyncio.sleep(0)
        with pytest.raises(errors.ConcurrentTxnUseError):
            await g.send(txn_batch(st, kb.get_request(b"y")))
        gate.set()
        await first
        await g.send(txn_batch(st, kb.get_request(b"y")))  # free again

    run(main())
    assert len(s.sent) == 2


# ---- heartbeater ----------------------------------------------------------------------------


def test_heartbeater_anchor_and_abort_detection() -> None:
    raw = Script()
    below = Script()
    st = state(raw)
    st.txn.meta.key = b""
    aborted: list[int] = []
    h = Heartbeater(st, sleep=lambda _: asyncio.Event().wait(), on_abort=lambda: aborted.append(1))
    h.wrapped = below

    async def main() -> None:
        await h.send(txn_batch(st, kb.get_request(b"r")))
        assert not st.txn.meta.key and not h.running
        await h.send(txn_batch(st, put(b"w", 1), put(b"v", 2)))
        assert st.txn.meta.key == b"w" and h.running
        assert below.sent[-1].header.txn.meta.key == b"w"
        assert await h.heartbeat_once()
        hb = raw.sent[-1].requests[0].heartbeat_txn
        assert hb.header.key == b"w" and ts_from_proto(hb.now).wall_time == 1000
        raw.reply = lambda ba: echo(ba)  # a record ABORTED in the response
        raw.reply = lambda ba: _hb_status(ba, data_pb2.ABORTED)
        assert not await h.heartbeat_once()
        assert aborted == [1]
        with pytest.raises(errors.TransactionAbortedError):
            await h.send(txn_batch(st, kb.get_request(b"r")))
        # EndTxn gets the anchor and stops the loop.
        h.aborted = None
        ba = txn_batch(st, end_txn())
        ba.requests[0].end_txn.header.key = b""
        await h.send(ba)
        assert below.sent[-1].requests[0].end_txn.header.key == b"w"
        await asyncio.sleep(0)
        assert not h.running

    run(main())


def _hb_status(ba: api_pb2.BatchRequest, status: int) -> api_pb2.BatchResponse:
    br = echo(ba)
    br.responses[0].heartbeat_txn.txn.status = status
    return br


# ---- span refresher -----------------------------------------------------------------------------


def test_refresher_refreshes_read_spans_and_resends() -> None:
    calls = {"n": 0}

    def reply(ba: api_pb2.BatchRequest) -> api_pb2.BatchResponse:
        kinds = [kb.kind(r) for r in ba.requests]
        if kinds == ["put"]:
            calls["n"] += 1
            if calls["n"] == 1:
                raise errors.WriteTooOldError(Timestamp(100), Timestamp(150))
        return echo(ba)

    class Raising(Script):
        async def send(self, ba):  # type: ignore[no-untyped-def]
            c = api_pb2.BatchRequest()
            c.CopyFrom(ba)
            self.sent.append(c)
            return reply(c)

    s = Raising()
    st = state(s)
    r = wire(SpanRefresher(st), s)

    async def main() -> None:
        await r.send(txn_batch(st, kb.get_request(b"k"), kb.scan_request(b"s", b"t")))
        await r.send(txn_batch(st, put(b"w", 1)))

    run(main())
    assert [[kb.kind(x) for x in b.requests] for b in s.sent] == [
        ["get", "scan"],
        ["put"],
        ["refresh", "refresh_range"],
        ["put"],
    ]
    ref = s.sent[2]
    assert ts_from_proto(ref.requests[0].refresh.refresh_from) == Timestamp(100)
    assert ts_from_proto(ref.header.txn.read_timestamp) == Timestamp(150)
    assert ts_from_proto(s.sent[3].header.txn.read_timestamp) == Timestamp(150)
    assert st.read_ts == Timestamp(150) and r.refreshes == 1


def test_refresher_marks_a_resent_commit_as_after_refresh() -> None:
    seen: list[bool] = []
    st_holder: list[TxnState] = []

    def reply(ba: api_pb2.BatchRequest) -> api_pb2.BatchResponse:
        if kb.kind(ba.requests[-1]) == "end_txn":
            seen.append(st_holder[0].commit_after_refresh)
            if len(seen) == 1:
                pushed = data_pb2.Transaction()
                pushed.CopyFrom(ba.header.txn)
                ts_to_proto(Timestamp(300), pushed.meta.write_timestamp)
                raise errors.TransactionRetryError("RETRY_SERIALIZABLE", txn=pushed)
        return echo(ba, data_pb2.COMMITTED)

    class Raising(Script):
        async def send(self, ba):  # type: ignore[no-untyped-def]
            return reply(ba)

    s = Raising()
    st = state(s)
    st_holder.append(st)
    r = wire(SpanRefresher(st), s)
    run(r.send(txn_batch(st, put(b"a", 1), end_txn(ifw=[(b"a", 1)]))))
    assert seen == [False, True] and not st.commit_after_refresh


# ---- committer -------------------------------------------------------------------------------------


def test_committer_parallel_ack_and_explicit_commit() -> None:
    below = Script(lambda ba: echo(ba, data_pb2.STAGING))
    raw = Script(lambda ba: echo(ba, data_pb2.COMMITTED))
    st = state(raw)
    c = wire(Committer(st), below)

    async def main() -> api_pb2.BatchResponse:
        br = await c.send(txn_batch(st, put(b"z", 2), end_txn(ifw=[(b"a", 1), (b"z", 2)])))
        await st.drain()
        return br

    br = run(main())
    assert br.header.txn.status == data_pb2.COMMITTED
    assert st.trace.commit_path is CommitPath.PARALLEL
    (explicit,) = raw.sent
    et = explicit.requests[0].end_txn
    assert et.commit and not et.in_flight_writes and {s.key for s in et.lock_spans} == {b"a", b"z"}


def test_committer_pushed_staging_is_a_retry_not_a_commit() -> None:
    def pushed(ba: api_pb2.BatchRequest) -> api_pb2.BatchResponse:
        br = echo(ba, data_pb2.STAGING)
        ts_to_proto(Timestamp(101), br.header.txn.meta.write_timestamp)
        return br

    below, raw = Script(pushed), Script()
    st = state(raw)
    c = wire(Committer(st), below)
    with pytest.raises(errors.TransactionRetryError) as ei:
        run(c.send(txn_batch(st, put(b"z", 2), end_txn(ifw=[(b"a", 1), (b"z", 2)]))))
    assert ei.value.reason == "RETRY_SERIALIZABLE"
    assert ts_from_proto(ei.value.txn.meta.write_timestamp) == Timestamp(101)
    assert ei.value.txn.status == data_pb2.PENDING
    assert not raw.sent and st.trace.commit_path is CommitPath.NONE


def test_committer_two_phase_split_and_index_mapping() -> None:
    def fail_end(ba: api_pb2.BatchRequest) -> api_pb2.BatchResponse:
        if kb.kind(ba.requests[0]) == "end_txn":
            e = errors.TransactionAbortedError("ABORTED_RECORD_FOUND")
            e.index = 0  # type: ignore[attr-defined]
            raise e
        return echo(ba)

    class Raising(Script):
        async def send(self, ba):  # type: ignore[no-untyped-def]
            c = api_pb2.BatchRequest()
            c.CopyFrom(ba)
            self.sent.append(c)
            return fail_end(c)

    below = Raising()
    st = state(Script(), parallel_commits=False)
    c = wire(Committer(st), below)
    ba = txn_batch(st, kb.get_request(b"q"), put(b"z", 2), end_txn(ifw=[(b"a", 1), (b"z", 2)]))
    with pytest.raises(errors.TransactionAbortedError) as ei:
        run(c.send(ba))
    assert ei.value.index == 2
    assert [[kb.kind(r) for r in b.requests] for b in below.sent] == [["get", "put"], ["end_txn"]]
    et = below.sent[1].requests[0].end_txn
    assert not et.in_flight_writes and {s.key for s in et.lock_spans} == {b"a", b"z"}


def test_committer_elides_end_txn_of_a_txn_that_wrote_nothing() -> None:
    below = Script()
    st = state(Script())
    c = wire(Committer(st), below)
    br = run(c.send(txn_batch(st, end_txn())))
    assert not below.sent and br.header.txn.status == data_pb2.COMMITTED
    assert st.trace.commit_path is CommitPath.READ_ONLY


# ---- metric recorder ------------------------------------------------------------------------------


def test_metric_recorder_classifies_each_batch() -> None:
    s = Script()
    st = state(s)
    m = wire(MetricRecorder(st), s)
    b1 = txn_batch(st, put(b"a", 1))
    b1.header.async_consensus = True
    run(m.send(b1))
    run(m.send(txn_batch(st, kb.get_request(b"x"))))
    run(m.send(txn_batch(st, put(b"b", 2), end_txn())))
    assert [b.rounds for b in st.trace.batches] == [0, 0, 1] and st.trace.rounds == 1
