"""The intent resolver: turn a finished transaction's intents into values.

A transaction that commits or aborts leaves intents behind on every range it
wrote. EndTxn resolves the ones on its own range synchronously and hands the
rest (`Result.resolve_intents`) to this resolver; transaction recovery and
the lock-table waiters (after a successful push) hand theirs too. Intents
found by inconsistent reads are cleaned up here as well (`cleanup_intents`:
push the owner with PUSH_TOUCH, resolve if it is finished or dead).

Everything goes through the cluster's KV client (`kv.send`), never to a
replica directly: a `LockUpdate` names keys, and DistSender splits a batch
of ResolveIntent / ResolveIntentRange requests by range and finds each
range's leaseholder — also after splits and lease moves. A point update (no
``end_key``) becomes a ResolveIntentRequest, a span a
ResolveIntentRangeRequest.

Two paths (after CockroachDB's ``intentresolver`` package):

* **asynchronous** — ``enqueue(updates)`` returns at once. Updates wait in
  one pending queue, one per (txn, span): when a span is enqueued twice,
  `supersedes` keeps the more informative update (a final status over a
  push, a later epoch, a higher push timestamp). Up to ``max_concurrency``
  worker tasks each take up to ``batch_size`` updates at a time and send
  them as one batch. A worker starts on the *next* loop turn, so everything
  enqueued in one turn — and everything enqueued while all workers are busy
  — is coalesced into few batches. At most ``max_concurrency`` batches are
  ever in flight on this path. Failures are retried with exponential
  backoff; after ``max_attempts`` the updates are logged and dropped (an
  intent left behind is not a correctness problem: the next reader that
  meets it pushes its txn, finds it final and resolves it itself).
* **synchronous** — ``await resolve_now(updates)`` for a waiter that just
  pushed a txn and cannot proceed until the intent is gone: sent at once
  (not behind the background queue, which may be long), the same batching
  and retries, and errors raised to the caller.

Poison. Every path takes ``poison`` (default false), sent on each
ResolveIntent(Range) request: resolving an ABORTED intent with poison leaves
an abort span entry on the range (`crdb_py.kvserver.abortspan`), so the
aborted txn's coordinator — which may not know yet — cannot read around its
removed intent there; without poison the entry is cleared. Whoever resolves
intents of a txn it found ABORTED without being its coordinator poisons: the
lock-table waiters (`KVTxnPusher.resolve_intent`) and `cleanup_intents`.
The coordinator's own EndTxn hands its remote intents over unpoisoned. When
one (txn, span) is enqueued twice, an ABORTED update keeps the poison of
either.

Resolution is idempotent (resolving a resolved intent is a no-op), so
retrying an ambiguous failure, or two resolvers racing on one intent, is
harmless.

A finalized txn record is not removed here once its intents are resolved
(CockroachDB's ``cleanupFinishedTxn``): ``cleanup_txn`` resolves a finished
txn's intents and stops there. The GC queue (`crdb_py.kvserver.gc_queue`)
removes records an hour after the txn finished, resolving their intents
again first. See docs/design/transactions.md, "Intent resolution and
recovery".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from crdb_py.kvserver.batcheval import txn_record as tr
from crdb_py.pb import api_pb2, data_pb2
from crdb_py.util.errors import (
    AmbiguousResultError,
    CrdbError,
    InvalidArgumentError,
    NodeUnavailableError,
    NotLeaseHolderError,
    RangeKeyMismatchError,
    RangeNotFoundError,
)
from crdb_py.util.errwire import error_from_proto
from crdb_py.util.hlc import Timestamp, ts_from_proto

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[Any]]


class KVSender(Protocol):
    """The cluster's KV client (a DistSender): raises on error."""

    async def send(self, ba: api_pb2.BatchRequest) -> api_pb2.BatchResponse: ...


async def kv_send(kv: KVSender, ba: api_pb2.BatchRequest) -> api_pb2.BatchResponse:
    """Send `ba`; raise the error a response carries (a sender should raise
    it itself, but a raw transport may return it)."""
    br = await kv.send(ba)
    if br.HasField("error") and br.error.kind:
        raise error_from_proto(br.error)
    return br


_TRANSIENT: tuple[type[BaseException], ...] = (
    AmbiguousResultError,  # resolution is idempotent: retrying is safe
    NodeUnavailableError,
    NotLeaseHolderError,
    RangeKeyMismatchError,
    RangeNotFoundError,
    asyncio.TimeoutError,
    ConnectionError,
)


def is_retryable(exc: BaseException) -> bool:
    """Worth resolving again after a backoff."""
    if isinstance(exc, _TRANSIENT):
        return True
    return isinstance(exc, CrdbError) and type(exc).retryable


@dataclass(frozen=True, slots=True)
class RetryOptions:
    initial_backoff: float = 0.05  # seconds
    max_backoff: float = 1.0
    multiplier: float = 2.0
    max_attempts: int = 6

    def backoff(self, attempt: int) -> float:
        """Delay before retry number `attempt` (1-based)."""
        return min(self.max_backoff, self.initial_backoff * self.multiplier ** (attempt - 1))


def update_key(up: data_pb2.LockUpdate) -> tuple[bytes, bytes, bytes]:
    """Identity of an update in the pending queue: (txn id, key, end key)."""
    return up.txn.id, up.span.key, up.span.end_key


def supersedes(new: data_pb2.LockUpdate, old: data_pb2.LockUpdate) -> bool:
    """Does `new` replace `old` (same txn and span) in the pending queue? A
    final status beats a push (PENDING at a new timestamp), a later epoch
    beats an earlier one, and otherwise the later update wins — except a
    push to a lower timestamp than one already pending."""
    if new.txn.epoch != old.txn.epoch:
        return new.txn.epoch > old.txn.epoch
    new_final, old_final = tr.is_final(new.status), tr.is_final(old.status)
    if new_final != old_final:
        return new_final
    if not new_final:
        return ts_from_proto(new.txn.write_timestamp) >= ts_from_proto(old.txn.write_timestamp)
    return True


def resolve_batch(
    updates: Iterable[data_pb2.LockUpdate], *, poison: bool = False
) -> api_pb2.BatchRequest:
    """One non-transactional batch resolving `updates` (all with `poison`)."""
    return _resolve_batch((up, poison) for up in updates)


def _resolve_batch(updates: Iterable[tuple[data_pb2.LockUpdate, bool]]) -> api_pb2.BatchRequest:
    ba = api_pb2.BatchRequest()
    for up, poison in updates:
        ru = ba.requests.add()
        req: Any = ru.resolve_intent_range if up.span.end_key else ru.resolve_intent
        req.header.key = up.span.key
        if up.span.end_key:
            req.header.end_key = up.span.end_key
        req.intent_txn.CopyFrom(up.txn)
        req.status = up.status
        req.ignored_seqnums.extend(up.ignored_seqnums)
        req.poison = poison
    return ba


def txn_updates(txn: data_pb2.Transaction) -> list[data_pb2.LockUpdate]:
    """Updates resolving every intent of finalized `txn` (lock spans and
    in-flight writes) with its final status."""
    return [tr.lock_update(sp, txn, txn.status) for sp in tr.all_lock_spans(txn)]


class IntentResolver:
    """Resolves intents through the KV client. One per store."""

    def __init__(
        self,
        kv: KVSender,
        *,
        max_concurrency: int = 8,
        batch_size: int = 100,
        retry: RetryOptions | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if max_concurrency < 1 or batch_size < 1:
            raise InvalidArgumentError("max_concurrency and batch_size must be >= 1")
        self.kv = kv
        self.max_concurrency = max_concurrency
        self.batch_size = batch_size
        self.retry = retry or RetryOptions()
        self._sleep = sleep
        # (txn id, key, end key) -> [update, poison]
        self._pending: dict[tuple[bytes, bytes, bytes], list[Any]] = {}
        self._workers: set[asyncio.Task[None]] = set()
        self._cleanups: set[asyncio.Task[None]] = set()
        self._closed = False
        # Counters, for tests and status.
        self.batches_sent = 0
        self.intents_resolved = 0
        self.failures = 0

    # ---- asynchronous path -----------------------------------------------------

    def enqueue(self, updates: Iterable[data_pb2.LockUpdate], *, poison: bool = False) -> None:
        """Resolve `updates` in the background (fire and forget), poisoning
        the abort span for ABORTED ones if `poison`. Must be called on the
        event loop's thread."""
        if self._closed:
            log.warning("intent resolver closed: dropping %d update(s)", len(list(updates)))
            return
        for up in updates:
            key = update_key(up)
            cur = self._pending.get(key)
            if cur is None:
                copy = data_pb2.LockUpdate()
                copy.CopyFrom(up)
                self._pending[key] = [copy, poison]
                continue
            old, old_poison = cur
            if supersedes(up, old):
                keep = old_poison and old.status == up.status == data_pb2.ABORTED
                old.CopyFrom(up)
                cur[1] = poison or keep
            elif old.status == up.status == data_pb2.ABORTED:
                cur[1] = old_poison or poison
        self._start_workers()

    def _start_workers(self) -> None:
        if not self._pending:
            return
        want = -(-len(self._pending) // self.batch_size)  # ceil
        # A finished worker leaves `_workers` only in a done-callback, a loop
        # turn later: count the live ones, or updates enqueued in between
        # would wait for a worker that never comes.
        live = sum(1 for t in self._workers if not t.done())
        while live < min(self.max_concurrency, want):
            live += 1
            t = asyncio.get_running_loop().create_task(self._worker())
            self._workers.add(t)
            t.add_done_callback(self._workers.discard)

    def _take(self) -> list[tuple[data_pb2.LockUpdate, bool]]:
        out: list[tuple[data_pb2.LockUpdate, bool]] = []
        while self._pending and len(out) < self.batch_size:
            key = next(iter(self._pending))
            up, poison = self._pending.pop(key)
            out.append((up, poison))
        return out

    async def _worker(self) -> None:
        while True:
            batch = self._take()
            if not batch:
                return
            try:
                await self._send_with_retry(batch)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # logged: a leftover intent is harmless
                self.failures += 1
                log.warning(
                    "giving up resolving %d intent(s) (first %r of txn %s): %s",
                    len(batch),
                    batch[0][0].span.key,
                    batch[0][0].txn.id.hex()[:8],
                    e,
                )

    # ---- synchronous path ----------------------------------------------------------

    async def resolve_now(
        self, updates: Iterable[data_pb2.LockUpdate], *, poison: bool = False
    ) -> None:
        """Resolve `updates` (poisoning the abort span for ABORTED ones if
        `poison`) and return when done; raise if that failed."""
        ups = [(up, poison) for up in updates]
        chunks = [ups[i : i + self.batch_size] for i in range(0, len(ups), self.batch_size)]
        if len(chunks) == 1:
            await self._send_with_retry(chunks[0])
        elif chunks:
            await asyncio.gather(*(self._send_with_retry(c) for c in chunks))

    async def cleanup_txn(self, txn: data_pb2.Transaction) -> None:
        """Resolve every intent of finalized `txn`. (The record is kept:
        see the module docstring.)"""
        if not tr.is_final(txn.status):
            raise InvalidArgumentError(
                f"cleanup_txn needs a finalized txn; {txn.meta.id.hex()[:8]} is "
                f"{tr.status_name(txn.status)}"
            )
        await self.resolve_now(txn_updates(txn))

    def cleanup_intents(
        self, intents: Iterable[data_pb2.Intent], pusher: TouchPusher, now: Timestamp
    ) -> None:
        """Clean up intents met by an inconsistent read, in the background:
        push each owner with PUSH_TOUCH (it wins only if the owner is
        finished or expired; a STAGING owner goes through recovery inside
        `pusher`) and resolve the intents of those that are finalized."""
        by_txn: dict[bytes, list[data_pb2.Intent]] = {}
        for it in intents:
            by_txn.setdefault(it.txn.id, []).append(it)
        if not by_txn or self._closed:
            return
        t = asyncio.get_running_loop().create_task(self._cleanup(by_txn, pusher, now))
        self._cleanups.add(t)
        t.add_done_callback(self._cleanups.discard)

    async def _cleanup(
        self, by_txn: dict[bytes, list[data_pb2.Intent]], pusher: TouchPusher, now: Timestamp
    ) -> None:
        sem = asyncio.Semaphore(self.max_concurrency)

        async def one(its: list[data_pb2.Intent]) -> None:
            async with sem:
                try:
                    txn = await pusher.push_txn(None, its[0].txn, api_pb2.PUSH_TOUCH, now)
                except CrdbError as e:
                    log.debug("intent cleanup: txn %s not pushed: %s", its[0].txn.id.hex()[:8], e)
                    return
                if not tr.is_final(txn.status):
                    return
                # Poison: the owner may be a zombie that does not know it was
                # aborted (CockroachDB's cleanupIntents poisons too).
                self.enqueue(
                    (tr.lock_update(data_pb2.Span(key=it.key), txn, txn.status) for it in its),
                    poison=True,
                )

        await asyncio.gather(*(one(its) for its in by_txn.values()))

    # ---- sending -------------------------------------------------------------------

    async def _send_with_retry(self, batch: list[tuple[data_pb2.LockUpdate, bool]]) -> None:
        attempt = 0
        while True:
            attempt += 1
            try:
                await kv_send(self.kv, _resolve_batch(batch))
            except asyncio.CancelledError:
                raise
            except Exception as e:
                if not is_retryable(e) or attempt >= self.retry.max_attempts:
                    raise
                delay = self.retry.backoff(attempt)
                log.debug(
                    "resolving %d intent(s) failed (%s); retry in %.3fs", len(batch), e, delay
                )
                await self._sleep(delay)
                continue
            self.batches_sent += 1
            self.intents_resolved += len(batch)
            return

    # ---- lifecycle -----------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Updates waiting for a worker."""
        return len(self._pending)

    async def drain(self) -> None:
        """Wait until everything enqueued so far (and cleanups) is done."""
        while self._workers or self._cleanups or self._pending:
            self._start_workers()
            await asyncio.gather(*self._workers, *self._cleanups, return_exceptions=True)
            await asyncio.sleep(0)  # let done-callbacks run

    def close(self) -> None:
        """Stop: cancel the workers and drop what is pending."""
        self._closed = True
        if self._pending:
            log.info("intent resolver closing with %d update(s) unresolved", len(self._pending))
        self._pending.clear()
        for t in (*self._workers, *self._cleanups):
            t.cancel()


class TouchPusher(Protocol):
    """What `cleanup_intents` needs: the `TxnPusher.push_txn` of the store."""

    async def push_txn(
        self,
        pusher: data_pb2.Transaction | None,
        pushee: data_pb2.TxnMeta,
        push_type: int,
        push_to: Timestamp,
        *,
        force: bool = False,
    ) -> data_pb2.Transaction: ...


__all__ = [
    "IntentResolver",
    "KVSender",
    "RetryOptions",
    "TouchPusher",
    "is_retryable",
    "kv_send",
    "resolve_batch",
    "txn_updates",
]
