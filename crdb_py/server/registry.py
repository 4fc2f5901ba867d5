"""Node registry: who is in the cluster, where they listen, who is live.

Addresses. Every node's `NodeDescriptor` (node id, address) is a KV value at
``node_descriptor_key(node_id)`` (system key space, written at join time and
re-published by the node itself at every start, so a node that moved to a
new port is found again). The registry caches them and hands each address
to the transport (`set_node_address`) the moment it learns it; an unknown
node id (e.g. raft traffic from a node that joined a moment ago) is looked
up in KV on demand, and the whole set is rescanned periodically.

Bootstrapping addresses. KV needs raft, raft needs addresses: a cluster
whose nodes all restarted cannot read the descriptors from KV until they
reach each other. So every descriptor the registry learns is also kept in
the node's own engine (`ident.store_peer_key`) and loaded at start, and the
node asks its --join addresses for their view (`Admin.Status`) as well.

Liveness, kept deliberately simple: every `probe_interval` the registry
calls `Admin.Status` on every known node (with a short deadline). A node is
*live* if such a probe succeeded within the last `liveness_timeout` seconds;
the local node is always live. This is a per-observer view (no epochs, no
liveness records in KV as in CockroachDB): good enough to steer
up-replication away from dead nodes and to show `node status`; leases do not
depend on it (they are raft leader leases). A link blocked by a partition
makes the peer non-live for this observer, as it would in a real network.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from crdb_py.pb import data_pb2, services_pb2
from crdb_py.util import keys

log = logging.getLogger(__name__)

NODE_DESC_PREFIX = keys.SYSTEM_PREFIX + b"node/"
NODE_ID_GEN_KEY = keys.SYSTEM_PREFIX + b"node-idgen"


def node_descriptor_key(node_id: int) -> bytes:
    return NODE_DESC_PREFIX + node_id.to_bytes(4, "big")


DescriptorFetcher = Callable[[int], Awaitable[data_pb2.NodeDescriptor | None]]
DescriptorScanner = Callable[[], Awaitable[list[data_pb2.NodeDescriptor]]]


class NodeRegistry:
    """Descriptor cache + liveness map; the Store's `NodeDialer`."""

    def __init__(
        self,
        transport: object,
        self_desc: data_pb2.NodeDescriptor,
        *,
        probe_interval: float = 0.5,
        probe_timeout: float = 1.0,
        liveness_timeout: float = 2.0,
        rescan_interval: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._transport = transport
        self.self_desc = self_desc
        self.probe_interval = probe_interval
        self.probe_timeout = probe_timeout
        self.liveness_timeout = liveness_timeout
        self.rescan_interval = rescan_interval
        self._now = monotonic
        self._descs: dict[int, data_pb2.NodeDescriptor] = {}
        self._last_ok: dict[int, float] = {}
        self._last_status: dict[int, services_pb2.NodeStatus] = {}
        self.fetch_descriptor: DescriptorFetcher | None = None
        # Called with every new or changed descriptor (the node persists them
        # locally so a restarted cluster can find its peers without KV).
        self.on_learn: Callable[[data_pb2.NodeDescriptor], None] | None = None
        self.scan_descriptors: DescriptorScanner | None = None
        self._inflight_lookups: dict[int, asyncio.Future[str | None]] = {}
        self.stopped = False
        self.add(self_desc)

    # ---- descriptors --------------------------------------------------------

    def add(self, desc: data_pb2.NodeDescriptor) -> None:
        if desc.node_id <= 0 or not desc.address:
            return
        old = self._descs.get(desc.node_id)
        if old is not None and old.address == desc.address:
            return
        d = data_pb2.NodeDescriptor()
        d.CopyFrom(desc)
        self._descs[desc.node_id] = d
        if desc.node_id != self.self_desc.node_id:
            self._transport.set_node_address(desc.node_id, desc.address)  # type: ignore[attr-defined]
        if self.on_learn is not None:
            self.on_learn(d)

    def descriptors(self) -> list[data_pb2.NodeDescriptor]:
        return [self._descs[i] for i in sorted(self._descs)]

    def address(self, node_id: int) -> str | None:
        d = self._descs.get(node_id)
        return d.address if d is not None else None

    def lookup_in_flight(self, node_id: int) -> bool:
        return node_id in self._inflight_lookups

    async def lookup_node(self, node_id: int) -> str | None:
        """Address of `node_id`: cached, else read from KV (coalesced)."""
        addr = self.address(node_id)
        if addr is not None or self.fetch_descriptor is None:
            return addr
        fut = self._inflight_lookups.get(node_id)
        if fut is None:
            fut = asyncio.get_running_loop().create_future()
            self._inflight_lookups[node_id] = fut
            try:
                desc = await asyncio.wait_for(self.fetch_descriptor(node_id), self.probe_timeout * 5)
                if desc is not None:
                    self.add(desc)
                fut.set_result(self.address(node_id))
            except Exception as exc:  # lookup failures are reported as "unknown"
                log.debug("n%d: descriptor lookup failed: %s", node_id, exc)
                fut.set_result(None)
            finally:
                self._inflight_lookups.pop(node_id, None)
        return await asyncio.shield(fut)

    # ---- liveness -------------------------------------------------------------

    def is_live(self, node_id: int) -> bool:
        if node_id == self.self_desc.node_id:
            return True
        t = self._last_ok.get(node_id)
        return t is not None and self._now() - t <= self.liveness_timeout

    def live_node_ids(self) -> list[int]:
        return [i for i in sorted(self._descs) if self.is_live(i)]

    def record_status(self, node_id: int, st: services_pb2.NodeStatus) -> None:
        self._last_ok[node_id] = self._now()
        self._last_status[node_id] = st

    async def probe(self, node_id: int) -> bool:
        try:
            resp = await asyncio.wait_for(
                self._transport.admin_status(node_id),  # type: ignore[attr-defined]
                self.probe_timeout,
            )
        except Exception as exc:  # unreachable, timed out, partitioned: not live
            log.debug("probe of n%d failed: %s", node_id, exc)
            return False
        for st in resp.nodes:
            if st.desc.node_id == node_id:
                self.record_status(node_id, st)
                return True
        return False

    async def probe_all(self) -> None:
        others = [i for i in self._descs if i != self.self_desc.node_id]
        if others:
            await asyncio.gather(*(self.probe(i) for i in others))

    async def rescan(self) -> None:
        if self.scan_descriptors is None:
            return
        try:
            descs = await asyncio.wait_for(self.scan_descriptors(), self.probe_timeout * 5)
        except Exception as exc:
            log.debug("descriptor rescan failed: %s", exc)
            return
        for d in descs:
            self.add(d)

    async def run(self) -> None:
        """Probe and rescan forever (cancel to stop). Two independent loops:
        a slow rescan (KV may be unavailable for a while, e.g. behind a
        partition) must never delay the liveness probes."""
        rescans = asyncio.ensure_future(self._rescan_loop())
        try:
            while not self.stopped:
                await self.probe_all()
                await asyncio.sleep(self.probe_interval)
        finally:
            rescans.cancel()
            with contextlib.suppress(BaseException):
                await rescans

    async def _rescan_loop(self) -> None:
        while not self.stopped:
            await self.rescan()
            await asyncio.sleep(self.rescan_interval)

    # ---- status -----------------------------------------------------------------

    def cluster_status(self, own: services_pb2.NodeStatus) -> services_pb2.NodeStatusResponse:
        """`own` plus the last known status of every other known node."""
        resp = services_pb2.NodeStatusResponse()
        for node_id in sorted(self._descs):
            st = resp.nodes.add()
            if node_id == self.self_desc.node_id:
                st.CopyFrom(own)
                st.live = True
                continue
            last = self._last_status.get(node_id)
            if last is not None:
                st.CopyFrom(last)
            st.desc.CopyFrom(self._descs[node_id])
            st.live = self.is_live(node_id)
        return resp
