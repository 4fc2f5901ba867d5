"""gRPC servicers: the server side of `GrpcTransport`.

They translate RPCs into calls on the node's `NodeHandler` and never let a
bad request take the server down: an exception escaping `handler.batch`
becomes `BatchResponse.error` (kind InternalError unless it is a CrdbError),
one escaping `handle_raft_messages` is logged and answered on the stream with
a `RaftMessageResponse.error`, and admin failures become gRPC status errors
with a clear message. Requests that do not even parse are rejected by grpc
itself with an INTERNAL status; the client maps that to `InternalError`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio

from crdb_py.pb import api_pb2, raft_pb2, services_pb2, services_pb2_grpc
from crdb_py.rpc.transport import MAX_MESSAGE_BYTES, call_handler_batch, deliver_raft_batch
from crdb_py.util.errors import CrdbError, InvalidArgumentError

if TYPE_CHECKING:
    from crdb_py.rpc.grpc_transport import GrpcTransport

log = logging.getLogger(__name__)

# Metadata key: the sender's node id (client → server) and the server's own
# node id in the initial metadata of a stream (server → client).
NODE_ID_METADATA = "crdb-node-id"
# Metadata key: the node id the client means to reach. A server with another
# id refuses with NOT_FOUND (a stale or wrong address), so a message is never
# handled by the wrong node.
TARGET_NODE_METADATA = "crdb-target-node-id"


def server_options() -> list[tuple[str, Any]]:
    return [
        ("grpc.so_reuseport", 0),  # a taken port must fail, not be shared
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_recv_ping_interval_without_data_ms", 5_000),
        ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
    ]


def _metadata_int(context: grpc.aio.ServicerContext, key: str) -> int:
    for k, v in context.invocation_metadata() or ():
        if k == key:
            try:
                return int(v)
            except ValueError:
                return 0
    return 0


async def _check_target(t: GrpcTransport, context: grpc.aio.ServicerContext) -> None:
    target = _metadata_int(context, TARGET_NODE_METADATA)
    if target and target != t.node_id:
        log.info("n%d: refused a request meant for n%d (stale or wrong address)", t.node_id, target)
        await context.abort(
            grpc.StatusCode.NOT_FOUND,
            f"wrong node: n{t.node_id} is listening at {t.address}, not n{target}",
        )


class InternalServicer(services_pb2_grpc.InternalServicer):
    def __init__(self, t: GrpcTransport) -> None:
        self.t = t

    async def Batch(
        self, request: api_pb2.BatchRequest, context: grpc.aio.ServicerContext
    ) -> api_pb2.BatchResponse:
        assert self.t.handler is not None
        await _check_target(self.t, context)
        return await call_handler_batch(self.t.handler, request, node_id=self.t.node_id)

    async def RaftMessageBatch(self, request_iterator: Any, context: grpc.aio.ServicerContext) -> None:
        t = self.t
        assert t.handler is not None
        await _check_target(t, context)
        from_node = _metadata_int(context, NODE_ID_METADATA)
        await context.send_initial_metadata(((NODE_ID_METADATA, str(t.node_id)),))
        while True:
            batch = await context.read()
            if batch is grpc.aio.EOF:
                return
            assert isinstance(batch, raft_pb2.RaftMessageBatch)
            src = from_node or (batch.requests[0].from_node_id if batch.requests else 0)
            err = deliver_raft_batch(t.handler, src, batch, node_id=t.node_id)
            if err:
                range_id = batch.requests[0].range_id if batch.requests else 0
                await context.write(raft_pb2.RaftMessageResponse(range_id=range_id, error=err))

    async def BatchStream(self, request_iterator: Any, context: grpc.aio.ServicerContext) -> None:
        t = self.t
        assert t.handler is not None
        handler = t.handler
        await _check_target(t, context)
        await context.send_initial_metadata(((NODE_ID_METADATA, str(t.node_id)),))
        loop = asyncio.get_running_loop()
        tasks: set[asyncio.Task[None]] = set()
        # The next frame, filled in place (one copy of each response).
        outbox = services_pb2.BatchStreamResponses()
        wake = asyncio.Event()

        async def serve(m: services_pb2.BatchStreamRequest) -> None:
            resp = await call_handler_batch(handler, m.request, node_id=t.node_id)
            outbox.responses.add(id=m.id, response=resp)
            wake.set()

        async def write() -> None:
            # Responses finished in two consecutive loop turns leave as one
            # frame (each write costs far more CPU than its bytes).
            nonlocal outbox
            while True:
                await wake.wait()
                await asyncio.sleep(0)
                wake.clear()
                if outbox.responses:
                    frame, outbox = outbox, services_pb2.BatchStreamResponses()
                    await context.write(frame)

        writer = loop.create_task(write())
        try:
            while True:
                frame = await context.read()
                if frame is grpc.aio.EOF:
                    break
                for m in frame.requests:
                    task = loop.create_task(serve(m))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            while outbox.responses and not writer.done():
                await asyncio.sleep(0.001)
        finally:
            writer.cancel()
            for task in tasks:
                task.cancel()


class AdminServicer(services_pb2_grpc.AdminServicer):
    def __init__(self, t: GrpcTransport) -> None:
        self.t = t

    async def _guard(self, context: grpc.aio.ServicerContext, fn: Any) -> Any:
        await _check_target(self.t, context)
        try:
            return await fn()
        except CrdbError as exc:
            code = (
                grpc.StatusCode.INVALID_ARGUMENT
                if isinstance(exc, InvalidArgumentError)
                else grpc.StatusCode.INTERNAL
            )
            await context.abort(code, f"n{self.t.node_id}: {exc.kind}: {exc}")
        except Exception as exc:
            log.exception("n%d: admin handler raised", self.t.node_id)
            await context.abort(
                grpc.StatusCode.INTERNAL, f"n{self.t.node_id}: {type(exc).__name__}: {exc}"
            )

    async def Status(
        self, request: services_pb2.NodeStatusRequest, context: grpc.aio.ServicerContext
    ) -> services_pb2.NodeStatusResponse:
        assert self.t.handler is not None
        return await self._guard(context, lambda: self.t.handler.admin_status(request))

    async def Bootstrap(
        self, request: services_pb2.BootstrapRequest, context: grpc.aio.ServicerContext
    ) -> services_pb2.BootstrapResponse:
        assert self.t.handler is not None
        return await self._guard(context, lambda: self.t.handler.bootstrap(request))

    async def Join(
        self, request: services_pb2.JoinRequest, context: grpc.aio.ServicerContext
    ) -> services_pb2.JoinResponse:
        assert self.t.handler is not None
        return await self._guard(context, lambda: self.t.handler.join(request))

    async def SetLinkFaults(
        self, request: services_pb2.SetLinkFaultsRequest, context: grpc.aio.ServicerContext
    ) -> services_pb2.SetLinkFaultsResponse:
        sink = self.t.link_fault_sink
        if sink is None:
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"n{self.t.node_id}: link faults are not enabled "
                "(its transport is not wrapped in a LatencyInjector)",
            )
            raise AssertionError("unreachable")
        try:
            sink.apply_proto(request.faults)
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"n{self.t.node_id}: {exc}")
        return services_pb2.SetLinkFaultsResponse(faults=sink.to_proto())
