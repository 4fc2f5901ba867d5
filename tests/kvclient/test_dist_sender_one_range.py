"""DistSender's one-range path: a batch whose keys all lie in one cached range
is sent as it is (no truncated copies, no task) and the range's response is
returned as the batch's. These tests pin that this shortcut is invisible: the
response equals what stitching the part into a fresh response builds, the
caller's batch is untouched, and a batch that is not in one range still goes
the general way."""

from __future__ import annotations

import asyncio
import random

from crdb_py.kvclient import batch as kb
from crdb_py.kvclient import dist_sender as ds_mod
from crdb_py.kvclient.dist_sender import DistSender, StaticFirstRange
from crdb_py.pb import api_pb2, data_pb2


def _desc(range_id: int, start: bytes, end: bytes) -> data_pb2.RangeDescriptor:
    d = data_pb2.RangeDescriptor(range_id=range_id, start_key=start, end_key=end, generation=1)
    for n in (1, 2, 3):
        d.replicas.add(node_id=n, store_id=n, replica_id=n)
    return d


class ScriptedNodes:
    """Answers every batch with `make(ba)`; records what it was sent."""

    def __init__(self, make) -> None:  # type: ignore[no-untyped-def]
        self.make = make
        self.sent: list[api_pb2.BatchRequest] = []

    async def send_to_node(self, node_id: int, ba: api_pb2.BatchRequest) -> api_pb2.BatchResponse:
        self.sent.append(ba)
        return self.make(ba)


def _echoing_response(ba: api_pb2.BatchRequest, *, resume: bool = False) -> api_pb2.BatchResponse:
    """What a server sends back: the header echoed (range id, gateway, a zero
    timestamp), the txn, rows for scans, a zero `now`."""
    br = api_pb2.BatchResponse()
    br.header.CopyFrom(ba.header)
    br.header.timestamp.SetInParent()
    br.now.SetInParent()
    for r in ba.requests:
        k = kb.kind(r)
        u = br.responses.add()
        getattr(u, k).SetInParent()
        if k == "scan":
            u.scan.rows.add(key=b"a1").value.raw_bytes = b"x"
            u.scan.header.num_keys = 1
            if resume:
                u.scan.header.resume_span.key = b"a2"
                u.scan.header.resume_span.end_key = b"b"
    return br


def _stitched(ba: api_pb2.BatchRequest, part: api_pb2.BatchResponse) -> api_pb2.BatchResponse:
    """The general path's result for a single part holding all of `ba`."""
    br = ds_mod._new_response(ba)
    ds_mod._merge_header(br, part)
    for i, resp in enumerate(part.responses):
        kb.combine_response(br.responses[i], resp)
    return br


def _batch() -> api_pb2.BatchRequest:
    ba = kb.batch(kb.put_request(b"a0", b"v"), kb.scan_request(b"a", b"az"))
    ba.header.txn.meta.id = b"\x01" * 16
    ba.header.txn.meta.write_timestamp.wall_time = 5
    return ba


def _send(nodes: ScriptedNodes, ba: api_pb2.BatchRequest, first: data_pb2.RangeDescriptor):
    async def go() -> api_pb2.BatchResponse:
        ds = DistSender(nodes, StaticFirstRange(first), gateway_node_id=2, rng=random.Random(1))
        await ds.range_cache.lookup(b"a")
        return await ds.send(ba)

    return asyncio.run(go())


def test_one_range_response_equals_the_stitched_one() -> None:
    first = _desc(1, b"", b"\xff\xff")
    raw: list[api_pb2.BatchResponse] = []

    def make(sent: api_pb2.BatchRequest) -> api_pb2.BatchResponse:
        br = _echoing_response(sent)
        raw.append(api_pb2.BatchResponse.FromString(br.SerializeToString()))
        return br

    nodes = ScriptedNodes(make)
    ba = _batch()
    before = ba.SerializeToString()
    got = _send(nodes, ba, first)
    assert got == _stitched(ba, raw[-1])
    # the echoed scalars and the zero timestamps are gone, as stitching drops them
    assert not got.header.range_id and not got.header.gateway_node_id
    assert not got.header.HasField("timestamp") and not got.HasField("now")
    assert got.header.txn.meta.write_timestamp.wall_time == 5
    assert [r.key for r in got.responses[1].scan.rows] == [b"a1"]
    # the caller's batch is untouched; the node got the addressed copy
    assert ba.SerializeToString() == before
    assert nodes.sent[-1].header.range_id == 1 and nodes.sent[-1].header.gateway_node_id == 2


def test_a_resume_span_takes_the_stitching_path() -> None:
    first = _desc(1, b"", b"\xff\xff")
    raw: list[api_pb2.BatchResponse] = []

    def make(sent: api_pb2.BatchRequest) -> api_pb2.BatchResponse:
        br = _echoing_response(sent, resume=True)
        raw.append(api_pb2.BatchResponse.FromString(br.SerializeToString()))
        return br

    ba = _batch()
    got = _send(ScriptedNodes(make), ba, first)
    assert got == _stitched(ba, raw[-1])
    assert not got.responses[1].scan.header.HasField("resume_span")


def test_adopting_a_mismatched_response_is_refused() -> None:
    ba = _batch()
    br = _echoing_response(ba)
    br.responses[0].ClearField("put")
    br.responses[0].get.SetInParent()  # a get answering a put
    assert not ds_mod._adopt_whole_response(ba, br)
    assert br.header.range_id == 0  # the caller's batch had none: nothing echoed
    br2 = _echoing_response(ba)
    br2.header.range_id = 9
    assert ds_mod._adopt_whole_response(ba, br2) and br2.header.range_id == 0
