"""Request builders for the transaction commands (see helpers.py for the rest)."""

from __future__ import annotations

from crdb_py.kvserver.batcheval import txn_record as tr
from crdb_py.pb import api_pb2, data_pb2
from crdb_py.storage import Engine
from crdb_py.util.hlc import Timestamp, ts_to_proto
from tests.kvserver.batcheval.helpers import RU

SECOND = 1_000_000_000


def heartbeat(txn: data_pb2.Transaction, now: Timestamp | None = None) -> RU:
    ru = RU()
    ru.heartbeat_txn.header.key = txn.meta.key
    if now is not None:
        ts_to_proto(now, ru.heartbeat_txn.now)
    return ru


def span(key: bytes, end: bytes = b"") -> data_pb2.Span:
    return data_pb2.Span(key=key, end_key=end)


def end_txn(
    txn: data_pb2.Transaction,
    *,
    commit: bool = True,
    locks: list[data_pb2.Span] | None = None,
    in_flight: list[tuple[bytes, int]] | None = None,
    deadline: Timestamp | None = None,
    require_1pc: bool = False,
) -> RU:
    ru = RU()
    r = ru.end_txn
    r.header.key = txn.meta.key
    r.commit = commit
    r.lock_spans.extend(locks or [])
    for k, s in in_flight or []:
        r.in_flight_writes.add(key=k, sequence=s)
    if deadline is not None:
        ts_to_proto(deadline, r.deadline)
    r.require_1pc = require_1pc
    return ru


def push(
    pushee: data_pb2.TxnMeta,
    *,
    pusher: data_pb2.Transaction | None = None,
    kind: int = api_pb2.PUSH_ABORT,
    to: Timestamp | None = None,
    force: bool = False,
) -> RU:
    ru = RU()
    r = ru.push_txn
    r.header.key = pushee.key
    r.pushee_txn.CopyFrom(pushee)
    if pusher is not None:
        r.pusher_txn.CopyFrom(pusher)
    r.push_type = kind  # type: ignore[assignment]
    if to is not None:
        ts_to_proto(to, r.push_to)
    r.force = force
    return ru


def query_txn(meta: data_pb2.TxnMeta) -> RU:
    ru = RU()
    ru.query_txn.header.key = meta.key
    ru.query_txn.txn.CopyFrom(meta)
    return ru


def query_intent(
    meta: data_pb2.TxnMeta,
    key: bytes,
    seq: int,
    *,
    at: Timestamp | None = None,
    error_if_missing: bool = False,
) -> RU:
    ru = RU()
    r = ru.query_intent
    r.header.key = key
    r.txn.CopyFrom(meta)
    r.txn.sequence = seq
    if at is not None:
        ts_to_proto(at, r.txn.write_timestamp)
    r.error_if_missing = error_if_missing
    return ru


def recover(meta: data_pb2.TxnMeta, implicitly_committed: bool) -> RU:
    ru = RU()
    ru.recover_txn.header.key = meta.key
    ru.recover_txn.txn.CopyFrom(meta)
    ru.recover_txn.implicitly_committed = implicitly_committed
    return ru


def resolve(
    key: bytes,
    meta: data_pb2.TxnMeta,
    status: int,
    *,
    end: bytes = b"",
    at: Timestamp | None = None,
) -> RU:
    ru = RU()
    r = ru.resolve_intent_range if end else ru.resolve_intent
    r.header.key, r.header.end_key = key, end
    r.intent_txn.CopyFrom(meta)
    if at is not None:
        ts_to_proto(at, r.intent_txn.write_timestamp)
    r.status = status  # type: ignore[assignment]
    return ru


def refresh(key: bytes, frm: Timestamp, end: bytes = b"") -> RU:
    ru = RU()
    r = ru.refresh_range if end else ru.refresh
    r.header.key, r.header.end_key = key, end
    ts_to_proto(frm, r.refresh_from)
    return ru


def record(engine: Engine, meta: data_pb2.TxnMeta) -> data_pb2.TransactionRecord | None:
    return tr.read_record(engine, meta)


def bumped(
    txn: data_pb2.Transaction, wts: Timestamp, read: Timestamp | None = None
) -> data_pb2.Transaction:
    """A copy of `txn` with its write (and read) timestamp moved."""
    out = data_pb2.Transaction()
    out.CopyFrom(txn)
    ts_to_proto(wts, out.meta.write_timestamp)
    if read is not None:
        ts_to_proto(read, out.read_timestamp)
    return out
