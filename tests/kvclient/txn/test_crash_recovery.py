"""A coordinator that dies between STAGING and the ack: on the real server
(in-process cluster) the next txn to meet its intents finds the STAGING
record, waits for it to expire, recovers it and sees it committed (every
write landed). And the same with the coordinator in a child process,
killed (``os._exit``) at the failpoint, on a real 3-process `LocalCluster`."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from crdb_py.kvclient.db import DB, Batch
from crdb_py.kvclient.txn.committer import FP_BEFORE_ACK
from crdb_py.pb import data_pb2
from crdb_py.sim.kvcluster import InProcessKVCluster
from crdb_py.util import failpoints


def test_staging_txn_of_a_dead_coordinator_is_recovered_as_committed() -> None:
    async def main() -> None:
        c = InProcessKVCluster(3)
        await c.start()
        try:
            plain = c.db()
            await plain.put(b"warm", b"x")
            await c.wait_replicated()
            await plain.admin_split(b"m")
            await c.wait_replicated()
            db = DB(plain.sender)
            failpoints.enable(FP_BEFORE_ACK, "error(coordinator died)")
            t = db.txn()
            await t.put(b"a", b"1")
            try:
                await t.commit_in_batch(Batch().put(b"z", b"2"))
            except failpoints.FailpointError:
                pass
            else:
                raise AssertionError("the failpoint did not fire")
            finally:
                failpoints.disable(FP_BEFORE_ACK)
            t.coord.close()  # dead: no heartbeats, no explicit commit
            assert t.coord.txn.status != data_pb2.COMMITTED
            # Another client meets the intents: after the record expires it
            # recovers the STAGING txn, which is implicitly committed.
            assert await asyncio.wait_for(plain.get(b"z"), 30) == b"2"
            assert await plain.get(b"a") == b"1"
        finally:
            failpoints.reset()
            await c.close()

    asyncio.run(asyncio.wait_for(main(), 90))


CHILD = r"""
import asyncio, sys
from crdb_py.kvclient.db import DB, Batch
from crdb_py.localcluster import open_kv

nodes = {int(k): v for k, v in (x.split("=", 1) for x in sys.argv[1].split(","))}
kv = open_kv(nodes)

async def go():
    db = DB(kv.db.sender)

    async def fn(t):
        await t.put(b"\x05crash-a", b"1")
        await t.commit_in_batch(Batch().put(b"\x05crash-z", b"2"))

    # run_txn: an attempt may restart (e.g. a proof that found a pipelined
    # write missing); the kill fires at the first attempt that reaches the ack.
    await db.run_txn(fn)
    print("ACKED", flush=True)   # never reached: killed before the ack

kv.run(lambda _db: go())
"""


def test_coordinator_process_killed_before_ack_on_a_real_cluster(tmp_path) -> None:
    from crdb_py.localcluster import LocalCluster

    with LocalCluster(nodes=3, start_timeout=40) as c:
        kv = c.kv()
        kv.put(b"\x05warm", b"x")
        kv.split(b"\x05m")
        nodes = ",".join(f"{c.node_id(i)}={c.address(i)}" for i in range(3))
        env = dict(os.environ, CRDB_PY_FAILPOINTS=f"{FP_BEFORE_ACK}=kill")
        p = subprocess.run(
            [sys.executable, "-c", CHILD, nodes], env=env, capture_output=True, timeout=120
        )
        assert p.returncode == 137, p.stderr.decode()[-2000:]
        assert b"ACKED" not in p.stdout
        # The record is STAGING with both writes in place: recovery commits.
        assert kv.get(b"\x05crash-z") == b"2"
        assert kv.get(b"\x05crash-a") == b"1"


class _LoseAsyncWrite:
    """Wraps a sender: acks a pipelined write of `key` without sending it
    (the proposal was lost), so its intent never appears."""

    def __init__(self, inner, key: bytes) -> None:  # type: ignore[no-untyped-def]
        self.inner = inner
        self.key = key
        self.range_cache = inner.range_cache

    async def send(self, ba):  # type: ignore[no-untyped-def]
        from crdb_py.kvclient import batch as kb
        from crdb_py.pb import api_pb2

        if ba.header.async_consensus and any(
            kb.kind(r) == "put" and r.put.header.key == self.key for r in ba.requests
        ):
            br = api_pb2.BatchResponse()
            for r in ba.requests:
                br.responses.append(kb.empty_response_for(r))
            br.header.txn.CopyFrom(ba.header.txn)
            return br
        return await self.inner.send(ba)


def test_staging_txn_with_a_missing_write_is_recovered_as_aborted() -> None:
    async def main() -> None:
        c = InProcessKVCluster(3)
        await c.start()
        try:
            plain = c.db()
            await plain.put(b"warm", b"x")
            await c.wait_replicated()
            await plain.admin_split(b"m")
            await c.wait_replicated()
            db = DB(_LoseAsyncWrite(plain.sender, b"z"))
            t = db.txn()
            await t.put(b"c", b"1")  # anchor, lands
            await t.put(b"z", b"1")  # lost
            try:
                await t.commit_in_batch(Batch().put(b"d", b"1"))
            except Exception as e:  # the proof of z fails; the STAGING part may land
                assert getattr(e, "retryable", False), e
            else:
                raise AssertionError("a txn with a lost write was acknowledged")
            t.coord.close()  # the coordinator dies here
            assert not t.committed
            assert await asyncio.wait_for(plain.get(b"c"), 30) is None
            assert await plain.get(b"d") is None
            assert await plain.get(b"z") is None
        finally:
            await c.close()

    asyncio.run(asyncio.wait_for(main(), 90))
