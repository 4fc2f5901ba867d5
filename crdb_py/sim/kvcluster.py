"""An in-process KV cluster: real Stores over the in-process transport.

Every node is a `Store` on a `MemEngine` (or any engine) with an
`InProcessTransport`; clients reach it through a `DistSender` exactly as
they would reach real processes. Used by the kvserver tests and by
benchmarks that want the KV layer without process overhead.

The world is injectable for deterministic simulation (`crdb_py/sim/kvsim.py`
runs this cluster on the virtual-time loop): `hlc_factory(node_id)` builds
each node's clock, `rng` seeds every DistSender's replica order and backoff
jitter, and `wrap_transport(node_id, transport)` interposes a fault-injecting
transport. DistSenders measure their retry deadlines on the loop's clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from crdb_py.kvclient.db import DB
from crdb_py.kvclient.dist_sender import DistSender
from crdb_py.kvserver.store import Store, StoreConfig
from crdb_py.pb import api_pb2, data_pb2, raft_pb2, services_pb2
from crdb_py.rpc.inprocess import InProcessNetwork
from crdb_py.rpc.transport import is_read_only
from crdb_py.storage import MemEngine
from crdb_py.util.errors import AmbiguousResultError, NodeUnavailableError, RangeNotFoundError
from crdb_py.util.errwire import error_to_proto
from crdb_py.util.hlc import HLC


class _Handler:
    def __init__(self, node: SimNode) -> None:
        self.node = node

    async def batch(self, req: api_pb2.BatchRequest) -> api_pb2.BatchResponse:
        store = self.node.store  # this incarnation of the node
        try:
            br = await store.batch(req)
        except asyncio.CancelledError:
            if not store.stopped:
                raise
            return self._crashed(req)
        if store.stopped:
            # The node crashed while serving: a dead process sends no answer
            # (and its stale in-memory state must not answer for it).
            return self._crashed(req)
        return br

    def _crashed(self, req: api_pb2.BatchRequest) -> api_pb2.BatchResponse:
        """What the client sees of a batch whose node stopped under it: the
        connection dropped. A read is tried elsewhere; a write is ambiguous."""
        err: Exception
        if is_read_only(req):
            err = RangeNotFoundError(req.header.range_id)
        else:
            err = AmbiguousResultError(
                f"n{self.node.node_id} stopped while the batch was in flight; "
                "it may or may not have been applied"
            )
        br = api_pb2.BatchResponse()
        error_to_proto(err, br.error)
        return br

    def handle_raft_messages(self, from_node_id: int, batch: raft_pb2.RaftMessageBatch) -> None:
        self.node.store.handle_raft_messages(from_node_id, batch)

    async def admin_status(
        self, req: services_pb2.NodeStatusRequest
    ) -> services_pb2.NodeStatusResponse:
        return services_pb2.NodeStatusResponse()

    async def bootstrap(self, req: services_pb2.BootstrapRequest) -> services_pb2.BootstrapResponse:
        return services_pb2.BootstrapResponse()

    async def join(self, req: services_pb2.JoinRequest) -> services_pb2.JoinResponse:
        return services_pb2.JoinResponse()


class _FirstRange:
    """Finds range 1's current descriptor from any running store."""

    def __init__(self, cluster: InProcessKVCluster) -> None:
        self.cluster = cluster

    async def first_range(self) -> data_pb2.RangeDescriptor:
        best: data_pb2.RangeDescriptor | None = None
        for n in self.cluster.nodes.values():
            if n.running:
                d = n.store.first_range()
                if d is not None and (best is None or d.generation > best.generation):
                    best = d
        if best is None:
            raise NodeUnavailableError(0, "no running node has the first range")
        return best


class _NodeSender:
    def __init__(self, transport: Any) -> None:
        self.transport = transport

    async def send_to_node(self, node_id: int, ba: api_pb2.BatchRequest) -> api_pb2.BatchResponse:
        return await self.transport.send_batch(node_id, ba, timeout=10.0)


@dataclass
class SimNode:
    node_id: int
    engine: Any
    store: Store = field(init=False)
    transport: Any = None
    running: bool = False


class InProcessKVCluster:
    def __init__(
        self,
        n: int = 3,
        *,
        tick: float = 0.02,
        replication_factor: int = 3,
        hlc_factory: Callable[[int], HLC] | None = None,
        rng: random.Random | None = None,
        wrap_transport: Callable[[int, Any], Any] | None = None,
        **store_knobs: Any,
    ) -> None:
        self.n = n
        self.hlc_factory = hlc_factory
        self.rng = rng
        self.wrap_transport = wrap_transport
        self.tick = tick
        self.replication_factor = replication_factor
        self.knobs = store_knobs
        self.network = InProcessNetwork()
        self.nodes: dict[int, SimNode] = {}
        self.first_range = _FirstRange(self)
        self.clients: list[DistSender] = []

    def live_node_ids(self) -> list[int]:
        return [i for i, n in self.nodes.items() if n.running]

    async def start(self) -> None:
        for i in range(1, self.n + 1):
            eng = MemEngine()
            if i == 1:
                Store.bootstrap(eng, 1, 1)
            self.nodes[i] = SimNode(i, eng)
            await self.start_node(i)

    async def start_node(self, i: int) -> None:
        node = self.nodes[i]
        cfg = StoreConfig(
            node_id=i,
            store_id=i,
            raft_tick_interval=self.tick,
            sync_writes=False,
            replication_factor=self.replication_factor,
            queue_interval_ticks=2,
            **self.knobs,
        )
        handler = _Handler(node)
        t = self.network.transport(i, handler)
        node.transport = self.wrap_transport(i, t) if self.wrap_transport is not None else t
        await node.transport.start()
        clock = self.hlc_factory(i) if self.hlc_factory is not None else HLC()
        node.store = Store(node.engine, cfg, node.transport, clock, self)
        node.store.kv = self._dist_sender(node.transport, i)
        await node.store.start()
        node.running = True

    async def stop_node(self, i: int) -> None:
        node = self.nodes[i]
        node.running = False
        await node.store.stop()
        await node.transport.close()

    async def close(self) -> None:
        for i, n in self.nodes.items():
            if n.running:
                with contextlib.suppress(Exception):
                    await self.stop_node(i)

    def _dist_sender(self, transport: Any, gateway: int) -> DistSender:
        try:
            clock: Callable[[], float] = asyncio.get_running_loop().time
        except RuntimeError:
            clock = time.monotonic
        rng = random.Random(self.rng.getrandbits(64)) if self.rng is not None else None
        return DistSender(
            _NodeSender(transport), self.first_range, gateway_node_id=gateway, rng=rng, clock=clock
        )

    def db(self, gateway: int = 1) -> DB:
        return DB(self._dist_sender(self.nodes[gateway].transport, gateway))

    async def wait_replicated(self, timeout: float = 15.0) -> None:
        """Until every range has min(rf, live) voters and no learners."""
        want = min(self.replication_factor, len(self.live_node_ids()))
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            ok = True
            seen = False
            for n in self.nodes.values():
                if not n.running:
                    continue
                for r in n.store.replicas.values():
                    if r.desc is None or not r.owns_valid_lease():
                        continue
                    seen = True
                    voters = [x for x in r.desc.replicas if x.type == data_pb2.VOTER_FULL]
                    if len(voters) < want or len(voters) != len(r.desc.replicas):
                        ok = False
            if ok and seen:
                return
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("ranges did not reach the replication target")
            await asyncio.sleep(0.05)

    def leaseholder(self, range_id: int) -> int | None:
        for i, n in self.nodes.items():
            r = n.store.replicas.get(range_id) if n.running else None
            if r is not None and r.owns_valid_lease():
                return i
        return None
