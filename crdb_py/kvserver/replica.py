"""A replica: one store's copy of one range, and its Raft group member.

The replica is where a request meets consensus. On the leaseholder a batch
goes through these steps (`Replica.send`):

1. **lease** — only the holder of a valid lease serves (`_ensure_lease`);
   the Raft leader acquires it when nobody holds it (see `lease.py`); others
   answer `NotLeaseHolderError` with a hint;
2. **timestamp** — a non-transactional batch gets the leaseholder's clock;
3. **latches** over the declared spans serialize overlapping requests;
4. **evaluation** — reads run against the engine and are recorded in the
   timestamp cache; writes are first pushed above any recorded read, then
   evaluated into a write batch (`evaluate.evaluate_batch`);
5. **proposal** — a write batch is wrapped in a `RaftCommand` with the
   proposer's lease sequence and a fresh max lease index, proposed, and the
   request waits until the command *applies* locally (or returns right after
   proposing when the batch asks for async consensus);
6. latches are released.

Apply (`apply_committed`) runs on every replica for every committed entry,
inside the store's scheduler turn: it checks the command against the lease
and the lease applied index (so stale or duplicate proposals never apply),
writes the batch and the new applied state in one engine batch, and handles
the replicated side effects (lease changes, splits, descriptor changes).
See docs/design/replication.md.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

import msgpack

from crdb_py.kvserver import abortspan, evaluate, gcthreshold
from crdb_py.kvserver.batcheval.command import Result, lookup
from crdb_py.kvserver.concurrency.manager import ConcurrencyManager, request_from_batch
from crdb_py.kvserver.concurrency.txn_wait_queue import PushWaitResult
from crdb_py.kvserver.lease import (
    LeaseState,
    check_lease_request,
    lease_state,
    make_lease,
    owned_by,
)
from crdb_py.kvserver.raftcmd import AppliedState, RaftCommand
from crdb_py.kvserver.spanlatch import LatchManager
from crdb_py.kvserver.tscache import TimestampCache
from crdb_py.pb import api_pb2, data_pb2
from crdb_py.raft import (
    ConfChange,
    ConfChangeType,
    Config,
    Entry,
    EntryType,
    ProposalDroppedError,
    RawNode,
    Snapshot,
    SnapshotMetadata,
    StateType,
    decode_conf_change,
)
from crdb_py.raft.durable import DurableStorage
from crdb_py.storage import MVCCStats, compute_stats, mvcc_get, mvcc_put
from crdb_py.storage.batch import decode_repr
from crdb_py.storage.mvcc_key import span_bounds
from crdb_py.util import failpoints, keys
from crdb_py.util.errors import (
    AmbiguousResultError,
    CrdbError,
    InternalError,
    InvalidArgumentError,
    NotLeaseHolderError,
    RangeKeyMismatchError,
    RangeNotFoundError,
    TransactionPushError,
    WriteIntentError,
    WriteTooOldError,
)
from crdb_py.util.hlc import Timestamp, ts_from_proto, ts_to_proto

if TYPE_CHECKING:
    from crdb_py.kvserver.store import Store

log = logging.getLogger(__name__)

# Raft log index/term of a range created by bootstrap or a split.
RAFT_INITIAL_LOG_INDEX = 10
RAFT_INITIAL_LOG_TERM = 5
ZERO_TS = Timestamp(0, 0)
ADMIN_KINDS = frozenset({"admin_split", "admin_transfer_lease"})
# Writes whose timestamp is not pushed by the timestamp cache: they do not
# write MVCC values at the batch timestamp.
_NO_TSCACHE_PUSH = frozenset({
    "heartbeat_txn", "end_txn", "push_txn", "recover_txn", "resolve_intent",
    "resolve_intent_range", "gc",
})


def _single_push(ba: api_pb2.BatchRequest) -> api_pb2.PushTxnRequest | None:
    if len(ba.requests) == 1 and ba.requests[0].WhichOneof("value") == "push_txn":
        return ba.requests[0].push_txn
    return None


def _forced_push(ba: api_pb2.BatchRequest) -> api_pb2.BatchRequest:
    out = api_pb2.BatchRequest()
    out.CopyFrom(ba)
    p = out.requests[0].push_txn
    p.force = True
    p.push_type = api_pb2.PUSH_ABORT
    return out


class _Reproposal(CrdbError):
    """Internal: the command was rejected at apply by the lease-index check and
    will never apply; the request is evaluated again."""

    retryable = True


@dataclass(slots=True)
class Proposal:
    cmd: RaftCommand
    data: bytes
    fut: asyncio.Future[None]
    proposed_at: int  # replica tick
    conf_change: ConfChange | None = None


def range_data_spans(desc: data_pb2.RangeDescriptor) -> list[tuple[bytes, bytes]]:
    """The logical key spans holding a range's replicated MVCC data: its
    addressable keys and its range-local keys (txn records, descriptor)."""
    start = max(desc.start_key, keys.LOCAL_MAX)
    return [(start, desc.end_key), keys.range_local_span(desc.start_key, desc.end_key)]


def range_engine_spans(desc: data_pb2.RangeDescriptor) -> list[tuple[bytes, bytes]]:
    """Engine spans a snapshot ships: the MVCC data, the abort span and the
    GC thresholds."""
    return [
        *(span_bounds(s, e) for s, e in range_data_spans(desc)),
        abortspan.engine_span(desc.range_id),
        *gcthreshold.engine_spans(desc.range_id),
    ]



def compute_range_stats(reader: object, desc: data_pb2.RangeDescriptor) -> MVCCStats:
    ms = MVCCStats()
    for s, e in range_data_spans(desc):
        ms.add(compute_stats(reader, s, e))  # type: ignore[arg-type]
    return ms


def write_descriptor(rw: object, desc: data_pb2.RangeDescriptor, stats: MVCCStats | None) -> None:
    mvcc_put(rw, keys.range_descriptor_key(desc.start_key), ZERO_TS,  # type: ignore[arg-type]
             desc.SerializeToString(), stats=stats)


def replica_for_node(desc: data_pb2.RangeDescriptor, store_id: int) -> data_pb2.ReplicaDescriptor | None:
    for r in desc.replicas:
        if r.store_id == store_id:
            return r
    return None


def write_initial_range_state(
    batch: object,
    engine: object,
    desc: data_pb2.RangeDescriptor,
    stats: MVCCStats,
    lease: data_pb2.Lease | None,
    hard_state_term: int = RAFT_INITIAL_LOG_TERM,
    hard_state_vote: int = 0,
) -> None:
    """Raft and applied state of a range born at index 10 (bootstrap, split)."""
    from crdb_py.raft import ConfState, HardState

    rid = desc.range_id
    cs = ConfState(
        voters=tuple(r.replica_id for r in desc.replicas if r.type == data_pb2.VOTER_FULL),
        learners=tuple(r.replica_id for r in desc.replicas if r.type == data_pb2.LEARNER),
    )
    tmp = DurableStorage(engine, rid)
    tmp.save(
        snapshot=Snapshot(metadata=SnapshotMetadata(cs, RAFT_INITIAL_LOG_INDEX, RAFT_INITIAL_LOG_TERM)),
        hard_state=HardState(term=max(hard_state_term, RAFT_INITIAL_LOG_TERM), vote=hard_state_vote,
                             commit=RAFT_INITIAL_LOG_INDEX),
        batch=batch,
    )
    st = AppliedState(RAFT_INITIAL_LOG_INDEX, 0, stats.counters())
    batch.put(keys.range_applied_state_key(rid), st.encode())  # type: ignore[attr-defined]
    if lease is not None:
        batch.put(keys.range_lease_key(rid), lease.SerializeToString())  # type: ignore[attr-defined]


class ReplicaRaftStorage(DurableStorage):
    """The raft log storage of a replica; snapshots are the range's data at
    the applied index, produced on demand."""

    __slots__ = ("_snap_cache", "replica")

    def __init__(self, engine: object, range_id: int, replica: Replica) -> None:
        super().__init__(engine, range_id)
        self.replica = replica
        self._snap_cache: Snapshot | None = None

    def snapshot(self) -> Snapshot:
        r = self.replica
        idx = r.applied.raft_applied_index
        if self._snap_cache is not None and self._snap_cache.metadata.index == idx:
            return self._snap_cache
        if r.desc is None:
            return super().snapshot()
        snap = Snapshot(
            data=r.snapshot_data(),
            metadata=SnapshotMetadata(self.conf_state(), idx, self.term(idx)),
        )
        self._snap_cache = snap
        return snap


class Replica:
    """One store's replica of one range (see module docstring)."""

    def __init__(self, store: Store, range_id: int, replica_id: int) -> None:
        self.store = store
        self.range_id = range_id
        self.replica_id = replica_id
        eng = store.engine
        self.desc: data_pb2.RangeDescriptor | None = None
        v = eng.get(keys.range_applied_state_key(range_id))
        self.applied = AppliedState.decode(v) if v is not None else AppliedState()
        v = eng.get(keys.range_lease_key(range_id))
        self.lease: data_pb2.Lease | None = data_pb2.Lease.FromString(v) if v is not None else None
        self.stats = MVCCStats(**self.applied.stats) if self.applied.stats else MVCCStats()
        # Replicated; mirrored here from the engine, updated at apply.
        self.gc_threshold, self.txn_span_gc_threshold = gcthreshold.load(eng, range_id)
        self.raft_storage = ReplicaRaftStorage(eng, range_id, self)
        cfg = store.config
        self.raw_node = RawNode(
            Config(
                replica_id,
                rng=random.Random((store.config.node_id << 32) ^ range_id),
                election_tick=cfg.raft_election_ticks,
                heartbeat_tick=cfg.raft_heartbeat_ticks,
                applied=self.applied.raft_applied_index,
                check_quorum=True,
                pre_vote=True,
            ),
            self.raft_storage,
        )
        self.latches = LatchManager()
        self.concurrency = ConcurrencyManager(store.pusher, store.clock.now, latches=self.latches)
        self.tscache = TimestampCache(store.clock.now())
        self.proposals: dict[bytes, Proposal] = {}
        self.next_mli = self.applied.lease_applied_index
        self.pending_lease: asyncio.Future[None] | None = None
        self.transferring_to: int = 0
        self.ticks = 0
        self.replica_nodes: dict[int, int] = {}  # replica id -> node id, learned from traffic
        self.destroyed = False
        self.splitting = False
        self.changing_replicas = False

    # ---- identity -------------------------------------------------------------

    def __repr__(self) -> str:
        return f"r{self.range_id}/{self.replica_id}@n{self.store.config.node_id}"

    @property
    def initialized(self) -> bool:
        return self.desc is not None

    def set_desc(self, desc: data_pb2.RangeDescriptor) -> None:
        self.desc = desc
        for r in desc.replicas:
            self.replica_nodes[r.replica_id] = r.node_id

    def replica_descriptor(self) -> data_pb2.ReplicaDescriptor:
        assert self.desc is not None
        for r in self.desc.replicas:
            if r.replica_id == self.replica_id:
                return r
        raise InternalError(f"{self}: not in its own descriptor {self.desc}")

    def node_of(self, replica_id: int) -> int:
        return self.replica_nodes.get(replica_id, 0)

    def is_leader(self) -> bool:
        return self.raw_node.state == StateType.LEADER

    def owns_valid_lease(self, now: Timestamp | None = None) -> bool:
        if now is None:
            now = self.store.clock.now()
        return (
            owned_by(self.lease, self.replica_id)
            and not self.transferring_to
            and lease_state(self.lease, now, self.store.clock.max_offset_nanos) == LeaseState.VALID
        )

    def key_in_range(self, key: bytes) -> bool:
        d = self.desc
        return d is not None and d.start_key <= keys.addr(key) < d.end_key

    # ---- the request path -------------------------------------------------------

    async def send(self, ba: api_pb2.BatchRequest) -> api_pb2.BatchResponse:
        if self.desc is None or self.destroyed:
            raise RangeNotFoundError(self.range_id)
        if ba.requests and ba.requests[0].WhichOneof("value") in ADMIN_KINDS:
            return await self._admin(ba)
        is_write, _read_only, _ = evaluate.batch_flags(ba)
        await self._ensure_lease()
        ba = self._assign_timestamp(ba)
        cm = self.concurrency
        spans = evaluate.declare_keys(self.desc, ba)
        creq = request_from_batch(ba, spans)
        g = await cm.sequence(creq)
        waits = 0  # txn-wait-queue round trips of a failing push
        try:
            while True:
                try:
                    await self._ensure_lease()
                    if not is_write:
                        return self._eval_read(ba)
                    br, pending = await self._eval_write(ba)
                    if pending is not None and not pending.done():
                        # Async consensus (a pipelined write): the client has
                        # its answer, but the latches stay until the command
                        # applies — a later QueryIntent or a recovery must not
                        # evaluate before the intent exists.
                        held, g = g, None
                        pending.add_done_callback(lambda _f, held=held: cm.finish(held))
                    return br
                except WriteIntentError as e:
                    g = await cm.handle_write_intent_error(g, e)
                except TransactionPushError as e:
                    push = _single_push(ba)
                    if push is None or push.push_type == api_pb2.PUSH_TOUCH:
                        raise
                    # Wait in the pushee's txn wait queue, without latches. The
                    # queue may forward the pushee's meta in the request: our copy.
                    cm.finish(g)
                    g = None
                    own = api_pb2.BatchRequest()
                    own.CopyFrom(ba)
                    ba, push = own, own.requests[0].push_txn
                    pusher = push.pusher_txn if push.HasField("pusher_txn") else None
                    res = await cm.wait_for_pushee(push, pusher, pushee_record=e.pushee)
                    if res == PushWaitResult.DEADLOCK:
                        ba = _forced_push(ba)
                    waits += 1
                    if waits > 3:  # never spin: a push that keeps failing backs off
                        await asyncio.sleep(min(0.5, 0.005 * 2 ** min(waits, 10)))
                    g = await cm.sequence(creq)
        finally:
            if g is not None:
                cm.finish(g)

    def _assign_timestamp(self, ba: api_pb2.BatchRequest) -> api_pb2.BatchRequest:
        h = ba.header
        if h.HasField("txn"):
            return ba
        if h.timestamp.wall_time == 0 and h.timestamp.logical == 0:
            out = api_pb2.BatchRequest()
            out.CopyFrom(ba)
            ts_to_proto(self.store.clock.now(), out.header.timestamp)
            return out
        return ba

    def _extras(self) -> dict[str, object]:
        return {"waiting_txns": self.concurrency.waiting_txns}

    def _apply_tscache_bumps(self, bumps: list) -> None:
        for key, end_key, ts in bumps:
            self.tscache.add(key, end_key or None, ts, None)

    def _record_reads(self, ba: api_pb2.BatchRequest) -> None:
        h = ba.header
        txn_id = h.txn.meta.id if h.HasField("txn") else None
        ts = ts_from_proto(h.txn.read_timestamp if h.HasField("txn") else h.timestamp)
        for ru in ba.requests:
            kind = ru.WhichOneof("value")
            if not lookup(kind).updates_tscache:
                continue
            req = getattr(ru, kind)
            self.tscache.add(req.header.key, req.header.end_key or None, ts, txn_id)

    def check_gc_threshold(self, ba: api_pb2.BatchRequest) -> None:
        """Refuse a batch that would read or write at or below the GC
        threshold (`BatchTimestampBeforeGCError`): the history it needs may
        be gone. Runs synchronously with evaluation, so a GC applying in
        between cannot slip under it."""
        gcthreshold.check_batch(ba, self.gc_threshold, self.range_id)

    def _eval_read(self, ba: api_pb2.BatchRequest) -> api_pb2.BatchResponse:
        assert self.desc is not None
        self.check_gc_threshold(ba)
        now = self.store.clock.now()
        try:
            br, res = evaluate.evaluate_batch(
                self.store.engine, ba, desc=self.desc, now=now, stats=MVCCStats(),
                tscache=self.tscache, extras=self._extras(),
            )
        except CrdbError as e:
            self._apply_tscache_bumps(getattr(e, "tscache_bumps", None) or [])
            raise
        self._apply_tscache_bumps(res.tscache_bumps)
        self._record_reads(ba)
        if res.encountered_intents and self.store.intent_resolver is not None:
            self.store.intent_resolver.cleanup_intents(
                res.encountered_intents, self.store.pusher, self.store.clock.now()
            )
        h = ba.header
        br.header.timestamp.CopyFrom(h.timestamp)
        if h.HasField("txn") and not br.header.HasField("txn"):
            br.header.txn.CopyFrom(h.txn)
        return br

    def _push_write_ts(self, ba: api_pb2.BatchRequest, ts: Timestamp, txn_id: bytes | None) -> Timestamp:
        for ru in ba.requests:
            kind = ru.WhichOneof("value")
            if not lookup(kind).is_write or kind in _NO_TSCACHE_PUSH:
                continue
            req = getattr(ru, kind)
            ts = self.tscache.push_write_ts(req.header.key, req.header.end_key or None, ts, txn_id)
        return ts

    async def _eval_write(
        self, ba: api_pb2.BatchRequest
    ) -> tuple[api_pb2.BatchResponse, asyncio.Future[None] | None]:
        """Evaluate and propose a write batch; returns the response and, for
        async consensus, the future of the command's application."""
        assert self.desc is not None
        h = ba.header
        is_txn = h.HasField("txn")
        for _attempt in range(20):
            work = api_pb2.BatchRequest()
            work.CopyFrom(ba)
            wh = work.header
            if is_txn:
                wts = ts_from_proto(wh.txn.meta.write_timestamp)
                pushed = self._push_write_ts(work, wts, wh.txn.meta.id)
                if pushed != wts:
                    ts_to_proto(pushed, wh.txn.meta.write_timestamp)
            else:
                ts = self._push_write_ts(work, ts_from_proto(wh.timestamp), None)
                ts_to_proto(ts, wh.timestamp)
            self.check_gc_threshold(work)
            batch = self.store.engine.new_batch()
            delta = MVCCStats()
            try:
                br, res = evaluate.evaluate_batch(
                    batch, work, desc=self.desc, now=self.store.clock.now(), stats=delta,
                    tscache=self.tscache, extras=self._extras(),
                )
            except WriteTooOldError as e:
                self._apply_tscache_bumps(getattr(e, "tscache_bumps", None) or [])
                if is_txn:
                    raise
                # A non-transactional write simply moves above the newer value.
                ba = api_pb2.BatchRequest()
                ba.CopyFrom(work)
                ts_to_proto(e.actual_timestamp, ba.header.timestamp)
                continue
            except CrdbError as e:
                self._apply_tscache_bumps(getattr(e, "tscache_bumps", None) or [])
                raise
            self._apply_tscache_bumps(res.tscache_bumps)
            self._record_reads(work)
            if batch.count() == 0 and not res.updated_txn:
                # Nothing to replicate (e.g. a push that found nothing to do,
                # a rollback of an already aborted txn): the local side
                # effects (intents to resolve elsewhere) still happen.
                done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                done.set_result(None)
                self._after_apply(done, res)
                return self._finish_write_response(br, work, res), None
            cmd = RaftCommand(
                id=os.urandom(8),
                proposer_lease_seq=self.lease.sequence if self.lease is not None else 0,
                write_batch=batch.repr() if batch.count() else b"",
                stats_delta={k: v for k, v in delta.counters().items() if v},
            )
            if res.gc_threshold is not None:
                cmd.gc_threshold = (res.gc_threshold.wall_time, res.gc_threshold.logical)
            if res.txn_span_gc_threshold is not None:
                t = res.txn_span_gc_threshold
                cmd.txn_span_gc_threshold = (t.wall_time, t.logical)
            fut = self.propose(cmd)
            fut.add_done_callback(lambda f, res=res: self._after_apply(f, res))
            if failpoints._armed:  # proposed, not yet applied or acknowledged
                await failpoints.hit("kvserver.replica.after_propose")
            try:
                await self._wait(fut, wait=not h.async_consensus)
            except _Reproposal:
                continue
            if failpoints._armed and res.updated_txn is not None and res.updated_txn.status == data_pb2.STAGING:
                await failpoints.hit("kvserver.end_txn.after_staging_applied")
            return self._finish_write_response(br, work, res), (fut if h.async_consensus else None)
        raise AmbiguousResultError(f"{self}: command could not be applied after repeated reproposals")

    def _finish_write_response(self, br: api_pb2.BatchResponse, work: api_pb2.BatchRequest, res: Result) -> api_pb2.BatchResponse:
        wh = work.header
        br.header.timestamp.CopyFrom(wh.timestamp)
        if wh.HasField("txn") and not br.header.HasField("txn"):
            br.header.txn.CopyFrom(wh.txn)
        return br

    def _after_apply(self, fut: asyncio.Future[None], res: Result) -> None:
        """Local side effects of an applied command (leaseholder only)."""
        if fut.cancelled() or fut.exception() is not None:
            return
        cm = self.concurrency
        for up in res.resolved_locks:
            cm.on_lock_updated(up)
        if res.updated_txn is not None:
            cm.on_txn_record_updated(res.updated_txn)
        if res.resolve_intents and self.store.intent_resolver is not None:
            self.store.intent_resolver.enqueue(res.resolve_intents)

    # ---- proposals --------------------------------------------------------------

    def propose(self, cmd: RaftCommand, conf_change: ConfChange | None = None) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not cmd.is_lease_request:
            self.next_mli = max(self.next_mli, self.applied.lease_applied_index) + 1
            cmd.max_lease_index = self.next_mli
        data = cmd.encode()
        if conf_change is not None:
            conf_change = ConfChange(conf_change.type, conf_change.node_id, data)
        p = Proposal(cmd, data, fut, self.ticks, conf_change)
        self.proposals[cmd.id] = p
        self._submit(p)
        self.store.enqueue(self)
        return fut

    def _submit(self, p: Proposal) -> None:
        try:
            if p.conf_change is not None:
                self.raw_node.propose_conf_change(p.conf_change)
            else:
                self.raw_node.propose(p.data)
        except ProposalDroppedError:
            pass  # reproposed on a later tick
        p.proposed_at = self.ticks

    async def propose_and_wait(self, cmd: RaftCommand, *, wait: bool = True,
                               conf_change: ConfChange | None = None) -> None:
        await self._wait(self.propose(cmd, conf_change), wait=wait)

    async def _wait(self, fut: asyncio.Future[None], *, wait: bool = True) -> None:
        if not wait:
            fut.add_done_callback(_consume)
            return
        try:
            await asyncio.wait_for(asyncio.shield(fut), self.store.config.proposal_timeout)
        except TimeoutError:
            raise AmbiguousResultError(
                f"{self}: command was proposed but did not apply within "
                f"{self.store.config.proposal_timeout:.0f}s; it may still apply"
            ) from None

    def _finish(self, cmd_id: bytes, exc: BaseException | None) -> None:
        p = self.proposals.pop(cmd_id, None)
        if p is None or p.fut.done():
            return
        if exc is None:
            p.fut.set_result(None)
        else:
            p.fut.set_exception(exc)

    def refresh_proposals(self, *, force: bool = False) -> None:
        """Repropose commands that have not applied for a while (a dropped
        message or a leader change may have lost them). Duplicates are
        harmless: the lease index check applies a command at most once."""
        if not self.proposals:
            return
        limit = self.store.config.raft_election_ticks
        for p in list(self.proposals.values()):
            if force or self.ticks - p.proposed_at >= limit:
                self._submit(p)

    # ---- leases -------------------------------------------------------------------

    async def _ensure_lease(self) -> None:
        for _ in range(50):
            now = self.store.clock.now()
            st = lease_state(self.lease, now, self.store.clock.max_offset_nanos)
            mine = owned_by(self.lease, self.replica_id)
            if mine and st == LeaseState.VALID and not self.transferring_to:
                return
            if self.transferring_to:
                raise self._not_leaseholder(self.transferring_to)
            if not mine and st in (LeaseState.VALID, LeaseState.STASIS):
                raise self._not_leaseholder(self.lease.replica.replica_id)  # type: ignore[union-attr]
            if not self.is_leader():
                raise self._not_leaseholder(self.raw_node.lead)
            fut = self.request_lease()
            try:
                await asyncio.wait_for(asyncio.shield(fut), self.store.config.lease_request_timeout)
            except NotLeaseHolderError:
                await asyncio.sleep(0.01)
            except TimeoutError:
                raise self._not_leaseholder(0) from None
        raise self._not_leaseholder(0)

    def _not_leaseholder(self, replica_id: int) -> NotLeaseHolderError:
        hint = None
        if replica_id and self.desc is not None:
            for r in self.desc.replicas:
                if r.replica_id == replica_id:
                    hint = r
        return NotLeaseHolderError(self.range_id, leaseholder=hint, lease=self.lease)

    def request_lease(self, *, transfer_to: data_pb2.ReplicaDescriptor | None = None) -> asyncio.Future[None]:
        """Propose a lease for this replica (or, as holder, for `transfer_to`)."""
        if transfer_to is None and self.pending_lease is not None and not self.pending_lease.done():
            return self.pending_lease
        now = self.store.clock.now()
        dur = int(self.store.config.lease_duration * 1e9)
        if transfer_to is not None:
            new = make_lease(self.lease, transfer_to, now, dur, self.raw_node.term, transfer_start=now)
        else:
            new = make_lease(self.lease, self.replica_descriptor(), now, dur, self.raw_node.term)
        cmd = RaftCommand(
            id=os.urandom(8),
            lease=new.SerializeToString(),
            prev_lease_seq=self.lease.sequence if self.lease is not None else 0,
            lease_transfer=transfer_to is not None,
        )
        fut = self.propose(cmd)
        fut.add_done_callback(_consume)
        if transfer_to is None:
            self.pending_lease = fut
        return fut

    def tick(self) -> None:
        self.ticks += 1
        self.raw_node.tick()
        if self.desc is None:
            return
        self.refresh_proposals()
        if not self.is_leader():
            return
        now = self.store.clock.now()
        st = lease_state(self.lease, now, self.store.clock.max_offset_nanos)
        mine = owned_by(self.lease, self.replica_id)
        pending = self.pending_lease is not None and not self.pending_lease.done()
        if self.transferring_to or pending:
            return
        if mine:
            assert self.lease is not None
            remaining = ts_from_proto(self.lease.expiration).wall_time - now.wall_time
            if remaining < self.store.config.lease_duration * 1e9 / 2:
                self.request_lease()
        elif st in (LeaseState.EXPIRED, LeaseState.NONE):
            self.request_lease()
        elif self.ticks % self.store.config.raft_election_ticks == 0 and self.lease is not None:
            # Another replica holds the lease: hand it raft leadership.
            self.raw_node.transfer_leader(self.lease.replica.replica_id)

    # ---- admin commands ---------------------------------------------------------

    async def _admin(self, ba: api_pb2.BatchRequest) -> api_pb2.BatchResponse:
        if len(ba.requests) != 1:
            raise InvalidArgumentError("an admin request must be alone in its batch")
        ru = ba.requests[0]
        kind = ru.WhichOneof("value")
        key = getattr(ru, kind).header.key
        assert self.desc is not None
        if key and not (self.desc.start_key <= keys.addr(key) < self.desc.end_key):
            raise RangeKeyMismatchError(key, b"", self.desc)
        br = api_pb2.BatchResponse()
        if kind == "admin_split":
            from crdb_py.kvserver.split import admin_split

            left, right = await admin_split(self, ru.admin_split.split_key or ru.admin_split.header.key)
            r = br.responses.add().admin_split
            r.left.CopyFrom(left)
            r.right.CopyFrom(right)
            return br
        if kind == "admin_transfer_lease":
            await self.admin_transfer_lease(ru.admin_transfer_lease.target_node_id)
            br.responses.add().admin_transfer_lease.SetInParent()
            return br
        raise InvalidArgumentError(f"unsupported admin request {kind!r}")

    async def admin_transfer_lease(self, target_node_id: int) -> None:
        await self._ensure_lease()
        assert self.desc is not None
        target = next((r for r in self.desc.replicas if r.node_id == target_node_id), None)
        if target is None:
            raise InvalidArgumentError(f"r{self.range_id} has no replica on n{target_node_id}")
        if target.replica_id == self.replica_id:
            return
        if target.type != data_pb2.VOTER_FULL:
            raise InvalidArgumentError(f"cannot transfer the lease to learner {target}")
        # From here on this replica serves nothing (reads above the new
        # lease's start would escape the new holder's timestamp cache) until
        # the transfer's outcome is known: applied (the lease moved) or
        # rejected. A timeout does not end it: the command may still apply.
        self.transferring_to = target.replica_id
        fut = self.request_lease(transfer_to=target)

        def settled(_f: asyncio.Future[None]) -> None:
            if self.transferring_to == target.replica_id:
                self.transferring_to = 0

        fut.add_done_callback(settled)
        try:
            await asyncio.wait_for(asyncio.shield(fut), self.store.config.lease_request_timeout)
        except TimeoutError:
            raise AmbiguousResultError(
                f"{self}: lease transfer to n{target_node_id} did not apply within "
                f"{self.store.config.lease_request_timeout:.0f}s; it may still apply"
            ) from None
        self.raw_node.transfer_leader(target.replica_id)
        self.store.enqueue(self)

    # ---- apply ------------------------------------------------------------------

    def apply_committed(self, entries: list[Entry], batch: object, post: list) -> None:
        """Apply committed entries into `batch`; `post` collects callbacks to
        run once the batch is written (completing proposals, creating split
        replicas)."""
        for e in entries:
            if e.index <= self.applied.raft_applied_index:
                continue  # already applied (restart replays the tail of the log)
            if e.type == EntryType.CONF_CHANGE:
                cc = decode_conf_change(e.data)
                cmd = RaftCommand.decode(cc.context) if cc.context else None
                ok = cmd is None or self._apply_cmd(cmd, batch, post, e.index)
                if ok:
                    cs = self.raw_node.apply_conf_change(cc)
                    self.raft_storage.set_conf_state(cs, batch)  # type: ignore[arg-type]
                else:
                    # Rejected by the apply checks: tell raft nothing changed.
                    self.raw_node.apply_conf_change(ConfChange(ConfChangeType.ADD_NODE, 0))
            elif e.data:
                self._apply_cmd(RaftCommand.decode(e.data), batch, post, e.index)
            self.applied.raft_applied_index = e.index
        self.applied.stats = self.stats.counters()
        batch.put(keys.range_applied_state_key(self.range_id), self.applied.encode())  # type: ignore[attr-defined]

    def _apply_cmd(self, cmd: RaftCommand, batch: object, post: list, index: int) -> bool:
        if cmd.is_lease_request:
            new = cmd.lease_pb()
            reason = check_lease_request(self.lease, new, cmd.prev_lease_seq, transfer=cmd.lease_transfer)
            if reason is not None:
                post.append(lambda: self._finish(cmd.id, self._not_leaseholder(0)))
                return False
            batch.put(keys.range_lease_key(self.range_id), cmd.lease)  # type: ignore[attr-defined]
            post.append(lambda: self._finish(cmd.id, None))
            self._set_lease(new, post)
            return True
        if self.lease is None or cmd.proposer_lease_seq != self.lease.sequence:
            post.append(lambda: self._finish(cmd.id, self._not_leaseholder(0)))
            return False
        if cmd.max_lease_index <= self.applied.lease_applied_index:
            post.append(lambda: self._finish(cmd.id, _Reproposal("lease index")))
            return False
        self.applied.lease_applied_index = cmd.max_lease_index
        if cmd.write_batch:
            for k, v in decode_repr(cmd.write_batch):
                if v is None:
                    batch.delete(k)  # type: ignore[attr-defined]
                else:
                    batch.put(k, v)  # type: ignore[attr-defined]
        if cmd.stats_delta:
            self.stats.add(MVCCStats(**cmd.stats_delta))
        if cmd.gc_threshold is not None:
            self.gc_threshold = self.gc_threshold.forward(Timestamp(*cmd.gc_threshold))
        if cmd.txn_span_gc_threshold is not None:
            t = Timestamp(*cmd.txn_span_gc_threshold)
            self.txn_span_gc_threshold = self.txn_span_gc_threshold.forward(t)
        if cmd.split_left:
            from crdb_py.kvserver.split import apply_split

            apply_split(self, cmd, batch, post)
        if cmd.new_desc:
            self.set_desc(data_pb2.RangeDescriptor.FromString(cmd.new_desc))
        post.append(lambda: self._finish(cmd.id, None))
        return True

    def _set_lease(self, new: data_pb2.Lease, post: list | None = None) -> None:
        prev = self.lease
        self.lease = new
        if prev is not None and prev.sequence == new.sequence:
            return  # an extension
        # A new lease: commands proposed under an older lease that have not
        # applied by now can never apply. The failure is queued in `post`
        # *behind* the completions of commands applied earlier in this same
        # batch (those pop their proposal first), so a command that did apply
        # is never reported as failed.
        # Lease requests based on an older lease will be rejected at apply
        # too: fail them with the rest (a pending transfer ends here).
        stale = [
            cid for cid, p in self.proposals.items()
            if (p.cmd.proposer_lease_seq != new.sequence and not p.cmd.is_lease_request)
            or (p.cmd.is_lease_request and p.cmd.prev_lease_seq != new.sequence)
        ]
        err = self._not_leaseholder(new.replica.replica_id)

        def fail() -> None:
            for cid in stale:
                self._finish(cid, err)

        if post is None:
            fail()
        else:
            post.append(fail)
        if new.replica.replica_id != self.replica_id:
            self.concurrency.clear()
        else:
            start = ts_from_proto(new.start)
            try:
                self.store.clock.update(start)
            except CrdbError:
                log.warning("%s: lease start %s beyond max offset", self, start)
            self.tscache = TimestampCache(start)

    # ---- snapshots ----------------------------------------------------------------

    def snapshot_data(self) -> bytes:
        """The range's replicated state at the applied index."""
        assert self.desc is not None
        eng = self.store.engine
        kv: list[bytes] = []
        for lo, hi in range_engine_spans(self.desc):
            for k, v in eng.iter_range(lo, hi):
                kv.append(k)
                kv.append(v)
        return msgpack.packb(
            {
                "desc": self.desc.SerializeToString(),
                "lease": self.lease.SerializeToString() if self.lease is not None else b"",
                "lai": self.applied.lease_applied_index,
                "stats": self.stats.counters(),
                "kv": kv,
            },
            use_bin_type=True,
        )

    def install_snapshot(self, snap: Snapshot, batch: object) -> None:
        d = msgpack.unpackb(snap.data, raw=False)
        desc = data_pb2.RangeDescriptor.FromString(d["desc"])
        if desc.range_id != self.range_id:
            raise InternalError(f"{self}: snapshot of r{desc.range_id}")
        eng = self.store.engine
        old = [self.desc] if self.desc is not None else []
        for dsc in [*old, desc]:
            for lo, hi in range_engine_spans(dsc):
                for k, _ in list(eng.iter_range(lo, hi)):
                    batch.delete(k)  # type: ignore[attr-defined]
        kv = d["kv"]
        for i in range(0, len(kv), 2):
            batch.put(kv[i], kv[i + 1])  # type: ignore[attr-defined]
        shipped = dict(zip(kv[::2], kv[1::2], strict=True))
        self.gc_threshold, self.txn_span_gc_threshold = gcthreshold.load(
            shipped, self.range_id  # type: ignore[arg-type]  (a dict has .get)
        )
        if d["lease"]:
            batch.put(keys.range_lease_key(self.range_id), d["lease"])  # type: ignore[attr-defined]
            self._set_lease(data_pb2.Lease.FromString(d["lease"]))
        self.stats = MVCCStats(**d["stats"])
        self.applied = AppliedState(snap.metadata.index, d["lai"], self.stats.counters())
        self.next_mli = max(self.next_mli, self.applied.lease_applied_index)
        batch.put(keys.range_applied_state_key(self.range_id), self.applied.encode())  # type: ignore[attr-defined]
        self.raft_storage.save(snapshot=Snapshot(b"", snap.metadata), batch=batch)  # type: ignore[arg-type]
        was_initialized = self.desc is not None
        self.set_desc(desc)
        if not was_initialized:
            self.store.on_replica_initialized(self)


def load_descriptor(engine: object, start_key: bytes) -> data_pb2.RangeDescriptor | None:
    res = mvcc_get(engine, keys.range_descriptor_key(start_key), Timestamp(2**62, 0))  # type: ignore[arg-type]
    if res.value is None:
        return None
    return data_pb2.RangeDescriptor.FromString(res.value)


def _consume(fut: asyncio.Future[None]) -> None:
    if not fut.cancelled():
        fut.exception()


__all__ = [
    "RAFT_INITIAL_LOG_INDEX",
    "RAFT_INITIAL_LOG_TERM",
    "Replica",
    "compute_range_stats",
    "load_descriptor",
    "range_data_spans",
    "replica_for_node",
    "write_descriptor",
    "write_initial_range_state",
]
