"""Helpers over the pb batch types: build requests, classify them, find their
spans, truncate them to a range, and stitch partial responses together.

Everything here is pure (no I/O); DistSender and the DB / Txn APIs build on
it. A request is a `RequestUnion`; its *kind* is the name of the set oneof
field (``"get"``, ``"scan"``, ``"reverse_scan"``, ``"put"``, ...).

Spans and addressing. A request touches the single key ``header.key`` (point
requests) or ``[header.key, header.end_key)`` (range requests). Routing uses
*addressed* keys (`crdb_py.util.keys.addr`): a range-local key (a txn record,
a range descriptor) lives on the range of its anchor. Range-local spans are
truncated in local key space: the keys anchored in ``[s, e)`` are exactly
``range_local_span(s, e)``, so intersecting with that span is the same as
truncating the anchors.
"""

from __future__ import annotations

from typing import Any

from crdb_py.pb import api_pb2, data_pb2
from crdb_py.util import keys

RequestUnion = api_pb2.RequestUnion
ResponseUnion = api_pb2.ResponseUnion

# Range requests: they carry an end key and may span several ranges.
RANGE_KINDS = frozenset(
    {"scan", "reverse_scan", "delete_range", "resolve_intent_range", "refresh_range"}
)
# Requests that write (or may write) and so must never be retried blindly
# after an ambiguous outcome.
WRITE_KINDS = frozenset(
    {
        "put",
        "conditional_put",
        "increment",
        "delete",
        "delete_range",
        "heartbeat_txn",
        "end_txn",
        "push_txn",
        "recover_txn",
        "resolve_intent",
        "resolve_intent_range",
        "admin_split",
        "admin_transfer_lease",
    }
)
READ_KINDS = frozenset(
    {"get", "scan", "reverse_scan", "query_txn", "query_intent", "refresh", "refresh_range"}
)
REVERSE_KINDS = frozenset({"reverse_scan"})
# Requests whose results honour `max_span_request_keys` / `target_bytes`.
LIMITED_KINDS = frozenset({"get", "scan", "reverse_scan", "delete_range"})
ADMIN_KINDS = frozenset({"admin_split", "admin_transfer_lease"})
# Kinds whose partial responses are concatenated across ranges.
_ROWS_KINDS = frozenset({"scan", "reverse_scan"})


# ---- classification ---------------------------------------------------------


def kind(ru: Any) -> str:
    """The kind of a RequestUnion / ResponseUnion (``""`` if unset)."""
    return ru.WhichOneof("value") or ""


def inner(ru: Any) -> Any:
    """The request (or response) message inside a union."""
    k = kind(ru)
    if not k:
        raise ValueError("empty request/response union")
    return getattr(ru, k)


def is_range(ru: RequestUnion) -> bool:
    return kind(ru) in RANGE_KINDS


def is_write(ru: RequestUnion) -> bool:
    return kind(ru) in WRITE_KINDS


def is_read(ru: RequestUnion) -> bool:
    return kind(ru) in READ_KINDS


def is_reverse(ru: RequestUnion) -> bool:
    return kind(ru) in REVERSE_KINDS


def batch_is_write(ba: api_pb2.BatchRequest) -> bool:
    return any(is_write(r) for r in ba.requests)


def batch_is_reverse(ba: api_pb2.BatchRequest) -> bool:
    return any(is_reverse(r) for r in ba.requests)


def has_limits(ba: api_pb2.BatchRequest) -> bool:
    return ba.header.max_span_request_keys > 0 or ba.header.target_bytes > 0


# ---- spans ------------------------------------------------------------------


def request_span(ru: RequestUnion) -> tuple[bytes, bytes]:
    """(key, end_key) of a request; end_key is ``b""`` for point requests."""
    h = inner(ru).header
    return (h.key, h.end_key if is_range(ru) else b"")


def addr_span(ru: RequestUnion) -> tuple[bytes, bytes]:
    """The addressed span [start, end) a request touches (end exclusive)."""
    key, end = request_span(ru)
    start = keys.addr(key)
    if not end:
        return start, keys.next_key(start)
    if keys.is_local(end):
        end_a = keys.addr(end)
        # A local end key anchored at a (with a suffix) still covers keys of anchor a.
        if end != keys.range_local_span(end_a, end_a)[0]:
            end_a = keys.next_key(end_a)
        return start, end_a
    return start, end


def batch_addr_span(ba: api_pb2.BatchRequest) -> tuple[bytes, bytes]:
    """The smallest addressed span covering every request of the batch."""
    if not ba.requests:
        raise ValueError("empty batch")
    spans = [addr_span(r) for r in ba.requests]
    return min(s for s, _ in spans), max(e for _, e in spans)


def truncate_request(ru: RequestUnion, start: bytes, end: bytes) -> RequestUnion | None:
    """`ru` restricted to the addressed span [start, end), or None if it has
    nothing there. The result is a copy; `ru` is left untouched."""
    s, e = addr_span(ru)
    if e <= start or s >= end:
        return None
    out = RequestUnion()
    out.CopyFrom(ru)
    if not is_range(ru) or (start <= s and e <= end):
        return out
    h = inner(out).header
    if keys.is_local(h.key):
        lo, hi = keys.range_local_span(start, end)
    else:
        lo, hi = start, end
    h.key = max(h.key, lo)
    h.end_key = min(h.end_key, hi)
    return out


def next_touched_key(ba: api_pb2.BatchRequest, after: bytes) -> bytes | None:
    """The smallest addressed key >= `after` that some request touches."""
    best: bytes | None = None
    for r in ba.requests:
        s, e = addr_span(r)
        if e <= after:
            continue
        k = max(s, after)
        if best is None or k < best:
            best = k
    return best


def prev_touched_key(ba: api_pb2.BatchRequest, before: bytes) -> bytes | None:
    """The largest exclusive end <= `before` of the keys some request touches
    below `before` (the reverse of `next_touched_key`)."""
    best: bytes | None = None
    for r in ba.requests:
        s, e = addr_span(r)
        if s >= before:
            continue
        k = min(e, before)
        if best is None or k > best:
            best = k
    return best


# ---- request constructors ------------------------------------------------------


def _req(k: str, key: bytes, end_key: bytes = b"", **fields: Any) -> RequestUnion:
    ru = RequestUnion()
    msg = getattr(ru, k)
    msg.header.key = key
    if end_key:
        msg.header.end_key = end_key
    for name, value in fields.items():
        setattr(msg, name, value)
    msg.SetInParent()
    return ru


def get_request(key: bytes) -> RequestUnion:
    return _req("get", key)


def put_request(key: bytes, value: bytes, *, blind: bool = False) -> RequestUnion:
    return _req("put", key, value=value, blind=blind)


def cput_request(
    key: bytes, value: bytes, expected: bytes | None, *, allow_if_does_not_exist: bool = False
) -> RequestUnion:
    """ConditionalPut: write `value` iff the current value is `expected`
    (None: iff the key does not exist)."""
    return _req(
        "conditional_put",
        key,
        value=value,
        exp_value=expected or b"",
        exp_exists=expected is not None,
        allow_if_does_not_exist=allow_if_does_not_exist,
    )


def increment_request(key: bytes, increment: int) -> RequestUnion:
    return _req("increment", key, increment=increment)


def delete_request(key: bytes) -> RequestUnion:
    return _req("delete", key)


def delete_range_request(key: bytes, end_key: bytes, *, return_keys: bool = False) -> RequestUnion:
    return _req("delete_range", key, end_key, return_keys=return_keys)


def scan_request(key: bytes, end_key: bytes) -> RequestUnion:
    return _req("scan", key, end_key)


def reverse_scan_request(key: bytes, end_key: bytes) -> RequestUnion:
    return _req("reverse_scan", key, end_key)


def admin_split_request(split_key: bytes) -> RequestUnion:
    return _req("admin_split", split_key, split_key=split_key)


def admin_transfer_lease_request(key: bytes, target_node_id: int) -> RequestUnion:
    return _req("admin_transfer_lease", key, target_node_id=target_node_id)


def batch(*requests: RequestUnion, **header: Any) -> api_pb2.BatchRequest:
    """A BatchRequest of `requests` with header fields from keyword arguments."""
    ba = api_pb2.BatchRequest()
    for name, value in header.items():
        setattr(ba.header, name, value)
    for r in requests:
        ba.requests.append(r)
    return ba


# ---- responses ------------------------------------------------------------------


def empty_response_for(ru: RequestUnion) -> ResponseUnion:
    """An empty response of the kind matching request `ru`."""
    out = ResponseUnion()
    getattr(out, kind(ru)).SetInParent()
    return out


def combine_response(dst: ResponseUnion, src: ResponseUnion) -> None:
    """Fold the partial response `src` (from a later range in iteration
    order) into `dst`: rows and deleted keys are appended, counters added.
    The resume span is *not* touched: DistSender owns it."""
    k = kind(src)
    if kind(dst) != k:
        raise ValueError(f"cannot combine {kind(dst)!r} with {k!r}")
    d, s = getattr(dst, k), getattr(src, k)
    if k in _ROWS_KINDS:
        d.rows.extend(s.rows)
    elif k == "delete_range":
        d.keys.extend(s.keys)
    elif k not in RANGE_KINDS:
        # A point request lives on one range: its only response wins.
        d.CopyFrom(s)
        return
    d.header.num_keys += s.header.num_keys
    d.header.num_bytes += s.header.num_bytes


def set_resume_span(resp: ResponseUnion, key: bytes, end_key: bytes = b"") -> None:
    rs = inner(resp).header.resume_span
    rs.key = key
    rs.end_key = end_key


def resume_span(resp: ResponseUnion) -> data_pb2.Span | None:
    h = inner(resp).header
    return h.resume_span if h.HasField("resume_span") else None


_STATUS_ORDER = {
    data_pb2.PENDING: 0,
    data_pb2.STAGING: 1,
    data_pb2.COMMITTED: 2,
    data_pb2.ABORTED: 2,
}


def _ts_key(ts: data_pb2.Timestamp) -> tuple[int, int]:
    return (ts.wall_time, ts.logical)


def merge_txn(dst: data_pb2.Transaction, src: data_pb2.Transaction) -> None:
    """Fold a txn returned by one range into the txn returned by another:
    timestamps move forward, the more final status wins, flags are OR-ed.
    (Extension point: the M5 coordinator owns the full `Transaction.update`.)"""
    if not dst.HasField("meta"):
        dst.CopyFrom(src)
        return
    for path in ("meta.write_timestamp", "read_timestamp", "last_heartbeat"):
        owner_d, owner_s = dst, src
        *parents, leaf = path.split(".")
        for p in parents:
            owner_d, owner_s = getattr(owner_d, p), getattr(owner_s, p)
        if _ts_key(getattr(owner_s, leaf)) > _ts_key(getattr(owner_d, leaf)):
            getattr(owner_d, leaf).CopyFrom(getattr(owner_s, leaf))
    if _STATUS_ORDER[src.status] > _STATUS_ORDER[dst.status]:
        dst.status = src.status
    dst.write_too_old = dst.write_too_old or src.write_too_old
    dst.commit_timestamp_fixed = dst.commit_timestamp_fixed or src.commit_timestamp_fixed
