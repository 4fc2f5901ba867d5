"""The pipeliner: async consensus, proofs, in-flight writes, footprint, budget."""

from __future__ import annotations

import pytest

from crdb_py.kvclient import batch as kb
from crdb_py.kvclient.db import Batch
from crdb_py.kvclient.txn.interceptor import TxnState
from crdb_py.kvclient.txn.pipeliner import LockFootprint, Pipeliner
from crdb_py.kvclient.txn.settings import TxnConfig
from crdb_py.pb import api_pb2, data_pb2
from crdb_py.util import errors
from crdb_py.util.hlc import HLC, ManualClock
from tests.kvclient.txn.helpers import make_db, never, run


def kinds(ba: api_pb2.BatchRequest) -> list[str]:
    return [kb.kind(r) for r in ba.requests]


# ---- the pipeliner alone, against a scripted sender --------------------------------


class Scripted:
    """Records batches; answers each with empty responses (QueryIntent found)."""

    def __init__(self) -> None:
        self.sent: list[api_pb2.BatchRequest] = []
        self.error: errors.CrdbError | None = None

    async def send(self, ba: api_pb2.BatchRequest) -> api_pb2.BatchResponse:
        c = api_pb2.BatchRequest()
        c.CopyFrom(ba)
        self.sent.append(c)
        if self.error is not None:
            e, self.error = self.error, None
            raise e
        br = api_pb2.BatchResponse()
        for r in ba.requests:
            out = br.responses.add()
            getattr(out, kb.kind(r)).SetInParent()
            if kb.kind(r) == "query_intent":
                out.query_intent.found_intent = True
        br.header.txn.CopyFrom(ba.header.txn)
        return br


def pipeliner(**cfg: object) -> tuple[Pipeliner, Scripted]:
    txn = data_pb2.Transaction()
    txn.meta.id = b"t" * 16
    txn.meta.write_timestamp.wall_time = 10
    txn.read_timestamp.wall_time = 10
    s = Scripted()
    state = TxnState(txn, config=TxnConfig(**cfg), clock=HLC(ManualClock()), raw=s)
    p = Pipeliner(state)
    p.wrapped = s
    return p, s


def batch(*reqs: api_pb2.RequestUnion, seq0: int = 1) -> api_pb2.BatchRequest:
    ba = kb.batch(*reqs)
    ba.header.txn.meta.id = b"t" * 16
    for i, r in enumerate(ba.requests):
        kb.inner(r).header.sequence = seq0 + i
    return ba


def test_point_write_batch_goes_async_and_becomes_in_flight() -> None:
    p, s = pipeliner()
    run(p.send(batch(kb.put_request(b"a", b"1"), kb.delete_request(b"b"))))
    assert s.sent[0].header.async_consensus
    assert dict(p.in_flight) == {b"a": 1, b"b": 2}
    assert len(p.footprint) == 0


def test_pipelining_disabled_or_ranged_or_read_goes_sync() -> None:
    p, s = pipeliner(write_pipelining=False)
    run(p.send(batch(kb.put_request(b"a", b"1"))))
    assert not s.sent[-1].header.async_consensus and not p.in_flight
    assert p.footprint.spans() == [(b"a", b"")]
    p, s = pipeliner()
    run(p.send(batch(kb.delete_range_request(b"a", b"c"))))
    assert not s.sent[-1].header.async_consensus
    assert p.footprint.spans() == [(b"a", b"c")]
    run(p.send(batch(kb.put_request(b"x", b"1"), kb.get_request(b"y"))))
    assert not s.sent[-1].header.async_consensus


def test_overlapping_request_is_preceded_by_a_proof() -> None:
    p, s = pipeliner()
    run(p.send(batch(kb.put_request(b"a", b"1"), kb.put_request(b"b", b"1"))))
    br = run(p.send(batch(kb.get_request(b"a"), seq0=2)))
    assert kinds(s.sent[-1]) == ["query_intent", "get"]
    qi = s.sent[-1].requests[0].query_intent
    assert qi.header.key == b"a" and qi.txn.sequence == 1 and qi.error_if_missing
    assert len(br.responses) == 1 and kb.kind(br.responses[0]) == "get"  # proof stripped
    assert dict(p.in_flight) == {b"b": 2}
    assert p.footprint.spans() == [(b"a", b"")]
    # A scan over b proves it too; a request elsewhere needs no proof.
    run(p.send(batch(kb.get_request(b"zz"), seq0=2)))
    assert kinds(s.sent[-1]) == ["get"]
    run(p.send(batch(kb.scan_request(b"a", b"c"), seq0=2)))
    assert kinds(s.sent[-1]) == ["query_intent", "scan"]
    assert not p.in_flight


def test_commit_proves_every_in_flight_write_and_lists_them() -> None:
    p, s = pipeliner()
    run(p.send(batch(kb.put_request(b"a", b"1"), kb.put_request(b"b", b"1"))))
    et = api_pb2.RequestUnion()
    et.end_txn.commit = True
    et.end_txn.header.key = b"a"
    run(p.send(batch(kb.put_request(b"c", b"1"), et, seq0=3)))
    sent = s.sent[-1]
    assert kinds(sent) == ["query_intent", "query_intent", "put", "end_txn"]
    ifw = [(w.key, w.sequence) for w in sent.requests[-1].end_txn.in_flight_writes]
    assert ifw == [(b"a", 1), (b"b", 2), (b"c", 3)]


def test_missing_intent_becomes_retryable_async_write_failure() -> None:
    p, s = pipeliner()
    run(p.send(batch(kb.put_request(b"a", b"1"))))
    s.error = errors.IntentMissingError(b"a")
    with pytest.raises(errors.TransactionRetryError) as ei:
        run(p.send(batch(kb.get_request(b"a"), seq0=2)))
    assert ei.value.reason == "RETRY_ASYNC_WRITE_FAILURE" and ei.value.retryable


def test_budget_exceeded_falls_back_to_sync_writes() -> None:
    p, s = pipeliner(max_inflight_bytes=4)
    run(p.send(batch(kb.put_request(b"ab", b"1"))))
    assert s.sent[-1].header.async_consensus
    run(p.send(batch(kb.put_request(b"cde", b"1"), seq0=2)))
    assert not s.sent[-1].header.async_consensus
    assert p.in_flight_bytes == 2 and p.footprint.spans() == [(b"cde", b"")]


def test_failed_batch_puts_its_writes_in_the_footprint() -> None:
    p, s = pipeliner(write_pipelining=False)
    s.error = errors.ConditionFailedError(b"x")
    with pytest.raises(errors.ConditionFailedError):
        run(p.send(batch(kb.put_request(b"a", b"1"), kb.cput_request(b"b", b"2", b"1"))))
    assert p.footprint.spans() == [(b"a", b""), (b"b", b"")]


def test_error_index_maps_back_past_the_proofs() -> None:
    p, s = pipeliner()
    run(p.send(batch(kb.put_request(b"a", b"1"))))
    e = errors.ConditionFailedError(b"x")
    e.index = 2  # [qi(a), get(a), cput(b)]
    s.error = e
    with pytest.raises(errors.ConditionFailedError) as ei:
        run(p.send(batch(kb.get_request(b"a"), kb.cput_request(b"b", b"1", None), seq0=2)))
    assert ei.value.index == 1


def test_epoch_bump_moves_in_flight_writes_to_the_footprint() -> None:
    p, _ = pipeliner()
    run(p.send(batch(kb.put_request(b"a", b"1"))))
    p.epoch_bumped()
    assert not p.in_flight and p.footprint.spans() == [(b"a", b"")]


def test_footprint_condenses_but_still_covers_everything() -> None:
    fp = LockFootprint(max_spans=4)
    keys = [b"k%02d" % i for i in range(30)]
    for k in keys:
        fp.add(k)
    fp.add(b"a", b"c")
    fp.add(b"b", b"d")
    spans = fp.spans()
    assert len(spans) <= 4 and fp.condensed
    for k in [*keys, b"a", b"b", b"c\xff"]:
        assert any(s <= k < (e or s + b"\x00") for s, e in spans), k
    fp2 = LockFootprint(max_spans=10)
    fp2.add(b"a")
    fp2.add(b"a")
    fp2.add(b"a", b"b")
    assert fp2.spans() == [(b"a", b"b")]


# ---- through the whole stack on the mock server ---------------------------------


def test_lost_pipelined_write_restarts_the_txn_and_run_txn_recovers() -> None:
    server, db = make_db(sleep=never)
    server.lose_async_write(b"a")
    calls = []

    async def fn(txn):
        calls.append(txn.epoch)
        await txn.put(b"a", b"1")
        return await txn.get(b"a")

    assert run(db.run_txn(fn)) == b"1"
    assert calls == [0, 1]
    assert server.committed_value(b"a") == b"1"


def test_lost_write_never_lets_the_commit_succeed() -> None:
    server, db = make_db([b"m"], sleep=never)
    server.lose_async_write(b"a")

    async def main():
        t = db.txn()
        await t.put(b"a", b"1")
        await t.put(b"z", b"1")
        with pytest.raises(errors.TransactionRetryError):
            await t.commit()
        assert not t.committed and t.epoch == 1

    run(main())
    assert server.committed_value(b"a") is None and server.committed_value(b"z") is None


def test_reads_see_own_pipelined_writes() -> None:
    server, db = make_db(sleep=never)

    async def main():
        t = db.txn()
        await t.put(b"a", b"1")
        await t.put(b"a", b"2")
        assert await t.get(b"a") == b"2"
        assert await t.scan(b"a", b"b") == [(b"a", b"2")]
        await t.commit()

    run(main())
    assert server.committed_value(b"a") == b"2"
    # The second write to a proved the first one first.
    assert [kinds(b) for b in server.log][:2] == [["put"], ["query_intent", "put"]]


def test_batch_with_several_writes_is_one_async_batch() -> None:
    server, db = make_db(sleep=never)

    async def main():
        t = db.txn()
        await t.run(Batch().put(b"a", b"1").put(b"b", b"2").inc(b"c", 3))
        await t.commit()

    run(main())
    assert server.log[0].header.async_consensus
    assert server.committed_value(b"c") == b"3"


def test_limited_scan_over_in_flight_write_is_proven_in_its_own_batch() -> None:
    server, db = make_db(sleep=never)

    async def main():
        t = db.txn()
        await t.put(b"a", b"1")
        await t.put(b"b", b"2")
        rows, resume = await t.scan_page(b"a", b"z", max_rows=5)
        assert rows == [(b"a", b"1"), (b"b", b"2")]
        await t.commit()

    run(main())
    scan_batches = [b for b in server.log if "scan" in kinds(b)]
    assert kinds(scan_batches[0]) == ["scan"] and scan_batches[0].header.max_span_request_keys == 5
    proof = server.log[server.log.index(scan_batches[0]) - 1]
    assert kinds(proof) == ["query_intent", "query_intent"] and not proof.header.max_span_request_keys
