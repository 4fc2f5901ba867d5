"""Test scaffolding for the transports: a fake node handler and cluster builders."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from crdb_py.pb import api_pb2, data_pb2, raft_pb2, services_pb2
from crdb_py.rpc import (
    GrpcTransport,
    InProcessNetwork,
    LatencyInjector,
    LinkFaultTable,
)
from crdb_py.util.errors import InvalidArgumentError

# "grpc-stream": GrpcTransport with Batch multiplexed over BatchStream.
KINDS = ["inproc", "grpc", "grpc-stream"]


def run(coro: Awaitable[Any], timeout: float = 20.0) -> Any:
    """Run one async test body on a fresh loop with a hard bound."""

    async def bounded() -> Any:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


@dataclass
class Received:
    from_node: int
    indexes: list[int]
    sent_at: list[float]
    arrived_at: float


@dataclass
class FakeNode:
    """A NodeHandler whose behaviour tests steer through the request key."""

    node_id: int
    raft: list[Received] = field(default_factory=list)
    batches: int = 0
    raft_raise: bool = False
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def batch(self, req: api_pb2.BatchRequest) -> api_pb2.BatchResponse:
        self.batches += 1
        ru = req.requests[0]
        kind = ru.WhichOneof("value")
        key = getattr(ru, kind).header.key
        if key == b"boom":
            raise ValueError("boom goes the handler")
        if key == b"unknown-range":
            raise InvalidArgumentError(f"r{req.header.range_id} not found")
        if key.startswith(b"sleep:"):
            await asyncio.sleep(float(key[6:]))
        resp = api_pb2.BatchResponse()
        out = resp.responses.add()
        out.get.value.raw_bytes = b"n%d:%s" % (self.node_id, key)
        return resp

    def handle_raft_messages(self, from_node_id: int, batch: raft_pb2.RaftMessageBatch) -> None:
        if self.raft_raise:
            raise RuntimeError("raft handler exploded")
        now = asyncio.get_running_loop().time()
        self.raft.append(
            Received(
                from_node_id,
                [r.message.index for r in batch.requests],
                [struct.unpack("d", r.message.context)[0] if r.message.context else 0.0
                 for r in batch.requests],
                now,
            )
        )
        self.arrived.set()

    def indexes_from(self, src: int) -> list[int]:
        return [i for r in self.raft if r.from_node == src for i in r.indexes]

    async def admin_status(
        self, req: services_pb2.NodeStatusRequest
    ) -> services_pb2.NodeStatusResponse:
        resp = services_pb2.NodeStatusResponse()
        st = resp.nodes.add(live=True, build="test")
        st.desc.node_id = self.node_id
        return resp

    async def bootstrap(self, req: services_pb2.BootstrapRequest) -> services_pb2.BootstrapResponse:
        return services_pb2.BootstrapResponse(cluster_id=f"cluster-from-n{self.node_id}")

    async def join(self, req: services_pb2.JoinRequest) -> services_pb2.JoinResponse:
        if req.desc.address == "bad":
            raise InvalidArgumentError("bad address")
        if req.desc.address == "crash":
            raise KeyError("join handler bug")
        return services_pb2.JoinResponse(
            node_id=100 + req.desc.node_id,
            cluster_id="c",
            nodes=[data_pb2.NodeDescriptor(node_id=self.node_id, address="x")],
        )


def get_batch(key: bytes, range_id: int = 1) -> api_pb2.BatchRequest:
    req = api_pb2.BatchRequest()
    req.header.range_id = range_id
    req.requests.add().get.header.key = key
    return req


def put_batch(key: bytes, value: bytes = b"v") -> api_pb2.BatchRequest:
    req = api_pb2.BatchRequest()
    req.header.range_id = 1
    put = req.requests.add().put
    put.header.key = key
    put.value = value
    return req


def raft_msg(src: int, dst: int, index: int, range_id: int = 1, stamp: bool = True) -> raft_pb2.RaftMessageRequest:
    m = raft_pb2.RaftMessageRequest(
        range_id=range_id, from_node_id=src, to_node_id=dst, from_replica_id=src, to_replica_id=dst
    )
    m.message.index = index
    if stamp:
        m.message.context = struct.pack("d", asyncio.get_running_loop().time())
    return m


async def wait_until(pred: Callable[[], bool], timeout: float = 5.0, step: float = 0.005) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not pred():
        if loop.time() > end:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(step)


@dataclass
class Cluster:
    kind: str
    nodes: dict[int, FakeNode]
    transports: dict[int, Any]  # node id -> Transport (maybe a LatencyInjector)
    raw: dict[int, Any]  # node id -> the unwrapped transport
    faults: LinkFaultTable | None
    network: InProcessNetwork | None = None
    unreachable: list[tuple[int, int]] = field(default_factory=list)

    async def close(self) -> None:
        await asyncio.gather(*(t.close() for t in self.transports.values()))

    def address(self, node_id: int) -> str:
        return self.raw[node_id].address


async def make_cluster(
    kind: str, n: int = 2, *, inject: bool = False, **transport_kw: Any
) -> Cluster:
    nodes = {i: FakeNode(i) for i in range(1, n + 1)}
    raw: dict[int, Any] = {}
    unreachable: list[tuple[int, int]] = []
    network = InProcessNetwork() if kind == "inproc" else None
    for i, node in nodes.items():
        def cb(peer: int, me: int = i) -> None:
            unreachable.append((me, peer))

        if network is not None:
            raw[i] = network.transport(i, node, on_unreachable=cb, **transport_kw)
        else:
            raw[i] = GrpcTransport(
                i, node, "127.0.0.1:0", on_unreachable=cb,
                batch_over_stream=(kind == "grpc-stream"), **transport_kw,
            )
    faults = LinkFaultTable() if inject else None
    transports: dict[int, Any] = {
        i: (LatencyInjector(t, faults) if inject else t) for i, t in raw.items()
    }
    for t in transports.values():
        await t.start()
    if kind != "inproc":
        for t in transports.values():
            for j, other in raw.items():
                t.set_node_address(j, other.address)
    return Cluster(kind, nodes, transports, raw, faults, network, unreachable)
