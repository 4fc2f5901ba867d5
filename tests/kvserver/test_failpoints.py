"""Server failpoints: where they sit, and killing a real node at each one.

The points (crdb_py/kvserver/replica.py, store.py; armed only through
crdb_py/util/failpoints.py, free when nothing is armed):

* ``kvserver.replica.after_propose`` — a write batch is proposed to raft,
  not yet applied nor acknowledged;
* ``kvserver.end_txn.after_staging_applied`` — a STAGING EndTxn applied on
  the record's leaseholder, the reply not yet sent;
* ``kvserver.store.before_sync`` — the raft log / hard state batch is built
  and about to be written (synced): nothing of it is durable yet.

In-process tests show each point is reached where it claims (pause there,
look, release). The real-process test arms ``kill`` in a node through
``CRDB_PY_FAILPOINTS`` while a transfer workload runs, and checks the node
died there (exit 137), the cluster recovers and no acknowledged txn is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

import pytest

from crdb_py.kvclient.db import DB
from crdb_py.kvclient.txn.rounds import CommitPath
from crdb_py.kvclient.txn.settings import TxnSettings
from crdb_py.kvclient.txn.sync import SyncDB, SyncTxn
from crdb_py.localcluster import ClusterError, LocalCluster
from crdb_py.sim.kvcluster import InProcessKVCluster
from crdb_py.util import failpoints

AFTER_PROPOSE = "kvserver.replica.after_propose"
AFTER_STAGING = "kvserver.end_txn.after_staging_applied"
BEFORE_SYNC = "kvserver.store.before_sync"


@pytest.fixture(autouse=True)
def _reset():
    failpoints.reset()
    yield
    failpoints.reset()


# ---- in process: each point is reached at its moment --------------------------------


def test_points_pause_where_they_claim() -> None:
    async def main() -> None:
        c = InProcessKVCluster(3)
        await c.start()
        try:
            await c.wait_replicated()
            db = c.db(1)
            await db.put(b"warm", b"x")

            # after_propose: the put is parked, its value not readable yet.
            failpoints.enable(AFTER_PROPOSE, "pause*1")
            put = asyncio.ensure_future(db.put(b"k", b"v"))
            assert await failpoints.wait_reached(AFTER_PROPOSE, 10)
            await asyncio.sleep(0.05)
            assert not put.done()
            failpoints.release(AFTER_PROPOSE)
            await asyncio.wait_for(put, 10)
            assert await db.get(b"k") == b"v"
            failpoints.disable(AFTER_PROPOSE)

            # after_staging_applied: only a parallel commit passes it.
            failpoints.enable(AFTER_STAGING, "sleep(0)")
            two_pc = DB(db.sender, settings=TxnSettings(parallel_commits=False))
            for d, want_hits in ((two_pc, 0), (db, 1)):
                before = failpoints.hits(AFTER_STAGING)
                t = d.txn()
                await t.put(b"s1", b"1")
                await t.put(b"s2", b"2")
                await t.commit()
                assert failpoints.hits(AFTER_STAGING) - before == want_hits, t.trace.describe()
            assert t.trace.commit_path is CommitPath.PARALLEL

            # ... and an error there fails the commit's reply, not the commit
            # decision: the txn is staged with all its writes, so it is committed.
            failpoints.enable(AFTER_STAGING, "error(reply lost)*1")
            t = db.txn()
            await t.put(b"e1", b"1")
            await t.put(b"e2", b"2")
            with pytest.raises(Exception):  # noqa: B017 - whatever the coordinator makes of it
                await t.commit()
            for k in (b"e1", b"e2"):
                assert await asyncio.wait_for(db.get(k), 20) in (b"1", b"2")

            # before_sync: every raft write passes it.
            failpoints.enable(BEFORE_SYNC, "sleep(0)")
            before = failpoints.hits(BEFORE_SYNC)
            await db.put(b"k2", b"v")
            assert failpoints.hits(BEFORE_SYNC) > before
        finally:
            failpoints.reset()
            await c.close()

    asyncio.run(asyncio.wait_for(main(), 90))


# ---- real processes: kill -9 at each point ---------------------------------------------

A, B, N = b"fp-a", b"fp-b", b"fp-n"  # two accounts and a counter of committed transfers


class _Transfers(threading.Thread):
    def __init__(self, db: SyncDB) -> None:
        super().__init__(daemon=True)
        self.db = db
        self.stop = threading.Event()
        self.acked = 0
        self.unknown = 0  # errors: may or may not have committed

    def run(self) -> None:
        def fn(t: SyncTxn) -> None:
            a, b, n = (int(t.get(k) or b"0") for k in (A, B, N))
            t.put(A, b"%d" % (a - 1))
            t.put(B, b"%d" % (b + 1))
            t.put(N, b"%d" % (n + 1))

        while not self.stop.is_set():
            try:
                self.db.run_txn(fn, max_retries=30)
                self.acked += 1
            except Exception:
                self.unknown += 1


def _read(db: SyncDB) -> tuple[int, ...]:
    return db.run_txn(lambda t: tuple(int(t.get(k)) for k in (A, B, N)))


def _check(db: SyncDB, w: _Transfers, n0: int) -> None:
    a, b, n = _read(db)
    assert a + b == 200, (a, b)
    assert b - 100 == n, "a transfer half applied"
    assert w.acked <= n - n0 <= w.acked + w.unknown, (w.acked, n - n0, w.unknown)


def _kill_at(c: LocalCluster, db: SyncDB, victim: int, point: str, move_lease: bool) -> None:
    n0 = _read(db)[2]
    w = _Transfers(db)
    w.start()
    try:
        c.restart(victim, env={failpoints.ENV_VAR: f"{point}=kill*1"}, wait=False)
        if move_lease:
            c.wait_ready(victim)
        deadline = time.monotonic() + 30
        while c.is_running(victim) and time.monotonic() < deadline:
            if move_lease:  # (again, should the lease have moved away)
                with contextlib.suppress(Exception):
                    c.kv().transfer_lease(A, c.node_id(victim))
            with contextlib.suppress(ClusterError):
                c.wait_for(lambda: not c.is_running(victim), 3)
        assert not c.is_running(victim), f"n{victim} never reached {point}"
        assert c.exit_code(victim) == 137, f"n{victim} exited {c.exit_code(victim)}, not at {point}"
        c.restart(victim, env={})
        acked = w.acked
        c.wait_for(lambda: w.acked >= acked + 3, 30, "transfers to resume")
    finally:
        w.stop.set()
        w.join(60)
    _check(db, w, n0)


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(3, lease_duration=1.5, liveness_timeout=1.5, sql=False) as c:
        kv = c.kv()
        kv.split(b"fp-")
        for k, v in ((A, b"100"), (B, b"100"), (N, b"0")):
            kv.put(k, v)
        yield c


@pytest.mark.parametrize("point,move_lease", [
    (AFTER_PROPOSE, True), (AFTER_STAGING, True), (BEFORE_SYNC, False),
])
def test_node_killed_at_a_failpoint_loses_nothing_acknowledged(
    cluster: LocalCluster, point: str, move_lease: bool
) -> None:
    c = cluster
    kv = c.kv()
    db = SyncDB(kv.db, kv._loop, timeout=10.0)
    victim = (c.leaseholder(A) + 1) % 3  # not the leaseholder the client talks to
    _kill_at(c, db, victim, point, move_lease)
