"""The DB API: over a DistSender + fake cluster, and over a scripted Sender."""

from __future__ import annotations

import pytest

from crdb_py.kvclient import batch as kb
from crdb_py.kvclient.db import DB, Batch, KVOps
from crdb_py.kvclient.sender import SenderFunc, raise_if_error
from crdb_py.pb import api_pb2
from crdb_py.util import errors
from crdb_py.util.errwire import error_to_proto
from crdb_py.util.hlc import Timestamp
from tests.kvclient.helpers import letter_cluster, make_sender, run, user_rows


def make_db():
    c = letter_cluster()
    ds, _ = make_sender(c)
    return c, DB(ds)


def test_point_operations() -> None:
    c, db = make_db()

    async def main() -> None:
        assert await db.get(b"c0") == b"v-c0"
        assert await db.get(b"nope") is None
        await db.put(b"new", b"1")
        assert await db.get(b"new") == b"1"
        await db.cput(b"new", b"2", b"1")
        assert await db.get(b"new") == b"2"
        with pytest.raises(errors.ConditionFailedError) as ei:
            await db.cput(b"new", b"3", b"1")
        assert ei.value.actual_value == b"2" and ei.value.index == 0
        await db.cput(b"fresh", b"x", None)
        with pytest.raises(errors.ConditionFailedError) as ei:
            await db.cput(b"fresh", b"y", None)
        assert ei.value.actual_value == b"x"
        assert await db.inc(b"ctr", 5) == 5
        assert await db.inc(b"ctr") == 6
        assert await db.delete(b"new") is True
        assert await db.delete(b"new") is False
        assert await db.get(b"new") is None

    run(main())


def test_scans_across_ranges() -> None:
    c, db = make_db()

    async def main() -> None:
        assert await db.scan(b"a", b"z") == user_rows(c, b"a", b"z")
        assert await db.reverse_scan(b"b1", b"q") == user_rows(c, b"b1", b"q")[::-1]
        assert await db.scan(b"c", b"z", max_rows=3) == user_rows(c, b"c", b"z")[:3]
        assert await db.reverse_scan(b"c", b"z", max_rows=3) == user_rows(c, b"c", b"z")[::-1][:3]
        rows, resume = await db.scan_page(b"c", b"z", max_rows=3)
        assert resume == (b"d1", b"z")
        more, resume = await db.scan_page(*resume, max_rows=100)
        assert rows + more == user_rows(c, b"c", b"z") and resume is None

    run(main())


def test_delete_range_across_ranges() -> None:
    c, db = make_db()

    async def main() -> None:
        want = [k for k, _ in user_rows(c, b"d", b"h")]
        assert await db.delete_range(b"d", b"h", return_keys=True) == want
        assert await db.scan(b"d", b"h") == []
        assert await db.get(b"h0") == b"v-h0"

    run(main())


def test_batch_results_in_request_order() -> None:
    c, db = make_db()

    async def main() -> None:
        b = db.new_batch()
        b.put(b"x5", b"new").get(b"c1").scan(b"e", b"g").inc(b"n", 2).delete(b"q0")
        res = await db.run(b)
        assert [r.kind for r in res] == ["put", "get", "scan", "increment", "delete"]
        assert res[1].value == b"v-c1"
        assert res[2].rows == user_rows(c, b"e", b"g")
        assert res[3].new_value == 2 and res[4].found
        assert b.results is res and c.data[b"x5"] == b"new"

    run(main())


def test_admin_split_and_transfer_lease() -> None:
    c, db = make_db()

    async def main() -> None:
        before = c.range_for(b"g").desc.range_id
        left, right = await db.admin_split(b"g1")
        assert left.range_id == before and left.end_key == b"g1"
        assert right.start_key == b"g1" and right.end_key == b"h"
        assert await db.scan(b"f", b"i") == user_rows(c, b"f", b"i")
        target = next(r.node_id for r in right.replicas if r.node_id != c.ranges[right.range_id].leaseholder)
        await db.admin_transfer_lease(b"g1", target)
        assert c.ranges[right.range_id].leaseholder == target
        assert await db.get(b"g1") == b"v-g1"
        assert c.calls[-1].node_id == target

    run(main())


class Scripted:
    """A Sender that records batches and answers from a function."""

    def __init__(self, answer) -> None:
        self.seen: list[api_pb2.BatchRequest] = []
        self.answer = answer

    async def send(self, ba: api_pb2.BatchRequest) -> api_pb2.BatchResponse:
        self.seen.append(ba)
        return raise_if_error(self.answer(ba))


def test_db_builds_plain_batches() -> None:
    def answer(ba: api_pb2.BatchRequest) -> api_pb2.BatchResponse:
        br = api_pb2.BatchResponse()
        for r in ba.requests:
            br.responses.append(kb.empty_response_for(r))
        return br

    s = Scripted(answer)
    db = DB(s)

    async def main() -> None:
        await db.put(b"k", b"v")
        await db.scan(b"a", b"b", max_rows=7, target_bytes=99)
        await db.cput(b"k", b"v2", b"v")

    run(main())
    put, scan, cput = s.seen
    assert kb.kind(put.requests[0]) == "put" and put.requests[0].put.value == b"v"
    assert not put.header.HasField("txn") and put.header.timestamp.wall_time == 0
    assert scan.header.max_span_request_keys == 7 and scan.header.target_bytes == 99
    assert cput.requests[0].conditional_put.exp_value == b"v"
    assert cput.requests[0].conditional_put.exp_exists


def test_errors_from_the_wire_are_raised() -> None:
    def answer(ba: api_pb2.BatchRequest) -> api_pb2.BatchResponse:
        br = api_pb2.BatchResponse()
        error_to_proto(errors.WriteTooOldError(Timestamp(1), Timestamp(2)), br.error, index=0)
        return br

    db = DB(SenderFunc(Scripted(answer).send))
    with pytest.raises(errors.WriteTooOldError):
        run(db.put(b"k", b"v"))


def test_response_count_mismatch_is_an_internal_error() -> None:
    db = DB(Scripted(lambda ba: api_pb2.BatchResponse()))
    with pytest.raises(errors.InternalError):
        run(db.get(b"k"))


def test_txn_extension_point_inherits_every_operation() -> None:
    class Recorder(KVOps):
        def __init__(self) -> None:
            self.batches: list[Batch] = []

        async def run(self, b: Batch):
            self.batches.append(b)
            br = api_pb2.BatchResponse()
            for r in b.requests:
                br.responses.append(kb.empty_response_for(r))
            return b.fill_results(br)

    r = Recorder()

    async def main() -> None:
        await r.put(b"a", b"1")
        assert await r.get(b"a") is None
        await r.scan(b"a", b"b")

    run(main())
    assert [kb.kind(b.requests[0]) for b in r.batches] == ["put", "get", "scan"]


def test_meta_records_are_readable_through_the_db() -> None:
    from crdb_py.pb import data_pb2
    from crdb_py.util import keys

    c, db = make_db()
    rows = run(db.scan(keys.META_PREFIX, keys.META_MAX))
    descs = [data_pb2.RangeDescriptor.FromString(v) for _, v in rows]
    assert [d.end_key for d in descs] == sorted(r.desc.end_key for r in c.ranges.values())
    assert all(k == keys.meta_key(d.end_key) for (k, _), d in zip(rows, descs))
