"""A fake multi-range world for the concurrency manager.

Each `FakeRange` has a `ConcurrencyManager`, a dict of intents, committed
values and txn records. `FakeCluster` is the `TxnPusher` seam: it routes
PushTxn / ResolveIntent / QueryTxn to the range that owns the key (by the
key's first byte) and evaluates PushTxn's rule the way `cmd_push_txn` does
(final → success; PUSH_TIMESTAMP already above → success; expired / force /
higher priority → push; else wait in the pushee range's txn wait queue and
retry, with `force` after DEADLOCK). `FakeTxn` plays a coordinator: it
writes intents through `sequence` / `handle_write_intent_error`, heartbeats
its record, commits or aborts and resolves its intents.

Everything runs on `crdb_py.sim.vloop` (virtual time), so timings are
deterministic and a "5 s" expiry costs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from crdb_py.kvserver.concurrency import ConcurrencyManager, PushWaitResult, Request
from crdb_py.kvserver.concurrency.txn_wait_queue import is_expired
from crdb_py.kvserver.spanset import SpanAccess, SpanSet
from crdb_py.pb import api_pb2, data_pb2
from crdb_py.util.errors import TransactionAbortedError, WriteIntentError
from crdb_py.util.hlc import HLC, Timestamp, ts_from_proto, ts_to_proto

FINAL = (data_pb2.COMMITTED, data_pb2.ABORTED)


def copy_txn(t: data_pb2.Transaction) -> data_pb2.Transaction:
    c = data_pb2.Transaction()
    c.CopyFrom(t)
    return c


@dataclass
class FakeRange:
    name: bytes
    mgr: ConcurrencyManager
    intents: dict[bytes, data_pb2.TxnMeta] = field(default_factory=dict)
    pending: dict[bytes, bytes] = field(default_factory=dict)
    values: dict[bytes, bytes] = field(default_factory=dict)
    records: dict[bytes, data_pb2.Transaction] = field(default_factory=dict)

    def record(self, meta: data_pb2.TxnMeta) -> data_pb2.Transaction:
        rec = self.records.get(meta.id)
        if rec is None:
            rec = data_pb2.Transaction(status=data_pb2.PENDING)
            rec.meta.CopyFrom(meta)
        return copy_txn(rec)

    def put_record(self, rec: data_pb2.Transaction) -> None:
        self.records[rec.meta.id] = copy_txn(rec)
        self.mgr.on_txn_record_updated(rec)


class FakeCluster:
    """The TxnPusher seam over several fake ranges (routing by first key byte)."""

    def __init__(self, names: bytes = b"abc", **mgr_kwargs: object) -> None:
        loop = asyncio.get_running_loop()
        self.clock = HLC(loop.physical_clock())  # type: ignore[attr-defined]
        self.ranges = {
            bytes([n]): FakeRange(bytes([n]), ConcurrencyManager(self, self.clock.now, **mgr_kwargs))  # type: ignore[arg-type]
            for n in names
        }
        self.push_calls: list[tuple[bytes | None, bytes, int, bool]] = []
        self.query_calls = 0
        self.resolve_calls = 0

    def route(self, key: bytes) -> FakeRange:
        return self.ranges[key[:1]]

    # ---- the TxnPusher seam ------------------------------------------------------

    async def push_txn(
        self,
        pusher: data_pb2.Transaction | None,
        pushee: data_pb2.TxnMeta,
        push_type: int,
        push_to: Timestamp,
        *,
        force: bool = False,
    ) -> data_pb2.Transaction:
        rng = self.route(pushee.key)
        req = api_pb2.PushTxnRequest(push_type=push_type, force=force)
        req.pushee_txn.CopyFrom(pushee)
        ts_to_proto(push_to, req.push_to)
        if pusher is not None:
            req.pusher_txn.CopyFrom(pusher)
        while True:
            await asyncio.sleep(0)  # a network hop
            self.push_calls.append(
                (pusher.meta.id if pusher else None, pushee.id, req.push_type, req.force)
            )
            rec = rng.record(pushee)
            if rec.status in FINAL:
                return rec
            if req.push_type == api_pb2.PUSH_TIMESTAMP and push_to <= ts_from_proto(
                rec.meta.write_timestamp
            ):
                return rec
            expired = is_expired(self.clock.now(), rec, rng.mgr.txn_wait_queue.liveness_threshold_nanos)
            pusher_prio = pusher.meta.priority if pusher is not None else 0
            if expired or req.force or pusher_prio > rec.meta.priority:
                if expired or req.push_type == api_pb2.PUSH_ABORT:
                    rec.status = data_pb2.ABORTED
                else:
                    ts_to_proto(push_to, rec.meta.write_timestamp)
                rng.put_record(rec)
                return rec
            res = await rng.mgr.wait_for_pushee(req, pusher, pushee_record=rec)
            if res is PushWaitResult.DEADLOCK:
                req.force = True
                req.push_type = api_pb2.PUSH_ABORT

    async def resolve_intent(self, update: data_pb2.LockUpdate) -> None:
        await asyncio.sleep(0)
        self.resolve_calls += 1
        self.apply_resolve(update)

    def apply_resolve(self, up: data_pb2.LockUpdate) -> None:
        """What a ResolveIntent does on the range, then the replica's call."""
        rng = self.route(up.span.key)
        key = up.span.key
        it = rng.intents.get(key)
        if it is not None and it.id == up.txn.id:
            if up.status == data_pb2.COMMITTED:
                rng.values[key] = rng.pending.pop(key)
                del rng.intents[key]
            elif up.status == data_pb2.ABORTED or up.txn.epoch > it.epoch:
                rng.pending.pop(key, None)
                del rng.intents[key]
            else:
                it.write_timestamp.CopyFrom(up.txn.write_timestamp)
        rng.mgr.on_lock_updated(up)

    async def query_txn(self, txn: data_pb2.TxnMeta) -> tuple[data_pb2.Transaction, list[bytes]]:
        await asyncio.sleep(0)
        self.query_calls += 1
        rng = self.route(txn.key)
        return rng.record(txn), rng.mgr.waiting_txns(txn.id)

    # ---- checks ----------------------------------------------------------------------

    def check_invariants(self) -> None:
        for rng in self.ranges.values():
            rng.mgr.lock_table.check_invariants()

    async def check_continuously(self, every: float = 0.005) -> None:
        """Run until cancelled, checking the lock tables' invariants."""
        while True:
            self.check_invariants()
            await asyncio.sleep(every)

    def assert_quiescent(self) -> None:
        """No latches, waiters, waiting pushes or lock-table garbage anywhere."""
        self.check_invariants()
        for rng in self.ranges.values():
            m = rng.mgr
            assert len(m.latches) == 0, f"latches left on {rng.name!r}"
            assert m.lock_table.waiter_count() == 0, f"lock waiters left on {rng.name!r}"
            assert len(m.txn_wait_queue) == 0, f"waiting pushes left on {rng.name!r}"
            for key in list(m.lock_table._locks):
                lock = m.lock_table._locks[key]
                assert lock.reservation is None, f"reservation left on {key!r}"


_ids = iter(range(1, 1 << 30))


class FakeTxn:
    """A coordinator: PENDING record on its anchor's range, heartbeats,
    intents, commit/abort with intent resolution."""

    def __init__(
        self, cluster: FakeCluster, anchor: bytes, *, priority: int = 1,
        tid: bytes | None = None, heartbeat: bool = True,
    ) -> None:
        self.c = cluster
        now = cluster.clock.now()
        t = data_pb2.Transaction(status=data_pb2.PENDING)
        t.meta.id = tid or next(_ids).to_bytes(4, "big")
        t.meta.key = anchor
        t.meta.priority = priority
        ts_to_proto(now, t.meta.write_timestamp)
        ts_to_proto(now, t.meta.min_timestamp)
        ts_to_proto(now, t.read_timestamp)
        ts_to_proto(now, t.last_heartbeat)
        self.txn = t
        self.keys: list[bytes] = []
        self.home = cluster.route(anchor)
        self.home.put_record(t)
        self._hb: asyncio.Task[None] | None = None
        if heartbeat:
            self._hb = asyncio.ensure_future(self._heartbeat())

    @property
    def id(self) -> bytes:
        return self.txn.meta.id

    @property
    def meta(self) -> data_pb2.TxnMeta:
        return self.txn.meta

    def status(self) -> int:
        return self.home.record(self.meta).status

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            rec = self.home.record(self.meta)
            if rec.status in FINAL:
                return
            ts_to_proto(self.c.clock.now(), rec.last_heartbeat)
            self.home.put_record(rec)

    def stop_heartbeat(self) -> None:
        if self._hb is not None:
            self._hb.cancel()

    def _request(self, key: bytes | list[bytes], write: bool) -> Request:
        ss, ls = SpanSet(), SpanSet()
        if write:
            for k in [key] if isinstance(key, bytes) else key:
                ss.add(SpanAccess.READ_WRITE, k, ts=ts_from_proto(self.meta.write_timestamp))
                ls.add(SpanAccess.READ_WRITE, k)
        else:
            rts = ts_from_proto(self.txn.read_timestamp)
            ss.add(SpanAccess.READ_ONLY, key, ts=rts)
            ls.add(SpanAccess.READ_ONLY, key, ts=rts)
        return Request(spans=ss, lock_spans=ls, txn=copy_txn(self.txn))

    async def write(self, key: bytes, value: bytes) -> None:
        await self.write_batch([key], value)

    async def write_batch(self, keys: list[bytes], value: bytes) -> None:
        """One batch writing `keys` (all on one range)."""
        rng = self.c.route(keys[0])
        g = await rng.mgr.sequence(self._request(keys, True))
        try:
            while True:
                conflicts = []
                for key in keys:
                    it = rng.intents.get(key)
                    if it is not None and it.id != self.id:
                        intent = data_pb2.Intent(key=key)
                        intent.txn.CopyFrom(it)
                        conflicts.append(intent)
                if conflicts:
                    g = await rng.mgr.handle_write_intent_error(g, WriteIntentError(conflicts))
                    continue
                if self.c.route(self.meta.key).record(self.meta).status == data_pb2.ABORTED:
                    raise TransactionAbortedError("ABORT_REASON_ABORTED_RECORD_FOUND")
                for key in keys:
                    meta = data_pb2.TxnMeta()
                    meta.CopyFrom(self.meta)
                    rng.intents[key] = meta
                    rng.pending[key] = value
                    self.keys.append(key)
                return
        finally:
            rng.mgr.finish(g)

    async def finish(self, commit: bool) -> int:
        """Commit (unless found aborted) or abort; resolve the intents.
        Returns the final status."""
        rec = self.home.record(self.meta)
        if rec.status == data_pb2.ABORTED:
            commit = False
        rec.status = data_pb2.COMMITTED if commit else data_pb2.ABORTED
        self.home.put_record(rec)
        self.stop_heartbeat()
        for key in self.keys:
            up = data_pb2.LockUpdate(status=rec.status)
            up.span.key = key
            up.txn.CopyFrom(rec.meta)
            await self.c.resolve_intent(up)
        return rec.status


async def read(
    cluster: FakeCluster, key: bytes, ts: Timestamp, txn: FakeTxn | None = None
) -> bytes | None:
    """A read at `ts` (of `txn`, or non-transactional): waits on intents at
    or below `ts`, returns the committed value."""
    rng = cluster.route(key)
    ss = SpanSet()
    ss.add(SpanAccess.READ_ONLY, key, ts=ts)
    req = Request(spans=ss, lock_spans=ss.copy(), txn=copy_txn(txn.txn) if txn else None)
    g = await rng.mgr.sequence(req)
    try:
        while True:
            it = rng.intents.get(key)
            if (
                it is not None
                and (txn is None or it.id != txn.id)
                and ts_from_proto(it.write_timestamp) <= ts
            ):
                intent = data_pb2.Intent(key=key)
                intent.txn.CopyFrom(it)
                g = await rng.mgr.handle_write_intent_error(g, WriteIntentError([intent]))
                continue
            return rng.values.get(key)
    finally:
        rng.mgr.finish(g)


async def cancel_and_wait(task: asyncio.Task[object]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
