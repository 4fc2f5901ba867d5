"""Embedding glue: the KV store behind `crdb_py.connect(target)`.

`open_backend(target)` returns a `Backend`: an event loop in a daemon thread
(`LoopThread`) running a KV `DB` that SQL sessions use.

* ``None``         an in-memory single-node store: one `Store` on a
                   `MemEngine`, replication factor 1, reached through the
                   in-process transport and a DistSender (the
                   `InProcessKVCluster` harness with one node);
* a path           the same on a RocksDB engine in that directory (created
                   and bootstrapped on first use, reopened afterwards); one
                   backend per path per process, shared by its connections;
* ``"host:port"``  a client of a running cluster: the SQL layer runs here,
                   over a DistSender on a client-only gRPC transport
                   (`crdb_py.localcluster.open_kv`). The cluster's nodes are
                   discovered from the first given address that answers
                   (comma-separate several for fail-over), in any order.

This module is a composition root (like crdb_py/server): it may import
every layer; crdb_py/sql itself only sees the `KVStore` protocol.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from crdb_py.kvclient.txn.sync import LoopThread

T = TypeVar("T")


class Backend:
    """A KV `DB` on its own loop thread, shared by the connections opened on it."""

    def __init__(self, target: str | None) -> None:
        self.target = target
        self.loop = LoopThread(f"crdb-py-sql-{target or 'mem'}")
        self._cluster: Any = None
        self._kv: Any = None
        self.refs = 0
        try:
            self.db = self.loop.run(self._open(target), timeout=60)
        except BaseException:
            self.loop.close()
            raise

    async def _open(self, target: str | None) -> Any:
        if target is not None and _is_address(target):
            # localcluster.open_kv would start its own loop; build the client on ours.
            from crdb_py.localcluster import _open_kv

            nodes = await discover_nodes([a.strip() for a in target.split(",") if a.strip()])
            self._kv = await _open_kv(nodes, self.loop.loop)
            return self._kv.db
        cluster = _EmbeddedCluster(target)
        await cluster.start()
        self._cluster = cluster
        return cluster.db()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return self.loop.run(coro, timeout)

    def close(self) -> None:
        async def _close() -> None:
            if self._cluster is not None:
                await self._cluster.close()
            if self._kv is not None and getattr(self._kv, "_transport", None) is not None:
                with contextlib.suppress(Exception):
                    await self._kv._transport.close()
        with contextlib.suppress(Exception):
            self.loop.run(_close(), timeout=30)
        self.loop.close()


async def discover_nodes(addresses: list[str], timeout: float = 5.0) -> dict[int, str]:
    """node id -> address of every node of the cluster, asked of the first of
    `addresses` that answers (Admin.Status lists the nodes it knows), so any
    node's address, in any order, reaches the whole cluster."""
    from crdb_py.server.admin import AdminClient
    from crdb_py.util.errors import NodeUnavailableError

    admin = AdminClient()
    problems = []
    try:
        for a in addresses:
            try:
                resp = await admin.status(a, timeout=timeout)
            except Exception as e:  # next address
                problems.append(f"{a}: {e}")
                continue
            nodes = {n.desc.node_id: n.desc.address for n in resp.nodes if n.desc.node_id}
            if nodes:
                return nodes
            problems.append(f"{a}: the node has not joined a cluster yet")
    finally:
        await admin.close()
    raise NodeUnavailableError(0, "cannot reach the cluster: " + "; ".join(problems))


def _is_address(target: str) -> bool:
    first = target.split(",")[0].strip()
    host, sep, port = first.rpartition(":")
    return bool(sep and host and port.isdigit() and not os.path.isdir(target))


def _embedded_cluster_class() -> type:
    from crdb_py.kvserver.store import Store
    from crdb_py.sim.kvcluster import InProcessKVCluster, SimNode
    from crdb_py.storage import open_engine
    from crdb_py.util.errors import InternalError

    class EmbeddedCluster(InProcessKVCluster):
        """One node, replication factor 1, on a MemEngine or a RocksDB path."""

        def __init__(self, path: str | None) -> None:
            super().__init__(1, replication_factor=1)
            self.path = path

        async def start(self) -> None:
            if self.path is not None:
                os.makedirs(self.path, exist_ok=True)
            eng = open_engine(self.path)
            with contextlib.suppress(InternalError):  # already bootstrapped: reopen
                Store.bootstrap(eng, 1, 1)
            self.nodes[1] = SimNode(1, eng)
            await self.start_node(1)

        async def close(self) -> None:
            await super().close()
            close = getattr(self.nodes[1].engine, "close", None) if 1 in self.nodes else None
            if close is not None:
                with contextlib.suppress(Exception):
                    close()

    return EmbeddedCluster


def _EmbeddedCluster(path: str | None) -> Any:  # a class built lazily (imports kvserver)
    return _embedded_cluster_class()(path)


_lock = threading.Lock()
_by_path: dict[str, Backend] = {}


def open_backend(target: str | None) -> Backend:
    """A new in-memory backend (None) or the process-wide one for a path / address."""
    if target is None:
        b = Backend(None)
        b.refs = 1
        return b
    key = target if _is_address(target) else os.path.abspath(target)
    with _lock:
        b = _by_path.get(key)
        if b is None:
            b = Backend(target if _is_address(target) else key)
            _by_path[key] = b
        b.refs += 1
        return b


def release_backend(b: Backend) -> None:
    """Drop one reference; the last one closes the backend."""
    with _lock:
        b.refs -= 1
        if b.refs > 0:
            return
        for k, v in list(_by_path.items()):
            if v is b:
                del _by_path[k]
    b.close()
