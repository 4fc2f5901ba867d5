"""Batch evaluation: declare a batch's keys, then evaluate its requests in order.

The replica runs a `BatchRequest` in three steps, two of which live here:

1. `declare_keys(desc, ba)` collects every request's declared spans into one
   `SpanSet` (the replica latches them). It validates the shape of each
   request first, so a malformed request never reaches the latch manager.
2. (replica) latches, lock table, timestamp cache.
3. `evaluate_batch(rw, ba, desc=..., now=..., stats=...)` evaluates the
   requests one after another against `rw` — the engine for a read-only
   batch, a readable write batch for writes — and returns the
   `BatchResponse` plus the merged `Result` of side effects. Each request
   sees the writes of those before it. Nothing here touches Raft, the network
   or the clock: the caller proposes `rw`'s mutations (or discards them when
   evaluation raised).

Validation (`InvalidArgumentError` naming the request and its position):
a request union with nothing set, an unsupported command, an empty key, a
point request with an end key, a span request whose end key is missing or not
after its key, keys at or beyond `KEY_MAX`, keys in the reserved space — raw
range-ID keys (``0x00``), local keys that are not range-local, a span mixing
range-local and global keys (it would plough through local data) — so every
key below `LOCAL_MAX` that passes is range-local — inconsistent reads in a
transaction or beside writes, and negative limits. Values over
`MAX_VALUE_BYTES` or batches over `MAX_BATCH_BYTES` raise
`ValueTooLargeError`. Keys outside the replica's range (addressed by
`keys.addr`, so range-local keys by their anchor) raise
`RangeKeyMismatchError(key, end_key, desc)`: the client's range cache is
stale.

Errors raised by evaluation (or validation) carry ``index``, the position of
the failing request in the batch; `errwire` puts it on the wire.

Limits (``max_span_request_keys``, ``target_bytes``) are shared by the whole
batch, in request order, as in CockroachDB: each Get, Scan, ReverseScan and
DeleteRange runs with what is left and charges the keys/bytes it returned;
once a budget is used up, every later one of them is answered without being
evaluated, with an empty result and a resume span over its whole span (a Get:
its key). Other requests are not limited.

Timestamps: the replica fills ``header.timestamp`` of a non-transactional
batch before calling. A transactional batch reads at ``txn.read_timestamp``
and writes at ``txn.meta.write_timestamp``; each request runs with
``txn.meta.sequence`` set to its own ``header.sequence`` (on a private copy
of the txn). The read uncertainty limit is the caller's `uncertainty_limit`,
else the txn's ``global_uncertainty_limit``.

Transactions. The response's ``header.txn`` is the batch's txn as
evaluation left it: EndTxn sets STAGING (with its in-flight writes) or
COMMITTED / ABORTED, HeartbeatTxn the new ``last_heartbeat``; the replica
must send that back, not the request's txn. A batch holding a whole txn —
plain reads and writes, then EndTxn(commit) whose lock spans they cover, at
epoch 0, with no record yet — is tried as a **one-phase commit**
(`try_one_phase_commit`): its writes are evaluated as committed writes at
the txn's write timestamp on a scratch batch, and if they succeed no intent
and no record is written (``EndTxnResponse.one_phase_commit``); if they
fail, the batch is evaluated the normal way (``require_1pc``: the error is
raised instead). Writes in a txn whose header status is final are refused,
except a rollback (EndTxn with ``commit`` false), which cleans up.

The abort span (`crdb_py.kvserver.abortspan`): before anything else, a
transactional batch — except a lone rollback or HeartbeatTxn — fails with
``TransactionAbortedError("ABORT_REASON_ABORT_SPAN")`` if the range holds an
abort span entry for its txn: a pusher aborted the txn and removed some of
its intents here, so what the txn would read here is no longer what it
wrote. That read is not latched (`abortspan` says why); `declare_keys`
declares a write of the entry for a rollback: an EndTxn that finalizes the txn ABORTED updates the
abort span of this range like a resolution does (``EndTxnRequest.poison``
writes the entry if the rollback had intents on this range, no poison
clears it); a commit never touches it.

Side effects for the replica (`Result`): ``updated_txn`` (tell the txn wait
queue), ``resolve_intents`` (hand to the intent resolver after apply),
``resolved_locks`` (tell the lock table after apply), ``tscache_bumps``
(record in the timestamp cache with no txn id before releasing latches —
also when the batch failed: a raised error carries the bumps of the batch in
``tscache_bumps``). Only commands with ``updates_tscache`` are reads the
replica should record at the batch's read timestamp.

`CheckedReadWriter` (pass ``assert_spans=``) asserts that every engine access
of the evaluation falls inside the declared spans: tests run with it so a
command that forgets to declare a key fails loudly instead of racing.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from typing import Any, TypeVar

import crdb_py.kvserver.batcheval  # noqa: F401  (registers the commands)
from crdb_py.kvserver import abortspan, gcthreshold
from crdb_py.kvserver.batcheval.command import Command, CommandArgs, Result, lookup
from crdb_py.kvserver.batcheval.declare import read_timestamp
from crdb_py.kvserver.batcheval.txn_record import read_record
from crdb_py.kvserver.spanset import DeclaredSpan, SpanAccess, SpanSet
from crdb_py.kvserver.tscache import TimestampCache
from crdb_py.pb import api_pb2, data_pb2
from crdb_py.storage.batch import OverlayBatch
from crdb_py.storage.engine import ReadWriter
from crdb_py.storage.mvcc_key import decode_suffix, split_engine_key
from crdb_py.storage.stats import MVCCStats
from crdb_py.util import keys
from crdb_py.util.errors import (
    CrdbError,
    InternalError,
    InvalidArgumentError,
    RangeKeyMismatchError,
    TransactionStatusError,
    ValueTooLargeError,
)
from crdb_py.util.hlc import Timestamp, ts_from_proto, ts_to_proto

MAX_VALUE_BYTES = 8 << 20  # one value
MAX_BATCH_BYTES = 64 << 20  # keys + values of one batch

# Requests charged against (and stopped by) the batch's key/byte budgets.
LIMITED_COMMANDS = frozenset(
    {"get", "scan", "reverse_scan", "delete_range", "resolve_intent_range"}
)

# Requests a one-phase-commit batch may hold besides its EndTxn.
ONE_PC_COMMANDS = frozenset(
    {
        "get",
        "scan",
        "reverse_scan",
        "put",
        "conditional_put",
        "increment",
        "delete",
        "delete_range",
    }
)


# ---- decoding and validating requests ------------------------------------------------


def _unpack(i: int, ru: api_pb2.RequestUnion) -> tuple[str, Any, Command]:
    name = ru.WhichOneof("value")
    if name is None:
        raise _at(InvalidArgumentError(f"request {i} of the batch is empty (no request set)"), i)
    try:
        cmd = lookup(name)
    except InvalidArgumentError as e:
        raise _at(e, i) from None
    return name, getattr(ru, name), cmd


_E = TypeVar("_E", bound=CrdbError)


def _at(e: _E, i: int) -> _E:
    """Tag an error with the position of the failing request."""
    e.index = i  # type: ignore[attr-defined]
    return e


def _invalid(i: int, name: str, what: str) -> InvalidArgumentError:
    return _at(InvalidArgumentError(f"{name} request (#{i} in batch): {what}"), i)


def _check_keys(i: int, name: str, cmd: Command, key: bytes, end_key: bytes) -> None:
    """The shape of a request's key/span (CockroachDB's `verifyKeys`)."""
    if not key:
        raise _invalid(i, name, "the key must not be empty")
    if key >= keys.KEY_MAX:
        raise _invalid(i, name, f"key {key!r} must be less than KEY_MAX")
    if key.startswith(keys.RAW_PREFIX):
        raise _invalid(i, name, f"key {key!r} is in the reserved range-ID-local key space")
    if keys.is_local(key) and not key.startswith(keys.LOCAL_RANGE_PREFIX):
        raise _invalid(i, name, f"local key {key!r} is not addressable (not range-local)")
    if not cmd.is_range:
        if end_key:
            raise _invalid(i, name, f"a point request must not have an end key (got {end_key!r})")
        return
    if not end_key:
        raise _invalid(i, name, "a span request needs an end key")
    if end_key <= key:
        raise _invalid(i, name, f"end key {end_key!r} must sort after key {key!r}")
    if end_key > keys.KEY_MAX:
        raise _invalid(i, name, f"end key {end_key!r} must not exceed KEY_MAX")
    start_local, end_local = keys.is_local(key), keys.is_local(end_key)
    if start_local != end_local:
        raise _invalid(i, name, f"span [{key!r}, {end_key!r}) mixes range-local and global keys")
    if start_local:
        try:
            keys.addr(end_key)
        except ValueError:
            raise _invalid(
                i, name, f"end key {end_key!r} is not an addressable local key"
            ) from None


def _check_header(ba: api_pb2.BatchRequest, is_write: bool) -> None:
    h = ba.header
    if not ba.requests:
        raise InvalidArgumentError("empty batch: a BatchRequest needs at least one request")
    if h.max_span_request_keys < 0 or h.target_bytes < 0:
        raise InvalidArgumentError(
            f"negative limits (max_span_request_keys={h.max_span_request_keys}, "
            f"target_bytes={h.target_bytes}); use 0 for no limit"
        )
    if h.read_consistency == api_pb2.INCONSISTENT:
        if h.HasField("txn"):
            raise InvalidArgumentError("inconsistent reads cannot be transactional")
        if is_write:
            raise InvalidArgumentError("inconsistent mode is only available to read-only batches")
    if h.HasField("txn"):
        if ts_from_proto(h.txn.read_timestamp).is_empty():
            raise InvalidArgumentError("transactional batch without a read timestamp")
        wts = ts_from_proto(h.txn.meta.write_timestamp)
        if not wts.is_empty() and wts < ts_from_proto(h.txn.read_timestamp):
            raise InvalidArgumentError(
                f"txn write timestamp {wts} is below its read timestamp "
                f"{ts_from_proto(h.txn.read_timestamp)}"
            )


def _validate(ba: api_pb2.BatchRequest) -> list[tuple[str, Any, Command]]:
    """Decode and validate every request; returns (name, request, command)."""
    reqs = [_unpack(i, ru) for i, ru in enumerate(ba.requests)]
    is_write = any(c.is_write for _, _, c in reqs)
    _check_header(ba, is_write)
    has_txn = ba.header.HasField("txn")
    if len(reqs) > 1 and any(c.is_admin for _, _, c in reqs):
        i = next(i for i, (_, _, c) in enumerate(reqs) if c.is_admin)
        raise _invalid(i, reqs[i][0], "an admin request must be alone in its batch")
    for i, (name, req, cmd) in enumerate(reqs):
        if cmd.is_txn and not has_txn:
            raise _invalid(i, name, "requires a transaction")
        _check_keys(i, name, cmd, req.header.key, req.header.end_key)
    return reqs


def _check_sizes(reqs: list[tuple[str, Any, Command]]) -> None:
    total = 0
    for i, (name, req, cmd) in enumerate(reqs):
        total += len(req.header.key) + len(req.header.end_key)
        if not cmd.is_write:
            continue
        for field in ("value", "exp_value"):
            v = getattr(req, field, b"")
            if len(v) > MAX_VALUE_BYTES:
                raise _at(
                    ValueTooLargeError(
                        f"{name} request (#{i} in batch): {field} of {len(v)} bytes exceeds "
                        f"the maximum of {MAX_VALUE_BYTES} bytes per value"
                    ),
                    i,
                )
            total += len(v)
        if total > MAX_BATCH_BYTES:
            raise _at(
                ValueTooLargeError(
                    f"batch of {total}+ bytes (at request #{i}) exceeds the maximum of "
                    f"{MAX_BATCH_BYTES} bytes per batch; split it into smaller batches"
                ),
                i,
            )


def _addr(key: bytes) -> bytes:
    try:
        return keys.addr(key)
    except ValueError as e:
        raise InvalidArgumentError(str(e)) from None


def check_in_range(desc: data_pb2.RangeDescriptor, key: bytes, end_key: bytes = b"") -> None:
    """Raise `RangeKeyMismatchError` unless [key, end_key) (or the point key)
    is addressed inside `desc`."""
    a = _addr(key)
    if end_key:
        ok = desc.start_key <= a and _addr(end_key) <= desc.end_key
    else:
        ok = desc.start_key <= a < desc.end_key
    if not ok:
        raise RangeKeyMismatchError(key, end_key, desc)


# ---- public API ---------------------------------------------------------------------


def batch_flags(ba: api_pb2.BatchRequest) -> tuple[bool, bool, bool]:
    """(is_write, is_read_only, is_admin) of a batch; unsupported or empty
    request unions raise `InvalidArgumentError`."""
    is_write = is_admin = False
    for i, ru in enumerate(ba.requests):
        _, _, cmd = _unpack(i, ru)
        is_write = is_write or cmd.is_write
        is_admin = is_admin or cmd.is_admin
    return is_write, not is_write and not is_admin, is_admin


def declare_keys(
    desc: data_pb2.RangeDescriptor,
    ba: api_pb2.BatchRequest,
    *,
    uncertainty_limit: Timestamp | None = None,
) -> SpanSet:
    """All spans the batch's requests declare (validating them first).

    Pass the `uncertainty_limit` that `evaluate_batch` will get when the
    replica gives a non-transactional read one: its MVCC read spans are then
    declared up to it, so no write inside the window evaluates beside the read.
    """
    spans = SpanSet()
    for name, req, cmd in _validate(ba):
        cmd.declare_keys(desc, ba.header, req, spans)
        if name == "end_txn" and not req.commit:
            abortspan.declare_write(desc, ba.header.txn.meta.id, spans)
    if uncertainty_limit is None:
        return spans
    return SpanSet(
        DeclaredSpan(d.span, d.access, d.ts.forward(uncertainty_limit))
        if d.access is SpanAccess.READ_ONLY and d.is_mvcc
        else d
        for d in spans
    )


def evaluate_batch(
    rw: ReadWriter,
    ba: api_pb2.BatchRequest,
    *,
    desc: data_pb2.RangeDescriptor,
    now: Timestamp,
    stats: MVCCStats,
    uncertainty_limit: Timestamp | None = None,
    assert_spans: SpanSet | None = None,
    tscache: TimestampCache | None = None,
    extras: dict[str, Any] | None = None,
) -> tuple[api_pb2.BatchResponse, Result]:
    """Evaluate `ba`'s requests in order against `rw` (see the module docstring).

    `stats` accumulates the batch's MVCC stats delta. With `assert_spans`,
    every engine access is checked against those declared spans. `tscache`
    is handed to the commands for reading (`CommandArgs.tscache`).

    A batch holding a whole transaction is committed in one phase when it
    can be (`try_one_phase_commit`). The response's ``header.txn`` is the
    batch's txn as evaluation left it (e.g. STAGING / COMMITTED after
    EndTxn). An error raised carries ``index`` and, when QueryIntents of the
    batch found intents missing, ``tscache_bumps`` (the replica must apply
    them even though the batch failed).
    """
    reqs = _validate(ba)
    if abortspan.checks_abort_span(ba):
        abortspan.check_if_txn_aborted(rw, desc.range_id, ba.header.txn)  # not latched: see abortspan
    one_pc = try_one_phase_commit(
        rw,
        ba,
        reqs,
        desc=desc,
        now=now,
        stats=stats,
        uncertainty_limit=uncertainty_limit,
        assert_spans=assert_spans,
        tscache=tscache,
    )
    if one_pc is not None:
        return one_pc
    return _evaluate(
        rw,
        ba,
        reqs,
        desc=desc,
        now=now,
        stats=stats,
        uncertainty_limit=uncertainty_limit,
        assert_spans=assert_spans,
        tscache=tscache,
        extras=extras,
    )


def _evaluate(
    rw: ReadWriter,
    ba: api_pb2.BatchRequest,
    reqs: list[tuple[str, Any, Command]],
    *,
    desc: data_pb2.RangeDescriptor,
    now: Timestamp,
    stats: MVCCStats,
    uncertainty_limit: Timestamp | None,
    assert_spans: SpanSet | None,
    tscache: TimestampCache | None,
    extras: dict[str, Any] | None = None,
) -> tuple[api_pb2.BatchResponse, Result]:
    _check_sizes(reqs)
    for i, (_, req, _) in enumerate(reqs):
        try:
            check_in_range(desc, req.header.key, req.header.end_key)
        except CrdbError as e:
            raise _at(e, i) from None
    header = ba.header
    txn: data_pb2.Transaction | None = None
    if header.HasField("txn"):
        if any(
            c.is_write and not (n == "end_txn" and not r.commit) for n, r, c in reqs
        ) and header.txn.status in (data_pb2.COMMITTED, data_pb2.ABORTED):
            raise TransactionStatusError(
                f"cannot write in a {data_pb2.TransactionStatus.Name(header.txn.status)} "
                "transaction",
                reason="write after finalization",
                txn=header.txn,
            )
        txn = data_pb2.Transaction()
        txn.CopyFrom(header.txn)
        if uncertainty_limit is None and header.txn.HasField("global_uncertainty_limit"):
            uncertainty_limit = ts_from_proto(header.txn.global_uncertainty_limit)
    ts = read_timestamp(header)
    if uncertainty_limit is not None and uncertainty_limit <= ts:
        uncertainty_limit = None
    if assert_spans is not None:
        rw = CheckedReadWriter(rw, assert_spans)

    br = api_pb2.BatchResponse()
    br.header.CopyFrom(header)
    ts_to_proto(now, br.now)
    result = Result()
    max_keys, target_bytes = header.max_span_request_keys, header.target_bytes
    exhausted = False
    for i, (name, req, cmd) in enumerate(reqs):
        resp = getattr(br.responses.add(), name)
        resp.SetInParent()
        limited = name in LIMITED_COMMANDS
        if limited and exhausted:
            resp.header.resume_span.key = req.header.key
            resp.header.resume_span.end_key = req.header.end_key
            continue
        if txn is not None:
            txn.meta.sequence = req.header.sequence
        cargs = CommandArgs(
            rw=rw,
            header=header,
            timestamp=ts,
            desc=desc,
            stats=stats,
            now=now,
            txn=txn,
            uncertainty_limit=uncertainty_limit,
            max_keys=max_keys if limited else 0,
            target_bytes=target_bytes if limited else 0,
            tscache=tscache,
            extras=extras if extras is not None else {},
        )
        try:
            res = cmd.evaluate(cargs, req, resp)
        except CrdbError as e:
            bumps = [*result.tscache_bumps, *getattr(e, "tscache_bumps", ())]
            if bumps:
                e.tscache_bumps = bumps  # type: ignore[attr-defined]
            raise _at(e, i) from None
        if name == "end_txn" and txn is not None and not req.commit:
            _end_txn_abort_span(rw, desc, txn, req, res)
        result.merge(res)
        if limited:
            h = resp.header
            if header.max_span_request_keys:
                max_keys -= h.num_keys
                exhausted = exhausted or max_keys <= 0
            if header.target_bytes:
                target_bytes -= h.num_bytes
                exhausted = exhausted or target_bytes <= 0
            exhausted = exhausted or h.HasField("resume_span")
    if txn is not None:
        txn.meta.sequence = header.txn.meta.sequence
        br.header.txn.CopyFrom(txn)
    return br, result


def _end_txn_abort_span(
    rw: ReadWriter,
    desc: data_pb2.RangeDescriptor,
    txn: data_pb2.Transaction,
    req: api_pb2.EndTxnRequest,
    res: Result,
) -> None:
    """A rollback updates this range's abort span as resolving its local
    intents would (CockroachDB does it in ``resolveLocalLocks``). Whether an
    intent was removed is approximated by a lock span lying on this range:
    a poisoning rollback may leave an entry that was not needed, which only
    costs space (the txn is finished)."""
    if txn.status != data_pb2.ABORTED:
        return
    abortspan.maybe_update_on_resolve(
        rw, desc.range_id, txn.meta, data_pb2.ABORTED, req.poison, bool(res.resolved_locks)
    )


# ---- one-phase commit ---------------------------------------------------------------


def _all_covered(lock_spans: Any, writes: list[tuple[bytes, bytes]]) -> bool:
    """Whether every lock span lies inside the keys/spans the batch writes.
    O((L + W) log W): a commit batch carries thousands of both."""
    points = {k for k, e in writes if not e}
    merged: list[list[bytes]] = []  # written spans, sorted and merged
    for k, e in sorted((k, e) for k, e in writes if e):
        if merged and k <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([k, e])
    starts = [m[0] for m in merged]
    for sp in lock_spans:
        end = sp.end_key or keys.next_key(sp.key)
        if end == keys.next_key(sp.key) and sp.key in points:
            continue
        i = bisect.bisect_right(starts, sp.key) - 1
        if i < 0 or merged[i][1] < end:
            return False
    return True


def one_phase_commit_eligible(
    rw: ReadWriter,
    ba: api_pb2.BatchRequest,
    reqs: list[tuple[str, Any, Command]],
    range_id: int | None = None,
) -> bool:
    """Whether `ba` is a whole transaction that may commit without a record
    (CockroachDB's `isOnePhaseCommit`): the txn's first epoch, an EndTxn
    commit last with no in-flight writes, nothing but plain reads and writes
    before it, every lock span written by this batch, the commit's timestamp
    checks passing, no record yet (a heartbeat or push created none), and
    one could be created (`gcthreshold.can_create_txn_record`)."""
    h = ba.header
    if not h.HasField("txn") or not reqs or reqs[-1][0] != "end_txn":
        return False
    et: api_pb2.EndTxnRequest = reqs[-1][1]
    if not et.commit or et.in_flight_writes or (h.txn.meta.epoch != 0 and not et.require_1pc):
        return False
    if any(name not in ONE_PC_COMMANDS for name, _, _ in reqs[:-1]):
        return False
    wts, rts = ts_from_proto(h.txn.meta.write_timestamp), ts_from_proto(h.txn.read_timestamp)
    if wts.is_empty():
        wts = rts
    if wts != rts:
        return False
    deadline = ts_from_proto(et.deadline)
    if not deadline.is_empty() and deadline <= wts:
        return False
    writes = [(r.header.key, r.header.end_key) for _, r, c in reqs[:-1] if c.is_write]
    if not writes or not _all_covered(et.lock_spans, writes):
        return False
    if read_record(rw, h.txn.meta) is not None:
        return False
    # No record may be created for a txn started at or below the txn span GC
    # threshold, and a one-phase commit is a record's worth of commit.
    return gcthreshold.can_create_txn_record(
        h.txn.meta, gcthreshold.txn_span_gc_threshold(rw, ba.header.range_id if range_id is None else range_id)
    )


def try_one_phase_commit(
    rw: ReadWriter,
    ba: api_pb2.BatchRequest,
    reqs: list[tuple[str, Any, Command]],
    *,
    desc: data_pb2.RangeDescriptor,
    now: Timestamp,
    stats: MVCCStats,
    uncertainty_limit: Timestamp | None = None,
    assert_spans: SpanSet | None = None,
    tscache: TimestampCache | None = None,
) -> tuple[api_pb2.BatchResponse, Result] | None:
    """Commit `ba` in one phase if it is eligible and its writes succeed as
    plain committed writes at the txn's write timestamp; None = evaluate it
    the normal way (a failed attempt leaves `rw` and `stats` untouched).

    With ``require_1pc`` a batch that cannot commit in one phase raises
    instead: `TransactionStatusError` when ineligible, the attempt's error
    when its writes failed.
    """
    h = ba.header
    require = bool(reqs) and reqs[-1][0] == "end_txn" and reqs[-1][1].require_1pc
    if assert_spans is not None:
        checked: ReadWriter = CheckedReadWriter(rw, assert_spans)
    else:
        checked = rw
    if not one_phase_commit_eligible(checked, ba, reqs, desc.range_id):
        if require:
            raise _at(
                TransactionStatusError(
                    "could not commit in one phase as requested",
                    reason="require_1pc",
                    txn=h.txn,
                ),
                len(reqs) - 1,
            )
        return None
    inner = api_pb2.BatchRequest()
    inner.header.CopyFrom(h)
    inner.header.ClearField("txn")
    wts = ts_from_proto(h.txn.meta.write_timestamp)
    ts_to_proto(
        wts if not wts.is_empty() else ts_from_proto(h.txn.read_timestamp), inner.header.timestamp
    )
    inner.requests.extend(ba.requests[:-1])
    if uncertainty_limit is None and h.txn.HasField("global_uncertainty_limit"):
        uncertainty_limit = ts_from_proto(h.txn.global_uncertainty_limit)
    attempt = OverlayBatch(rw)
    delta = MVCCStats()
    try:
        br_in, res = _evaluate(
            attempt,
            inner,
            reqs[:-1],
            desc=desc,
            now=now,
            stats=delta,
            uncertainty_limit=uncertainty_limit,
            assert_spans=assert_spans,
            tscache=tscache,
        )
    except CrdbError:
        if require:
            raise
        return None
    for k, v in attempt.mutations():
        if v is None:
            rw.delete(k)
        else:
            rw.put(k, v)
    stats.add(delta)
    br = api_pb2.BatchResponse()
    br.header.CopyFrom(h)
    br.now.CopyFrom(br_in.now)
    br.responses.extend(br_in.responses)
    br.responses.add().end_txn.one_phase_commit = True
    br.header.txn.status = data_pb2.COMMITTED
    ts_to_proto(ts_from_proto(inner.header.timestamp), br.header.txn.meta.write_timestamp)
    committed = data_pb2.Transaction()
    committed.CopyFrom(br.header.txn)
    res.updated_txn = committed
    return br, res


# ---- declared-span assertion -------------------------------------------------------


class CheckedReadWriter:
    """A `ReadWriter` that asserts each access against declared spans.

    Engine keys are mapped back to logical keys (abort span entries, raw
    keys, are declared and checked as themselves). Reads are checked by key
    coverage only: the bounds of an iteration when it starts, and then each
    key the evaluation iterates past (MVCC scans stop at their end bound
    themselves, so they may look at one key beyond it);
    writes of a version also by timestamp (a write latch at D allows writes
    at >= D). Deleting an old version (an intent moving up) and metadata
    records are checked by key only.
    """

    __slots__ = ("_rw", "_spans")

    def __init__(self, rw: ReadWriter, spans: SpanSet) -> None:
        self._rw = rw
        self._spans = spans

    @staticmethod
    def _logical(ek: bytes) -> tuple[bytes, bytes]:
        if abortspan.is_abort_span_key(ek) or gcthreshold.is_threshold_key(ek):
            return ek, b""  # raw and unversioned: declared under its own key
        try:
            return split_engine_key(ek)
        except ValueError:
            raise InternalError(f"evaluation accessed non-MVCC engine key {ek!r}") from None

    def get(self, key: bytes) -> bytes | None:
        if gcthreshold.is_threshold_key(key):
            return self._rw.get(key)  # read unlatched, on purpose: see gcthreshold
        self._spans.assert_allowed(SpanAccess.READ_ONLY, self._logical(key)[0])
        return self._rw.get(key)

    def iter_range(
        self, lower: bytes, upper: bytes | None = None, *, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        lo = self._logical(lower)[0]
        if upper is None:
            self._spans.assert_allowed(SpanAccess.READ_ONLY, lo)
        else:
            hi = self._logical(upper)[0]
            if hi > lo:
                self._spans.assert_allowed(SpanAccess.READ_ONLY, lo, hi)
        return self._checked(self._rw.iter_range(lower, upper, reverse=reverse))

    def _checked(self, it: Iterator[tuple[bytes, bytes]]) -> Iterator[tuple[bytes, bytes]]:
        """Yield `it`, failing when the consumer moves on past an undeclared
        key (merely seeing one is how a scan learns it reached its end)."""
        undeclared: bytes | None = None
        for ek, v in it:
            if undeclared is not None:
                raise InternalError(
                    f"undeclared read of {undeclared!r}: evaluation iterated past it; "
                    f"declared: {self._spans!r}"
                )
            try:
                uk = split_engine_key(ek)[0]
            except ValueError:
                undeclared = ek
            else:
                if not self._spans.check_allowed(SpanAccess.READ_ONLY, uk):
                    undeclared = uk
            yield ek, v

    def put(self, key: bytes, value: bytes) -> None:
        uk, sfx = self._logical(key)
        ts = decode_suffix(sfx) if sfx else None
        self._spans.assert_allowed(SpanAccess.READ_WRITE, uk, ts=ts)
        self._rw.put(key, value)

    def delete(self, key: bytes) -> None:
        self._spans.assert_allowed(SpanAccess.READ_WRITE, self._logical(key)[0])
        self._rw.delete(key)
