"""Errors on the wire: `crdb_py.util.errors` exceptions <-> the pb `Error`.

The server (kvserver) turns an exception raised while evaluating a batch into
the `Error` message of a `BatchResponse` with `error_to_proto`; the client
(kvclient) turns it back into an exception with `error_from_proto` and raises
it. `util` may not import `pb`, so both functions work by duck typing: they
are handed a pb `Error` (or anything with its fields) and read or fill it.

Mapping. `Error.kind` is the exception's class name (`CrdbError.kind`);
`message` is `str(exc)` and is restored verbatim, so the user sees the same
text on both sides; `retryable` is the class's flag. Structured attributes
travel in the fields named for them (table `_ATTRS` below):

==========================  =================================================
attribute                   pb Error field
==========================  =================================================
intents                     intents (pb `Intent` messages)
actual_timestamp            actual_timestamp
existing_timestamp          existing_timestamp
txn, pushee                 txn (a pb `Transaction`)
timestamp (WriteTooOld)     txn.meta.write_timestamp (the write's timestamp)
read_timestamp / limit      txn.read_timestamp / txn.global_uncertainty_limit
                            (CockroachDB derives both from the txn the same way)
lease, leaseholder          lease, leaseholder
range_desc                  range
range_id                    range.range_id (no descriptor: only the id is set)
actual_value                actual_value + actual_value_exists (None = absent)
reason                      reason
index (set by the caller)   index (-1 = not tied to one request)
==========================  =================================================

Not carried (no field in `Error` yet; kept only inside `message`): `key`
(WriteTooOld, ReadWithinUncertaintyInterval, IntentMissing), the requested
`key`/`end_key` of RangeKeyMismatch and `node_id` of NodeUnavailable; they
come back as ``b""`` / 0.

Decoding never calls a class's `__init__` (their signatures differ and grow):
it creates the instance with `__new__`, sets `args = (message,)` and assigns
the attributes above. A `kind` that names no known class (e.g. a newer
server) becomes a plain `KVError` with the wire kind in `wire_kind`.
Timestamps come back as `crdb_py.util.hlc.Timestamp`; txns, intents, leases
and descriptors as copies of the pb messages.
"""

from __future__ import annotations

from typing import Any

from crdb_py.util import errors
from crdb_py.util.hlc import Timestamp, ts_from_proto, ts_to_proto

NO_INDEX = -1


def _all_error_classes() -> dict[str, type[errors.CrdbError]]:
    out: dict[str, type[errors.CrdbError]] = {}
    todo: list[type[errors.CrdbError]] = [errors.CrdbError]
    while todo:
        cls = todo.pop()
        out.setdefault(cls.__name__, cls)
        todo.extend(cls.__subclasses__())
    return out


def _copy_msg(dst: Any, src: Any) -> None:
    """Copy pb message `src` into the pb field `dst`."""
    dst.CopyFrom(src)


def _detached(msg: Any) -> Any:
    out = type(msg)()
    out.CopyFrom(msg)
    return out


def _is_pb(x: Any) -> bool:
    return hasattr(x, "SerializeToString") and hasattr(x, "CopyFrom")


def _set_ts(field: Any, ts: Any) -> None:
    if isinstance(ts, Timestamp):
        ts_to_proto(ts, field)
    elif ts is not None:  # a pb Timestamp
        field.CopyFrom(ts)


def error_to_proto(exc: BaseException, pb: Any, index: int | None = None) -> Any:
    """Fill the pb `Error` `pb` from `exc` and return it.

    `index` is the position of the failing request in its batch; when None,
    `exc.index` is used if present, else -1. Exceptions that are not
    `CrdbError`s are sent as `InternalError` (an unexpected exception on the
    server is a bug).
    """
    if not isinstance(exc, errors.CrdbError):
        pb.kind = errors.InternalError.__name__
        pb.message = f"{type(exc).__name__}: {exc}"
        pb.retryable = False
        pb.index = NO_INDEX if index is None else index
        return pb
    pb.kind = exc.kind
    pb.message = str(exc)
    pb.retryable = bool(type(exc).retryable)
    if index is None:
        index = getattr(exc, "index", NO_INDEX)
    pb.index = NO_INDEX if index is None else int(index)
    a = exc.__dict__
    for name in ("txn", "pushee"):
        if a.get(name) is not None and _is_pb(a[name]):
            _copy_msg(pb.txn, a[name])
    if a.get("timestamp") is not None and isinstance(exc, errors.WriteTooOldError):
        _set_ts(pb.txn.meta.write_timestamp, a["timestamp"])
    if a.get("read_timestamp") is not None:
        _set_ts(pb.txn.read_timestamp, a["read_timestamp"])
    if a.get("limit") is not None:
        _set_ts(pb.txn.global_uncertainty_limit, a["limit"])
    for intent in a.get("intents") or ():
        _copy_msg(pb.intents.add(), intent)
    if a.get("actual_timestamp") is not None:
        _set_ts(pb.actual_timestamp, a["actual_timestamp"])
    if a.get("existing_timestamp") is not None:
        _set_ts(pb.existing_timestamp, a["existing_timestamp"])
    if a.get("lease") is not None:
        _copy_msg(pb.lease, a["lease"])
    if a.get("leaseholder") is not None:
        _copy_msg(pb.leaseholder, a["leaseholder"])
    if a.get("range_desc") is not None:
        _copy_msg(pb.range, a["range_desc"])
    if a.get("range_id"):
        pb.range.range_id = int(a["range_id"])
    if "actual_value" in a:
        pb.actual_value_exists = a["actual_value"] is not None
        pb.actual_value = a["actual_value"] or b""
    if a.get("reason"):
        pb.reason = a["reason"]
    if isinstance(a.get("key"), bytes):
        pb.key = a["key"]
    if isinstance(a.get("end_key"), bytes):
        pb.end_key = a["end_key"]
    if isinstance(a.get("node_id"), int):
        pb.node_id = a["node_id"]
    return pb


def _has(pb: Any, field: str) -> bool:
    return bool(pb.HasField(field))


def error_from_proto(pb: Any) -> errors.CrdbError:
    """The exception described by the pb `Error` `pb`.

    The result always has an `index` attribute (-1 when the error is not tied
    to one request of the batch).
    """
    cls = _all_error_classes().get(pb.kind)
    exc: errors.CrdbError
    if cls is None:
        exc = errors.KVError(f"{pb.kind}: {pb.message}" if pb.kind else pb.message)
        exc.wire_kind = pb.kind  # type: ignore[attr-defined]
        exc.index = pb.index  # type: ignore[attr-defined]
        return exc
    exc = cls.__new__(cls)
    exc.args = (pb.message,)
    txn = _detached(pb.txn) if _has(pb, "txn") else None
    # Attribute defaults first, so every instance has what its __init__ sets.
    defaults: dict[str, Any] = {
        errors.WriteIntentError: {"intents": [_detached(i) for i in pb.intents]},
        errors.WriteTooOldError: {
            "timestamp": ts_from_proto(pb.txn.meta.write_timestamp),
            "actual_timestamp": ts_from_proto(pb.actual_timestamp),
            "key": pb.key,
        },
        errors.ReadWithinUncertaintyIntervalError: {
            "read_timestamp": ts_from_proto(pb.txn.read_timestamp),
            "existing_timestamp": ts_from_proto(pb.existing_timestamp),
            "limit": ts_from_proto(pb.txn.global_uncertainty_limit),
            "key": pb.key,
        },
        errors.ConditionFailedError: {
            "actual_value": pb.actual_value if pb.actual_value_exists else None
        },
        errors.TransactionRetryError: {"reason": pb.reason, "txn": txn},
        errors.TransactionAbortedError: {"reason": pb.reason, "txn": txn},
        errors.TransactionPushError: {"pushee": txn},
        errors.TransactionStatusError: {"reason": pb.reason, "txn": txn},
        errors.IntentMissingError: {"key": pb.key},
        errors.IndeterminateCommitError: {"txn": txn},
        errors.RefreshFailedError: {
            "key": pb.key,
            "existing_timestamp": ts_from_proto(pb.existing_timestamp),
        },
        errors.NotLeaseHolderError: {
            "range_id": pb.range.range_id,
            "leaseholder": _detached(pb.leaseholder) if _has(pb, "leaseholder") else None,
            "lease": _detached(pb.lease) if _has(pb, "lease") else None,
        },
        errors.RangeKeyMismatchError: {
            "key": pb.key,
            "end_key": pb.end_key,
            "range_desc": _detached(pb.range) if _has(pb, "range") else None,
        },
        errors.RangeNotFoundError: {"range_id": pb.range.range_id},
        errors.NodeUnavailableError: {"node_id": pb.node_id},
    }
    for klass in reversed(cls.__mro__):
        for name, value in defaults.get(klass, {}).items():
            setattr(exc, name, value)
    if txn is not None and "txn" not in exc.__dict__:
        exc.txn = txn  # type: ignore[attr-defined]
    exc.index = pb.index  # type: ignore[attr-defined]
    return exc
