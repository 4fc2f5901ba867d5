"""Hand-built transaction batches for scenario tests (not a coordinator).

The transaction scenarios (tests/sim/test_txn_sim.py on the simulator,
tests/txn/ on real node processes) drive the server half of the protocol
directly, so that each step — an intent laid down, a heartbeat missed, a
STAGING record written with one in-flight write still missing — is exactly
the step the scenario names, with no interceptor deciding for it. That is
what the M5 coordinator (`crdb_py/kvclient/txn/`) is *not* for.

`ScriptedTxn` keeps only the bookkeeping a test needs to build valid
requests: the `Transaction` proto (forwarded by every response), the next
sequence number, the keys written (lock spans) and the writes not yet
proven (in-flight writes, for a STAGING EndTxn). It never retries or pushes on
its own; the one thing it does unasked is what any coordinator must: a
commit whose writes were pushed above the read timestamp refreshes its
reads first (`commit(refresh=False)` sends it as is). `start_heartbeat()` runs the one background loop a
live coordinator has; stopping it (or never starting it) is how a scenario
"kills" a coordinator.

Free functions build the requests a *pusher or recoverer* sends (PushTxn,
QueryTxn, QueryIntent, ResolveIntent, Refresh), and `scan_intents` /
`intents_of` look straight into engines for leftover intents, the check
every scenario ends with.

Everything goes through a `Sender` (a DistSender: requests name keys, it
finds the ranges), which raises errors as `CrdbError`s.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterable
from typing import Any, Protocol

from crdb_py.pb import api_pb2, data_pb2
from crdb_py.storage import mvcc_scan_intents
from crdb_py.util.hlc import Timestamp, ts_from_proto, ts_to_proto

__all__ = [
    "ScriptedTxn",
    "Sender",
    "batch",
    "intents_of",
    "new_txn",
    "push_req",
    "query_intent_req",
    "query_txn",
    "query_txn_req",
    "refresh_req",
    "resolve_req",
    "scan_intents",
]

MAX_OFFSET_NANOS = 500_000_000
KEY_MAX = b"\xff\xff\xff\xff"


class Sender(Protocol):
    async def send(self, ba: api_pb2.BatchRequest) -> api_pb2.BatchResponse: ...


def new_txn(
    anchor: bytes,
    now: Timestamp,
    *,
    priority: int = 1,
    name: str = "scripted",
    max_offset_nanos: int = MAX_OFFSET_NANOS,
    txn_id: bytes | None = None,
) -> data_pb2.Transaction:
    """A fresh PENDING txn at `now` whose record will live next to `anchor`.
    Pass `txn_id` (16 bytes from a seeded rng) for reproducible runs: the
    deadlock breaker orders txns by (priority, id)."""
    t = data_pb2.Transaction(name=name, status=data_pb2.PENDING)
    t.meta.id = txn_id if txn_id is not None else os.urandom(16)
    t.meta.key = anchor
    t.meta.priority = priority
    for f in (t.meta.write_timestamp, t.meta.min_timestamp, t.read_timestamp):
        ts_to_proto(now, f)
    ts_to_proto(now.add(max_offset_nanos), t.global_uncertainty_limit)
    return t


def batch(
    txn: data_pb2.Transaction | None, *reqs: api_pb2.RequestUnion
) -> api_pb2.BatchRequest:
    ba = api_pb2.BatchRequest()
    if txn is not None:
        ba.header.txn.CopyFrom(txn)
    ba.requests.extend(reqs)
    return ba


class ScriptedTxn:
    """One transaction driven request by request (see module docstring)."""

    def __init__(self, sender: Sender, txn: data_pb2.Transaction) -> None:
        self.sender = sender
        self.txn = txn
        self.seq = 0
        self.locks: list[bytes] = []  # keys written, in order
        self.in_flight: list[tuple[bytes, int]] = []  # writes sent, not proven
        self.read_spans: list[tuple[bytes, bytes]] = []  # (key, end) read, for refresh
        self.heartbeats = 0
        self._hb: asyncio.Task[None] | None = None

    @classmethod
    def begin(
        cls,
        sender: Sender,
        anchor: bytes,
        now: Timestamp,
        *,
        priority: int = 1,
        name: str = "",
        txn_id: bytes | None = None,
    ) -> ScriptedTxn:
        return cls(
            sender, new_txn(anchor, now, priority=priority, name=name or "scripted", txn_id=txn_id)
        )

    # ---- identity -------------------------------------------------------------------

    @property
    def id(self) -> bytes:
        return self.txn.meta.id

    @property
    def meta(self) -> data_pb2.TxnMeta:
        return self.txn.meta

    @property
    def write_ts(self) -> Timestamp:
        return ts_from_proto(self.txn.meta.write_timestamp)

    @property
    def read_ts(self) -> Timestamp:
        return ts_from_proto(self.txn.read_timestamp)

    # ---- request builders ---------------------------------------------------------

    def put_req(self, key: bytes, value: bytes) -> api_pb2.RequestUnion:
        """A Put at the next sequence; remembered as a lock and an in-flight write."""
        self.seq += 1
        ru = api_pb2.RequestUnion()
        ru.put.header.key = key
        ru.put.header.sequence = self.seq
        ru.put.value = value
        if key not in self.locks:
            self.locks.append(key)
        self.in_flight.append((key, self.seq))
        return ru

    def get_req(self, key: bytes) -> api_pb2.RequestUnion:
        ru = api_pb2.RequestUnion()
        ru.get.header.key = key
        ru.get.header.sequence = self.seq
        self.read_spans.append((key, b""))
        return ru

    def scan_req(self, start: bytes, end: bytes) -> api_pb2.RequestUnion:
        ru = api_pb2.RequestUnion()
        ru.scan.header.key, ru.scan.header.end_key = start, end
        ru.scan.header.sequence = self.seq
        self.read_spans.append((start, end))
        return ru

    def heartbeat_req(self) -> api_pb2.RequestUnion:
        ru = api_pb2.RequestUnion()
        ru.heartbeat_txn.header.key = self.txn.meta.key
        return ru

    def end_txn_req(
        self,
        *,
        commit: bool = True,
        in_flight: Iterable[tuple[bytes, int]] | None = None,
        locks: Iterable[bytes] | None = None,
    ) -> api_pb2.RequestUnion:
        """EndTxn. A commit with `in_flight` writes asks for STAGING."""
        ru = api_pb2.RequestUnion()
        r = ru.end_txn
        r.header.key = self.txn.meta.key
        r.commit = commit
        for k in self.locks if locks is None else locks:
            r.lock_spans.add(key=k)
        for k, s in in_flight or ():
            r.in_flight_writes.add(key=k, sequence=s)
        return ru

    # ---- sending ------------------------------------------------------------------

    async def send(
        self, *reqs: api_pb2.RequestUnion, async_consensus: bool = False
    ) -> api_pb2.BatchResponse:
        ba = batch(self.txn, *reqs)
        ba.header.async_consensus = async_consensus
        br = await self.sender.send(ba)
        self._absorb(br.header.txn)
        return br

    def _absorb(self, t: data_pb2.Transaction) -> None:
        """Take the server's view of the txn: status and timestamps only move forward."""
        if not t.meta.id or t.meta.id != self.txn.meta.id:
            return
        if ts_from_proto(t.meta.write_timestamp) > self.write_ts:
            self.txn.meta.write_timestamp.CopyFrom(t.meta.write_timestamp)
        if t.status != data_pb2.PENDING:
            self.txn.status = t.status

    async def put(self, key: bytes, value: bytes) -> None:
        await self.send(self.put_req(key, value))

    async def get(self, key: bytes) -> bytes | None:
        br = await self.send(self.get_req(key))
        g = br.responses[0].get
        return g.value.raw_bytes if g.HasField("value") else None

    async def scan(self, start: bytes, end: bytes) -> list[tuple[bytes, bytes]]:
        br = await self.send(self.scan_req(start, end))
        return [(kv.key, kv.value.raw_bytes) for kv in br.responses[0].scan.rows]

    async def heartbeat(self) -> data_pb2.Transaction:
        """HeartbeatTxn; returns (and absorbs) the record as the server has it."""
        br = await self.send(self.heartbeat_req())
        rec = br.responses[0].heartbeat_txn.txn
        self._absorb(rec)
        self.heartbeats += 1
        return rec

    async def commit(self, *, refresh: bool = True) -> data_pb2.Transaction:
        """EndTxn(commit) naming every lock; returns the txn as the server left it.
        If a write was pushed (write ts > read ts, e.g. by the timestamp cache
        of a new lease) the reads are refreshed first, as a coordinator's span
        refresher would (`refresh=False` to send the commit as is)."""
        if refresh:
            await self._refresh_if_pushed()
        br = await self.send(self.end_txn_req(commit=True))
        return br.header.txn

    async def _refresh_if_pushed(self) -> None:
        if self.write_ts > self.read_ts:
            await self.refresh()

    async def rollback(self) -> data_pb2.Transaction:
        br = await self.send(self.end_txn_req(commit=False))
        return br.header.txn

    async def stage(self, in_flight: Iterable[tuple[bytes, int]] | None = None) -> data_pb2.Transaction:
        """EndTxn(commit) with in-flight writes: the record goes STAGING."""
        writes = list(self.in_flight if in_flight is None else in_flight)
        if not writes:
            raise ValueError("a STAGING commit needs at least one in-flight write")
        await self._refresh_if_pushed()
        br = await self.send(self.end_txn_req(commit=True, in_flight=writes))
        return br.header.txn

    async def refresh(self, to: Timestamp | None = None) -> None:
        """Refresh every read span from the read ts to `to` (default: the
        write ts) and, if that succeeds, move the read ts there."""
        target = self.write_ts if to is None else to
        frm = self.read_ts
        reqs = [refresh_req(k, frm, e) for k, e in self.read_spans]
        if reqs:
            probe = data_pb2.Transaction()
            probe.CopyFrom(self.txn)
            ts_to_proto(target, probe.read_timestamp)
            ts_to_proto(target, probe.meta.write_timestamp)
            await self.sender.send(batch(probe, *reqs))
        ts_to_proto(target, self.txn.read_timestamp)
        self.txn.meta.write_timestamp.CopyFrom(self.txn.read_timestamp)

    # ---- heartbeat loop ----------------------------------------------------------

    def start_heartbeat(self, interval: float = 1.0) -> None:
        """Heartbeat every `interval` seconds until stopped or the txn is final.
        Errors are ignored (a live coordinator keeps trying)."""
        if self._hb is not None:
            return

        async def loop() -> None:
            while self.txn.status in (data_pb2.PENDING, data_pb2.STAGING):
                with contextlib.suppress(Exception):
                    await self.heartbeat()
                await asyncio.sleep(interval)

        self._hb = asyncio.ensure_future(loop())

    async def stop_heartbeat(self) -> None:
        """Stop the loop (the coordinator dies or finishes)."""
        hb, self._hb = self._hb, None
        if hb is not None:
            hb.cancel()
            with contextlib.suppress(BaseException):
                await hb


# ---- requests a pusher / recoverer / checker sends ----------------------------------------


def push_req(
    pushee: data_pb2.TxnMeta,
    push_type: int,
    *,
    pusher: data_pb2.Transaction | None = None,
    push_to: Timestamp | None = None,
    force: bool = False,
) -> api_pb2.RequestUnion:
    ru = api_pb2.RequestUnion()
    r = ru.push_txn
    r.header.key = pushee.key
    r.pushee_txn.CopyFrom(pushee)
    if pusher is not None:
        r.pusher_txn.CopyFrom(pusher)
    r.push_type = push_type  # type: ignore[assignment]
    if push_to is not None:
        ts_to_proto(push_to, r.push_to)
    r.force = force
    return ru


def query_txn_req(meta: data_pb2.TxnMeta) -> api_pb2.RequestUnion:
    ru = api_pb2.RequestUnion()
    ru.query_txn.header.key = meta.key
    ru.query_txn.txn.CopyFrom(meta)
    return ru


async def query_txn(sender: Sender, meta: data_pb2.TxnMeta) -> tuple[data_pb2.Transaction, bool]:
    """(the txn as its record says, whether the record exists)."""
    br = await sender.send(batch(None, query_txn_req(meta)))
    r = br.responses[0].query_txn
    return r.queried_txn, r.txn_record_exists


def query_intent_req(
    meta: data_pb2.TxnMeta, key: bytes, seq: int, *, error_if_missing: bool = False
) -> api_pb2.RequestUnion:
    ru = api_pb2.RequestUnion()
    r = ru.query_intent
    r.header.key = key
    r.txn.CopyFrom(meta)
    r.txn.sequence = seq
    r.error_if_missing = error_if_missing
    return ru


def resolve_req(
    key: bytes, meta: data_pb2.TxnMeta, status: int, *, end: bytes = b""
) -> api_pb2.RequestUnion:
    ru = api_pb2.RequestUnion()
    r = ru.resolve_intent_range if end else ru.resolve_intent
    r.header.key, r.header.end_key = key, end
    r.intent_txn.CopyFrom(meta)
    r.status = status  # type: ignore[assignment]
    return ru


def refresh_req(key: bytes, frm: Timestamp, end: bytes = b"") -> api_pb2.RequestUnion:
    ru = api_pb2.RequestUnion()
    r = ru.refresh_range if end else ru.refresh
    r.header.key, r.header.end_key = key, end
    ts_to_proto(frm, r.refresh_from)
    return ru


# ---- looking into engines -------------------------------------------------------------------


def scan_intents(engine: Any, start: bytes = b"", end: bytes = KEY_MAX) -> list[tuple[bytes, bytes]]:
    """(key, owner txn id) of every intent in [start, end) of one engine."""
    return [(k, md.txn.id) for k, md in mvcc_scan_intents(engine, start, end)]


def intents_of(engines: dict[int, Any], txn_ids: Iterable[bytes] | None = None) -> list[tuple[int, bytes]]:
    """(node, key) of every intent on any engine, optionally only those of `txn_ids`."""
    ids = None if txn_ids is None else set(txn_ids)
    return [
        (n, k)
        for n, eng in sorted(engines.items())
        for k, tid in scan_intents(eng)
        if ids is None or tid in ids
    ]
