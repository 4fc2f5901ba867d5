"""Builders for batches and an evaluation environment over one engine."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from crdb_py.kvserver.batcheval.command import Result
from crdb_py.kvserver.evaluate import declare_keys, evaluate_batch
from crdb_py.pb import api_pb2, data_pb2
from crdb_py.storage import Engine, MVCCStats
from crdb_py.util import keys
from crdb_py.util.hlc import Timestamp, ts_to_proto

RU = api_pb2.RequestUnion


def k(s: str) -> bytes:
    """A user key."""
    return keys.USER_KEY_MIN + s.encode()


def ts(wall: int, logical: int = 0) -> Timestamp:
    return Timestamp(wall, logical)


def get(key: bytes, seq: int = 0) -> RU:
    ru = RU()
    ru.get.header.key, ru.get.header.sequence = key, seq
    return ru


def scan(key: bytes, end: bytes, seq: int = 0) -> RU:
    ru = RU()
    h = ru.scan.header
    h.key, h.end_key, h.sequence = key, end, seq
    return ru


def rscan(key: bytes, end: bytes, seq: int = 0) -> RU:
    ru = RU()
    h = ru.reverse_scan.header
    h.key, h.end_key, h.sequence = key, end, seq
    return ru


def put(key: bytes, value: bytes, seq: int = 0) -> RU:
    ru = RU()
    ru.put.header.key, ru.put.header.sequence, ru.put.value = key, seq, value
    return ru


def cput(
    key: bytes, value: bytes, exp: bytes | None = None, *, allow: bool = False, seq: int = 0
) -> RU:
    ru = RU()
    r = ru.conditional_put
    r.header.key, r.header.sequence, r.value = key, seq, value
    if exp is not None:
        r.exp_value, r.exp_exists = exp, True
    r.allow_if_does_not_exist = allow
    return ru


def inc(key: bytes, n: int, seq: int = 0) -> RU:
    ru = RU()
    ru.increment.header.key, ru.increment.header.sequence, ru.increment.increment = key, seq, n
    return ru


def delete(key: bytes, seq: int = 0) -> RU:
    ru = RU()
    ru.delete.header.key, ru.delete.header.sequence = key, seq
    return ru


def delrange(key: bytes, end: bytes, *, return_keys: bool = True, seq: int = 0) -> RU:
    ru = RU()
    r = ru.delete_range
    r.header.key, r.header.end_key, r.header.sequence, r.return_keys = key, end, seq, return_keys
    return ru


def make_txn(
    read: Timestamp,
    write: Timestamp | None = None,
    *,
    anchor: bytes = b"\x04anchor",
    uncertainty: Timestamp | None = None,
    epoch: int = 0,
) -> data_pb2.Transaction:
    t = data_pb2.Transaction(name="t")
    t.meta.id = uuid.uuid4().bytes
    t.meta.key = anchor
    t.meta.epoch = epoch
    ts_to_proto(write or read, t.meta.write_timestamp)
    ts_to_proto(read, t.meta.min_timestamp)
    ts_to_proto(read, t.read_timestamp)
    if uncertainty is not None:
        ts_to_proto(uncertainty, t.global_uncertainty_limit)
    return t


def batch(
    *reqs: RU,
    at: Timestamp | None = None,
    txn: data_pb2.Transaction | None = None,
    max_keys: int = 0,
    target_bytes: int = 0,
    inconsistent: bool = False,
) -> api_pb2.BatchRequest:
    ba = api_pb2.BatchRequest()
    if at is not None:
        ts_to_proto(at, ba.header.timestamp)
    if txn is not None:
        ba.header.txn.CopyFrom(txn)
    ba.header.max_span_request_keys = max_keys
    ba.header.target_bytes = target_bytes
    if inconsistent:
        ba.header.read_consistency = api_pb2.INCONSISTENT
    ba.requests.extend(reqs)
    return ba


def inner(ru: api_pb2.ResponseUnion) -> object:
    return getattr(ru, ru.WhichOneof("value"))


def full_desc(range_id: int = 1) -> data_pb2.RangeDescriptor:
    return data_pb2.RangeDescriptor(range_id=range_id, start_key=keys.KEY_MIN, end_key=keys.KEY_MAX)


@dataclass
class Env:
    """One range over one engine: evaluates batches and applies their writes.

    Every evaluation runs with the declared-span assertion on, so each test
    also checks that the commands declare what they touch.
    """

    engine: Engine
    desc: data_pb2.RangeDescriptor = field(default_factory=full_desc)
    stats: MVCCStats = field(default_factory=MVCCStats)
    now: Timestamp = field(default_factory=lambda: Timestamp(1_000))

    def run(
        self, ba: api_pb2.BatchRequest, *, uncertainty_limit: Timestamp | None = None
    ) -> tuple[api_pb2.BatchResponse, Result]:
        """Evaluate `ba`; on success commit its writes and stats delta."""
        wb = self.engine.new_batch()
        delta = MVCCStats()
        br, res = evaluate_batch(
            wb,
            ba,
            desc=self.desc,
            now=self.now,
            stats=delta,
            uncertainty_limit=uncertainty_limit,
            assert_spans=declare_keys(self.desc, ba),
        )
        self.engine.write(wb)
        self.stats.add(delta)
        return br, res

    def one(self, ru: RU, **kw: object) -> object:
        """Evaluate a single request non-transactionally (or as `kw` says)
        and return its inner response."""
        uncertainty_limit = kw.pop("uncertainty_limit", None)
        if "at" not in kw and "txn" not in kw:
            kw["at"] = self.now
        br, _ = self.run(batch(ru, **kw), uncertainty_limit=uncertainty_limit)  # type: ignore[arg-type]
        return inner(br.responses[0])

    def write(self, key: bytes, value: bytes, at: Timestamp) -> None:
        self.run(batch(put(key, value), at=at))

    def value(self, key: bytes, at: Timestamp | None = None) -> bytes | None:
        r = self.one(get(key), at=at or Timestamp(10**15))
        return r.value.raw_bytes if r.HasField("value") else None  # type: ignore[attr-defined]
