"""What the interceptors share: the `Interceptor` base, the per-txn
`TxnState`, and small helpers over batches and timestamps.

An interceptor is a `Sender` that wraps the next one down the stack
(`coord_sender.py` holds the order and its reasons). Interceptors of one
transaction share a `TxnState`: the coordinator's copy of the transaction
proto, the config snapshot, the clock, the trace, and `raw` — the sender
below the whole stack, used for out-of-band requests (heartbeats, the
explicit commit after a parallel commit, async rollback) that must neither
be serialized behind a user batch nor counted on the critical path.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from crdb_py.kvclient import batch as kb
from crdb_py.kvclient.sender import Sender
from crdb_py.kvclient.txn.rounds import TxnTrace
from crdb_py.kvclient.txn.settings import TxnConfig
from crdb_py.pb import api_pb2, data_pb2
from crdb_py.util.hlc import HLC, Timestamp, ts_from_proto, ts_to_proto

log = logging.getLogger("crdb_py.kvclient.txn")

BatchRequest = api_pb2.BatchRequest
BatchResponse = api_pb2.BatchResponse

POINT_WRITES = frozenset({"put", "conditional_put", "increment", "delete"})
RANGED_WRITES = frozenset({"delete_range"})
READS = frozenset({"get", "scan", "reverse_scan"})

_background: set[asyncio.Task[Any]] = set()  # keeps fire-and-forget tasks alive


class TxnState:
    """The coordinator's view of one transaction, shared by its interceptors."""

    def __init__(
        self,
        txn: data_pb2.Transaction,
        *,
        config: TxnConfig,
        clock: HLC,
        raw: Sender,
        trace: TxnTrace | None = None,
    ) -> None:
        self.txn = txn
        self.config = config
        self.clock = clock
        self.raw = raw
        self.trace = trace or TxnTrace()
        # Set by the span refresher while it re-sends a batch after a refresh:
        # the committer must not commit that batch in parallel.
        self.commit_after_refresh = False
        self.tasks: set[asyncio.Task[Any]] = set()

    @property
    def epoch(self) -> int:
        return self.txn.meta.epoch

    @property
    def read_ts(self) -> Timestamp:
        return ts_from_proto(self.txn.read_timestamp)

    @property
    def write_ts(self) -> Timestamp:
        return ts_from_proto(self.txn.meta.write_timestamp)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run `coro` in the background (tracked; `drain()` waits for it)."""
        t = asyncio.get_running_loop().create_task(coro, name=name)
        self.tasks.add(t)
        _background.add(t)
        t.add_done_callback(self.tasks.discard)
        t.add_done_callback(_background.discard)
        return t

    async def drain(self) -> None:
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)


class Interceptor:
    """A Sender that wraps `wrapped` (the next one down) for one txn."""

    name = "interceptor"

    def __init__(self, state: TxnState) -> None:
        self.state = state
        self.wrapped: Sender | None = None

    async def send(self, ba: BatchRequest) -> BatchResponse:
        return await self.next(ba)

    async def next(self, ba: BatchRequest) -> BatchResponse:
        assert self.wrapped is not None, f"{self.name}: not linked into a stack"
        return await self.wrapped.send(ba)

    def epoch_bumped(self) -> None:
        """The txn restarts at a new epoch (same id): reset per-epoch state."""

    def closed(self) -> None:
        """The txn finished (committed, rolled back or abandoned)."""


# ---- helpers ---------------------------------------------------------------------------


def copy_batch(ba: BatchRequest) -> BatchRequest:
    out = BatchRequest()
    out.CopyFrom(ba)
    return out


def kinds(ba: BatchRequest) -> list[str]:
    return [kb.kind(r) for r in ba.requests]


def end_txn(ba: BatchRequest) -> api_pb2.EndTxnRequest | None:
    """The batch's EndTxn (always its last request), or None."""
    if ba.requests and kb.kind(ba.requests[-1]) == "end_txn":
        return ba.requests[-1].end_txn
    return None


def has_writes(ba: BatchRequest) -> bool:
    return any(kb.kind(r) in POINT_WRITES or kb.kind(r) in RANGED_WRITES for r in ba.requests)


def set_ts(field: Any, ts: Timestamp) -> None:
    ts_to_proto(ts, field)


def txn_copy(txn: data_pb2.Transaction) -> data_pb2.Transaction:
    out = data_pb2.Transaction()
    out.CopyFrom(txn)
    return out


def header_txn(ba: BatchRequest) -> data_pb2.Transaction:
    return ba.header.txn


def span_end(key: bytes, end: bytes) -> bytes:
    """Exclusive end of a request span (point: the next key)."""
    return end or key + b"\x00"
