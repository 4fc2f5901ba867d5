"""Admin RPCs to nodes known only by address (CLI, LocalCluster, joining).

Transports address peers by node id; before a node has joined (and for the
CLI, which is no node at all) peers are known only as "host:port". The
`AdminClient` gives each address a stable *pseudo* node id (negative, so it
can never collide with a real one) and calls through any `Transport` —
by default a client-only `GrpcTransport` that serves nothing.

Admin failures come back from gRPC as a status whose message names the
server-side error class ("n1: ClusterAlreadyInitializedError: ..."); `retype`
turns such an error back into that class so callers can `except` it.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from crdb_py.pb import services_pb2
from crdb_py.util import errors
from crdb_py.util.errors import CrdbError

_KIND_RE = re.compile(r"\b([A-Z][A-Za-z]*Error): ")


def retype(exc: BaseException) -> BaseException:
    """If `exc`'s message names a crdb_py error class raised remotely, return
    an instance of that class carrying the original message; else `exc`."""
    if not isinstance(exc, CrdbError):
        return exc
    for m in _KIND_RE.finditer(str(exc)):
        cls = getattr(errors, m.group(1), None)
        if isinstance(cls, type) and issubclass(cls, CrdbError) and not isinstance(exc, cls):
            out = cls.__new__(cls)
            out.args = (str(exc)[m.end():],)
            return out
    return exc


class AdminClient:
    """Status / Bootstrap / Join / SetLinkFaults by address."""

    def __init__(self, transport: Any = None) -> None:
        self._own = transport is None
        if transport is None:
            from crdb_py.rpc.grpc_transport import GrpcTransport

            transport = GrpcTransport(0, None, None)
        self.transport = transport
        self._ids: dict[str, int] = {}

    def _pseudo(self, address: str) -> int:
        pid = self._ids.get(address)
        if pid is None:
            pid = self._ids[address] = -(len(self._ids) + 1)
            self.transport.set_node_address(pid, address)
        return pid

    async def _call(self, address: str, fn: Any, timeout: float) -> Any:
        pid = self._pseudo(address)
        try:
            return await asyncio.wait_for(fn(pid), timeout)
        except CrdbError as exc:
            raise retype(exc) from exc

    async def status(self, address: str, timeout: float = 5.0) -> services_pb2.NodeStatusResponse:
        return await self._call(address, self.transport.admin_status, timeout)

    async def bootstrap(self, address: str, timeout: float = 30.0) -> services_pb2.BootstrapResponse:
        return await self._call(address, self.transport.bootstrap, timeout)

    async def join(
        self, address: str, req: services_pb2.JoinRequest, timeout: float = 5.0
    ) -> services_pb2.JoinResponse:
        return await self._call(address, lambda pid: self.transport.join(pid, req), timeout)

    async def set_link_faults(
        self, address: str, faults: services_pb2.LinkFaults, timeout: float = 5.0
    ) -> services_pb2.LinkFaults:
        return await self._call(
            address, lambda pid: self.transport.set_link_faults(pid, faults), timeout
        )

    async def close(self) -> None:
        if self._own:
            await self.transport.close()
