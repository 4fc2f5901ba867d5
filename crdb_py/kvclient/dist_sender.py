"""DistSender: send a batch to the ranges that hold its keys.

A BatchRequest names keys, not ranges. DistSender finds the ranges (range
cache, meta lookups), cuts the batch into one part per range (each request
truncated to the range), sends every part to a replica of its range (the
leaseholder if known), and stitches the partial responses back into one
response in request order. See docs/design/kvclient.md.

Addressing. Ranges are found by *addressed* keys (`keys.addr`): range-local
keys route to the range of their anchor. The range holding K is described by
the first meta record after ``meta_key(K)`` (single-level meta, CockroachDB's
meta2 layout). Meta records live in the first range, whose descriptor comes
from the injected `FirstRangeProvider` (the node gossips it); keys below the
first range's end key never need a meta lookup.

Two ways to iterate ranges:

* No limits (``max_span_request_keys == target_bytes == 0``): every part is
  sent concurrently (a task per range, started while the next range is being
  looked up). Responses are folded per request: forward requests in range
  order, reverse scans in reverse range order; point responses land at their
  index. When several parts fail, an AmbiguousResultError wins (losing it
  could make a client believe a write failed), else the error of the lowest
  request index.
* With limits: ranges are visited one at a time in key order (descending
  when the batch holds reverse scans), each part carrying the limits that
  remain. This is CockroachDB's semantics: the batch is executed range by
  range, and within a range the server applies the limit to requests in
  order. Once a limit is used up (or the server returned a resume span),
  iteration stops and every request with keys left unvisited gets a resume
  span covering exactly those keys (a point request that was never reached
  gets its own key). A limited batch may hold only gets, scans and
  delete-ranges, and not both forward and reverse scans (InvalidArgument).

Retries (per part, with exponential backoff + jitter from the injected rng,
bounded by `RetryOptions.timeout` measured on the injected clock):

* NotLeaseHolder: remember the hinted leaseholder and try it next (else the
  next replica). A hint naming a node that is not in our descriptor means
  the descriptor is stale: evict it and re-divide.
* RangeKeyMismatch (the range split or merged): evict, insert the replica's
  descriptor if the error carries one, re-look-up and re-divide the part. The
  first re-division is immediate, later ones back off.
* NodeUnavailable / RangeNotFound: try the next replica. When every replica
  failed, evict the descriptor, back off, look up again and retry until the
  deadline; then raise NodeUnavailableError.
* AmbiguousResultError (the request may or may not have been applied) is
  raised at once for batches that write: retrying elsewhere could apply a
  write twice or report failure for a write that happened. A read-only batch
  simply tries the next replica.

Clock. With an `hlc`, every response's `now` ratchets it forward.

Timestamps. Non-transactional batches go out with an empty timestamp: each
range's leaseholder assigns one (as in CockroachDB), so a non-transactional
batch spanning ranges is atomic and consistent per range only. A caller that
needs one snapshot across ranges sets `header.timestamp` (kept as is) or uses
a transaction. The transaction header (`header.txn`) is passed through
untouched; txns returned by several ranges are merged with `merge_txn`.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from crdb_py.kvclient import batch as kb
from crdb_py.kvclient.range_cache import (
    CacheEntry,
    RangeCache,
    RangeDescriptor,
    ReplicaDescriptor,
)
from crdb_py.pb import api_pb2
from crdb_py.util import keys
from crdb_py.util.errors import (
    AmbiguousResultError,
    ClockOffsetError,
    CrdbError,
    InternalError,
    InvalidArgumentError,
    NodeUnavailableError,
    NotLeaseHolderError,
    RangeKeyMismatchError,
    RangeNotFoundError,
)
from crdb_py.util.errwire import error_from_proto
from crdb_py.util.hlc import HLC, ts_from_proto

BatchRequest = api_pb2.BatchRequest
BatchResponse = api_pb2.BatchResponse
Span = tuple[bytes, bytes]

_AFTER_ALL_KEYS = b"\xff" * 16  # above every addressed key (KEY_MAX = ff ff)


class NodeSender(Protocol):
    """Delivers a batch to one node (rpc layer). Raises NodeUnavailableError
    when the node cannot be reached (the request was surely not applied) and
    AmbiguousResultError when it failed after the request may have arrived."""

    async def send_to_node(self, node_id: int, ba: BatchRequest) -> BatchResponse: ...


class FirstRangeProvider(Protocol):
    """Knows the descriptor of the first range (the one holding meta)."""

    async def first_range(self) -> RangeDescriptor: ...


class StaticFirstRange:
    """A FirstRangeProvider holding a descriptor that its owner updates."""

    def __init__(self, desc: RangeDescriptor) -> None:
        self.desc = desc

    async def first_range(self) -> RangeDescriptor:
        return self.desc


@dataclass(frozen=True, slots=True)
class RetryOptions:
    initial_backoff: float = 0.05  # seconds
    max_backoff: float = 1.0
    multiplier: float = 2.0
    jitter: float = 0.2  # +-20%
    timeout: float = 10.0  # give up retrying a batch after this long

    def backoff(self, attempt: int, rng: random.Random) -> float:
        base = min(self.max_backoff, self.initial_backoff * self.multiplier**attempt)
        return base * (1.0 + self.jitter * (2.0 * rng.random() - 1.0))


@dataclass(slots=True)
class DistSenderMetrics:
    batches: int = 0
    partial_batches: int = 0
    rpcs: int = 0
    not_leaseholder: int = 0
    range_key_mismatch: int = 0
    node_unavailable: int = 0
    range_not_found: int = 0
    backoffs: int = 0
    backoff_seconds: float = 0.0
    clock_offset_rejections: int = 0


class _SendFailed(Exception):
    """Every replica of a range failed (unreachable / not found / no lease)."""

    def __init__(self, desc: RangeDescriptor, last: BaseException | None) -> None:
        super().__init__(f"r{desc.range_id}: no replica could serve the request: {last}")
        self.desc = desc
        self.last = last


class _StaleDescriptor(Exception):
    """The cached descriptor is out of date (a leaseholder hint outside it)."""


class DistSender:
    """Routes batches to ranges; see the module docstring."""

    def __init__(
        self,
        node_sender: NodeSender,
        first_range: FirstRangeProvider,
        *,
        gateway_node_id: int = 0,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        retry: RetryOptions | None = None,
        meta_read_consistency: int = api_pb2.CONSISTENT,
        hlc: HLC | None = None,
    ) -> None:
        self._nodes = node_sender
        self._first_range = first_range
        self.gateway_node_id = gateway_node_id
        self._rng = rng or random.Random()
        self._clock = clock
        self._sleep = sleep
        self.retry = retry or RetryOptions()
        self._meta_consistency = meta_read_consistency
        self._hlc = hlc
        self.range_cache = RangeCache(self._meta_lookup)
        self.metrics = DistSenderMetrics()

    # ---- entry point ----------------------------------------------------------

    async def send(self, ba: BatchRequest) -> BatchResponse:
        """Send `ba` to the ranges holding its keys; raise on error (the
        exception's `index` refers to `ba.requests`)."""
        self.metrics.batches += 1
        if not ba.requests:
            return BatchResponse()
        kinds = [kb.kind(r) for r in ba.requests]
        reverse = "reverse_scan" in kinds
        if kb.has_limits(ba):
            bad = [k for k in kinds if k not in kb.LIMITED_KINDS]
            if bad:
                raise InvalidArgumentError(
                    f"a batch with max_span_request_keys/target_bytes may hold only "
                    f"get, scan, reverse_scan and delete_range requests, not {bad}"
                )
            if reverse and any(k in kb.RANGE_KINDS and k != "reverse_scan" for k in kinds):
                raise InvalidArgumentError(
                    "cannot mix forward and reverse scans in a batch with limits; "
                    "send them in separate batches"
                )
        out = BatchRequest()
        out.CopyFrom(ba)
        if self.gateway_node_id and not out.header.gateway_node_id:
            out.header.gateway_node_id = self.gateway_node_id
        deadline = self._clock() + self.retry.timeout
        if "end_txn" in kinds and "query_intent" in kinds and out.requests[kinds.index("end_txn")].end_txn.in_flight_writes:
            # divideAndSendParallelCommit: proofs apart from the STAGING batch
            qi = [i for i, k in enumerate(kinds) if k == "query_intent"]
            rest = [i for i, k in enumerate(kinds) if k != "query_intent"]
            parts = []
            for idx in (qi, rest):
                b = BatchRequest()
                b.header.CopyFrom(out.header)
                for i in idx:
                    b.requests.append(out.requests[i])
                parts.append(b)
            res = await asyncio.gather(
                *(self._divide_and_send(b, kb.batch_addr_span(b), False, deadline, attempt=0) for b in parts),
                return_exceptions=True,
            )
            errs = []
            for idx, r in zip((qi, rest), res):
                if isinstance(r, BaseException):
                    _remap_index(r, idx)
                    errs.append(r)
            if errs:
                raise _pick_error(errs)
            br = _new_response(out)
            for idx, r in zip((qi, rest), res):
                _merge_header(br, r)
                for local, orig in enumerate(idx):
                    br.responses[orig].CopyFrom(r.responses[local])
            return br
        return await self._divide_and_send(
            out, kb.batch_addr_span(out), reverse, deadline, attempt=0
        )

    # ---- dividing a batch among ranges --------------------------------------------

    async def _divide_and_send(
        self, ba: BatchRequest, rs: Span, reverse: bool, deadline: float, attempt: int
    ) -> BatchResponse:
        """Send `ba` (all of whose keys lie in the addressed span `rs`)."""
        if kb.has_limits(ba):
            return await self._send_sequential(ba, rs, reverse, deadline, attempt)
        return await self._send_parallel(ba, rs, deadline, attempt)

    def _truncate(self, ba: BatchRequest, rs: Span) -> tuple[BatchRequest, list[int]]:
        part = BatchRequest()
        part.header.CopyFrom(ba.header)
        positions: list[int] = []
        for i, r in enumerate(ba.requests):
            t = kb.truncate_request(r, rs[0], rs[1])
            if t is not None:
                part.requests.append(t)
                positions.append(i)
        return part, positions

    async def _send_parallel(
        self, ba: BatchRequest, rs: Span, deadline: float, attempt: int
    ) -> BatchResponse:
        parts: list[tuple[list[int], asyncio.Task[BatchResponse]]] = []
        failure: BaseException | None = None
        key: bytes | None = rs[0]
        entry = self.range_cache.get_cached(key)
        if entry is not None and entry.desc.start_key <= rs[0] and rs[1] <= entry.desc.end_key:
            # One range holds the whole batch (the common case): no truncated
            # copies, no task, and the part's response is the batch's.
            part_br = await self._send_partial(ba, rs, entry, False, deadline, attempt)
            if _adopt_whole_response(ba, part_br):
                return part_br
            br = _new_response(ba)
            _merge_header(br, part_br)
            for i, resp in enumerate(part_br.responses):
                kb.combine_response(br.responses[i], resp)
            return br
        try:
            while key is not None and key < rs[1]:
                entry = await self._lookup(key, False, deadline)
                d = entry.desc
                prs = (max(d.start_key, rs[0]), min(d.end_key, rs[1]))
                part, positions = self._truncate(ba, prs)
                if positions:
                    task = asyncio.ensure_future(
                        self._send_partial(part, prs, entry, False, deadline, attempt)
                    )
                    parts.append((positions, task))
                if d.end_key >= rs[1]:
                    break
                key = kb.next_touched_key(ba, d.end_key)
        except asyncio.CancelledError:
            for _, t in parts:
                t.cancel()
            raise
        except Exception as e:  # a lookup failed: still collect what was sent
            failure = e
        results = await asyncio.gather(*(t for _, t in parts), return_exceptions=True)
        errs: list[BaseException] = []
        for (positions, _), res in zip(parts, results):
            if isinstance(res, BaseException):
                _remap_index(res, positions)
                errs.append(res)
        if failure is not None:
            errs.append(failure)
        if errs:
            raise _pick_error(errs)
        br = _new_response(ba)
        done: list[tuple[list[int], BatchResponse]] = [
            (positions, res) for (positions, _), res in zip(parts, results)  # type: ignore[misc]
        ]
        for positions, part_br in done:
            _merge_header(br, part_br)
            for local, orig in enumerate(positions):
                if not kb.is_reverse(ba.requests[orig]):
                    kb.combine_response(br.responses[orig], part_br.responses[local])
        for positions, part_br in reversed(done):
            for local, orig in enumerate(positions):
                if kb.is_reverse(ba.requests[orig]):
                    kb.combine_response(br.responses[orig], part_br.responses[local])
        return br

    async def _send_sequential(
        self, ba: BatchRequest, rs: Span, reverse: bool, deadline: float, attempt: int
    ) -> BatchResponse:
        """Visit ranges one by one in key order (descending if `reverse`),
        threading the remaining limits through; see the module docstring."""
        max_keys, max_bytes = ba.header.max_span_request_keys, ba.header.target_bytes
        br = _new_response(ba)
        key: bytes | None = rs[1] if reverse else rs[0]
        while key is not None:
            entry = await self._lookup(key, reverse, deadline)
            d = entry.desc
            prs = (max(d.start_key, rs[0]), min(d.end_key, rs[1]))
            part, positions = self._truncate(ba, prs)
            stop = False
            if positions:
                part.header.max_span_request_keys = max_keys
                part.header.target_bytes = max_bytes
                try:
                    part_br = await self._send_partial(part, prs, entry, reverse, deadline, attempt)
                except BaseException as e:
                    _remap_index(e, positions)
                    raise
                _merge_header(br, part_br)
                used_keys = used_bytes = 0
                for local, orig in enumerate(positions):
                    resp = part_br.responses[local]
                    kb.combine_response(br.responses[orig], resp)
                    h = kb.inner(resp).header
                    used_keys += h.num_keys
                    used_bytes += h.num_bytes
                    if h.HasField("resume_span"):
                        stop = True
                        _extend_resume(br.responses[orig], ba.requests[orig], h.resume_span, reverse)
                if max_keys:
                    max_keys -= used_keys
                    stop = stop or max_keys <= 0
                if max_bytes:
                    max_bytes -= used_bytes
                    stop = stop or max_bytes <= 0
            if reverse:
                if d.start_key <= rs[0]:
                    break
                key = kb.prev_touched_key(ba, d.start_key)
                boundary = d.start_key
            else:
                if d.end_key >= rs[1]:
                    break
                key = kb.next_touched_key(ba, d.end_key)
                boundary = d.end_key
            if key is None or (reverse and key <= rs[0]) or (not reverse and key >= rs[1]):
                break
            if stop:
                _set_unvisited_resume_spans(br, ba, boundary, reverse)
                break
        return br

    # ---- one range ------------------------------------------------------------

    async def _send_partial(
        self,
        ba: BatchRequest,
        rs: Span,
        entry: CacheEntry,
        reverse: bool,
        deadline: float,
        attempt: int,
    ) -> BatchResponse:
        """Send a part whose keys lie in one range (per `entry`), retrying."""
        self.metrics.partial_batches += 1
        failures = 0
        while True:
            try:
                return await self._send_to_replicas(entry, ba)
            except (RangeKeyMismatchError, _StaleDescriptor) as e:
                self.metrics.range_key_mismatch += 1
                self.range_cache.evict(entry.desc)
                fresh = getattr(e, "range_desc", None)
                if fresh is not None and fresh.range_id:
                    self.range_cache.insert(fresh)
                if attempt > 0:
                    await self._backoff(attempt - 1, deadline, e)
                return await self._divide_and_send(ba, rs, reverse, deadline, attempt + 1)
            except _SendFailed as e:
                self.range_cache.evict(entry.desc)
                await self._backoff(failures, deadline, e)
                failures += 1
                entry = await self._lookup(rs[1] if reverse else rs[0], reverse, deadline)
                d = entry.desc
                if not (d.start_key <= rs[0] and rs[1] <= d.end_key):
                    return await self._divide_and_send(ba, rs, reverse, deadline, attempt + 1)

    def _replica_order(self, entry: CacheEntry) -> list[ReplicaDescriptor]:
        """Leaseholder first, then a replica on the gateway node, then the
        rest in a random order (spreads load; deterministic under a seeded rng)."""
        reps = list(entry.desc.replicas)
        self._rng.shuffle(reps)
        lh = entry.leaseholder.node_id if entry.leaseholder is not None else 0
        reps.sort(key=lambda r: 0 if r.node_id == lh else 1 if r.node_id == self.gateway_node_id else 2)
        return reps

    async def _send_to_replicas(self, entry: CacheEntry, ba: BatchRequest) -> BatchResponse:
        desc = entry.desc
        if not ba.header.range_id:
            # Not sent yet (every batch reaching here is DistSender's own
            # copy): address it in place. A batch already handed to a node is
            # never mutated; a retry for another range sends a copy.
            req = ba
            req.header.range_id = desc.range_id
        elif ba.header.range_id == desc.range_id:
            req = ba
        else:
            req = BatchRequest()
            req.CopyFrom(ba)
            req.header.range_id = desc.range_id
        is_write = kb.batch_is_write(req)
        queue = deque(self._replica_order(entry))
        budget = 2 * len(queue) + 1  # lets a leaseholder hint revisit a replica
        last: BaseException | None = None
        while queue and budget > 0:
            budget -= 1
            rep = queue.popleft()
            self.metrics.rpcs += 1
            try:
                br = await self._nodes.send_to_node(rep.node_id, req)
            except NodeUnavailableError as e:
                self.metrics.node_unavailable += 1
                last = e
                continue
            except AmbiguousResultError as e:
                if is_write:
                    raise
                last = e
                continue
            self._observe_clock(br)
            if not br.HasField("error"):
                if len(br.responses) != len(req.requests):
                    raise InternalError(
                        f"r{desc.range_id} on n{rep.node_id} answered {len(br.responses)} "
                        f"responses to a batch of {len(req.requests)} requests"
                    )
                if req.header.read_consistency == api_pb2.CONSISTENT:
                    self.range_cache.update_leaseholder(desc.range_id, rep)
                return br
            err = error_from_proto(br.error)
            if isinstance(err, NotLeaseHolderError):
                self.metrics.not_leaseholder += 1
                last = err
                hint = _leaseholder_hint(err)
                if hint is not None and hint.node_id != rep.node_id:
                    if not any(r.node_id == hint.node_id for r in desc.replicas):
                        raise _StaleDescriptor(
                            f"r{desc.range_id}: leaseholder n{hint.node_id} is not in the "
                            f"cached descriptor"
                        )
                    self.range_cache.update_leaseholder(desc.range_id, hint)
                    for r in list(queue):
                        if r.node_id == hint.node_id:
                            queue.remove(r)
                    queue.appendleft(next(r for r in desc.replicas if r.node_id == hint.node_id))
                continue
            if isinstance(err, RangeNotFoundError):
                self.metrics.range_not_found += 1
                last = err
                continue
            raise err
        raise _SendFailed(desc, last)

    def _observe_clock(self, br: BatchResponse) -> None:
        """Ratchet the gateway's HLC with the server clock reading in `br.now`
        (CockroachDB's DistSender does the same). A reading beyond the max
        offset is not adopted (HLC refuses it) and only counted: the batch
        itself succeeded or failed on its own terms."""
        if self._hlc is None or not br.HasField("now"):
            return
        try:
            self._hlc.update(ts_from_proto(br.now))
        except ClockOffsetError:
            self.metrics.clock_offset_rejections += 1

    # ---- lookups and backoff ----------------------------------------------------------

    async def _lookup(self, key: bytes, reverse: bool, deadline: float) -> CacheEntry:
        """The range holding `key` (reverse: the key before `key`), retrying
        failed meta lookups with backoff until the deadline."""
        failures = 0
        while True:
            try:
                return await self.range_cache.lookup(key, reverse)
            except (CrdbError, _SendFailed, _StaleDescriptor, LookupError) as e:
                if isinstance(e, CrdbError) and not isinstance(
                    e, NodeUnavailableError | RangeKeyMismatchError | NotLeaseHolderError
                ):
                    raise
                await self._backoff(failures, deadline, e)
                failures += 1

    async def _meta_lookup(self, key: bytes, reverse: bool) -> RangeDescriptor:
        """Read the descriptor of the range holding `key` from meta."""
        first = await self._first_range.first_range()
        if (key <= first.end_key) if reverse else (key < first.end_key):
            return first
        entry = self.range_cache.get_cached(first.start_key)
        if entry is None or entry.desc.generation < first.generation:
            entry = self.range_cache.insert(first) or CacheEntry(first)
        start = keys.meta_key(key) if reverse else keys.meta_key(keys.next_key(key))
        ba = kb.batch(
            kb.scan_request(start, keys.META_MAX),
            max_span_request_keys=1,
            read_consistency=self._meta_consistency,
        )
        if self.gateway_node_id:
            ba.header.gateway_node_id = self.gateway_node_id
        br = await self._send_to_replicas(entry, ba)
        rows = br.responses[0].scan.rows
        if not rows:
            raise LookupError(f"no meta record after {start!r}")
        return RangeDescriptor.FromString(rows[0].value.raw_bytes)

    async def _backoff(self, attempt: int, deadline: float, cause: BaseException) -> None:
        if self._clock() >= deadline:
            raise _give_up(cause)
        delay = self.retry.backoff(attempt, self._rng)
        self.metrics.backoffs += 1
        self.metrics.backoff_seconds += delay
        await self._sleep(delay)


# ---- helpers ----------------------------------------------------------------------


def _leaseholder_hint(err: NotLeaseHolderError) -> ReplicaDescriptor | None:
    if err.leaseholder is not None and err.leaseholder.node_id:
        return err.leaseholder
    if err.lease is not None and err.lease.replica.node_id:
        return err.lease.replica
    return None


def _give_up(cause: BaseException) -> BaseException:
    if isinstance(cause, CrdbError) and not isinstance(
        cause, NotLeaseHolderError | RangeNotFoundError | RangeKeyMismatchError
    ):
        return cause
    if isinstance(cause, _SendFailed):
        node = getattr(cause.last, "node_id", 0) or 0
        return NodeUnavailableError(
            node,
            f"r{cause.desc.range_id}: no replica could serve the request before the retry "
            f"deadline (replicas on nodes "
            f"{sorted(r.node_id for r in cause.desc.replicas)}; last error: {cause.last})",
        )
    return NodeUnavailableError(0, f"range unavailable: gave up retrying: {cause}")


def _remap_index(exc: BaseException, positions: list[int]) -> None:
    idx = getattr(exc, "index", -1)
    if isinstance(idx, int) and 0 <= idx < len(positions):
        exc.index = positions[idx]  # type: ignore[attr-defined]


def _pick_error(errs: list[BaseException]) -> BaseException:
    for e in errs:
        if isinstance(e, AmbiguousResultError):
            return e
    indexed = [e for e in errs if getattr(e, "index", -1) >= 0]
    if indexed:
        return min(indexed, key=lambda e: e.index)  # type: ignore[attr-defined]
    return errs[0]


_TS_AND_TXN = frozenset({"timestamp", "txn"})


def _adopt_whole_response(ba: BatchRequest, br: BatchResponse) -> bool:
    """Make `br`, the response of a part holding all of `ba`, exactly what
    stitching it into a fresh response (`_new_response`, `_merge_header`,
    `combine_response`) would build, and say whether that worked. The header
    scalars a server echoes (range id, gateway, ...) are cleared in place, as
    stitching would drop them; `br` is the transport's fresh object."""
    h = br.header
    if h.HasField("txn") and not h.txn.HasField("meta"):
        return False
    for req, resp in zip(ba.requests, br.responses):
        k = req.WhichOneof("value")
        if resp.WhichOneof("value") != k:
            return False
        if k in kb.RANGE_KINDS and getattr(resp, k).header.HasField("resume_span"):
            return False
    for fd, _ in h.ListFields():
        if fd.name not in _TS_AND_TXN:
            h.ClearField(fd.name)
    # A zero timestamp is never merged into a fresh response: absent there.
    if h.HasField("timestamp") and not (h.timestamp.wall_time or h.timestamp.logical):
        h.ClearField("timestamp")
    if br.HasField("now") and not (br.now.wall_time or br.now.logical):
        br.ClearField("now")
    return True


def _new_response(ba: BatchRequest) -> BatchResponse:
    br = BatchResponse()
    for r in ba.requests:
        br.responses.append(kb.empty_response_for(r))
    return br


def _merge_header(dst: BatchResponse, src: BatchResponse) -> None:
    h, s = dst.header, src.header
    if (s.timestamp.wall_time, s.timestamp.logical) > (h.timestamp.wall_time, h.timestamp.logical):
        h.timestamp.CopyFrom(s.timestamp)
    if s.HasField("txn"):
        kb.merge_txn(h.txn, s.txn)
    if (src.now.wall_time, src.now.logical) > (dst.now.wall_time, dst.now.logical):
        dst.now.CopyFrom(src.now)


def _extend_resume(resp: api_pb2.ResponseUnion, orig: api_pb2.RequestUnion, rs, reverse: bool) -> None:
    """A server resume span covers the truncated request only: widen it to
    the rest of the original request."""
    key, end = kb.request_span(orig)
    if not end:  # point request: resume at its key
        kb.set_resume_span(resp, key)
    elif reverse:
        kb.set_resume_span(resp, key, rs.end_key)
    else:
        kb.set_resume_span(resp, rs.key, end)


def _set_unvisited_resume_spans(
    br: BatchResponse, ba: BatchRequest, boundary: bytes, reverse: bool
) -> None:
    """Iteration stopped at the addressed `boundary`: give every request with
    keys beyond it (in iteration order) a resume span over those keys."""
    for i, r in enumerate(ba.requests):
        if kb.resume_span(br.responses[i]) is not None:
            continue
        if reverse:
            rest = kb.truncate_request(r, keys.KEY_MIN, boundary)
        else:
            rest = kb.truncate_request(r, boundary, _AFTER_ALL_KEYS)
        if rest is not None:
            k, e = kb.request_span(rest)
            kb.set_resume_span(br.responses[i], k, e)
