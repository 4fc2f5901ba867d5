"""Admin RPCs to nodes known only by address (CLI, LocalCluster, joining).

Transports address peers by node id; before a node has joined (and for the
CLI, which is no node at all) peers are known only as "host:port". The
`AdminClient` keeps one client-only transport (serving nothing) per address.

Admin failures come back from gRPC as a status whose message names the
server-side error class ("n1: ClusterAlreadyInitializedError: ..."); `retype`
turns such an error back into that class so callers can `except` it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
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
    """Status / Bootstrap / Join / SetLinkFaults by address.

    Each address gets its own client-only transport in which the peer is
    node id 0 — "whoever listens there": transports check that a request
    reaches the node id it was meant for, and 0 opts out of that check.
    """

    def __init__(self, transport_factory: Callable[[], Any] | None = None) -> None:
        self._factory = transport_factory or _grpc_client
        self._transports: dict[str, Any] = {}

    def _transport(self, address: str) -> Any:
        t = self._transports.get(address)
        if t is None:
            t = self._transports[address] = self._factory()
            t.set_node_address(ANY_NODE, address)
        return t

    async def _call(self, address: str, fn: Callable[[Any], Awaitable[Any]], timeout: float) -> Any:
        t = self._transport(address)
        try:
            return await asyncio.wait_for(fn(t), timeout)
        except CrdbError as exc:
            raise retype(exc) from exc

    async def status(self, address: str, timeout: float = 5.0) -> services_pb2.NodeStatusResponse:
        return await self._call(address, lambda t: t.admin_status(ANY_NODE), timeout)

    async def bootstrap(self, address: str, timeout: float = 30.0) -> services_pb2.BootstrapResponse:
        return await self._call(address, lambda t: t.bootstrap(ANY_NODE), timeout)

    async def join(
        self, address: str, req: services_pb2.JoinRequest, timeout: float = 5.0
    ) -> services_pb2.JoinResponse:
        return await self._call(address, lambda t: t.join(ANY_NODE, req), timeout)

    async def set_link_faults(
        self, address: str, faults: services_pb2.LinkFaults, timeout: float = 5.0
    ) -> services_pb2.LinkFaults:
        return await self._call(address, lambda t: t.set_link_faults(ANY_NODE, faults), timeout)

    async def close(self) -> None:
        ts, self._transports = list(self._transports.values()), {}
        await asyncio.gather(*(t.close() for t in ts), return_exceptions=True)


ANY_NODE = 0


def _grpc_client() -> Any:
    from crdb_py.rpc.grpc_transport import GrpcTransport

    return GrpcTransport(0, None, None)
