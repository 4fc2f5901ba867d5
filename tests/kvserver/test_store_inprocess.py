"""Store, replicas, leases, splits and up-replication on an in-process cluster."""

from __future__ import annotations

import asyncio

from crdb_py.sim.kvcluster import InProcessKVCluster


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))

def test_single_node_put_get_scan():
    async def main():
        c = InProcessKVCluster(1, replication_factor=1)
        await c.start()
        try:
            db = c.db()
            await db.put(b"a", b"1")
            await db.put(b"b", b"2")
            assert await db.get(b"a") == b"1"
            assert await db.get(b"zz") is None
            rows = await db.scan(b"a", b"z")
            assert [(k, v) for k, v in rows] == [(b"a", b"1"), (b"b", b"2")]
            assert await db.inc(b"n", 5) == 5
            assert await db.inc(b"n", 2) == 7
        finally:
            await c.close()

    run(main())

def test_three_nodes_replicate_and_split():
    async def main():
        c = InProcessKVCluster(3)
        await c.start()
        try:
            db = c.db()
            await db.put(b"k1", b"v1")
            await c.wait_replicated()
            for i in range(20):
                await db.put(b"key%02d" % i, b"val%d" % i)
            await db.admin_split(b"key10")
            await c.wait_replicated()
            rows = await db.scan(b"key", b"kez")
            assert [k for k, _ in rows] == [b"key%02d" % i for i in range(20)]
            # every node holds every range's data after replication
            for n in c.nodes.values():
                assert len([r for r in n.store.replicas.values() if r.initialized]) == 2
        finally:
            await c.close()

    run(main())
