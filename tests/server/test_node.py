"""Node: bootstrap, join, identity, liveness — real gRPC on loopback, fake store."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from crdb_py.pb import api_pb2, data_pb2, raft_pb2, services_pb2
from crdb_py.server.admin import AdminClient
from crdb_py.server.ident import read_ident
from crdb_py.server.node import Node, NodeConfig
from crdb_py.server.registry import NODE_ID_GEN_KEY, node_descriptor_key
from crdb_py.util.errors import (
    AddressInUseError,
    ClusterAlreadyInitializedError,
    JoinTimeoutError,
    NodeNotInitializedError,
    StorageError,
)
from tests.server.fakes import FakeDB, FakeStore


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


def make_node(db: FakeDB, store: str = "mem", **kw: Any) -> Node:
    cfg = NodeConfig(
        store=store,
        listen_addr=kw.pop("listen_addr", "127.0.0.1:0"),
        probe_interval=0.05,
        liveness_timeout=0.5,
        **kw,
    )
    return Node(cfg, store_factory=FakeStore, store_bootstrap=FakeStore.bootstrap, db_factory=lambda n: db)


def dead_address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


async def admin(method: str, *args: Any) -> Any:
    a = AdminClient()
    try:
        return await getattr(a, method)(*args)
    finally:
        await a.close()


async def eventually(cond: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def test_bootstrap_once_then_refused() -> None:
    async def body() -> None:
        db = FakeDB()
        n1 = make_node(db)
        admin = AdminClient()
        await n1.start()
        try:
            assert not n1.initialized and n1.node_id == 0
            resp = await admin.bootstrap(n1.address)
            assert resp.cluster_id
            assert n1.initialized and n1.node_id == 1
            assert n1.store.started
            ident = read_ident(n1.engine)
            assert ident is not None and (ident.node_id, ident.store_id) == (1, 1)
            assert ident.cluster_id == resp.cluster_id
            await eventually(lambda: node_descriptor_key(1) in db.data)
            assert db.data[NODE_ID_GEN_KEY] == b"1"
            desc = data_pb2.NodeDescriptor.FromString(db.data[node_descriptor_key(1)])
            assert desc.address == n1.address
            with pytest.raises(ClusterAlreadyInitializedError, match="already been initialized"):
                await admin.bootstrap(n1.address)
        finally:
            await admin.close()
            await n1.stop()

    run(body())


def test_join_allocates_distinct_ids_and_status_shows_all() -> None:
    async def body() -> None:
        db = FakeDB()
        n1 = make_node(db)
        await n1.start()
        nodes = [n1]
        try:
            await n1.bootstrap(None)  # type: ignore[arg-type]
            for _ in range(2):
                n = make_node(db, join=(n1.address,))
                nodes.append(n)
                await n.start()
                await n.wait_initialized(10)
            assert [n.node_id for n in nodes] == [1, 2, 3]
            assert len({n.ident.cluster_id for n in nodes}) == 1  # type: ignore[union-attr]
            for n in nodes:
                desc = data_pb2.NodeDescriptor.FromString(db.data[node_descriptor_key(n.node_id)])
                assert desc.address == n.address
            # the joiner learnt everyone's address from the join response
            assert nodes[2].registry.address(1) == n1.address  # type: ignore[union-attr]
            assert nodes[2].registry.address(2) == nodes[1].address  # type: ignore[union-attr]

            async def all_live() -> bool:
                st = await admin("status", n1.address)
                return [s.desc.node_id for s in st.nodes] == [1, 2, 3] and all(
                    s.live for s in st.nodes
                )

            deadline = asyncio.get_running_loop().time() + 5
            while not await all_live():
                assert asyncio.get_running_loop().time() < deadline
                await asyncio.sleep(0.05)
            st = n1.registry.cluster_status(n1.own_status())  # type: ignore[union-attr]
            assert [s.stores[0].range_count for s in st.nodes] == [1, 0, 0]
        finally:
            for n in nodes:
                await n.stop()

    run(body())


def test_dead_node_becomes_not_live() -> None:
    async def body() -> None:
        db = FakeDB()
        n1, n2 = make_node(db), None
        await n1.start()
        try:
            await n1.bootstrap(None)  # type: ignore[arg-type]
            n2 = make_node(db, join=(n1.address,))
            await n2.start()
            await n2.wait_initialized(10)
            await eventually(lambda: n1.registry.is_live(2))  # type: ignore[union-attr]
            assert n1.registry.live_node_ids() == [1, 2]  # type: ignore[union-attr]
            await n2.stop()
            await eventually(lambda: not n1.registry.is_live(2))  # type: ignore[union-attr]
            assert n1.registry.live_node_ids() == [1]  # type: ignore[union-attr]
        finally:
            await n1.stop()
            if n2 is not None:
                await n2.stop()

    run(body())


def test_joiner_waits_for_init_instead_of_timing_out() -> None:
    async def body() -> None:
        db = FakeDB()
        n1 = make_node(db)
        await n1.start()
        n2 = make_node(db, join=(n1.address,), join_timeout=0.3)
        await n2.start()
        try:
            await asyncio.sleep(0.8)  # well past join_timeout: n1 answers "not initialized"
            assert not n2.initialized
            await admin("bootstrap", n1.address)
            await n2.wait_initialized(10)
            assert n2.node_id == 2
        finally:
            await n2.stop()
            await n1.stop()

    run(body())


def test_join_timeout_names_the_addresses() -> None:
    async def body() -> None:
        addrs = (dead_address(), dead_address())
        n = make_node(FakeDB(), join=addrs, join_timeout=0.5)
        await n.start()
        try:
            with pytest.raises(JoinTimeoutError) as ei:
                await n.wait_initialized(10)
            for a in addrs:
                assert a in str(ei.value)
            assert not n.initialized
        finally:
            await n.stop()

    run(body())


def test_join_refused_by_uninitialized_node() -> None:
    async def body() -> None:
        n1 = make_node(FakeDB())
        await n1.start()
        try:
            with pytest.raises(NodeNotInitializedError):
                await admin(
                    "join",
                    n1.address,
                    services_pb2.JoinRequest(desc=data_pb2.NodeDescriptor(address="127.0.0.1:1")),
                )
        finally:
            await n1.stop()

    run(body())


def test_restart_reuses_identity(tmp_path: Any) -> None:
    store = str(tmp_path / "s1")

    async def first() -> str:
        n = make_node(FakeDB(), store=store)
        await n.start()
        try:
            return (await n.bootstrap(None)).cluster_id  # type: ignore[arg-type]
        finally:
            await n.stop()

    async def second(cluster_id: str) -> None:
        n = make_node(FakeDB(), store=store)
        await n.start()
        try:
            assert n.initialized and n.node_id == 1 and n.store.started
            assert n.ident.cluster_id == cluster_id  # type: ignore[union-attr]
            with pytest.raises(ClusterAlreadyInitializedError):
                await n.bootstrap(None)  # type: ignore[arg-type]
        finally:
            await n.stop()

    cid = run(first())
    run(second(cid))


def test_store_held_by_another_node(tmp_path: Any) -> None:
    async def body() -> None:
        store = str(tmp_path / "s")
        n1 = make_node(FakeDB(), store=store)
        await n1.start()
        try:
            n2 = make_node(FakeDB(), store=store)
            with pytest.raises(StorageError, match="in use by another process"):
                await n2.start()
            assert n2.transport is None  # nothing left open
        finally:
            await n1.stop()

    run(body())


def test_taken_port() -> None:
    async def body() -> None:
        n1 = make_node(FakeDB())
        await n1.start()
        try:
            n2 = make_node(FakeDB(), listen_addr=n1.address)
            with pytest.raises(AddressInUseError, match="already in use"):
                await n2.start()
            assert n2.engine is None
        finally:
            await n1.stop()

    run(body())


def test_range_data_without_identity_is_refused() -> None:
    from crdb_py.storage.mem import MemEngine

    eng = MemEngine()
    FakeStore.bootstrap(eng, 1, 1)
    n = Node(NodeConfig(store="mem", listen_addr="127.0.0.1:0"), engine_factory=lambda _: eng,
             store_factory=FakeStore, store_bootstrap=FakeStore.bootstrap)
    with pytest.raises(StorageError, match="no store identity"):
        run(n.start())


def test_handler_before_and_after_init() -> None:
    async def body() -> None:
        n1 = make_node(FakeDB())
        await n1.start()
        try:
            resp = await n1.batch(api_pb2.BatchRequest())
            assert resp.error.kind == "NodeNotInitializedError"
            n1.handle_raft_messages(2, raft_pb2.RaftMessageBatch())  # dropped, no crash
            await n1.bootstrap(None)  # type: ignore[arg-type]
            resp = await n1.batch(api_pb2.BatchRequest())
            assert not resp.HasField("error")
            assert len(n1.store.batches) == 1
            n1.handle_raft_messages(1, raft_pb2.RaftMessageBatch())
            assert len(n1.store.raft_batches) == 1
        finally:
            await n1.stop()
        assert n1.store is None and n1.engine is None

    run(body())


def test_descriptor_publication_retries_until_kv_available() -> None:
    async def body() -> None:
        db = FakeDB()
        db.fail = 3
        n1 = make_node(db)
        await n1.start()
        try:
            await n1.bootstrap(None)  # type: ignore[arg-type]
            await eventually(lambda: node_descriptor_key(1) in db.data)
            assert db.calls.count("get") >= 2  # it failed and retried
        finally:
            await n1.stop()

    run(body())


def test_restarted_node_knows_its_peers_before_kv_works(tmp_path: Any) -> None:
    async def first() -> tuple[str, str]:
        db = FakeDB()
        n1 = make_node(db, store=str(tmp_path / "a"))
        await n1.start()
        await n1.bootstrap(None)  # type: ignore[arg-type]
        n2 = make_node(db, store=str(tmp_path / "b"), join=(n1.address,))
        await n2.start()
        await n2.wait_initialized(10)
        await eventually(lambda: n1.registry.address(2) is not None)  # type: ignore[union-attr]
        a1, a2 = n1.address, n2.address
        await n2.stop()
        await n1.stop()
        return a1, a2

    async def second(a1: str) -> None:
        db = FakeDB()
        db.fail = 10**9  # KV unavailable: the whole cluster restarted
        n2 = make_node(db, store=str(tmp_path / "b"))
        await n2.start()
        try:
            assert n2.node_id == 2
            assert n2.registry.address(1) == a1  # type: ignore[union-attr]
        finally:
            await n2.stop()

    a1, _ = run(first())
    run(second(a1))


def test_node_learns_peers_from_join_addresses() -> None:
    async def body() -> None:
        db = FakeDB()
        n1 = make_node(db)
        await n1.start()
        await n1.bootstrap(None)  # type: ignore[arg-type]
        n1.registry.add(data_pb2.NodeDescriptor(node_id=7, address="127.0.0.1:7"))  # type: ignore[union-attr]
        n2 = make_node(db, join=(n1.address,))
        await n2.start()
        try:
            await n2.wait_initialized(10)
            await eventually(lambda: n2.registry.address(7) == "127.0.0.1:7")  # type: ignore[union-attr]
        finally:
            await n2.stop()
            await n1.stop()

    run(body())


def test_send_to_unknown_node_fails_fast_and_looks_it_up() -> None:
    from crdb_py.util.errors import NodeUnavailableError

    async def body() -> None:
        db = FakeDB()
        n1 = make_node(db)
        await n1.start()
        try:
            await n1.bootstrap(None)  # type: ignore[arg-type]
            db.data[node_descriptor_key(9)] = data_pb2.NodeDescriptor(
                node_id=9, address="127.0.0.1:9"
            ).SerializeToString()
            with pytest.raises(NodeUnavailableError, match="not known"):
                await n1.send_to_node(9, api_pb2.BatchRequest())
            await eventually(lambda: n1.registry.address(9) == "127.0.0.1:9")  # type: ignore[union-attr]
            local = await n1.send_to_node(1, api_pb2.BatchRequest())  # local: straight to the store
            assert not local.HasField("error") and len(n1.store.batches) == 1
        finally:
            await n1.stop()

    run(body())


def test_restart_republishes_descriptor_and_admits_joins(tmp_path: Any) -> None:
    db = FakeDB()

    async def first() -> None:
        n1 = make_node(db, store=str(tmp_path / "a"))
        await n1.start()
        await n1.bootstrap(None)  # type: ignore[arg-type]
        await eventually(lambda: node_descriptor_key(1) in db.data)
        await n1.stop()

    async def second() -> None:
        del db.data[node_descriptor_key(1)]
        n1 = make_node(db, store=str(tmp_path / "a"))  # a new port
        await n1.start()
        try:
            await eventually(lambda: node_descriptor_key(1) in db.data)
            desc = data_pb2.NodeDescriptor.FromString(db.data[node_descriptor_key(1)])
            assert desc.address == n1.address
            n2 = make_node(db, join=(n1.address,))
            await n2.start()
            try:
                await n2.wait_initialized(10)
                assert n2.node_id == 2
            finally:
                await n2.stop()
        finally:
            await n1.stop()

    run(first())
    run(second())


def test_advertise_address_is_what_peers_learn() -> None:
    async def body() -> None:
        db = FakeDB()
        n1 = make_node(db)
        await n1.start()
        try:
            await n1.bootstrap(None)  # type: ignore[arg-type]
            n2 = make_node(db, join=(n1.address,), advertise_addr="localhost:4242")
            await n2.start()
            try:
                await n2.wait_initialized(10)
                desc = data_pb2.NodeDescriptor.FromString(db.data[node_descriptor_key(2)])
                assert desc.address == "localhost:4242"
                assert n1.registry.address(2) == "localhost:4242"  # type: ignore[union-attr]
            finally:
                await n2.stop()
        finally:
            await n1.stop()

    run(body())
