"""Both transports: Batch, raft streams (order, coalescing), peers going down
and coming back, admin calls, errors that must not crash the server."""

from __future__ import annotations

import asyncio

import pytest

from crdb_py.pb import services_pb2
from crdb_py.rpc import GrpcTransport, InProcessNetwork
from crdb_py.util.errors import AmbiguousResultError, NodeUnavailableError
from tests.rpc.harness import (
    KINDS,
    FakeNode,
    get_batch,
    make_cluster,
    put_batch,
    raft_msg,
    run,
    wait_until,
)


@pytest.mark.parametrize("kind", KINDS)
def test_batch_round_trip(kind: str) -> None:
    async def body() -> None:
        c = await make_cluster(kind, 3)
        try:
            for src in (1, 2, 3):
                for dst in (1, 2, 3):
                    resp = await c.transports[src].send_batch(dst, get_batch(b"k%d" % src))
                    assert not resp.HasField("error")
                    assert resp.responses[0].get.value.raw_bytes == b"n%d:k%d" % (dst, src)
            assert c.nodes[2].batches == 3
        finally:
            await c.close()

    run(body())


@pytest.mark.parametrize("kind", KINDS)
def test_handler_errors_come_back_as_batch_errors(kind: str) -> None:
    async def body() -> None:
        c = await make_cluster(kind)
        try:
            t = c.transports[1]
            resp = await t.send_batch(2, get_batch(b"boom"))
            assert resp.error.kind == "InternalError"
            assert "ValueError" in resp.error.message and "boom" in resp.error.message
            resp = await t.send_batch(2, get_batch(b"unknown-range", range_id=77))
            assert resp.error.kind == "InvalidArgumentError"
            assert "r77" in resp.error.message
            # the server survived
            resp = await t.send_batch(2, get_batch(b"ok"))
            assert resp.responses[0].get.value.raw_bytes == b"n2:ok"
        finally:
            await c.close()

    run(body())


@pytest.mark.parametrize("kind", KINDS)
def test_raft_messages_coalesced_per_loop_turn_and_ordered(kind: str) -> None:
    async def body() -> None:
        c = await make_cluster(kind, 3)
        try:
            t1 = c.transports[1]
            # warm the stream up so connection setup does not blur the count
            assert t1.send_raft_message(2, raft_msg(1, 2, 0))
            assert t1.send_raft_message(3, raft_msg(1, 3, 0))
            await wait_until(lambda: c.nodes[2].raft and c.nodes[3].raft)
            before2, before3 = len(c.nodes[2].raft), len(c.nodes[3].raft)
            sent_before = c.raw[1].raft_batches_sent
            # one loop turn: 50 messages to n2 interleaved with 30 to n3
            for i in range(1, 51):
                assert t1.send_raft_message(2, raft_msg(1, 2, i))
                if i <= 30:
                    assert t1.send_raft_message(3, raft_msg(1, 3, i))
            await wait_until(lambda: c.nodes[2].indexes_from(1)[-1:] == [50])
            await wait_until(lambda: c.nodes[3].indexes_from(1)[-1:] == [30])
            assert len(c.nodes[2].raft) - before2 == 1, "50 msgs in one turn -> 1 batch"
            assert len(c.nodes[3].raft) - before3 == 1
            assert c.raw[1].raft_batches_sent - sent_before == 2
            assert c.nodes[2].raft[-1].indexes == list(range(1, 51))
            # many turns: order per link is preserved end to end
            for i in range(51, 251):
                t1.send_raft_message(2, raft_msg(1, 2, i))
                if i % 7 == 0:
                    await asyncio.sleep(0)
            await wait_until(lambda: c.nodes[2].indexes_from(1)[-1:] == [250])
            assert c.nodes[2].indexes_from(1) == list(range(0, 251))
            assert all(r.from_node == 1 for r in c.nodes[2].raft)
        finally:
            await c.close()

    run(body())



@pytest.mark.parametrize("kind", ["grpc", "grpc-stream"])
def test_grpc_raft_writer_takes_two_loop_turns_per_write(kind: str) -> None:
    # A stream write costs far more CPU than its bytes: the writer waits one
    # more loop turn, so a message queued in the next turn joins the write.
    async def body() -> None:
        c = await make_cluster(kind, 2)
        try:
            t1 = c.transports[1]
            assert t1.send_raft_message(2, raft_msg(1, 2, 0))
            await wait_until(lambda: c.nodes[2].raft)
            for _ in range(5):  # let the writer go back to waiting
                await asyncio.sleep(0)
            before, sent_before = len(c.nodes[2].raft), c.raw[1].raft_batches_sent
            assert t1.send_raft_message(2, raft_msg(1, 2, 1))
            await asyncio.sleep(0)  # the next loop turn
            assert t1.send_raft_message(2, raft_msg(1, 2, 2))
            await wait_until(lambda: c.nodes[2].indexes_from(1)[-1:] == [2])
            assert c.raw[1].raft_batches_sent - sent_before == 1
            assert [r.indexes for r in c.nodes[2].raft[before:]] == [[1, 2]]
        finally:
            await c.close()

    run(body())

@pytest.mark.parametrize("kind", KINDS)
def test_raft_delivery_is_never_reentrant(kind: str) -> None:
    async def body() -> None:
        c = await make_cluster(kind)
        try:
            c.transports[1].send_raft_message(2, raft_msg(1, 2, 1))
            assert c.nodes[2].raft == []  # nothing delivered inside the send call
            await wait_until(lambda: bool(c.nodes[2].raft))
        finally:
            await c.close()

    run(body())


@pytest.mark.parametrize("kind", KINDS)
def test_raft_handler_exception_does_not_break_the_link(kind: str) -> None:
    async def body() -> None:
        c = await make_cluster(kind)
        try:
            t1 = c.transports[1]
            c.nodes[2].raft_raise = True
            t1.send_raft_message(2, raft_msg(1, 2, 1))
            await asyncio.sleep(0.05)
            c.nodes[2].raft_raise = False
            await wait_until(lambda: t1.send_raft_message(2, raft_msg(1, 2, 2)) and False or
                             bool(c.nodes[2].raft), timeout=5)
            assert c.nodes[2].indexes_from(1)[0] == 2
        finally:
            await c.close()

    run(body())


async def _restart(c, node_id: int):  # type: ignore[no-untyped-def]
    """Bring a closed node back on the same address (grpc) / id (inproc)."""
    node = FakeNode(node_id)
    c.nodes[node_id] = node
    if c.kind == "inproc":
        t = c.network.transport(node_id, node)
    else:
        t = GrpcTransport(
            node_id, node, c.raw[node_id].address, batch_over_stream=c.kind == "grpc-stream"
        )
    await t.start()
    c.raw[node_id] = c.transports[node_id] = t
    return t


@pytest.mark.parametrize("kind", KINDS)
def test_peer_down_is_unavailable_then_reconnects(kind: str) -> None:
    async def body() -> None:
        c = await make_cluster(kind, min_backoff=0.02, max_backoff=0.2) if kind != "inproc" \
            else await make_cluster(kind)
        try:
            t1 = c.transports[1]
            assert (await t1.send_batch(2, get_batch(b"a"))).responses
            assert t1.send_raft_message(2, raft_msg(1, 2, 1))
            await wait_until(lambda: bool(c.nodes[2].raft))
            await c.transports[2].close()
            # Give the client a moment to see the connection go: a request sent on
            # an established stream in the instant the peer dies is (rightly)
            # ambiguous; one sent after is certainly undelivered.
            await asyncio.sleep(0.1)
            # a write that certainly was not delivered is NodeUnavailable, not ambiguous
            with pytest.raises(NodeUnavailableError) as ei:
                await t1.send_batch(2, put_batch(b"x"), timeout=3.0)
            assert "n2" in str(ei.value)
            assert not isinstance(ei.value, AmbiguousResultError)
            with pytest.raises(NodeUnavailableError):
                await t1.admin_status(2)
            # raft: the peer is reported unreachable and sends start failing
            await wait_until(lambda: not t1.send_raft_message(2, raft_msg(1, 2, 2)))
            await wait_until(lambda: (1, 2) in c.unreachable)
            # the node comes back on the same address: traffic resumes
            await _restart(c, 2)

            async def batch_ok() -> bool:
                try:
                    return bool((await t1.send_batch(2, get_batch(b"b"), timeout=2)).responses)
                except NodeUnavailableError:
                    await asyncio.sleep(0.05)
                    return False

            for _ in range(100):
                if await batch_ok():
                    break
            else:
                raise AssertionError("never reconnected")
            await wait_until(
                lambda: t1.send_raft_message(2, raft_msg(1, 2, 99)) and False
                or 99 in c.nodes[2].indexes_from(1),
                timeout=5,
            )
        finally:
            await c.close()

    run(body())


@pytest.mark.parametrize("kind", KINDS)
def test_unknown_or_unstarted_peer(kind: str) -> None:
    async def body() -> None:
        c = await make_cluster(kind)
        try:
            with pytest.raises(NodeUnavailableError):
                await c.transports[1].send_batch(9, get_batch(b"a"))
            assert c.transports[1].send_raft_message(9, raft_msg(1, 9, 1)) is False
            await wait_until(lambda: (1, 9) in c.unreachable)
        finally:
            await c.close()

    run(body())


@pytest.mark.parametrize("kind", KINDS)
def test_no_response_in_time_is_ambiguous_for_writes_only(kind: str) -> None:
    async def body() -> None:
        c = await make_cluster(kind)
        try:
            t1 = c.transports[1]
            with pytest.raises(AmbiguousResultError) as ei:
                await t1.send_batch(2, put_batch(b"sleep:1.0"), timeout=0.1)
            assert "ambiguous" in str(ei.value)
            with pytest.raises(NodeUnavailableError) as ei2:
                await t1.send_batch(2, get_batch(b"sleep:1.0"), timeout=0.1)
            assert "may have been delivered" in str(ei2.value)
        finally:
            await c.close()

    run(body())


@pytest.mark.parametrize("kind", KINDS)
def test_admin_calls(kind: str) -> None:
    async def body() -> None:
        c = await make_cluster(kind)
        try:
            st = await c.transports[1].admin_status(2)
            assert [n.desc.node_id for n in st.nodes] == [2]
            b = await c.transports[2].bootstrap(1)
            assert b.cluster_id == "cluster-from-n1"
            req = services_pb2.JoinRequest()
            req.desc.node_id = 5
            j = await c.transports[1].join(2, req)
            assert j.node_id == 105 and [n.node_id for n in j.nodes] == [2]
        finally:
            await c.close()

    run(body())


def test_inprocess_messages_are_copies() -> None:
    async def body() -> None:
        net = InProcessNetwork()
        seen = []

        class Keeper(FakeNode):
            async def batch(self, req):  # type: ignore[no-untyped-def]
                seen.append(req)
                req.header.range_id = 999  # mutate the receiver's copy
                return await super().batch(req)

        t1, t2 = net.transport(1, FakeNode(1)), net.transport(2, Keeper(2))
        await t1.start()
        await t2.start()
        req = get_batch(b"a")
        await t1.send_batch(2, req)
        assert req.header.range_id == 1 and seen[0] is not req
        await t1.close()
        await t2.close()

    run(body())


@pytest.mark.parametrize("kind", KINDS)
def test_large_messages_pass(kind: str) -> None:
    """Snapshots ride raft messages: well past grpc's 4 MiB default limit."""

    async def body() -> None:
        c = await make_cluster(kind)
        try:
            big = raft_msg(1, 2, 7)
            big.message.snapshot.data = b"s" * (12 * 1024 * 1024)
            assert c.transports[1].send_raft_message(2, big)
            await wait_until(lambda: c.nodes[2].indexes_from(1) == [7], timeout=10)
            req = put_batch(b"big", b"v" * (6 * 1024 * 1024))
            resp = await c.transports[1].send_batch(2, req)
            assert resp.responses[0].get.value.raw_bytes == b"n2:big"
        finally:
            await c.close()

    run(body())


@pytest.mark.parametrize("kind", ["grpc", "grpc-stream"])
def test_wrong_address_is_refused_not_misdelivered(kind: str) -> None:
    async def body() -> None:
        c = await make_cluster(kind, 3)
        try:
            t1 = c.transports[1]
            t1.set_node_address(2, c.address(3))  # stale address: n3 lives there
            await asyncio.sleep(0.05)
            with pytest.raises(NodeUnavailableError) as ei:
                await t1.send_batch(2, put_batch(b"w"))
            assert not isinstance(ei.value, AmbiguousResultError)
            assert "n3" in str(ei.value) and "not n2" in str(ei.value)
            with pytest.raises(NodeUnavailableError):
                await t1.admin_status(2)
            t1.send_raft_message(2, raft_msg(1, 2, 1))
            await wait_until(lambda: (1, 2) in c.unreachable)
            assert c.nodes[3].batches == 0 and c.nodes[3].raft == []
            # the right address again: traffic flows
            t1.set_node_address(2, c.address(2))
            assert (await t1.send_batch(2, get_batch(b"ok"))).responses
        finally:
            await c.close()

    run(body())


@pytest.mark.parametrize("kind", KINDS)
def test_admin_handler_errors_are_clear(kind: str) -> None:
    from crdb_py.util.errors import InternalError, InvalidArgumentError

    async def body() -> None:
        c = await make_cluster(kind)
        try:
            req = services_pb2.JoinRequest()
            req.desc.address = "bad"
            with pytest.raises(InvalidArgumentError) as ei:
                await c.transports[1].join(2, req)
            assert "bad address" in str(ei.value)
            req.desc.address = "crash"
            with pytest.raises(InternalError) as ei2:
                await c.transports[1].join(2, req)
            assert "KeyError" in str(ei2.value) and "join handler bug" in str(ei2.value)
            assert (await c.transports[1].admin_status(2)).nodes  # still serving
        finally:
            await c.close()

    run(body())
