"""The GC queue: drop MVCC history older than the TTL, and finished txn state.

Without it every version ever written stays forever, and so do finished
transaction records and abort span entries. After CockroachDB's
``mvcc_gc_queue.go`` and ``kvserver/gc``; the leaseholder of each range
runs it, every ``StoreConfig.gc_queue_interval`` seconds (`maybe_enqueue`,
from the store's queue tick) or on demand (`run_now`, for tests and admin).

One run over a range (`process`), with ``now`` the leaseholder's clock:

1. **Thresholds first.** A GCRequest moves the range's GC threshold to
   ``now - ttl`` (``gc.ttlseconds``) and its txn span GC threshold to
   ``now - txn_cleanup_threshold`` (1 h). Both are replicated range state
   (`crdb_py.kvserver.gcthreshold`); once applied, nothing reads or writes
   at or below the GC threshold (`BatchTimestampBeforeGCError`) and no txn
   record is created for a txn that started at or below the txn span
   threshold — so the history under them can no longer change while it is
   collected.
2. **MVCC versions.** The range's data is scanned in bounded chunks
   (`mvcc_find_garbage`: at most ``gc_batch_keys`` keys with garbage, or
   about ``gc_scan_records`` records looked at); each chunk's garbage goes
   in one GCRequest — for each key, the timestamp at or below which every
   version is garbage: versions shadowed by a newer one at or below the
   threshold, and the newest one at or below it when that is a tombstone.
   A read above the threshold sees exactly what it saw before. Intents are
   never collected (they are resolved, by whoever meets them).
3. **Txn records.** COMMITTED / ABORTED records last active more than the
   cleanup threshold ago: their intents are resolved again (idempotent —
   EndTxn keeps its lock spans in the record, some may have been handed
   to the asynchronous resolver, which can give up), then the records are
   removed. A removed record means "finished": HeartbeatTxn and EndTxn
   refuse to create it again, a push or QueryTxn finds the txn ABORTED
   (`gcthreshold.can_create_txn_record`). PENDING / STAGING records are
   left to the pushers and recovery that meet their intents.
4. **Abort span.** Entries older than the cleanup threshold are removed: by
   then the aborted txn's coordinator has long found out (its heartbeat
   fails), and a zombie that has not cannot create its record.

Budget: the loop is never held for long — each scan chunk is bounded, and
the queue yields (``await``) between chunks while the GCRequest replicates.
A run that fails midway (lease lost, split) leaves a consistent state: the
thresholds are applied first and every chunk is atomic; the next run picks
up the rest.

The TTL comes from the cluster setting ``gc.ttlseconds`` (the system key
``\\x03settings/gc.ttlseconds``, a decimal number of seconds, read through
the store's KV client at each run), falling back to
``StoreConfig.gc_ttl_seconds`` (default 25 h, as CockroachDB's). Design:
docs/design/storage.md, "Garbage collection".
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from crdb_py.kvserver import abortspan
from crdb_py.kvserver.batcheval import txn_record as tr
from crdb_py.kvserver.intentresolver import txn_updates
from crdb_py.pb import api_pb2, data_pb2
from crdb_py.storage.mvcc import mvcc_scan
from crdb_py.storage.mvcc_intent import mvcc_find_garbage
from crdb_py.util import keys
from crdb_py.util.errors import InvalidArgumentError, RangeNotFoundError
from crdb_py.util.errwire import error_from_proto
from crdb_py.util.hlc import Timestamp, ts_from_proto, ts_to_proto

if TYPE_CHECKING:
    from crdb_py.kvserver.replica import Replica
    from crdb_py.kvserver.store import Store

log = logging.getLogger(__name__)

# The cluster setting, stored as the SQL/kvclient settings are
# (crdb_py/kvclient/txn/cluster_settings.py: b"\x03settings/" + name).
GC_TTL_SETTING = "gc.ttlseconds"
GC_TTL_SETTING_KEY = b"\x03settings/" + GC_TTL_SETTING.encode()
DEFAULT_GC_TTL_SECONDS = 25 * 3600
TXN_CLEANUP_THRESHOLD_NANOS = abortspan.TXN_CLEANUP_THRESHOLD_NANOS  # 1 h
_MAX_TS = Timestamp(2**62, 0)


@dataclass(slots=True)
class GCInfo:
    """What one run did (for tests, logs and status)."""

    range_id: int = 0
    threshold: Timestamp = Timestamp()
    txn_span_threshold: Timestamp = Timestamp()
    keys_affected: int = 0
    versions_removed: int = 0
    requests: int = 0
    txn_records_removed: int = 0
    txns_resolved: int = 0
    abort_span_removed: int = 0


class GCQueue:
    """The store's GC queue (see the module docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._last_run: dict[int, float] = {}  # range id -> loop time of the last run
        self._locks: dict[int, asyncio.Lock] = {}
        self.runs = 0

    # ---- scheduling ----------------------------------------------------------------

    def maybe_enqueue(self, r: Replica) -> None:
        """From the store's queue tick: run `r` if it is due (leaseholder,
        not run for ``gc_queue_interval`` seconds)."""
        cfg = self.store.config
        if cfg.gc_queue_interval <= 0 or not r.owns_valid_lease():
            return
        now = asyncio.get_running_loop().time()
        last = self._last_run.setdefault(r.range_id, now)
        if now - last < cfg.gc_queue_interval:
            return
        self._last_run[r.range_id] = now
        self.store._spawn(("gc", r.range_id), self.process(r))

    async def run_now(self, range_id: int, *, ttl_seconds: float | None = None) -> GCInfo:
        """Run the queue on one range now (this store must hold its lease);
        `ttl_seconds` overrides the setting."""
        r = self.store.replicas.get(range_id)
        if r is None or not r.initialized or r.destroyed:
            raise RangeNotFoundError(range_id)
        return await self.process(r, ttl_seconds=ttl_seconds)

    async def ttl_seconds(self) -> float:
        """``gc.ttlseconds`` from the cluster's settings, else the store default."""
        default = float(self.store.config.gc_ttl_seconds)
        if self.store.kv is None:
            return default
        ba = api_pb2.BatchRequest()
        ba.requests.add().get.header.key = GC_TTL_SETTING_KEY
        try:
            br = await self.store.kv.send(ba)
            if br.HasField("error") and br.error.kind:
                raise error_from_proto(br.error)
            v = br.responses[0].get
            ttl = float(v.value.raw_bytes) if v.HasField("value") else default
        except Exception as e:  # a setting we cannot read is the default
            log.debug("gc: cannot read %s: %s", GC_TTL_SETTING, e)
            return default
        if not ttl >= 0:  # negative or NaN: a threshold in the future would refuse every read
            log.warning("gc: ignoring %s = %r (must be >= 0)", GC_TTL_SETTING, ttl)
            return default
        return ttl

    # ---- one run ---------------------------------------------------------------------

    async def process(self, r: Replica, *, ttl_seconds: float | None = None) -> GCInfo:
        lock = self._locks.setdefault(r.range_id, asyncio.Lock())
        async with lock:
            return await self._process(r, ttl_seconds)

    async def _process(self, r: Replica, ttl_seconds: float | None) -> GCInfo:
        if ttl_seconds is not None and not ttl_seconds >= 0:
            raise InvalidArgumentError(f"GC TTL must be >= 0 seconds, not {ttl_seconds!r}")
        self.runs += 1
        ttl = ttl_seconds if ttl_seconds is not None else await self.ttl_seconds()
        info = GCInfo(range_id=r.range_id)
        now = self.store.clock.now()
        gc_thr = now.add(-int(ttl * 1e9))
        txn_thr = now.add(-self.store.config.gc_txn_cleanup_threshold_nanos)
        req = _gc_request(r)
        if gc_thr.wall_time > 0 and r.gc_threshold < gc_thr:
            ts_to_proto(gc_thr, req.threshold)
        if txn_thr.wall_time > 0 and r.txn_span_gc_threshold < txn_thr:
            ts_to_proto(txn_thr, req.txn_span_gc_threshold)
        if req.HasField("threshold") or req.HasField("txn_span_gc_threshold"):
            await self._send(r, req, info)
        info.threshold, info.txn_span_threshold = r.gc_threshold, r.txn_span_gc_threshold
        if not info.threshold.is_empty() and r.stats.val_count > r.stats.live_count:
            await self._gc_versions(r, info)
        if not info.txn_span_threshold.is_empty():
            await self._gc_txn_records(r, info)
            await self._gc_abort_span(r, info)
        log.debug("gc r%d: %s", r.range_id, info)
        return info

    async def _send(self, r: Replica, req: api_pb2.GCRequest, info: GCInfo) -> api_pb2.GCResponse:
        ba = api_pb2.BatchRequest()
        ba.header.range_id = r.range_id
        ba.requests.add().gc.CopyFrom(req)
        br = await r.send(ba)
        info.requests += 1
        resp = br.responses[0].gc
        info.versions_removed += resp.versions_removed
        info.txn_records_removed += resp.txn_records_removed
        info.abort_span_removed += resp.abort_span_entries_removed
        return resp

    async def _gc_versions(self, r: Replica, info: GCInfo) -> None:
        from crdb_py.kvserver.replica import range_data_spans

        cfg = self.store.config
        assert r.desc is not None
        for start, end in range_data_spans(r.desc):
            resume: bytes | None = start
            while resume is not None:
                found, resume = mvcc_find_garbage(
                    self.store.engine, resume, end, info.threshold,
                    max_keys=cfg.gc_batch_keys, max_records=cfg.gc_scan_records,
                )
                if found:
                    req = _gc_request(r)
                    for key, ts in found:
                        gk = req.keys.add(key=key)
                        ts_to_proto(ts, gk.timestamp)
                    await self._send(r, req, info)
                    info.keys_affected += len(found)
                else:
                    await asyncio.sleep(0)  # a long scan of live data still yields

    async def _gc_txn_records(self, r: Replica, info: GCInfo) -> None:
        assert r.desc is not None
        cfg = self.store.config
        start, hi = keys.range_local_span(r.desc.start_key, r.desc.end_key)
        lo: bytes | None = start
        doomed: list[data_pb2.TxnMeta] = []
        while lo is not None:
            res = mvcc_scan(self.store.engine, lo, hi, _MAX_TS, max_keys=cfg.gc_batch_keys)
            for k, v in res.kvs:
                if v is None or keys.decode_range_local_key(k)[1] != keys.TXN_SUFFIX:
                    continue
                rec = data_pb2.TransactionRecord.FromString(v)
                if not tr.is_final(rec.status) or not self._record_expired(rec, info):
                    continue
                if rec.lock_spans or rec.in_flight_writes:
                    if not await self._resolve(rec):
                        continue
                    info.txns_resolved += 1
                doomed.append(rec.meta)
                if len(doomed) >= cfg.gc_batch_keys:
                    await self._remove_records(r, doomed, info)
                    doomed = []
            lo = res.resume_span[0] if res.resume_span else None
        if doomed:
            await self._remove_records(r, doomed, info)

    @staticmethod
    def _record_expired(rec: data_pb2.TransactionRecord, info: GCInfo) -> bool:
        active = tr.last_active(rec).forward(tr.write_ts(rec))
        return active < info.txn_span_threshold

    async def _resolve(self, rec: data_pb2.TransactionRecord) -> bool:
        ir = self.store.intent_resolver
        if ir is None:
            return False  # no KV client to resolve with: keep the record
        txn = tr.record_to_txn(rec)
        try:
            # Poison: an ABORTED txn's coordinator may be a zombie (an entry is
            # written only where an intent was still there to remove).
            await ir.resolve_now(txn_updates(txn), poison=True)
        except Exception as e:
            log.info("gc: resolving intents of txn %s failed: %s", rec.meta.id.hex()[:8], e)
            return False
        return True

    async def _remove_records(self, r: Replica, metas: list[data_pb2.TxnMeta], info: GCInfo) -> None:
        req = _gc_request(r)
        req.txn_records.extend(metas)
        await self._send(r, req, info)

    async def _gc_abort_span(self, r: Replica, info: GCInfo) -> None:
        batch_keys = self.store.config.gc_batch_keys
        old = [
            txn_id for txn_id, e in abortspan.iterate(self.store.engine, r.range_id)
            if ts_from_proto(e.timestamp) < info.txn_span_threshold
        ]
        for i in range(0, len(old), batch_keys):
            req = _gc_request(r)
            req.abort_span_txn_ids.extend(old[i : i + batch_keys])
            await self._send(r, req, info)


def _gc_request(r: Replica) -> api_pb2.GCRequest:
    """A GCRequest addressed to the whole of `r`'s range."""
    assert r.desc is not None
    req = api_pb2.GCRequest()
    req.header.key = max(r.desc.start_key, keys.LOCAL_MAX)
    req.header.end_key = r.desc.end_key
    return req


__all__ = [
    "DEFAULT_GC_TTL_SECONDS",
    "GCInfo",
    "GCQueue",
    "GC_TTL_SETTING",
    "GC_TTL_SETTING_KEY",
    "TXN_CLEANUP_THRESHOLD_NANOS",
]
