"""Replacing the replicas of dead nodes (replicate_queue.py, Store.dead_node_ids).

Unit tests of the planner, then an in-process cluster of 4 nodes with
replication factor 3: a node dies for good, its replicas move to the spare
node, and a second failure leaves every range available — which, with
replacement disabled, it does not.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from crdb_py.kvserver.replicate_queue import Change, needed_voters, plan_change
from crdb_py.pb import data_pb2
from crdb_py.sim.kvcluster import InProcessKVCluster
from crdb_py.storage.mvcc_key import span_bounds

V, L = data_pb2.VOTER_FULL, data_pb2.LEARNER
SPLITS = [b"k2", b"k4", b"k6"]
KEYS = [b"k1", b"k3", b"k5", b"k7"]  # one per user range


def run(coro, timeout: float = 90):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def desc(*replicas: tuple[int, int, int], range_id: int = 7) -> data_pb2.RangeDescriptor:
    """replicas: (replica_id, node_id, type)."""
    d = data_pb2.RangeDescriptor(range_id=range_id, start_key=b"a", end_key=b"z", next_replica_id=10)
    for rid, node, typ in replicas:
        d.replicas.add(replica_id=rid, node_id=node, store_id=node, type=typ)
    return d


def plan(d, *, live, dead=(), me=1, rf=3, caught_up=lambda _rid: True) -> Change:
    return plan_change(d, self_replica_id=me, live=live, dead=dead, replication_factor=rf,
                       caught_up=caught_up)


# ---- the planner --------------------------------------------------------------------


def test_plan_replaces_dead_voter_add_then_promote_then_remove():
    three = desc((1, 1, V), (2, 2, V), (3, 3, V))
    ch = plan(three, live=[1, 2, 4], dead=[3])
    assert (ch.kind, ch.node_id) == ("add", 4)
    assert "replacing dead n3" in ch.reason
    # not yet dead (only not live): nothing moves
    assert plan(three, live=[1, 2, 4]).kind == "none"
    with_learner = desc((1, 1, V), (2, 2, V), (3, 3, V), (4, 4, L))
    assert plan(with_learner, live=[1, 2, 4], dead=[3], caught_up=lambda _r: False).kind == "none"
    ch = plan(with_learner, live=[1, 2, 4], dead=[3])
    assert (ch.kind, ch.replica_id) == ("promote", 4)
    four = desc((1, 1, V), (2, 2, V), (3, 3, V), (4, 4, V))
    ch = plan(four, live=[1, 2, 4], dead=[3])
    assert (ch.kind, ch.replica_id, ch.node_id) == ("remove", 3, 3)
    healthy = desc((1, 1, V), (2, 2, V), (4, 4, V))
    assert plan(healthy, live=[1, 2, 4], dead=[3]) == Change("none", "")


def test_plan_without_spare_node_does_nothing_and_says_so():
    three = desc((1, 1, V), (2, 2, V), (3, 3, V))
    ch = plan(three, live=[1, 2], dead=[3])
    assert ch.kind == "none"
    assert "no spare live node" in ch.reason and "n3" in ch.reason


def test_plan_removes_learner_on_dead_node_first():
    d = desc((1, 1, V), (2, 2, V), (3, 3, V), (5, 4, L))
    ch = plan(d, live=[1, 2, 3], dead=[4])
    assert (ch.kind, ch.replica_id) == ("remove", 5)


def test_plan_never_removes_below_a_live_quorum_nor_itself():
    # 5 voters, two dead and one merely not live: removing a dead one
    # leaves 4 voters with 2 live, short of a quorum of 3.
    d = desc((1, 1, V), (2, 2, V), (3, 3, V), (4, 4, V), (5, 5, V))
    ch = plan(d, live=[1, 2, 6], dead=[3, 4], rf=5)
    assert ch.kind == "none" and "no live quorum" in ch.reason
    d4 = desc((1, 1, V), (2, 2, V), (3, 3, V), (4, 4, V))
    ch = plan(d4, live=[1, 4], dead=[3], rf=3)  # n2 not live, not dead: 2 of 3 live
    assert (ch.kind, ch.replica_id) == ("remove", 3)
    ch = plan(d4, live=[1], dead=[3], rf=3)  # 1 of 3 live after: no
    assert ch.kind == "none" and "no live quorum" in ch.reason
    # the leaseholder's own node is never "dead" to itself
    ch = plan(d4, live=[2, 3, 4], dead=[1], me=1)
    assert not (ch.kind == "remove" and ch.replica_id == 1)


def test_plan_trims_voters_above_the_replication_factor():
    # n3 came back after its replacement on n4 was promoted: 4 live voters.
    four = desc((1, 1, V), (2, 2, V), (3, 3, V), (4, 4, V))
    ch = plan(four, live=[1, 2, 3, 4])
    assert (ch.kind, ch.replica_id) == ("remove", 2)  # oldest that is not the leaseholder
    ch = plan(four, live=[1, 2, 3, 4], caught_up=lambda r: r != 3)
    assert (ch.kind, ch.replica_id) == ("remove", 3)  # a lagging one first
    ch = plan(four, live=[1, 2, 4])  # n3 not live (not dead): it goes first
    assert (ch.kind, ch.replica_id) == ("remove", 3)
    assert plan(desc((1, 1, V), (2, 2, V), (3, 3, V)), live=[1, 2, 3, 4]).kind == "none"


def test_plan_promotion_needs_a_live_quorum():
    d = desc((1, 1, V), (2, 2, V), (3, 3, V), (4, 4, L))
    ch = plan(d, live=[1, 4])  # n2, n3 unreachable: 4 voters would need 3 live
    assert ch.kind == "none" and "no live quorum" in ch.reason


def test_needed_voters_follows_cockroachdb():
    assert needed_voters(3, 4) == 3
    assert needed_voters(3, 2) == 3
    assert needed_voters(5, 4) == 3
    assert needed_voters(5, 7) == 5
    assert needed_voters(1, 1) == 1


# ---- on a cluster -------------------------------------------------------------------


def leaseholder_descs(c: InProcessKVCluster) -> dict[int, data_pb2.RangeDescriptor]:
    out: dict[int, data_pb2.RangeDescriptor] = {}
    for n in c.nodes.values():
        if not n.running:
            continue
        for r in n.store.replicas.values():
            if r.desc is not None and not r.destroyed and r.owns_valid_lease():
                out[r.range_id] = r.desc
    return out


async def wait_until(cond, timeout: float, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def setup(dead_after: float, **knobs) -> tuple[InProcessKVCluster, int]:
    """4 nodes, RF 3, 4 user ranges + range 1; returns the cluster and the
    node holding the most replicas (the victim)."""
    c = InProcessKVCluster(4, replication_factor=3, time_until_store_dead=dead_after, **knobs)
    await c.start()
    db = c.db()
    for k in KEYS:
        await db.put(k, b"v0")
    for s in SPLITS:
        await db.admin_split(s)
    await c.wait_replicated()
    await wait_until(lambda: len(leaseholder_descs(c)) == 1 + len(SPLITS), 15, "leaseholders")
    counts: dict[int, int] = {}
    for d in leaseholder_descs(c).values():
        for x in d.replicas:
            counts[x.node_id] = counts.get(x.node_id, 0) + 1
    victim = max(sorted(counts), key=lambda n: counts[n])
    assert counts[victim] >= 2
    return c, victim


def replaced(c: InProcessKVCluster, dead: int, nranges: int) -> bool:
    live = set(c.live_node_ids())
    descs = leaseholder_descs(c)
    if len(descs) != nranges:
        return False
    for d in descs.values():
        voters = [x.node_id for x in d.replicas if x.type == V]
        if len(voters) != 3 or len(d.replicas) != 3 or dead in voters or not set(voters) <= live:
            return False
    return True


def sharing(c: InProcessKVCluster, victim: int) -> tuple[int, bytes]:
    """A live node sharing a user range with the victim, and a key in it."""
    for d in leaseholder_descs(c).values():
        nodes = [x.node_id for x in d.replicas]
        if victim in nodes and d.start_key >= b"k":
            other = next(n for n in nodes if n != victim)
            return other, d.start_key + b"x"
    raise AssertionError("victim shares no user range")


def test_dead_node_replicas_replaced_and_second_failure_survived():
    async def main():
        c, victim = await setup(dead_after=2.0)
        try:
            db = c.db(next(i for i in c.nodes if i != victim))
            nranges = len(leaseholder_descs(c))
            second, _ = sharing(c, victim)
            acked: dict[bytes, bytes] = {}
            stop = asyncio.Event()

            async def writer() -> None:
                i = 0
                while not stop.is_set():
                    k = KEYS[i % len(KEYS)] + b"/w%05d" % i
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(db.put(k, b"x%d" % i), 5)
                        acked[k] = b"x%d" % i
                    i += 1
                    await asyncio.sleep(0.01)

            w = asyncio.create_task(writer())
            await asyncio.sleep(0.3)
            await c.stop_node(victim)
            await wait_until(lambda: replaced(c, victim, nranges), 40, "replacement of the dead node")
            stop.set()
            await w
            assert len(acked) > 20
            for k, v in acked.items():
                assert await asyncio.wait_for(db.get(k), 10) == v, k
            # a second original node fails: every range keeps a live quorum
            await c.stop_node(second)
            db2 = c.db(next(i for i in c.live_node_ids()))
            for k in KEYS:
                await asyncio.wait_for(db2.put(k, b"after"), 20)
                assert await asyncio.wait_for(db2.get(k), 10) == b"after"
        finally:
            await c.close()

    run(main())


def test_without_replacement_a_second_failure_loses_a_range():
    """The broken variant: a dead-node timeout that never passes is what
    crdb-py did before; the second failure leaves a range without quorum."""

    async def main():
        c, victim = await setup(dead_after=1e9)
        try:
            nranges = len(leaseholder_descs(c))
            second, key = sharing(c, victim)
            await c.stop_node(victim)
            await asyncio.sleep(3.0)  # longer than the other test's timeout
            await wait_until(lambda: len(leaseholder_descs(c)) == nranges, 15, "new leases")
            assert any(victim in [x.node_id for x in d.replicas]
                       for d in leaseholder_descs(c).values())
            await c.stop_node(second)
            db = c.db(c.live_node_ids()[0])
            with pytest.raises((TimeoutError, asyncio.TimeoutError)):
                await asyncio.wait_for(db.put(key, b"lost"), 8)
        finally:
            await c.close()

    run(main())


def test_briefly_down_node_keeps_its_replicas():
    async def main():
        c, victim = await setup(dead_after=2.5)
        try:
            before = {rid: sorted(x.replica_id for x in d.replicas)
                      for rid, d in leaseholder_descs(c).items()}
            await c.stop_node(victim)
            await asyncio.sleep(1.5)
            await c.start_node(victim)
            await asyncio.sleep(3.5)  # well past the timeout, counted from the stop
            after = {rid: sorted(x.replica_id for x in d.replicas)
                     for rid, d in leaseholder_descs(c).items()}
            assert after == before
            dead = [n.store.dead_node_ids() for n in c.nodes.values()]
            assert all(not d for d in dead)
        finally:
            await c.close()

    run(main())


def test_returning_dead_node_does_not_disrupt_its_old_ranges():
    async def main():
        c, victim = await setup(dead_after=1.5, replica_gc_interval=1.0)
        try:
            nranges = len(leaseholder_descs(c))
            await c.stop_node(victim)
            await wait_until(lambda: replaced(c, victim, nranges), 40, "replacement")
            terms = {rid: c.nodes[c.leaseholder(rid)].store.replicas[rid].raw_node.term
                     for rid in leaseholder_descs(c)}
            await c.start_node(victim)
            stale = [r for r in c.nodes[victim].store.replicas.values() if r.desc is not None]
            assert stale  # it comes back with its old replicas
            await asyncio.sleep(3.0)  # many election timeouts of the stale replicas
            db = c.db(victim)
            for k in KEYS:
                await asyncio.wait_for(db.put(k, b"back"), 10)
            now = {rid: c.nodes[c.leaseholder(rid)].store.replicas[rid].raw_node.term
                   for rid in leaseholder_descs(c)}
            assert now == terms  # no election was forced by the removed replicas
            for d in leaseholder_descs(c).values():
                assert victim not in [x.node_id for x in d.replicas]
            # replica GC: the stale replicas asked meta, learned they were
            # removed, and deleted themselves with their data
            store = c.nodes[victim].store
            await wait_until(lambda: not any(r.initialized for r in store.replicas.values()),
                             15, "replica GC on the returned node")
            assert store.replicas_gced >= 2
            lo, hi = span_bounds(b"k", b"l")
            assert list(c.nodes[victim].engine.iter_range(lo, hi)) == []
        finally:
            await c.close()

    run(main())


def test_returned_node_is_added_back_as_the_spare():
    """A replaced node that comes back holds stale replicas (old replica
    ids). When another node dies it is the only spare: the leaseholders add
    it back under new replica ids, and the stale replicas must give way."""

    async def main():
        c, victim = await setup(dead_after=1.5)
        try:
            nranges = len(leaseholder_descs(c))
            await c.stop_node(victim)
            await wait_until(lambda: replaced(c, victim, nranges), 40, "first replacement")
            old_ids = {rid: r.replica_id for rid, r in c.nodes[victim].store.replicas.items()}
            await c.start_node(victim)
            second = next(i for i in c.live_node_ids() if i != victim)
            await c.stop_node(second)
            await wait_until(lambda: replaced(c, second, nranges), 40, "second replacement")
            descs = leaseholder_descs(c)
            for rid, d in descs.items():
                mine = [x for x in d.replicas if x.node_id == victim]
                assert len(mine) == 1
                r = c.nodes[victim].store.replicas[rid]
                assert r.replica_id == mine[0].replica_id and r.initialized
                if rid in old_ids:
                    assert r.replica_id > old_ids[rid]
            third = next(i for i in c.live_node_ids() if i != victim)
            await c.stop_node(third)
            db = c.db(victim)
            for k in KEYS:
                await asyncio.wait_for(db.put(k, b"third"), 20)
                assert await asyncio.wait_for(db.get(k), 10) == b"third"
        finally:
            await c.close()

    run(main())
