"""The `Sender` seam: anything that takes a BatchRequest and returns its
BatchResponse.

DistSender is a Sender; so will be the M5 transaction coordinator (which
wraps a DistSender) and any test double. The DB / Txn APIs talk only to a
Sender.

Errors. A Sender never returns a response with `error` set: it raises the
corresponding `crdb_py.util.errors.CrdbError` (decoded with
`crdb_py.util.errwire.error_from_proto`). The exception has an `index`
attribute: the position of the failing request in the batch that was passed
to `send`, or -1 when the error is not tied to one request. A `txn` pb
attached to the wire error is kept on the exception as `txn`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from crdb_py.pb import api_pb2
from crdb_py.util.errors import CrdbError
from crdb_py.util.errwire import error_from_proto

BatchRequest = api_pb2.BatchRequest
BatchResponse = api_pb2.BatchResponse


class Sender(Protocol):
    async def send(self, ba: BatchRequest) -> BatchResponse:
        """Send `ba`; return its response or raise a `CrdbError`."""
        ...


class SenderFunc:
    """Adapt an `async (ba) -> br` function to the Sender protocol (tests,
    interceptor chains)."""

    def __init__(self, fn: Callable[[BatchRequest], Awaitable[BatchResponse]]) -> None:
        self._fn = fn

    async def send(self, ba: BatchRequest) -> BatchResponse:
        return await self._fn(ba)


def error_of(br: BatchResponse) -> CrdbError | None:
    """The exception carried by `br.error`, or None."""
    if not br.HasField("error"):
        return None
    return error_from_proto(br.error)


def raise_if_error(br: BatchResponse) -> BatchResponse:
    """Raise the error carried in `br`, else return `br`."""
    exc = error_of(br)
    if exc is not None:
        raise exc
    return br
