"""A store: one engine and the replicas of many ranges on it (multi-raft).

The store drives every replica's Raft group from one scheduler on the node's
event loop. Work arrives as raft messages, proposals and ticks; each marks its
replica *pending*, and one scheduler turn (`_process`) handles every pending
replica together:

1. collect each replica's `Ready`; install snapshots and append log entries
   and hard states of **all** of them into **one** engine write batch;
2. send a leader's appends and heartbeats at once (they need not wait for
   its own log to be durable), then make the batch durable through the
   store's log writer (crdb_py/kvserver/logwriter.py) *before* anything that
   depends on it leaves the node;
3. send the other messages — votes, append acknowledgements — (coalesced
   per destination node by the transport);
4. apply committed entries of all replicas into one (unsynced) batch — the
   raft log is already durable, and each replica's applied index is written
   atomically with the data, so a crash simply re-applies the log's tail;
5. `advance` every raft group, then complete proposals and other callbacks.

With the inline log writer (the simulator, `MemEngine`) a turn runs 1–5 in
one go. With the background writer (a `RocksEngine` on a real loop) step 2
writes the batch unsynced and queues an fsync on the writer's thread; the
replicas whose Ready must be synced finish 3–5 when it completes, in a later
loop callback, while the loop goes on serving RPCs and processing *other*
replicas' Readies — whose writes the next fsync then covers (group commit).
A replica's own Ready cycle stays strictly sequential: no new `Ready` is
taken from it until the one in flight has been advanced. A failed log write
or fsync is fatal to the node (`Store.on_fatal`, default: exit).

Ticks (every `raft_tick_interval`) drive elections, heartbeats, lease
renewal and reproposals; every few ticks leaseholders also run the
replicate queue, the size-based split check, raft log truncation and (every
`gc_queue_interval` seconds per range) the GC queue (gc_queue.py). Before
the queues run, the store notes which nodes holding its ranges' replicas
are live (`observe_liveness`): a node not live for `time_until_store_dead`
on end is *dead* and its replicas are replaced (replicate_queue.py).

Bootstrapping writes the first range `[KEY_MIN, KEY_MAX)` with one voter,
its meta entry and the range-id generator. See docs/design/replication.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from crdb_py.kvserver.gc_queue import GCQueue
from crdb_py.kvserver.logwriter import LogWriter, new_log_writer
from crdb_py.kvserver.replica import (
    Replica,
    load_descriptor,
    range_data_spans,
    replica_for_node,
    write_descriptor,
    write_initial_range_state,
)
from crdb_py.pb import api_pb2, data_pb2, raft_pb2
from crdb_py.raft import MessageType
from crdb_py.raft.wire import message_from_proto, message_to_proto
from crdb_py.storage import MVCCStats, encode_int_value, mvcc_find_split_key, mvcc_put, mvcc_scan
from crdb_py.storage.mvcc_key import span_bounds
from crdb_py.util import keys
from crdb_py.util.errors import CrdbError, InternalError, RangeNotFoundError
from crdb_py.util.errwire import error_from_proto, error_to_proto
from crdb_py.util.hlc import HLC, Timestamp, ts_from_proto, ts_to_proto

log = logging.getLogger(__name__)

RANGE_ID_GENERATOR_KEY = keys.SYSTEM_PREFIX + b"range-idgen"
# Stored as the SQL/kvclient cluster settings are (b"\x03settings/" + name).
TIME_UNTIL_STORE_DEAD_SETTING = "server.time_until_store_dead"
TIME_UNTIL_STORE_DEAD_KEY = b"\x03settings/" + TIME_UNTIL_STORE_DEAD_SETTING.encode()
SETTINGS_REFRESH_INTERVAL = 2.0  # seconds between reads of the setting
_SEND_BEFORE_SYNC = frozenset({MessageType.APP, MessageType.HEARTBEAT, MessageType.SNAP})
BOOTSTRAP_TS = Timestamp(1, 0)
DISK_FAILURE_EXIT = 74  # sysexits.h EX_IOERR


def exit_on_disk_failure(e: BaseException) -> None:
    """`Store.on_fatal`'s default: the raft log could not be made durable,
    so the node must not go on (see logwriter.py): exit at once."""
    logging.shutdown()
    os._exit(DISK_FAILURE_EXIT)


@dataclass
class StoreConfig:
    node_id: int
    store_id: int
    raft_tick_interval: float = 0.1  # seconds
    raft_election_ticks: int = 10
    raft_heartbeat_ticks: int = 1
    sync_writes: bool = True
    lease_duration: float = 3.0
    lease_request_timeout: float = 3.0
    proposal_timeout: float = 10.0
    range_max_bytes: int = 64 << 20
    replication_factor: int = 3
    queue_interval_ticks: int = 5
    raft_log_max_entries: int = 2000
    # Who makes raft-log batches durable (kvserver/logwriter.py): "inline"
    # (on the loop), "background" (fsync on a thread) or "auto" (background
    # for a RocksEngine with sync_writes on a real asyncio loop, else inline).
    log_writer: str = "auto"
    # The GC queue (kvserver/gc_queue.py): the MVCC TTL when the cluster
    # setting gc.ttlseconds is not set, how often a leaseholder runs a range
    # (seconds; 0 = only on demand), how old a finished txn record or abort
    # span entry must be to go, and the size of one GC batch / scan chunk.
    gc_ttl_seconds: float = 25 * 3600
    gc_queue_interval: float = 600.0
    gc_txn_cleanup_threshold_nanos: int = 3600 * 1_000_000_000
    gc_batch_keys: int = 256
    gc_scan_records: int = 4096
    # A node not live (per the NodeDialer) for this many seconds on end is
    # *dead*: leaseholders replace its replicas (replicate_queue.py).
    # CockroachDB's ``server.time_until_store_dead``; the cluster setting of
    # that name (seconds, in KV) overrides it.
    time_until_store_dead: float = 300.0
    # Replica GC: a replica without a raft leader for this many seconds asks
    # meta whether it is still a member of its range; if a newer descriptor
    # no longer lists it, the replica and its data are deleted.
    replica_gc_interval: float = 10.0


class NodeDialer(Protocol):
    def live_node_ids(self) -> list[int]: ...


class KVSender(Protocol):
    async def send(self, ba: api_pb2.BatchRequest) -> api_pb2.BatchResponse: ...


class _StorePusher:
    """The concurrency managers' `TxnPusher`: the store's KV pusher, created
    on first use (the node hands the store its KV client after construction)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def push_txn(self, *args: Any, **kwargs: Any) -> Any:
        return await self.store.kv_pusher().push_txn(*args, **kwargs)

    async def resolve_intent(self, update: Any) -> None:
        await self.store.kv_pusher().resolve_intent(update)

    async def query_txn(self, txn: Any) -> Any:
        return await self.store.kv_pusher().query_txn(txn)


class Store:
    def __init__(
        self,
        engine: Any,
        config: StoreConfig,
        transport: Any,
        clock: HLC,
        node_dialer: NodeDialer,
        kv: KVSender | None = None,
    ) -> None:
        self.engine = engine
        self.config = config
        self.transport = transport
        self.clock = clock
        self.node_dialer = node_dialer
        self.kv = kv
        self.replicas: dict[int, Replica] = {}
        self._pending: set[int] = set()
        self._scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tick_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._busy: set[tuple[str, int]] = set()
        self._ticks = 0
        self.stopped = False
        self._intent_resolver: Any = None
        self._kv_pusher: Any = None
        self.pusher = _StorePusher(self)
        self._log_writer: LogWriter | None = None
        # range id -> the replica whose Ready is waiting for a log sync
        self._inflight: dict[int, Replica] = {}
        self.on_fatal: Callable[[BaseException], None] = exit_on_disk_failure
        self.gc_queue = GCQueue(self)
        # Dead-node detection (see `observe_liveness`): node id -> loop time
        # since which it has been seen not live without interruption.
        self._not_live_since: dict[int, float] = {}
        self._store_dead_override: float | None = None
        self._settings_read_at: float | None = None
        self._leaderless_since: dict[int, float] = {}  # range id -> loop time
        self.replicas_gced = 0

    # ---- txn machinery over the cluster KV client (created once kv is set) ----

    @property
    def intent_resolver(self) -> Any:
        if self._intent_resolver is None and self.kv is not None:
            from crdb_py.kvserver.intentresolver import IntentResolver

            self._intent_resolver = IntentResolver(self.kv)
        return self._intent_resolver

    def kv_pusher(self) -> Any:
        if self._kv_pusher is None:
            if self.kv is None:
                raise InternalError("store has no KV client to push transactions with")
            from crdb_py.kvserver.pusher import KVTxnPusher
            from crdb_py.kvserver.txnrecovery import TxnRecoveryManager

            ir = self.intent_resolver
            self._kv_pusher = KVTxnPusher(self.kv, ir, TxnRecoveryManager(self.kv, ir))
        return self._kv_pusher

    # ---- bootstrap / lifecycle ------------------------------------------------

    @staticmethod
    def bootstrap(engine: Any, node_id: int, store_id: int) -> data_pb2.RangeDescriptor:
        """Write the first range, replicated once on this store."""
        if load_descriptor(engine, keys.KEY_MIN) is not None:
            raise InternalError("store is already bootstrapped")
        desc = data_pb2.RangeDescriptor(
            range_id=1, start_key=keys.KEY_MIN, end_key=keys.KEY_MAX, next_replica_id=2
        )
        desc.replicas.add(node_id=node_id, store_id=store_id, replica_id=1, type=data_pb2.VOTER_FULL)
        batch = engine.new_batch()
        stats = MVCCStats()
        write_descriptor(batch, desc, stats)
        mvcc_put(batch, keys.meta_key(desc.end_key), BOOTSTRAP_TS, desc.SerializeToString(), stats=stats)
        mvcc_put(batch, RANGE_ID_GENERATOR_KEY, BOOTSTRAP_TS, encode_int_value(1), stats=stats)
        write_initial_range_state(batch, engine, desc, stats, None)
        engine.write(batch, sync=True)
        return desc

    def load_replicas(self) -> None:
        res = mvcc_scan(self.engine, keys.LOCAL_RANGE_PREFIX, keys.LOCAL_MAX, Timestamp(2**62, 0))
        for k, v in res.kvs:
            try:
                _anchor, suffix, _detail = keys.decode_range_local_key(k)
            except Exception:
                continue
            if suffix != keys.RANGE_DESCRIPTOR_SUFFIX or v is None:
                continue
            desc = data_pb2.RangeDescriptor.FromString(v)
            me = replica_for_node(desc, self.config.store_id)
            if me is None or desc.range_id in self.replicas:
                continue
            r = Replica(self, desc.range_id, me.replica_id)
            r.set_desc(desc)
            self.replicas[desc.range_id] = r

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.log_writer()
        self.load_replicas()
        for r in self.replicas.values():
            assert r.desc is not None
            voters = [x for x in r.desc.replicas if x.type == data_pb2.VOTER_FULL]
            if len(voters) == 1 and voters[0].replica_id == r.replica_id:
                r.raw_node.campaign()  # a lone voter need not wait for a timeout
            self.enqueue(r)
        self._tick_task = asyncio.create_task(self._tick_loop())

    async def stop(self) -> None:
        self.stopped = True
        if self._tick_task is not None:
            self._tick_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._tick_task
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        for r in self.replicas.values():
            for p in list(r.proposals.values()):
                if not p.fut.done():
                    p.fut.cancel()
        if self._intent_resolver is not None:
            self._intent_resolver.close()
        await self._close_log_writer()

    async def _close_log_writer(self) -> None:
        w, self._log_writer = self._log_writer, None
        self._inflight.clear()
        if w is None:
            return
        if not w.background:
            w.close()
            return
        # Joining waits out a running fsync; a sync parked at a failpoint
        # must not hang the shutdown (its result is ignored once closed).
        fut = asyncio.get_running_loop().run_in_executor(None, w.close)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(fut), 5.0)

    def log_writer(self) -> LogWriter:
        w = self._log_writer
        if w is None:
            loop = self._loop or asyncio.get_running_loop()
            w = self._log_writer = new_log_writer(
                self.config.log_writer, self.engine, loop, self._fatal,
                sync_writes=self.config.sync_writes,
            )
        return w

    def _fatal(self, e: BaseException) -> None:
        """The raft log could not be written or synced: stop serving (its
        state in memory may be ahead of the disk) and hand over to
        `on_fatal` — a real node exits, as CockroachDB does on disk errors."""
        log.critical("n%d: raft log write/sync failed, stopping the node: %r",
                     self.config.node_id, e)
        self.stopped = True
        self.on_fatal(e)

    # ---- scheduler --------------------------------------------------------------

    def enqueue(self, r: Replica) -> None:
        self._pending.add(r.range_id)
        if not self._scheduled and not self.stopped:
            self._scheduled = True
            loop = self._loop or asyncio.get_running_loop()
            loop.call_soon(self._process)

    def _process(self) -> None:
        self._scheduled = False
        if self.stopped:
            return
        pending, self._pending = self._pending, set()
        eng = self.engine
        log_batch = eng.new_batch()
        inflight = self._inflight
        readies: list[tuple[Replica, Any, list[Any]]] = []  # (replica, ready, late msgs)
        must_sync = False
        for rid in pending:
            r = self.replicas.get(rid)
            if r is None or r.destroyed:
                continue
            if inflight.get(rid) is r:
                continue  # its Ready is being synced; re-enqueued once advanced
            if not r.raw_node.has_ready():
                continue
            rd = r.raw_node.ready()
            if rd.snapshot is not None and not rd.snapshot.is_empty():
                r.install_snapshot(rd.snapshot, log_batch)
            if rd.hard_state is not None or rd.entries:
                r.raft_storage.save(hard_state=rd.hard_state, entries=rd.entries, batch=log_batch)
            must_sync = must_sync or rd.must_sync
            readies.append((r, rd, rd.messages))
        # A leader's appends (and heartbeats, snapshots) do not depend on its
        # own log being durable (Raft thesis §10.2.1): send them before the
        # synced write, so the leader's and the followers' syncs overlap.
        # Everything else — votes, append responses — waits for the sync.
        for i, (r, rd, msgs) in enumerate(readies):
            if not msgs:
                continue
            early = [m for m in msgs if m.type in _SEND_BEFORE_SYNC]
            if early:
                self._send(r, early)
                readies[i] = (r, rd, [m for m in msgs if m.type not in _SEND_BEFORE_SYNC])
        writer = self.log_writer()
        sync = self.config.sync_writes and must_sync
        try:
            if writer.background and sync:
                if log_batch.count():
                    writer.write(log_batch, sync=False)
                wait = [x for x in readies if x[1].must_sync]
                for x in wait:
                    inflight[x[0].range_id] = x[0]
                writer.sync(lambda: self._finish(wait))
                self._finish([x for x in readies if not x[1].must_sync])
                return
            if log_batch.count():
                writer.write(log_batch, sync=sync)
        except Exception as e:
            self._fatal(e)
            return
        self._finish(readies)

    def _finish(self, readies: list[tuple[Replica, Any, list[Any]]]) -> None:
        """Steps 3–5 for Readies whose log writes are durable."""
        if self.stopped or not readies:
            return
        for r, _, msgs in readies:
            if msgs:
                self._send(r, msgs)
        eng = self.engine
        apply_batch = eng.new_batch()
        post: list[Any] = []
        for r, rd, _ in readies:
            if rd.committed_entries:
                r.apply_committed(rd.committed_entries, apply_batch, post)
        if apply_batch.count():
            eng.write(apply_batch, sync=False)
        for r, rd, _ in readies:
            r.raw_node.advance(rd)
        for cb in post:
            try:
                cb()
            except Exception:
                log.exception("n%d: post-apply callback failed", self.config.node_id)
        inflight = self._inflight
        for r, _, _ in readies:
            if inflight.get(r.range_id) is r:
                del inflight[r.range_id]
            if r.raw_node.has_ready():
                self.enqueue(r)

    def _send(self, r: Replica, messages: list[Any]) -> None:
        for m in messages:
            node = r.node_of(m.to)
            if node == 0:
                continue
            req = raft_pb2.RaftMessageRequest(
                range_id=r.range_id,
                from_node_id=self.config.node_id,
                to_node_id=node,
                from_replica_id=m.frm,
                to_replica_id=m.to,
            )
            req.message.CopyFrom(message_to_proto(m))
            ok = self.transport.send_raft_message(node, req)
            if m.type == MessageType.SNAP:
                r.raw_node.report_snapshot(m.to, ok)
            if not ok:
                r.raw_node.report_unreachable(m.to)

    def handle_raft_messages(self, from_node_id: int, batch: raft_pb2.RaftMessageBatch) -> None:
        for req in batch.requests:
            if req.range_id <= 0 or req.to_replica_id == 0:
                continue
            r = self.replicas.get(req.range_id)
            if r is None or r.destroyed:
                r = Replica(self, req.range_id, int(req.to_replica_id))
                self.replicas[req.range_id] = r
            elif req.to_replica_id > r.replica_id:
                r = self._replace_removed_replica(r, int(req.to_replica_id))
            elif r.replica_id != req.to_replica_id:
                continue  # addressed to an older incarnation
            r.replica_nodes[int(req.from_replica_id)] = req.from_node_id
            try:
                r.raw_node.step(message_from_proto(req.message))
            except Exception:
                log.exception("%s: failed to step %s", r, req.message.type)
                continue
            self.enqueue(r)

    # ---- ticks and queues --------------------------------------------------------

    async def _tick_loop(self) -> None:
        interval = self.config.raft_tick_interval
        while not self.stopped:
            await asyncio.sleep(interval)
            self._ticks += 1
            for r in list(self.replicas.values()):
                if r.destroyed:
                    continue
                try:
                    r.tick()
                except Exception:
                    log.exception("%s: tick failed", r)
                if r.raw_node.has_ready():
                    self.enqueue(r)
            if self._ticks % self.config.queue_interval_ticks == 0:
                self._run_queues()

    def _run_queues(self) -> None:
        from crdb_py.kvserver.replicate_queue import maybe_replicate

        self.observe_liveness()
        for r in list(self.replicas.values()):
            if r.destroyed or r.desc is None:
                continue
            self._truncate_log(r)
            if not r.owns_valid_lease():
                self._maybe_gc_replica(r)
                continue
            self._spawn(("replicate", r.range_id), maybe_replicate(r))
            self.gc_queue.maybe_enqueue(r)
            total = r.stats.key_bytes + r.stats.val_bytes
            if total > self.config.range_max_bytes:
                self._spawn(("split", r.range_id), self._split_by_size(r, total))

    # ---- dead nodes ----------------------------------------------------------------

    def _now(self) -> float:
        return (self._loop or asyncio.get_running_loop()).time()

    def observe_liveness(self) -> None:
        """Note which nodes holding our ranges' replicas are live now. A
        node is *dead* once every observation for `time_until_store_dead`
        seconds found it not live; one live observation resets it. Only this
        store's own observations count (a restarted store starts afresh), so
        a node is never declared dead sooner than the timeout, only later."""
        now = self._now()
        live = set(self.node_dialer.live_node_ids())
        live.add(self.config.node_id)
        seen: set[int] = set()
        for r in self.replicas.values():
            if r.desc is not None and not r.destroyed:
                seen.update(x.node_id for x in r.desc.replicas)
        since = self._not_live_since
        for n in list(since):
            if n in live or n not in seen:
                del since[n]
        for n in seen - live:
            since.setdefault(n, now)
        self._maybe_refresh_settings(now)

    def time_until_store_dead(self) -> float:
        v = self._store_dead_override
        return float(self.config.time_until_store_dead) if v is None else v

    def dead_node_ids(self) -> set[int]:
        """Nodes continuously not live for longer than `time_until_store_dead`."""
        limit = self.time_until_store_dead()
        now = self._now()
        return {n for n, t in self._not_live_since.items() if now - t > limit}

    def _maybe_refresh_settings(self, now: float) -> None:
        last = self._settings_read_at
        if self.kv is None or (last is not None and now - last < SETTINGS_REFRESH_INTERVAL):
            return
        self._settings_read_at = now
        self._spawn(("settings", 0), self._read_store_dead_setting())

    async def _read_store_dead_setting(self) -> None:
        ba = api_pb2.BatchRequest()
        ba.requests.add().get.header.key = TIME_UNTIL_STORE_DEAD_KEY
        try:
            br = await asyncio.wait_for(self._kv_send(ba), 5.0)
            v = br.responses[0].get
            value = float(v.value.raw_bytes) if v.HasField("value") else None
        except Exception as e:  # unreadable: keep what we had
            log.debug("n%d: cannot read %s: %s", self.config.node_id, TIME_UNTIL_STORE_DEAD_SETTING, e)
            return
        if value is not None and not value > 0:  # zero, negative, NaN
            log.warning("n%d: ignoring %s = %r (must be > 0)", self.config.node_id,
                        TIME_UNTIL_STORE_DEAD_SETTING, value)
            value = None
        self._store_dead_override = value

    def _truncate_log(self, r: Replica) -> None:
        st = r.raft_storage
        applied = r.applied.raft_applied_index
        keep = self.config.raft_log_max_entries // 2
        if applied - st.first_index() > self.config.raft_log_max_entries:
            # Unsynced, on purpose: the batch (deletes + truncated state) is
            # atomic, losing it in a crash leaves a longer but consistent
            # log, and the WAL is sequential, so the next synced log write
            # makes it durable in order. A synced write here would stall the
            # loop for an fsync under the GIL.
            b = self.engine.new_batch()
            st.compact(applied - keep, batch=b)
            self.engine.write(b, sync=False)

    async def _split_by_size(self, r: Replica, total: int) -> None:
        from crdb_py.kvserver.split import admin_split

        assert r.desc is not None
        start = max(r.desc.start_key, keys.META_MAX)
        key = mvcc_find_split_key(self.engine, start, r.desc.end_key, total // 2, min_key=keys.META_MAX)
        if key is not None and key > start:
            await admin_split(r, key)

    def _spawn(self, name: tuple[str, int], coro: Any) -> None:
        if name in self._busy:
            coro.close()
            return
        self._busy.add(name)
        t = asyncio.create_task(coro)
        self._tasks.add(t)

        def done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            self._busy.discard(name)
            if not t.cancelled() and t.exception() is not None:
                log.info("n%d: %s r%d: %s", self.config.node_id, name[0], name[1], t.exception())

        t.add_done_callback(done)

    # ---- requests ----------------------------------------------------------------

    async def batch(self, ba: api_pb2.BatchRequest) -> api_pb2.BatchResponse:
        h = ba.header
        try:
            if h.HasField("txn"):
                self.clock.update(ts_from_proto(h.txn.meta.write_timestamp))
            elif h.timestamp.wall_time:
                self.clock.update(ts_from_proto(h.timestamp))
            r = self.replicas.get(h.range_id)
            if r is None or not r.initialized or r.destroyed:
                raise RangeNotFoundError(h.range_id)
            br = await r.send(ba)
        except CrdbError as e:
            br = api_pb2.BatchResponse()
            error_to_proto(e, br.error)
        ts_to_proto(self.clock.now(), br.now)
        return br

    # ---- replica lifecycle callbacks -------------------------------------------

    def add_split_replica(self, desc: data_pb2.RangeDescriptor, *, campaign: bool) -> None:
        me = replica_for_node(desc, self.config.store_id)
        if me is None:
            return
        old = self.replicas.get(desc.range_id)
        if old is not None and old.initialized and not old.destroyed:
            return
        r = Replica(self, desc.range_id, me.replica_id)
        r.set_desc(desc)
        self.replicas[desc.range_id] = r
        if campaign:
            r.raw_node.campaign()
        self.enqueue(r)

    def _replace_removed_replica(self, old: Replica, replica_id: int) -> Replica:
        """Traffic for a newer replica id of a range we hold: our replica was
        removed from the range (its node was down, it was replaced) and this
        store was added back since — replica ids are never reused. Destroy
        the stale replica and start the new one uninitialized: it accepts
        only a snapshot."""
        log.info("n%d: %s was removed from its range; replacing it with replica %d",
                 self.config.node_id, old, replica_id)
        self.destroy_replica(old)
        r = Replica(self, old.range_id, replica_id)
        self.replicas[old.range_id] = r
        return r

    def destroy_replica(self, r: Replica) -> None:
        """Drop a replica that is no longer a member of its range: its raft
        and range-id state, its descriptor, and its data — unless another
        replica on this store overlaps its (stale) span by now, in which
        case the data stays for a later snapshot to overwrite."""
        r.destroyed = True
        for p in list(r.proposals.values()):
            if not p.fut.done():
                p.fut.set_exception(RangeNotFoundError(r.range_id))
        r.proposals.clear()
        self._inflight.pop(r.range_id, None)
        self._leaderless_since.pop(r.range_id, None)
        if self.replicas.get(r.range_id) is r:
            del self.replicas[r.range_id]
        lo = keys.range_id_prefix(r.range_id)
        spans = [(lo, keys.prefix_end(lo))]
        d = r.desc
        if d is not None:
            overlaps = any(
                o.desc is not None and not o.destroyed and o.range_id != r.range_id
                and o.desc.start_key < d.end_key and d.start_key < o.desc.end_key
                for o in self.replicas.values()
            )
            if overlaps:
                dk = keys.range_descriptor_key(d.start_key)
                spans.append(span_bounds(dk, keys.next_key(dk)))
            else:
                spans.extend(span_bounds(s, e) for s, e in range_data_spans(d))
        b = self.engine.new_batch()
        for s, e in spans:
            for k, _ in list(self.engine.iter_range(s, e)):
                b.delete(k)
        if b.count():
            self.engine.write(b, sync=False)

    # ---- replica GC --------------------------------------------------------------

    def _maybe_gc_replica(self, r: Replica) -> None:
        if r.desc is None or r.raw_node.lead != 0:
            self._leaderless_since.pop(r.range_id, None)
            return
        now = self._now()
        since = self._leaderless_since.setdefault(r.range_id, now)
        if now - since > self.config.replica_gc_interval:
            self._leaderless_since[r.range_id] = now  # next check one interval on
            self._spawn(("replica-gc", r.range_id), self._replica_gc_check(r))

    async def _replica_gc_check(self, r: Replica) -> None:
        """Ask meta for the range's current descriptor; destroy `r` if a
        newer one no longer lists it (CockroachDB's replica GC queue)."""
        assert r.desc is not None
        ba = api_pb2.BatchRequest()
        ba.header.max_span_request_keys = 1
        sc = ba.requests.add().scan
        sc.header.key = keys.meta_lookup_start(r.desc.start_key)
        sc.header.end_key = keys.META_MAX
        br = await asyncio.wait_for(self._kv_send(ba), 10.0)
        rows = br.responses[0].scan.rows
        if not rows or r.destroyed or r.desc is None or self.replicas.get(r.range_id) is not r:
            return
        cur = data_pb2.RangeDescriptor.FromString(rows[0].value.raw_bytes)
        if cur.range_id != r.range_id or cur.generation <= r.desc.generation:
            return
        me = replica_for_node(cur, self.config.store_id)
        if me is not None and me.replica_id == r.replica_id:
            return
        log.info("n%d: %s is no longer a member of its range (%s): removing it",
                 self.config.node_id, r, "re-added" if me is not None else "removed")
        self.destroy_replica(r)
        self.replicas_gced += 1

    def on_replica_initialized(self, r: Replica) -> None:
        log.info("n%d: %s initialized from a snapshot", self.config.node_id, r)

    # ---- cluster KV used by splits and replica changes ---------------------------

    async def _kv_send(self, ba: api_pb2.BatchRequest) -> api_pb2.BatchResponse:
        if self.kv is None:
            raise InternalError("store has no KV client for cluster-wide writes")
        br = await self.kv.send(ba)
        if br.HasField("error") and br.error.kind:
            raise error_from_proto(br.error)
        return br

    async def allocate_range_id(self) -> int:
        ba = api_pb2.BatchRequest()
        inc = ba.requests.add().increment
        inc.header.key = RANGE_ID_GENERATOR_KEY
        inc.increment = 1
        br = await self._kv_send(ba)
        return br.responses[0].increment.new_value

    async def update_meta(self, descs: list[data_pb2.RangeDescriptor]) -> None:
        ba = api_pb2.BatchRequest()
        for d in descs:
            if not d.end_key:
                continue
            put = ba.requests.add().put
            put.header.key = keys.meta_key(d.end_key)
            put.value = d.SerializeToString()
        if ba.requests:
            await self._kv_send(ba)

    # ---- introspection ------------------------------------------------------------

    def first_range(self) -> data_pb2.RangeDescriptor | None:
        r = self.replicas.get(1)
        return r.desc if r is not None else None

    def status(self) -> dict[str, int]:
        live = [r for r in self.replicas.values() if r.initialized and not r.destroyed]
        return {
            "range_count": len(live),
            "lease_count": sum(1 for r in live if r.owns_valid_lease()),
            "leader_count": sum(1 for r in live if r.is_leader()),
        }
