from __future__ import annotations

import asyncio

from crdb_py.pb import data_pb2, services_pb2
from crdb_py.server.registry import NodeRegistry
from crdb_py.util.errors import NodeUnavailableError


class FakeTransport:
    def __init__(self) -> None:
        self.addresses: dict[int, str] = {}
        self.up: set[int] = set()
        self.status_calls = 0

    def set_node_address(self, node_id: int, address: str) -> None:
        self.addresses[node_id] = address

    async def admin_status(self, node_id: int) -> services_pb2.NodeStatusResponse:
        self.status_calls += 1
        if node_id not in self.up:
            raise NodeUnavailableError(node_id)
        resp = services_pb2.NodeStatusResponse()
        st = resp.nodes.add(live=True, started_at_nanos=node_id)
        st.desc.node_id = node_id
        st.desc.address = self.addresses[node_id]
        st.stores.add(store_id=node_id, range_count=10 * node_id)
        return resp


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def desc(i: int) -> data_pb2.NodeDescriptor:
    return data_pb2.NodeDescriptor(node_id=i, address=f"h:{i}")


def test_liveness_follows_successful_probes() -> None:
    t, clock = FakeTransport(), Clock()
    reg = NodeRegistry(t, desc(1), liveness_timeout=2.0, monotonic=clock)
    reg.add(desc(2))
    reg.add(desc(3))
    assert t.addresses == {2: "h:2", 3: "h:3"}  # self is never dialled
    assert reg.live_node_ids() == [1]
    t.up = {2, 3}
    asyncio.run(reg.probe_all())
    assert reg.live_node_ids() == [1, 2, 3]
    t.up = {2}
    clock.t += 1.5
    asyncio.run(reg.probe_all())
    assert reg.live_node_ids() == [1, 2, 3]  # n3 missed one probe: still within timeout
    clock.t += 1.0
    asyncio.run(reg.probe_all())
    assert reg.live_node_ids() == [1, 2]
    st = reg.cluster_status(services_pb2.NodeStatus(desc=desc(1), live=True))
    assert [(s.desc.node_id, s.live) for s in st.nodes] == [(1, True), (2, True), (3, False)]
    assert st.nodes[1].stores[0].range_count == 20  # last status is kept
    assert st.nodes[2].stores[0].range_count == 30  # ... also for a dead node


def test_lookup_fetches_once_and_caches() -> None:
    t = FakeTransport()
    reg = NodeRegistry(t, desc(1))
    calls: list[int] = []

    async def fetch(node_id: int) -> data_pb2.NodeDescriptor | None:
        calls.append(node_id)
        await asyncio.sleep(0.01)
        return desc(node_id) if node_id != 9 else None

    reg.fetch_descriptor = fetch

    async def body() -> None:
        got = await asyncio.gather(*(reg.lookup_node(5) for _ in range(5)))
        assert got == ["h:5"] * 5
        assert await reg.lookup_node(5) == "h:5"
        assert await reg.lookup_node(9) is None

    asyncio.run(body())
    assert calls == [5, 9]
    assert t.addresses[5] == "h:5"


def test_address_change_is_propagated() -> None:
    t = FakeTransport()
    reg = NodeRegistry(t, desc(1))
    reg.add(desc(2))
    reg.add(data_pb2.NodeDescriptor(node_id=2, address="h:22"))
    assert reg.address(2) == "h:22" and t.addresses[2] == "h:22"
    reg.add(data_pb2.NodeDescriptor(node_id=0, address="x"))  # ignored
    assert [d.node_id for d in reg.descriptors()] == [1, 2]
