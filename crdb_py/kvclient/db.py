"""The KV API: `DB` (non-transactional) over any `Sender`.

Operations come in two shapes. The single-operation methods (`get`, `put`,
`scan`, ...) each send a one-request batch. A `Batch` collects several
operations and sends them at once with `run(batch)`; every operation then
has a `Result` (rows, value, resume span) in `batch.results`.

Extension point for transactions (M5). Every operation is written once, in
`KVOps`, on top of a single abstract method `run(batch)`. `DB.run` sends the
batch through its Sender with a non-transactional header; the M5 `Txn`
(crdb_py/kvclient/txn/) will subclass `KVOps` and implement `run` through
its coordinator, inheriting every operation with the same signature.

Transactions. `db.txn()` starts a `Txn` (crdb_py/kvclient/txn/txn.py): a
`KVOps` whose batches go through a `TxnCoordSender` (the interceptor stack)
over this DB's sender. `db.run_txn(fn)` runs `await fn(txn)` and commits,
retrying on retryable errors (40001) with jittered exponential backoff: the
same txn at its next epoch, or a new txn after TransactionAbortedError.
Each txn takes a snapshot of `db.settings` (the two cluster settings) when
it starts; `db.metrics` aggregates what the txns cost. The blocking facade
(`SyncDB` / `SyncTxn`) lives in crdb_py/kvclient/txn/sync.py.

Values are `bytes`. `get` returns None for a missing key. Scans return
`list[tuple[bytes, bytes]]`; `max_rows` / `target_bytes` cap a scan and
`scan_page` also returns where to resume. `inc` returns the new value.
"""

from __future__ import annotations

import asyncio
import random
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from crdb_py.kvclient import batch as kb
from crdb_py.kvclient.sender import Sender
from crdb_py.pb import api_pb2, data_pb2
from crdb_py.util import errors
from crdb_py.util.hlc import HLC

if TYPE_CHECKING:
    from crdb_py.kvclient.txn.committer import RangeLocator
    from crdb_py.kvclient.txn.metric_recorder import TxnMetrics
    from crdb_py.kvclient.txn.settings import TxnSettings
    from crdb_py.kvclient.txn.txn import Txn

Row = tuple[bytes, bytes]
T = TypeVar("T")


@dataclass(slots=True)
class Result:
    """What one operation of a Batch produced."""

    kind: str
    rows: list[Row] = field(default_factory=list)  # scans; deleted keys (value b"")
    value: bytes | None = None  # get
    new_value: int = 0  # inc
    found: bool = False  # delete
    resume_span: tuple[bytes, bytes] | None = None  # limited scans / delete ranges
    response: Any = None  # the raw pb response (e.g. admin_split's descriptors)

    @property
    def keys(self) -> list[bytes]:
        return [k for k, _ in self.rows]


class Batch:
    """A group of operations sent in one BatchRequest.

    >>> b = Batch(); b.put(b"a", b"1"); b.get(b"a")  # doctest: +SKIP
    """

    def __init__(self, *, max_span_request_keys: int = 0, target_bytes: int = 0) -> None:
        self.requests: list[api_pb2.RequestUnion] = []
        self.max_span_request_keys = max_span_request_keys
        self.target_bytes = target_bytes
        self.results: list[Result] = []

    def __len__(self) -> int:
        return len(self.requests)

    def add(self, ru: api_pb2.RequestUnion) -> Batch:
        self.requests.append(ru)
        return self

    def get(self, key: bytes) -> Batch:
        return self.add(kb.get_request(key))

    def put(self, key: bytes, value: bytes) -> Batch:
        return self.add(kb.put_request(key, value))

    def cput(self, key: bytes, value: bytes, expected: bytes | None) -> Batch:
        return self.add(kb.cput_request(key, value, expected))

    def inc(self, key: bytes, delta: int) -> Batch:
        return self.add(kb.increment_request(key, delta))

    def delete(self, key: bytes) -> Batch:
        return self.add(kb.delete_request(key))

    def delete_range(self, start: bytes, end: bytes, *, return_keys: bool = False) -> Batch:
        return self.add(kb.delete_range_request(start, end, return_keys=return_keys))

    def scan(self, start: bytes, end: bytes) -> Batch:
        return self.add(kb.scan_request(start, end))

    def reverse_scan(self, start: bytes, end: bytes) -> Batch:
        return self.add(kb.reverse_scan_request(start, end))

    def to_proto(self) -> api_pb2.BatchRequest:
        return kb.batch(
            *self.requests,
            max_span_request_keys=self.max_span_request_keys,
            target_bytes=self.target_bytes,
        )

    def fill_results(self, br: api_pb2.BatchResponse) -> list[Result]:
        if len(br.responses) != len(self.requests):
            raise errors.InternalError(
                f"batch of {len(self.requests)} requests got {len(br.responses)} responses"
            )
        self.results = [_result(r) for r in br.responses]
        return self.results


def _result(ru: api_pb2.ResponseUnion) -> Result:
    k = kb.kind(ru)
    m = kb.inner(ru)
    res = Result(kind=k, response=m)
    rs = kb.resume_span(ru)
    if rs is not None:
        res.resume_span = (rs.key, rs.end_key)
    if k in ("scan", "reverse_scan"):
        res.rows = [(kv.key, kv.value.raw_bytes) for kv in m.rows]
    elif k == "get":
        res.value = m.value.raw_bytes if m.HasField("value") else None
    elif k == "increment":
        res.new_value = m.new_value
    elif k == "delete":
        res.found = m.found_key
    elif k == "delete_range":
        res.rows = [(key, b"") for key in m.keys]
    return res


class KVOps(ABC):
    """Every KV operation, written once over `run(batch)` (DB and Txn)."""

    @abstractmethod
    async def run(self, b: Batch) -> list[Result]:
        """Send `b`, fill and return `b.results`; raise on error."""

    def new_batch(self, **limits: int) -> Batch:
        return Batch(**limits)

    async def _one(self, b: Batch) -> Result:
        return (await self.run(b))[0]

    async def get(self, key: bytes) -> bytes | None:
        return (await self._one(Batch().get(key))).value

    async def put(self, key: bytes, value: bytes) -> None:
        await self.run(Batch().put(key, value))

    async def cput(self, key: bytes, value: bytes, expected: bytes | None) -> None:
        """Write `value` iff the current value is `expected` (None: absent);
        raises ConditionFailedError (with `actual_value`) otherwise."""
        await self.run(Batch().cput(key, value, expected))

    async def inc(self, key: bytes, delta: int = 1) -> int:
        return (await self._one(Batch().inc(key, delta))).new_value

    async def delete(self, key: bytes) -> bool:
        """Delete `key`; True if it existed."""
        return (await self._one(Batch().delete(key))).found

    async def delete_range(
        self, start: bytes, end: bytes, *, return_keys: bool = False
    ) -> list[bytes]:
        res = await self._one(Batch().delete_range(start, end, return_keys=return_keys))
        return res.keys

    async def scan_page(
        self,
        start: bytes,
        end: bytes,
        *,
        max_rows: int = 0,
        target_bytes: int = 0,
        reverse: bool = False,
    ) -> tuple[list[Row], tuple[bytes, bytes] | None]:
        """Rows in [start, end) (descending if `reverse`), at most `max_rows`
        (0: no limit) / about `target_bytes`, and the span to resume from
        (None when the scan is complete)."""
        b = Batch(max_span_request_keys=max_rows, target_bytes=target_bytes)
        (b.reverse_scan if reverse else b.scan)(start, end)
        res = await self._one(b)
        return res.rows, res.resume_span

    async def scan(
        self, start: bytes, end: bytes, *, max_rows: int = 0, target_bytes: int = 0
    ) -> list[Row]:
        rows, _ = await self.scan_page(start, end, max_rows=max_rows, target_bytes=target_bytes)
        return rows

    async def reverse_scan(
        self, start: bytes, end: bytes, *, max_rows: int = 0, target_bytes: int = 0
    ) -> list[Row]:
        rows, _ = await self.scan_page(
            start, end, max_rows=max_rows, target_bytes=target_bytes, reverse=True
        )
        return rows


class DB(KVOps):
    """Non-transactional KV access through a Sender (usually a DistSender).

    Each batch is atomic only within one range: a non-transactional batch
    (or `delete_range`) spanning ranges is applied range by range. Use a
    transaction (M5) when that matters.
    """

    def __init__(
        self,
        sender: Sender,
        *,
        clock: HLC | None = None,
        settings: TxnSettings | None = None,
        metrics: TxnMetrics | None = None,
        gateway_node_id: int = 0,
        locator: RangeLocator | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        heartbeat_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        from crdb_py.kvclient.txn.metric_recorder import TxnMetrics
        from crdb_py.kvclient.txn.settings import TxnSettings

        self.sender = sender
        self.clock = clock or HLC()
        self.settings = settings or TxnSettings()
        self.metrics = metrics or TxnMetrics()
        self.gateway_node_id = gateway_node_id
        self.locator = locator
        self._sleep = sleep  # run_txn backoff
        self._heartbeat_sleep = heartbeat_sleep  # the heartbeat loop
        self._rng = rng or random.Random()

    # ---- transactions -----------------------------------------------------------

    def txn(self, name: str = "", *, priority: int = 0) -> Txn:
        """Start a transaction (timestamps from `self.clock`, settings
        snapshot from `self.settings`). Use as `async with db.txn() as t:`
        (commits on success, rolls back on error) or call `commit()`."""
        from crdb_py.kvclient.txn.coord_sender import TxnCoordSender
        from crdb_py.kvclient.txn.txn import Txn

        coord = TxnCoordSender(
            self.sender,
            clock=self.clock,
            config=self.settings.snapshot(),
            metrics=self.metrics,
            locator=self.locator,
            name=name,
            priority=priority,
            gateway_node_id=self.gateway_node_id,
            sleep=self._heartbeat_sleep,
        )
        return Txn(coord)

    async def run_txn(
        self,
        fn: Callable[[Txn], Awaitable[T]],
        *,
        max_retries: int = 50,
        name: str = "",
        priority: int = 0,
        backoff_base: float = 0.002,
        backoff_max: float = 0.5,
    ) -> T:
        """Run `await fn(txn)` in a transaction and commit it, retrying
        retryable errors up to `max_retries` times. `fn` may commit itself
        (e.g. `txn.commit_in_batch`); it must not swallow errors. Returns
        what `fn` returned; raises its non-retryable errors (after rolling
        back) and the last retryable one when retries run out."""
        txn = self.txn(name, priority=priority)
        attempt = 0
        while True:
            try:
                result = await fn(txn)
                if not txn.finished:
                    await txn.commit()
                elif not txn.committed:
                    raise errors.TransactionAbortedError("ABORTED_RECORD_FOUND")
                return result
            except errors.CrdbError as e:
                if not type(e).retryable or attempt >= max_retries:
                    await txn.rollback()
                    raise
                attempt += 1
                if txn.finished:  # aborted: the next attempt is a new txn
                    await txn.rollback()
                    txn = self.txn(name, priority=priority)
                delay = min(backoff_max, backoff_base * (2 ** min(attempt, 16)))
                await self._sleep(delay * (0.5 + self._rng.random() / 2))
            except BaseException:
                await txn.rollback()
                raise

    async def run(self, b: Batch) -> list[Result]:
        br = await self.sender.send(b.to_proto())
        return b.fill_results(br)

    async def admin_split(
        self, split_key: bytes
    ) -> tuple[data_pb2.RangeDescriptor, data_pb2.RangeDescriptor]:
        """Split the range holding `split_key` at it; returns (left, right)."""
        res = await self._one(Batch().add(kb.admin_split_request(split_key)))
        return res.response.left, res.response.right

    async def admin_transfer_lease(self, key: bytes, target_node_id: int) -> None:
        """Move the lease of the range holding `key` to `target_node_id`."""
        await self.run(Batch().add(kb.admin_transfer_lease_request(key, target_node_id)))
