"""The store's raft-log writer (crdb_py/kvserver/logwriter.py).

Unit level, against a scripted engine on a real loop: callbacks run on the
loop in order and only after the sync that covers them; requests queued
while a sync runs share the next one (group commit); a failed sync is fatal
and nothing queued behind it ever completes; the writer is chosen so the
simulator stays inline.

Store level, on an in-process 3-node cluster over RocksDB stores with synced
writes (so the background writer is in use): with the sync parked at the
``kvserver.store.before_sync`` failpoint no acknowledgement of the new entry
leaves any node and the put does not complete, while the loop keeps serving
reads and processing other ranges' Readies; a failed fsync stops the store;
steady writes (log truncation included) never fsync through rocksdict on the
loop. And one real node process: a failed fsync makes it exit (EX_IOERR).
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from crdb_py.kvserver.logwriter import (
    BEFORE_SYNC,
    BackgroundLogWriter,
    InlineLogWriter,
    new_log_writer,
)
from crdb_py.kvserver.store import StoreConfig
from crdb_py.pb import raft_pb2
from crdb_py.raft import MessageType
from crdb_py.sim import kvcluster
from crdb_py.sim.kvcluster import InProcessKVCluster
from crdb_py.sim.vloop import VirtualEventLoop
from crdb_py.storage import MemEngine
from crdb_py.storage.rocks import RocksEngine
from crdb_py.util import failpoints


@pytest.fixture(autouse=True)
def _reset() -> Any:
    failpoints.reset()
    yield
    failpoints.reset()


class ScriptedEngine:
    """Records writes and syncs (with the thread that made them); a sync can
    be held at a gate or made to fail."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any, str]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.in_sync = threading.Event()
        self.fail: BaseException | None = None
        self._written = 0

    def new_batch(self) -> MemEngine:
        return MemEngine()

    def write(self, batch: Any, *, sync: bool = False) -> None:
        self._written += 1
        self.events.append(("write", (self._written, sync), threading.current_thread().name))

    def sync_wal(self) -> None:
        covered = self._written  # everything written before the sync began
        self.in_sync.set()
        self.gate.wait(10)
        if self.fail is not None:
            raise self.fail
        self.events.append(("sync", covered, threading.current_thread().name))


def _run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 60))


# ---- unit: the background writer --------------------------------------------------


def test_callbacks_run_on_the_loop_in_order_after_the_sync_covering_them() -> None:
    async def main() -> None:
        eng = ScriptedEngine()
        loop = asyncio.get_running_loop()
        w = BackgroundLogWriter(eng, loop, on_fatal=lambda e: pytest.fail(f"fatal: {e}"))
        done: list[tuple[int, int, bool]] = []  # (request, writes covered by then, on loop thread)
        try:
            for i in range(5):
                w.write(object(), sync=True)

                def cb(i: int = i) -> None:
                    synced = max((c for kind, c, _ in eng.events if kind == "sync"), default=0)
                    done.append((i, synced, threading.current_thread() is threading.main_thread()))

                w.sync(cb)
            while len(done) < 5:
                await asyncio.sleep(0.005)
        finally:
            w.close()
        assert [d[0] for d in done] == list(range(5))
        for i, synced, on_loop in done:
            assert synced >= i + 1, f"request {i} completed before its write was synced"
            assert on_loop
        # The engine never synced on the loop, and never synced through `write`.
        assert all(not sync for kind, (_, sync), _ in
                   [(k, c, t) for k, c, t in eng.events if k == "write"])
        assert all(t != threading.main_thread().name for k, _, t in eng.events if k == "sync")

    _run(main())


def test_requests_queued_during_a_sync_share_the_next_one() -> None:
    async def main() -> None:
        eng = ScriptedEngine()
        eng.gate.clear()
        w = BackgroundLogWriter(eng, asyncio.get_running_loop(), on_fatal=lambda e: None)
        done: list[int] = []
        try:
            w.write(object(), sync=True)
            w.sync(lambda: done.append(0))
            assert await asyncio.to_thread(eng.in_sync.wait, 5)
            for i in range(1, 7):  # six more turns while the first fsync runs
                w.write(object(), sync=True)
                w.sync(lambda i=i: done.append(i))
            await asyncio.sleep(0.05)
            assert done == []  # nothing completes before its sync
            eng.gate.set()
            while len(done) < 7:
                await asyncio.sleep(0.005)
        finally:
            w.close()
        assert done == list(range(7))
        assert w.syncs == 2 and w.max_group == 6 and w.synced_requests == 7

    _run(main())


def test_a_failed_sync_is_fatal_and_nothing_behind_it_completes() -> None:
    async def main() -> None:
        eng = ScriptedEngine()
        eng.gate.clear()
        eng.fail = OSError(5, "Input/output error")
        fatal: list[BaseException] = []
        w = BackgroundLogWriter(eng, asyncio.get_running_loop(), on_fatal=fatal.append)
        done: list[int] = []
        try:
            w.write(object(), sync=True)
            w.sync(lambda: done.append(0))
            assert await asyncio.to_thread(eng.in_sync.wait, 5)
            w.write(object(), sync=True)
            w.sync(lambda: done.append(1))
            eng.gate.set()
            deadline = time.monotonic() + 5
            while not fatal and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
            await asyncio.sleep(0.05)
            assert len(fatal) == 1 and fatal[0] is eng.fail
            assert done == []
            with pytest.raises(OSError):
                w.write(object(), sync=True)
            with pytest.raises(OSError):
                w.sync(lambda: done.append(2))
        finally:
            w.close()
        assert done == []

    _run(main())


def test_the_failpoint_parks_the_sync_not_the_loop() -> None:
    async def main() -> None:
        eng = ScriptedEngine()
        w = BackgroundLogWriter(eng, asyncio.get_running_loop(), on_fatal=lambda e: None)
        failpoints.enable(BEFORE_SYNC, "pause")
        done: list[int] = []
        try:
            w.write(object(), sync=True)
            w.sync(lambda: done.append(1))
            assert await failpoints.wait_reached(BEFORE_SYNC, 5)
            ticks = 0
            for _ in range(20):  # the loop runs on
                await asyncio.sleep(0.005)
                ticks += 1
            assert ticks == 20 and done == []
            assert not any(k == "sync" for k, _, _ in eng.events)
            failpoints.release(BEFORE_SYNC)
            while not done:
                await asyncio.sleep(0.005)
        finally:
            failpoints.reset()
            w.close()
        assert [k for k, _, _ in eng.events] == ["write", "sync"]

    _run(main())


def test_inline_writer_syncs_in_the_call_and_fires_the_failpoint() -> None:
    eng = ScriptedEngine()
    w = InlineLogWriter(eng)
    failpoints.enable(BEFORE_SYNC, "sleep(0)")
    w.write(object(), sync=True)
    done: list[int] = []
    w.sync(lambda: done.append(1))
    assert eng.events == [("write", (1, True), threading.current_thread().name)]
    assert done == [1] and failpoints.hits(BEFORE_SYNC) == 1


def test_auto_picks_background_only_for_rocks_with_sync_on_a_real_loop(tmp_path: Any) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        rocks = RocksEngine(str(tmp_path / "r"))
        try:
            picks = {
                "rocks, synced": new_log_writer("auto", rocks, loop, print, sync_writes=True),
                "rocks, unsynced": new_log_writer("auto", rocks, loop, print, sync_writes=False),
                "mem": new_log_writer("auto", MemEngine(), loop, print, sync_writes=True),
                "forced inline": new_log_writer("inline", rocks, loop, print, sync_writes=True),
            }
            vloop = VirtualEventLoop()
            try:
                picks["virtual loop"] = new_log_writer("auto", rocks, vloop, print, sync_writes=True)
            finally:
                vloop.close()
            kinds = {k: type(w).__name__ for k, w in picks.items()}
            for w in picks.values():
                w.close()
        finally:
            rocks.close()
        assert kinds == {
            "rocks, synced": "BackgroundLogWriter",
            "rocks, unsynced": "InlineLogWriter",
            "mem": "InlineLogWriter",
            "forced inline": "InlineLogWriter",
            "virtual loop": "InlineLogWriter",
        }
        with pytest.raises(TypeError):
            BackgroundLogWriter(MemEngine(), loop, print)
        with pytest.raises(ValueError):
            new_log_writer("sometimes", MemEngine(), loop, print, sync_writes=True)

    _run(main())


def test_rocks_sync_wal_makes_unsynced_writes_durable_across_wal_switches(tmp_path: Any) -> None:
    path = str(tmp_path / "wal")
    eng = RocksEngine(path)
    try:
        for i in range(3):
            b = eng.new_batch()
            b.put(b"k%d" % i, b"v%d" % i)
            eng.write(b, sync=False)
            eng.sync_wal()
            if i == 1:
                eng.flush()  # memtable flush: RocksDB may switch to a new WAL file
        assert len(eng._wal_fds) >= 1
    finally:
        eng.close()
    assert eng._wal_fds == {}
    again = RocksEngine(path)
    try:
        assert [again.get(b"k%d" % i) for i in range(3)] == [b"v0", b"v1", b"v2"]
    finally:
        again.close()


# ---- store level: a 3-node cluster on RocksDB with synced writes ------------------


class _Recorder:
    """Wraps a node's transport; records the raft messages it sends."""

    def __init__(self, node_id: int, inner: Any, log: list[tuple[float, int, Any]]) -> None:
        self._node_id = node_id
        self._inner = inner
        self._log = log

    def send_raft_message(self, node: int, req: raft_pb2.RaftMessageRequest) -> bool:
        m = raft_pb2.RaftMessageRequest()
        m.CopyFrom(req)
        self._log.append((time.monotonic(), self._node_id, m))
        return self._inner.send_raft_message(node, req)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class FlakyRocks(RocksEngine):
    """A RocksEngine whose WAL sync can be made to fail, counting the synced
    writes made through rocksdict (each one an fsync under the GIL)."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.fail_sync = False
        self.synced_writes = 0

    def write(self, batch: Any, *, sync: bool = False) -> None:
        self.synced_writes += sync
        super().write(batch, sync=sync)

    def sync_wal(self) -> None:
        if self.fail_sync:
            raise OSError(5, "Input/output error (injected)")
        super().sync_wal()


@pytest.fixture
def rocks_cluster(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Any:
    """`make(n)` -> an InProcessKVCluster whose nodes run RocksDB stores with
    synced writes (the real nodes' configuration), recording raft messages."""
    engines: list[FlakyRocks] = []

    def engine() -> FlakyRocks:
        e = FlakyRocks(str(tmp_path / f"n{len(engines) + 1}"))
        engines.append(e)
        return e

    monkeypatch.setattr(kvcluster, "MemEngine", engine)
    monkeypatch.setattr(
        kvcluster, "StoreConfig", lambda **kw: StoreConfig(**{**kw, "sync_writes": True})
    )
    sent: list[tuple[float, int, Any]] = []

    def make(n: int = 3, **kw: Any) -> InProcessKVCluster:
        return InProcessKVCluster(
            n, wrap_transport=lambda i, t: _Recorder(i, t, sent), **kw
        )

    make.sent = sent  # type: ignore[attr-defined]
    make.engines = engines  # type: ignore[attr-defined]
    yield make
    for e in engines:
        e.close()


def _acks_of(sent: list[tuple[float, int, Any]], range_id: int, above: int, t0: float) -> list[Any]:
    """Durability-dependent replies for `range_id` sent after `t0` that
    acknowledge an index above `above` (or grant a vote)."""
    out = []
    for t, _, req in sent:
        if t < t0 or req.range_id != range_id:
            continue
        m = req.message
        if m.type == MessageType.APP_RESP and not m.reject and m.index > above:
            out.append((t, req))
        elif m.type in (MessageType.VOTE_RESP, MessageType.PRE_VOTE_RESP) and not m.reject:
            out.append((t, req))
    return out


def test_store_sends_no_ack_before_its_log_is_synced(rocks_cluster: Any) -> None:
    async def main() -> None:
        c = rocks_cluster(3)
        await c.start()
        try:
            await c.wait_replicated()
            for n in c.nodes.values():
                assert type(n.store.log_writer()).__name__ == "BackgroundLogWriter"
            db = c.db(1)
            await db.put(b"warm", b"x")
            await db.put(b"other", b"o")
            lh = c.leaseholder(1)
            assert lh is not None
            leader = c.nodes[lh].store.replicas[1]
            before = leader.raft_storage.last_index()

            failpoints.enable(BEFORE_SYNC, "pause")
            t_pause = time.monotonic()
            put = asyncio.ensure_future(db.put(b"k", b"v"))
            assert await failpoints.wait_reached(BEFORE_SYNC, 10)
            # While every node's fsync is parked the loops keep serving: a
            # read of another key is answered by the leaseholder ...
            assert await asyncio.wait_for(db.get(b"other"), 5) == b"o"
            await asyncio.sleep(0.3)
            # ... the entry reached the followers (appends go out before the
            # leader's own sync) ...
            appends = [req for t, _, req in rocks_cluster.sent
                       if t >= t_pause and req.range_id == 1
                       and req.message.type == MessageType.APP
                       and any(e.index > before for e in req.message.entries)]
            assert appends, "the leader held its appends back for its own sync"
            # ... but nobody acknowledged it, and the put is not applied.
            assert _acks_of(rocks_cluster.sent, 1, before, t_pause) == []
            assert not put.done()
            t_release = time.monotonic()
            failpoints.release(BEFORE_SYNC)
            await asyncio.wait_for(put, 10)
            acks = _acks_of(rocks_cluster.sent, 1, before, t_pause)
            assert acks and all(t >= t_release for t, _ in acks)
            assert await db.get(b"k") == b"v"
        finally:
            failpoints.reset()
            await c.close()

    _run(main())


def test_store_group_commits_turns_of_several_ranges(rocks_cluster: Any) -> None:
    async def main() -> None:
        c = rocks_cluster(3)
        await c.start()
        try:
            await c.wait_replicated()
            db = c.db(1)
            for split in (b"b", b"c"):
                await db.admin_split(split)
            await c.wait_replicated()
            keys = [b"a1", b"b1", b"c1"]
            for k in keys:
                await db.put(k, b"warm")
            failpoints.enable(BEFORE_SYNC, "pause")
            first = asyncio.ensure_future(db.put(keys[0], b"1"))
            assert await failpoints.wait_reached(BEFORE_SYNC, 10)
            writers = [n.store.log_writer() for n in c.nodes.values()]
            base = [(w.syncs, w.synced_requests) for w in writers]
            # Two more ranges write, in separate scheduler turns, while the
            # first fsyncs are parked: their Readies are processed (the loop
            # is free) and both turns queue for the next fsync.
            rest = []
            for k in keys[1:]:
                rest.append(asyncio.ensure_future(db.put(k, b"1")))
                await asyncio.sleep(0.15)
            assert not any(f.done() for f in [first, *rest])
            failpoints.release(BEFORE_SYNC)
            await asyncio.wait_for(asyncio.gather(first, *rest), 15)
            grouped = [
                (w.synced_requests - r0) - (w.syncs - s0) for w, (s0, r0) in zip(writers, base)
            ]
            # (Which turns share an fsync on a given node depends on when its
            # first sync parked, so ask for grouping overall, not per node.)
            assert sum(grouped) >= 2, f"fsyncs per node minus turns: {grouped}"
            assert max(w.max_group for w in writers) >= 2
            assert [await db.get(k) for k in keys] == [b"1", b"1", b"1"]
        finally:
            failpoints.reset()
            await c.close()

    _run(main())


def test_store_stops_on_a_failed_fsync(rocks_cluster: Any) -> None:
    async def main() -> None:
        c = rocks_cluster(1, replication_factor=1)
        await c.start()
        try:
            await c.wait_replicated()
            store = c.nodes[1].store
            fatal: list[BaseException] = []
            store.on_fatal = fatal.append
            db = c.db(1)
            await db.put(b"a", b"1")
            rocks_cluster.engines[0].fail_sync = True
            put = asyncio.ensure_future(db.put(b"b", b"2"))
            deadline = time.monotonic() + 10
            while not fatal and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            assert len(fatal) == 1 and isinstance(fatal[0], OSError)
            assert store.stopped
            await asyncio.sleep(0.2)
            # The write was never acknowledged as a success.
            if put.done() and not put.cancelled():
                assert put.exception() is not None
            else:
                put.cancel()
        finally:
            await c.close()

    _run(main())


def test_steady_writes_and_log_truncation_never_fsync_on_the_loop(rocks_cluster: Any) -> None:
    async def main() -> None:
        c = rocks_cluster(3, raft_log_max_entries=20)
        await c.start()
        try:
            await c.wait_replicated()
            db = c.db(1)
            await db.put(b"warm", b"x")
            engines = rocks_cluster.engines
            before = [e.synced_writes for e in engines]
            lh = c.leaseholder(1)
            assert lh is not None
            first = c.nodes[lh].store.replicas[1].raft_storage.first_index()
            for i in range(80):
                await db.put(b"k%03d" % i, b"%d" % i)
            deadline = time.monotonic() + 10
            st = c.nodes[lh].store.replicas[1].raft_storage
            while st.first_index() <= first and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert st.first_index() > first, "the raft log was never truncated"
            assert [e.synced_writes for e in engines] == before
            syncs = sum(n.store.log_writer().syncs for n in c.nodes.values())
            assert syncs >= 80  # ... the fsyncs all ran on the writer threads
            assert await db.get(b"k079") == b"79"
        finally:
            await c.close()

    _run(main())


# ---- a real node process --------------------------------------------------------


def test_real_node_exits_when_its_raft_log_cannot_be_synced() -> None:
    """A node (RocksDB store, synced writes: the background writer) whose
    fsync fails — injected at the failpoint on the writer's thread — exits
    with EX_IOERR instead of serving on."""
    from crdb_py.kvserver.store import DISK_FAILURE_EXIT
    from crdb_py.localcluster import LocalCluster

    with LocalCluster(1, replication_factor=1, sql=False) as c:
        c.kv().put(b"before", b"1")
        c.restart(0, env={failpoints.ENV_VAR: f"{BEFORE_SYNC}=error(disk gone)*1"}, wait=False)
        c.wait_for(lambda: not c.is_running(0), 30, "the node to exit on the failed sync")
        assert c.exit_code(0) == DISK_FAILURE_EXIT
        with open(c.log_path(0)) as f:
            log_text = f.read()
        assert "raft log write/sync failed" in log_text and "disk gone" in log_text
        c.restart(0, env={})  # the store itself is intact
        assert c.kv().get(b"before") == b"1"
