"""The span refresher: move a txn's reads to a later timestamp instead of
restarting.

A serializable txn must commit at a timestamp where all its reads are still
valid. Its write timestamp can be pushed above its read timestamp (a reader
bumped the timestamp cache, WriteTooOld, a pusher, an uncertain value).
Restarting throws the work away; a **refresh** asks every range the txn read
whether anything was written in ``(old read ts, new ts]`` on the spans it
read (Refresh / RefreshRange, served by leaseholders without consensus). If
nothing was, the reads are as good at the new timestamp: the read timestamp
moves up and the txn goes on.

What it does:

* records the spans of successful reads (Get: the key; Scan/ReverseScan:
  the whole requested span — conservative, a limited scan might have read
  less);
* **preemptively** refreshes before a committing EndTxn when the txn's
  write timestamp is above its read timestamp (the server would refuse the
  commit with RETRY_SERIALIZABLE);
* on a refreshable error — WriteTooOld (move to the actual timestamp),
  ReadWithinUncertaintyInterval (move past the uncertain value), a
  TransactionRetryError RETRY_SERIALIZABLE / RETRY_WRITE_TOO_OLD carrying the
  pushed txn (e.g. a parallel commit whose write was pushed) — refreshes to
  the needed timestamp and re-sends the batch, up to
  `config.max_refresh_attempts` times;
* a failed refresh raises `RefreshFailedError` (retryable: `run_txn`
  restarts at a new epoch).

It sits *above* the committer, so that a batch re-sent after a refresh goes
through the committer again, which then never commits it in parallel
(`TxnState.commit_after_refresh`): the earlier attempt may have left a
STAGING record at the old timestamp. Pushed writes on a successful response
do not trigger a refresh by themselves: reads keep happening at the read
timestamp, which is consistent, and the commit refreshes once (CockroachDB
does the same).
"""

from __future__ import annotations

from crdb_py.kvclient import batch as kb
from crdb_py.kvclient.txn.interceptor import (
    READS,
    BatchRequest,
    BatchResponse,
    Interceptor,
    TxnState,
    end_txn,
    set_ts,
    txn_copy,
)
from crdb_py.pb import api_pb2
from crdb_py.util.errors import (
    CrdbError,
    ReadWithinUncertaintyIntervalError,
    RefreshFailedError,
    TransactionRetryError,
    WriteTooOldError,
)
from crdb_py.util.hlc import Timestamp, ts_from_proto

_REFRESHABLE_REASONS = frozenset({"RETRY_SERIALIZABLE", "RETRY_WRITE_TOO_OLD"})


class SpanRefresher(Interceptor):
    name = "span_refresher"

    def __init__(self, state: TxnState) -> None:
        super().__init__(state)
        self.read_spans: list[tuple[bytes, bytes]] = []
        self.refreshes = 0
        self.refresh_failures = 0

    async def send(self, ba: BatchRequest) -> BatchResponse:
        et = end_txn(ba)
        if et is not None and et.commit:
            wts = ts_from_proto(ba.header.txn.meta.write_timestamp)
            if wts > ts_from_proto(ba.header.txn.read_timestamp):
                await self.refresh_to(wts)
                self._bump(ba, wts)
        attempts = 0
        try:
            while True:
                try:
                    br = await self.next(ba)
                except CrdbError as e:
                    new_ts = self.retry_timestamp(e, ba)
                    if new_ts is None or attempts >= self.state.config.max_refresh_attempts:
                        raise
                    attempts += 1
                    await self.refresh_to(new_ts)
                    self._bump(ba, new_ts)
                    if et is not None:
                        self.state.commit_after_refresh = True
                    continue
                self._record_reads(ba, br)
                return br
        finally:
            self.state.commit_after_refresh = False

    # ---- refreshing ------------------------------------------------------------------

    def retry_timestamp(self, e: CrdbError, ba: BatchRequest) -> Timestamp | None:
        """The timestamp a refresh must reach to retry after `e`, or None."""
        cur = ts_from_proto(ba.header.txn.meta.write_timestamp)
        if isinstance(e, RefreshFailedError):
            return None
        if isinstance(e, WriteTooOldError):
            return cur.forward(e.actual_timestamp)
        if isinstance(e, ReadWithinUncertaintyIntervalError):
            return cur.forward(e.existing_timestamp.next())
        if isinstance(e, TransactionRetryError) and e.reason in _REFRESHABLE_REASONS:
            txn = getattr(e, "txn", None)
            if txn is None:
                return None
            ts = ts_from_proto(txn.meta.write_timestamp)
            return ts if ts > ts_from_proto(ba.header.txn.read_timestamp) else None
        return None

    async def refresh_to(self, ts: Timestamp) -> None:
        """Validate every read span from the read timestamp up to `ts`, then
        move the txn's read (and write) timestamp there. Raises
        `RefreshFailedError` when a span changed."""
        old = self.state.read_ts
        if ts <= old:
            return
        if self.read_spans:
            ba = api_pb2.BatchRequest()
            txn = txn_copy(self.state.txn)
            del txn.lock_spans[:]
            del txn.in_flight_writes[:]
            set_ts(txn.read_timestamp, ts)
            set_ts(txn.meta.write_timestamp, ts)
            ba.header.txn.CopyFrom(txn)
            for key, end in _merge(self.read_spans):
                ru = ba.requests.add()
                req = ru.refresh_range if end else ru.refresh
                req.header.key = key
                if end:
                    req.header.end_key = end
                set_ts(req.refresh_from, old)
            try:
                await self.next(ba)  # no EndTxn: passes the committer untouched
            except TransactionRetryError:
                self.refresh_failures += 1
                self.state.trace.failed_refreshes += 1
                raise
        self.refreshes += 1
        self.state.trace.refreshes += 1
        set_ts(self.state.txn.read_timestamp, ts)
        set_ts(self.state.txn.meta.write_timestamp, self.state.write_ts.forward(ts))

    def _bump(self, ba: BatchRequest, ts: Timestamp) -> None:
        t = ba.header.txn
        set_ts(t.read_timestamp, ts_from_proto(t.read_timestamp).forward(ts))
        set_ts(t.meta.write_timestamp, ts_from_proto(t.meta.write_timestamp).forward(ts))

    def _record_reads(self, ba: BatchRequest, br: BatchResponse) -> None:
        for r in ba.requests:
            k = kb.kind(r)
            if k in READS:
                h = kb.inner(r).header
                self.read_spans.append((h.key, h.end_key if k != "get" else b""))
        if len(self.read_spans) > 4096:
            self.read_spans = _merge(self.read_spans)

    def epoch_bumped(self) -> None:
        self.read_spans.clear()


def _merge(spans: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    out: list[tuple[bytes, bytes]] = []
    for k, e in sorted(set(spans)):
        if out:
            pk, pe = out[-1]
            p_end = pe or pk + b"\x00"
            if k < p_end:
                out[-1] = (pk, max(p_end, e or k + b"\x00"))
                continue
        out.append((k, e))
    return out
