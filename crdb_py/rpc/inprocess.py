"""In-process transport: every node in one process, on one event loop.

Used by the simulator and by fast tests. It keeps the semantics of the gRPC
transport that matter to the layers above, so code tested here behaves the
same over the wire:

- messages are *copied* across (serialized and parsed, as the wire would), so
  sender and receiver never share a mutable protobuf;
- delivery is asynchronous, never re-entrant: a Batch runs in its own task on
  the receiving node's handler; raft batches are delivered from a
  `loop.call_soon` callback, never from inside `send_raft_message`;
- raft messages queued for one destination during one loop turn are delivered
  as one `RaftMessageBatch`, in send order (call_soon callbacks run FIFO);
- a node that is not registered (never started, or closed) is unreachable:
  `send_batch` raises `NodeUnavailableError`, `send_raft_message` returns
  False and `on_unreachable(node_id)` is called (asynchronously). Starting a
  transport for that node id again "reconnects" it.

Latency and partitions are not modelled here: wrap each transport in a
`LatencyInjector` (sharing one `LinkFaultTable`) for that.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from crdb_py.pb import api_pb2, raft_pb2, services_pb2
from crdb_py.rpc.transport import (
    DEFAULT_BATCH_TIMEOUT,
    DEFAULT_RAFT_QUEUE_LIMIT,
    LinkFaultSink,
    NodeHandler,
    UnreachableCallback,
    call_handler_batch,
    deliver_raft_batch,
    delivery_failure,
)
from crdb_py.util.errors import (
    CrdbError,
    InternalError,
    InvalidArgumentError,
    NodeUnavailableError,
)

M = TypeVar("M")


class InProcessNetwork:
    """The registry of started in-process transports, by node id."""

    def __init__(self) -> None:
        self._nodes: dict[int, InProcessTransport] = {}

    def transport(
        self, node_id: int, handler: NodeHandler, **kwargs: Any
    ) -> InProcessTransport:
        """A new (not yet started) transport for `node_id` on this network."""
        return InProcessTransport(self, node_id, handler, **kwargs)

    def lookup(self, node_id: int) -> InProcessTransport | None:
        return self._nodes.get(node_id)

    @property
    def node_ids(self) -> list[int]:
        return sorted(self._nodes)

    def _register(self, t: InProcessTransport) -> None:
        cur = self._nodes.get(t.node_id)
        if cur is not None and cur is not t:
            raise InvalidArgumentError(f"n{t.node_id} is already registered on this network")
        self._nodes[t.node_id] = t

    def _unregister(self, t: InProcessTransport) -> None:
        if self._nodes.get(t.node_id) is t:
            del self._nodes[t.node_id]


class InProcessTransport:
    """A `Transport` whose peers live in the same `InProcessNetwork`."""

    def __init__(
        self,
        network: InProcessNetwork,
        node_id: int,
        handler: NodeHandler,
        *,
        on_unreachable: UnreachableCallback | None = None,
        raft_queue_limit: int = DEFAULT_RAFT_QUEUE_LIMIT,
        batch_timeout: float = DEFAULT_BATCH_TIMEOUT,
    ) -> None:
        self.node_id = node_id
        self.network = network
        self.handler = handler
        self.on_unreachable = on_unreachable
        self.raft_queue_limit = raft_queue_limit
        self.batch_timeout = batch_timeout
        self.link_fault_sink: LinkFaultSink | None = None
        self.address = f"inproc:n{node_id}"
        self._pending: dict[int, list[raft_pb2.RaftMessageRequest]] = {}
        self._started = False
        # counters (tests and metrics): batches / messages put on the "wire"
        self.raft_batches_sent = 0
        self.raft_messages_sent = 0
        self.raft_messages_dropped = 0

    # ---- lifecycle ----

    async def start(self) -> None:
        self.network._register(self)
        self._started = True

    async def close(self) -> None:
        self._started = False
        self.network._unregister(self)
        for msgs in self._pending.values():
            self.raft_messages_dropped += len(msgs)
        self._pending.clear()

    def set_node_address(self, node_id: int, address: str) -> None:
        """Addresses mean nothing in-process; nodes are found by id."""

    # ---- raft ----

    def send_raft_message(self, node_id: int, req: raft_pb2.RaftMessageRequest) -> bool:
        if not self._started or self.network.lookup(node_id) is None:
            self.raft_messages_dropped += 1
            self._report_unreachable(node_id)
            return False
        pending = self._pending.get(node_id)
        if pending is None:
            pending = self._pending[node_id] = []
        if len(pending) >= self.raft_queue_limit:
            self.raft_messages_dropped += 1
            return False
        if not pending:
            asyncio.get_running_loop().call_soon(self._flush, node_id)
        pending.append(req)
        return True

    def _flush(self, node_id: int) -> None:
        msgs = self._pending.pop(node_id, None)
        if not msgs:
            return
        dest = self.network.lookup(node_id)
        if dest is None or not self._started:
            self.raft_messages_dropped += len(msgs)
            self._report_unreachable(node_id)
            return
        wire = raft_pb2.RaftMessageBatch(requests=msgs).SerializeToString()
        self.raft_batches_sent += 1
        self.raft_messages_sent += len(msgs)
        batch = raft_pb2.RaftMessageBatch.FromString(wire)
        deliver_raft_batch(dest.handler, self.node_id, batch, node_id=node_id)

    def _report_unreachable(self, node_id: int) -> None:
        if self.on_unreachable is not None:
            asyncio.get_running_loop().call_soon(self.on_unreachable, node_id)

    # ---- request/response ----

    async def send_batch(
        self, node_id: int, req: api_pb2.BatchRequest, timeout: float | None = None
    ) -> api_pb2.BatchResponse:
        dest = self._dest(node_id, req)
        copy = _copy(req)
        return await self._call(
            node_id,
            lambda: call_handler_batch(dest.handler, copy, node_id=node_id),
            timeout,
            req,
        )

    async def admin_status(self, node_id: int) -> services_pb2.NodeStatusResponse:
        dest = self._dest(node_id)
        return await self._call(
            node_id, lambda: dest.handler.admin_status(services_pb2.NodeStatusRequest()), None
        )

    async def bootstrap(self, node_id: int) -> services_pb2.BootstrapResponse:
        dest = self._dest(node_id)
        return await self._call(
            node_id, lambda: dest.handler.bootstrap(services_pb2.BootstrapRequest()), None
        )

    async def join(self, node_id: int, req: services_pb2.JoinRequest) -> services_pb2.JoinResponse:
        dest = self._dest(node_id)
        copy = _copy(req)
        return await self._call(node_id, lambda: dest.handler.join(copy), None)

    async def set_link_faults(
        self, node_id: int, faults: services_pb2.LinkFaults
    ) -> services_pb2.LinkFaults:
        dest = self._dest(node_id)
        sink = dest.link_fault_sink
        if sink is None:
            raise InvalidArgumentError(
                f"n{node_id}: link faults are not enabled "
                "(its transport is not wrapped in a LatencyInjector)"
            )
        await asyncio.sleep(0)  # asynchronous, like the wire
        sink.apply_proto(_copy(faults))
        return sink.to_proto()

    def _dest(self, node_id: int, req: api_pb2.BatchRequest | None = None) -> InProcessTransport:
        dest = self.network.lookup(node_id) if self._started else None
        if dest is None:
            raise NodeUnavailableError(
                node_id, f"node n{node_id} is unavailable: not running (request was not delivered)"
            )
        return dest

    async def _call(
        self,
        node_id: int,
        fn: Callable[[], Awaitable[M]],
        timeout: float | None,
        req: api_pb2.BatchRequest | None = None,
    ) -> M:
        # The handler runs in its own task: never inside the caller's stack.
        task = asyncio.ensure_future(fn())
        t = self.batch_timeout if timeout is None else timeout
        try:
            resp = await asyncio.wait_for(asyncio.shield(task), t)
        except TimeoutError:
            err = delivery_failure(
                node_id,
                req if req is not None else api_pb2.BatchRequest(),
                maybe_delivered=True,
                detail=f"no response within {t:.3f}s",
            )
            raise err from None
        except CrdbError:
            raise
        except Exception as exc:  # as over the wire: a clear InternalError
            raise InternalError(f"n{node_id}: {type(exc).__name__}: {exc}") from exc
        return _copy(resp)


def _copy(msg: M) -> M:
    """A deep copy through the wire format."""
    return type(msg).FromString(msg.SerializeToString())  # type: ignore[attr-defined]
