"""LatencyInjector over both transports: one-way delays (lower bounds only),
order under bursts and run-time changes, one-way blocks, remote control."""

from __future__ import annotations

import asyncio

import grpc
import grpc.aio
import pytest

from crdb_py.pb import services_pb2
from crdb_py.rpc import GrpcTransport, LatencyInjector, LinkFaultTable
from crdb_py.util.errors import (
    AmbiguousResultError,
    InvalidArgumentError,
    NodeUnavailableError,
)
from tests.rpc.harness import KINDS, get_batch, make_cluster, put_batch, raft_msg, run, wait_until


def _min_delay(node, src: int) -> float:  # type: ignore[no-untyped-def]
    return min(
        r.arrived_at - s for r in node.raft if r.from_node == src for s in r.sent_at
    )


@pytest.mark.parametrize("kind", KINDS)
def test_one_way_delay_and_order_under_burst(kind: str) -> None:
    async def body() -> None:
        c = await make_cluster(kind, 3, inject=True)
        try:
            c.faults.set_latency(40)
            c.faults.set_link_latency(1, 3, 80)
            t1 = c.transports[1]
            for i in range(1, 301):
                assert t1.send_raft_message(2, raft_msg(1, 2, i))
                assert t1.send_raft_message(3, raft_msg(1, 3, i))
                if i % 13 == 0:
                    await asyncio.sleep(0.001)
            await wait_until(lambda: c.nodes[2].indexes_from(1)[-1:] == [300])
            await wait_until(lambda: c.nodes[3].indexes_from(1)[-1:] == [300])
            assert c.nodes[2].indexes_from(1) == list(range(1, 301))
            assert c.nodes[3].indexes_from(1) == list(range(1, 301))
            assert _min_delay(c.nodes[2], 1) >= 0.040
            assert _min_delay(c.nodes[3], 1) >= 0.080
        finally:
            await c.close()

    run(body())


@pytest.mark.parametrize("kind", KINDS)
def test_messages_released_together_are_coalesced(kind: str) -> None:
    async def body() -> None:
        c = await make_cluster(kind, inject=True)
        try:
            t1 = c.transports[1]
            t1.send_raft_message(2, raft_msg(1, 2, 0))  # open the stream
            await wait_until(lambda: bool(c.nodes[2].raft))
            c.faults.set_latency(20)
            n_before = len(c.nodes[2].raft)
            for i in range(1, 21):  # one loop turn
                t1.send_raft_message(2, raft_msg(1, 2, i))
            await wait_until(lambda: c.nodes[2].indexes_from(1)[-1:] == [20])
            assert len(c.nodes[2].raft) - n_before == 1
        finally:
            await c.close()

    run(body())


@pytest.mark.parametrize("kind", KINDS)
def test_latency_adjustable_at_run_time_keeps_order(kind: str) -> None:
    async def body() -> None:
        c = await make_cluster(kind, inject=True)
        try:
            t1 = c.transports[1]
            # starts at zero: the direct path
            t1.send_raft_message(2, raft_msg(1, 2, 1))
            await wait_until(lambda: c.nodes[2].indexes_from(1) == [1])
            # raised at run time: later messages take at least the new delay
            c.faults.set_latency(60)
            t1.send_raft_message(2, raft_msg(1, 2, 2))
            await wait_until(lambda: c.nodes[2].indexes_from(1)[-1:] == [2])
            assert c.nodes[2].raft[-1].arrived_at - c.nodes[2].raft[-1].sent_at[0] >= 0.060
            # lowered while messages are in flight: nothing overtakes them
            for i in range(3, 6):
                t1.send_raft_message(2, raft_msg(1, 2, i))
            c.faults.set_latency(0)
            for i in range(6, 9):
                t1.send_raft_message(2, raft_msg(1, 2, i))
            await asyncio.sleep(0.01)
            got = c.nodes[2].indexes_from(1)
            assert got == list(range(1, len(got) + 1))  # 6..8 wait behind 3..5
            await wait_until(lambda: c.nodes[2].indexes_from(1)[-1:] == [8])
            assert c.nodes[2].indexes_from(1) == list(range(1, 9))
        finally:
            await c.close()

    run(body())


@pytest.mark.parametrize("kind", KINDS)
def test_rpc_is_delayed_both_ways(kind: str) -> None:
    async def body() -> None:
        c = await make_cluster(kind, inject=True)
        try:
            c.faults.set_link_latency(1, 2, 30)
            c.faults.set_link_latency(2, 1, 50)
            loop = asyncio.get_running_loop()
            for _ in range(3):
                t0 = loop.time()
                resp = await c.transports[1].send_batch(2, get_batch(b"k"))
                assert resp.responses[0].get.value.raw_bytes == b"n2:k"
                assert loop.time() - t0 >= 0.080
            t0 = loop.time()
            await c.transports[1].admin_status(2)
            assert loop.time() - t0 >= 0.080
        finally:
            await c.close()

    run(body())


@pytest.mark.parametrize("kind", KINDS)
def test_block_is_one_way_and_heals(kind: str) -> None:
    async def body() -> None:
        c = await make_cluster(kind, inject=True)
        try:
            t1, t2 = c.transports[1], c.transports[2]
            c.faults.block(1, 2)
            # raft: 1->2 dropped, 2->1 flows
            assert t1.send_raft_message(2, raft_msg(1, 2, 1)) is False
            assert t2.send_raft_message(1, raft_msg(2, 1, 1)) is True
            await wait_until(lambda: c.nodes[1].indexes_from(2) == [1])
            await asyncio.sleep(0.05)
            assert c.nodes[2].raft == []
            # batch 1->2: request cannot go out
            with pytest.raises(NodeUnavailableError) as ei:
                await t1.send_batch(2, put_batch(b"w"))
            assert "blocked" in str(ei.value)
            assert c.nodes[2].batches == 0
            # batch 2->1: delivered, but its response travels 1->2 and is lost
            with pytest.raises(AmbiguousResultError):
                await t2.send_batch(1, put_batch(b"w"))
            with pytest.raises(NodeUnavailableError):
                await t2.send_batch(1, get_batch(b"r"))
            assert c.nodes[1].batches == 2
            # heal: everything flows again
            c.faults.heal()
            assert t1.send_raft_message(2, raft_msg(1, 2, 2)) is True
            await wait_until(lambda: c.nodes[2].indexes_from(1) == [2])
            assert (await t1.send_batch(2, get_batch(b"a"))).responses
            assert (await t2.send_batch(1, get_batch(b"a"))).responses
        finally:
            await c.close()

    run(body())


@pytest.mark.parametrize("kind", KINDS)
def test_messages_in_flight_when_blocked_are_dropped(kind: str) -> None:
    async def body() -> None:
        c = await make_cluster(kind, inject=True)
        try:
            c.faults.set_latency(50)
            assert c.transports[1].send_raft_message(2, raft_msg(1, 2, 1))
            c.faults.block(1, 2)
            await asyncio.sleep(0.15)
            assert c.nodes[2].raft == []
            assert c.transports[1].raft_messages_blocked == 1
        finally:
            await c.close()

    run(body())


def test_injected_timeout_while_held() -> None:
    async def body() -> None:
        c = await make_cluster("inproc", inject=True)
        try:
            c.faults.set_latency(200)
            with pytest.raises(NodeUnavailableError) as ei:  # never left: not ambiguous
                await c.transports[1].send_batch(2, put_batch(b"w"), timeout=0.05)
            assert not isinstance(ei.value, AmbiguousResultError)
            assert "was not delivered" in str(ei.value)
        finally:
            await c.close()

    run(body())


def test_set_link_faults_over_grpc() -> None:
    async def body() -> None:
        c = await make_cluster("grpc", 2)
        # each node gets its own table, controlled remotely
        inj = {i: LatencyInjector(t, LinkFaultTable()) for i, t in c.raw.items()}
        ctl = GrpcTransport(0, None)  # a client-only driver (like LocalCluster)
        await ctl.start()
        try:
            for i, t in c.raw.items():
                ctl.set_node_address(i, t.address)
            faults = services_pb2.LinkFaults(default_latency_ms=25)
            faults.blocked.add(from_node_id=1, to_node_id=2)
            faults.link_latencies.add(from_node_id=2, to_node_id=1, latency_ms=40)
            for i in (1, 2):
                got = await ctl.set_link_faults(i, faults)
                assert got == faults
            assert inj[1].faults.is_blocked(1, 2) and not inj[1].faults.is_blocked(2, 1)
            assert inj[2].faults.latency(2, 1) == pytest.approx(0.040)
            # the table now in force shapes the traffic
            assert inj[1].send_raft_message(2, raft_msg(1, 2, 1)) is False
            assert inj[2].send_raft_message(1, raft_msg(2, 1, 1)) is True
            await wait_until(lambda: c.nodes[1].indexes_from(2) == [1])
            assert _min_delay(c.nodes[1], 2) >= 0.040
            # control traffic bypasses faults: heal n1 even though n1->n2 is blocked
            for i in (1, 2):
                got = await ctl.set_link_faults(i, services_pb2.LinkFaults())
                assert got == services_pb2.LinkFaults()
            assert inj[1].faults.idle and inj[2].faults.idle
            assert inj[1].send_raft_message(2, raft_msg(1, 2, 2)) is True
            await wait_until(lambda: c.nodes[2].indexes_from(1) == [2])
            # a bad table is rejected as a whole, the old one stays
            bad = services_pb2.LinkFaults(default_latency_ms=-5)
            with pytest.raises(InvalidArgumentError):
                await ctl.set_link_faults(1, bad)
            assert inj[1].faults.idle
        finally:
            await ctl.close()
            await c.close()

    run(body())


@pytest.mark.parametrize("kind", KINDS)
def test_set_link_faults_without_injector_is_a_clear_error(kind: str) -> None:
    async def body() -> None:
        c = await make_cluster(kind)
        try:
            with pytest.raises(InvalidArgumentError) as ei:
                await c.transports[1].set_link_faults(2, services_pb2.LinkFaults())
            assert "LatencyInjector" in str(ei.value)
        finally:
            await c.close()

    run(body())


def test_port_taken_is_a_clear_error() -> None:
    from crdb_py.util.errors import AddressInUseError

    async def body() -> None:
        c = await make_cluster("grpc", 1)
        try:
            addr = c.address(1)
            t = GrpcTransport(2, c.nodes[1], addr)
            with pytest.raises(AddressInUseError) as ei:
                await t.start()
            assert addr in str(ei.value) and "already in use" in str(ei.value)
        finally:
            await c.close()

    run(body())


def test_malformed_request_does_not_crash_the_server() -> None:
    async def body() -> None:
        c = await make_cluster("grpc", 1)
        try:
            async with grpc.aio.insecure_channel(c.address(1)) as ch:
                raw = ch.unary_unary("/crdb.rpc.Internal/Batch")
                with pytest.raises(grpc.aio.AioRpcError) as ei:
                    await raw(b"\xff\xff\xff garbage", timeout=5)
                assert ei.value.code() != grpc.StatusCode.OK
                bogus = ch.unary_unary("/crdb.rpc.Internal/NoSuchMethod")
                with pytest.raises(grpc.aio.AioRpcError) as ei2:
                    await bogus(b"", timeout=5)
                assert ei2.value.code() == grpc.StatusCode.UNIMPLEMENTED
            # still serving
            ctl = GrpcTransport(9, None)
            ctl.set_node_address(1, c.address(1))
            assert (await ctl.send_batch(1, get_batch(b"z"))).responses
            await ctl.close()
        finally:
            await c.close()

    run(body())


@pytest.mark.parametrize("kind", KINDS)
def test_injector_forwards_on_unreachable_and_address(kind: str) -> None:
    async def body() -> None:
        c = await make_cluster(kind, inject=True)
        try:
            inj = c.transports[1]
            seen: list[int] = []
            inj.on_unreachable = seen.append
            assert c.raw[1].on_unreachable is not None and inj.address == c.raw[1].address
            assert inj.send_raft_message(7, raft_msg(1, 7, 1)) is False  # unknown node
            await wait_until(lambda: seen == [7])
        finally:
            await c.close()

    run(body())


def test_injector_node_id_follows_the_wrapped_transport() -> None:
    async def body() -> None:
        c = await make_cluster("inproc", inject=True)
        try:
            inj = c.transports[1]
            c.raw[1].node_id = 11
            assert inj.node_id == 11
            inj.node_id = 1
            assert c.raw[1].node_id == 1
        finally:
            await c.close()

    run(body())
