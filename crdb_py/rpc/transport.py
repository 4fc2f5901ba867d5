"""The transport seam: how one node reaches another.

Everything a node says to another node goes through a `Transport`:

- **Batch** — a KV `BatchRequest` for one range, sent to the node holding the
  range's lease, answered by a `BatchResponse`. Request/response, awaited.
- **Raft messages** — fire-and-forget `RaftMessageRequest`s, one per
  (range, replica → replica) message. `send_raft_message` only enqueues; all
  messages queued for one destination during one event-loop turn leave as ONE
  `RaftMessageBatch` (coalescing). Raft tolerates loss, so a full queue or a
  link known to be down drops the message and returns False; the transport
  reports the peer through `on_unreachable(node_id)` so raft can be told
  (`report_unreachable`) and stop optimistic replication to it.
- **Admin** — node status, bootstrap, join, and `SetLinkFaults` (latency
  injection / one-way partitions, see `crdb_py/rpc/faults.py`).

The receiving side is a `NodeHandler` (the server's Node). Raft batches are
handed to `handle_raft_messages` on the receiving node's event loop, never
re-entrantly from inside a sender's call, and in send order per link.

Errors. `send_batch` raises `NodeUnavailableError` when the request certainly
did not reach the node (connection refused, link blocked, node stopped) — the
caller may try another replica. When the request may have been delivered but
no answer came back (connection broken after send, deadline exceeded), the
outcome is unknown: for a batch that writes this is `AmbiguousResultError`
(the caller must not assume the write failed); for a read-only batch it is
again `NodeUnavailableError`, since retrying a read elsewhere is harmless.
Errors raised *by the handler* travel inside `BatchResponse.error`, exactly
like evaluation errors, so a bad request never takes down the server.

Implementations: `InProcessTransport` (one process, one loop: simulator and
fast tests), `GrpcTransport` (grpc.aio, real node processes), and the
`LatencyInjector` wrapper around either. Design notes: docs/design/transport.md.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from crdb_py.pb import api_pb2, raft_pb2, services_pb2
from crdb_py.util.errors import AmbiguousResultError, CrdbError, NodeUnavailableError

log = logging.getLogger(__name__)

UnreachableCallback = Callable[[int], None]

# Per-destination cap on raft messages waiting to be written. Raft retransmits,
# so beyond this we drop rather than buffer without bound.
DEFAULT_RAFT_QUEUE_LIMIT = 10_000
# Default deadline of a Batch RPC when the caller gives none.
DEFAULT_BATCH_TIMEOUT = 30.0
# Snapshots travel as raft messages; allow big ones.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


@runtime_checkable
class NodeHandler(Protocol):
    """The receiving side of a transport: implemented by the server's Node."""

    async def batch(self, req: api_pb2.BatchRequest) -> api_pb2.BatchResponse:
        """Evaluate `req` against its range (header.range_id) on this node."""
        ...

    def handle_raft_messages(self, from_node_id: int, batch: raft_pb2.RaftMessageBatch) -> None:
        """Step every message of `batch` into its replica. Called on the
        receiving node's event loop; must not block."""
        ...

    async def admin_status(
        self, req: services_pb2.NodeStatusRequest
    ) -> services_pb2.NodeStatusResponse: ...

    async def bootstrap(self, req: services_pb2.BootstrapRequest) -> services_pb2.BootstrapResponse: ...

    async def join(self, req: services_pb2.JoinRequest) -> services_pb2.JoinResponse: ...


@runtime_checkable
class Transport(Protocol):
    """One node's endpoint: serves its `NodeHandler`, reaches the others."""

    node_id: int

    def set_node_address(self, node_id: int, address: str) -> None:
        """Tell the transport where `node_id` listens (a no-op in-process)."""
        ...

    async def send_batch(
        self, node_id: int, req: api_pb2.BatchRequest, timeout: float | None = None
    ) -> api_pb2.BatchResponse:
        """Send `req` to `node_id`; raises NodeUnavailableError or
        AmbiguousResultError (see module docstring)."""
        ...

    def send_raft_message(self, node_id: int, req: raft_pb2.RaftMessageRequest) -> bool:
        """Enqueue without blocking; False if dropped (queue full, link down)."""
        ...

    async def admin_status(self, node_id: int) -> services_pb2.NodeStatusResponse: ...

    async def bootstrap(self, node_id: int) -> services_pb2.BootstrapResponse: ...

    async def join(
        self, node_id: int, req: services_pb2.JoinRequest
    ) -> services_pb2.JoinResponse: ...

    async def set_link_faults(
        self, node_id: int, faults: services_pb2.LinkFaults
    ) -> services_pb2.LinkFaults:
        """Replace `node_id`'s link-fault table (latency injection, one-way
        blocks); returns the table now in force there."""
        ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class LinkFaultSink(Protocol):
    """Where a transport's server side applies an `Admin.SetLinkFaults`."""

    def apply_proto(self, faults: services_pb2.LinkFaults) -> None: ...

    def to_proto(self) -> services_pb2.LinkFaults: ...


# ---- helpers shared by the implementations ----------------------------------

# Requests that never write: safe to retry elsewhere after an unknown outcome.
_READ_ONLY_KINDS = frozenset(
    {"get", "scan", "reverse_scan", "query_txn", "query_intent", "refresh", "refresh_range"}
)


def is_read_only(req: api_pb2.BatchRequest) -> bool:
    """True if no request in the batch can write."""
    return all(ru.WhichOneof("value") in _READ_ONLY_KINDS for ru in req.requests)


def delivery_failure(
    node_id: int, req: api_pb2.BatchRequest, *, maybe_delivered: bool, detail: str
) -> CrdbError:
    """The error for a batch that got no response from `node_id`."""
    if maybe_delivered and not is_read_only(req):
        return AmbiguousResultError(
            f"n{node_id}: result is ambiguous: the batch may have been applied "
            f"but no response arrived ({detail}); do not assume it failed"
        )
    where = "may have been delivered" if maybe_delivered else "was not delivered"
    return NodeUnavailableError(node_id, f"node n{node_id} is unavailable: {detail} (request {where})")


def error_response(exc: BaseException, *, node_id: int) -> api_pb2.BatchResponse:
    """A BatchResponse carrying `exc` as its error: the safety net for
    exceptions that escape the handler (the Node should convert its own)."""
    resp = api_pb2.BatchResponse()
    err = resp.error
    err.index = -1
    if isinstance(exc, CrdbError):
        err.kind = exc.kind
        err.message = str(exc)
        err.retryable = exc.retryable
    else:
        err.kind = "InternalError"
        err.message = f"n{node_id}: internal error while handling batch: {type(exc).__name__}: {exc}"
    return resp


async def call_handler_batch(
    handler: NodeHandler, req: api_pb2.BatchRequest, *, node_id: int
) -> api_pb2.BatchResponse:
    """Run handler.batch; an escaping exception becomes an error response."""
    try:
        return await handler.batch(req)
    except Exception as exc:  # never let a bad request crash the server
        log.exception("n%d: batch handler raised", node_id)
        return error_response(exc, node_id=node_id)


def deliver_raft_batch(
    handler: NodeHandler, from_node_id: int, batch: raft_pb2.RaftMessageBatch, *, node_id: int
) -> str:
    """Hand a batch to the handler; returns an error string ('' if fine)."""
    try:
        handler.handle_raft_messages(from_node_id, batch)
    except Exception as exc:
        log.exception("n%d: raft message handler raised", node_id)
        return f"{type(exc).__name__}: {exc}"
    return ""
