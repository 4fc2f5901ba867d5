"""Transaction scenarios on a real 3-node cluster (separate node processes).

The scenarios of tests/txn/scenarios.py — conflict, read-write with push
and refresh, push by priority, 2- and 3-cycle deadlocks across ranges, an
abandoned txn, parallel-commit recovery (all writes landed / one missing)
and asynchronous resolution — driven by hand-built batches through a
client-side DistSender over gRPC, on one `LocalCluster` with three ranges
whose leases sit on different nodes. Each scenario checks that no final
record status changed; the last test stops the nodes and reads every
store directly: no intent may be left on any replica.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from crdb_py.localcluster import LocalCluster
from crdb_py.sim.txnclient import Sender, intents_of
from crdb_py.util.hlc import HLC, Timestamp
from tests.txn import scenarios as sc


class ClusterEnv:
    """`scenarios.Env` over a LocalCluster's client (engines live in other
    processes: checked once at the end, with the nodes stopped)."""

    def __init__(self, c: LocalCluster) -> None:
        self.c = c
        self.kv = c.kv()
        self.n = c.num_nodes
        self.rng = random.Random()
        self.clock = HLC()

    def sender(self, gateway: int) -> Sender:
        return self.kv.db.sender  # a client DistSender: it routes to leaseholders itself

    def now(self) -> Timestamp:
        return self.clock.now()

    def engines(self) -> dict[int, Any] | None:
        return None

    async def settle(self) -> None:
        return None


@pytest.fixture(scope="module")
def env() -> Iterator[ClusterEnv]:
    logging.disable(logging.ERROR)
    with LocalCluster(nodes=3, sync=False, start_timeout=40) as c:
        kv = c.kv()
        for at in sc.SPLITS:
            kv.split(at)
        c.wait_for_replication()
        # the three ranges' leases on three different nodes
        for key, i in ((b"a", 0), (b"n", 1), (b"u", 2)):
            for _ in range(20):
                if c.leaseholder(key) == i:
                    break
                try:
                    kv.transfer_lease(key, c.node_id(i))
                except Exception:
                    time.sleep(0.2)
        e = ClusterEnv(c)
        e.kv.timeout = 90.0
        yield e
    logging.disable(logging.NOTSET)


def run(env: ClusterEnv, scenario: Callable[..., Awaitable[dict[str, Any]]], **kw: Any) -> dict[str, Any]:
    return env.kv.run(lambda _db: scenario(env, **kw))


def test_leases_are_spread(env: ClusterEnv) -> None:
    assert sorted(env.c.leaseholder(k) for k in (b"a", b"n", b"u")) == [0, 1, 2]


def test_conflicting_writer_waits_then_sees_the_commit(env: ClusterEnv) -> None:
    assert run(env, sc.conflict, holder_commits=True)["seen"] == b"t1"


def test_high_priority_read_pushes_and_the_writer_refreshes(env: ClusterEnv) -> None:
    assert run(env, sc.read_write, interfere=False)["refreshed"] is True


def test_high_priority_writer_aborts_the_holder(env: ClusterEnv) -> None:
    assert run(env, sc.push_abort)["took"] < sc.EXPIRY


@pytest.mark.parametrize(
    "keys", [(b"a-d2", b"n-d2"), (b"a-d3", b"n-d3", b"u-d3")], ids=["2-cycle", "3-cycle"]
)
def test_deadlock_across_ranges_is_broken(env: ClusterEnv, keys: tuple[bytes, ...]) -> None:
    out = run(env, sc.deadlock, keys=keys)
    assert "COMMITTED" in out["outcomes"] and out["first"] < sc.EXPIRY


def test_abandoned_txn_is_aborted_after_expiry(env: ClusterEnv) -> None:
    assert run(env, sc.abandoned)["waited"] >= sc.EXPIRY - 0.6


@pytest.mark.parametrize("all_landed", [True, False], ids=["all-landed", "write-missing"])
def test_dead_staging_coordinator_is_recovered(env: ClusterEnv, all_landed: bool) -> None:
    out = run(env, sc.staging_recovery, all_landed=all_landed, tag=b"-lc-%d" % all_landed)
    assert out["late_above"] is (not all_landed)


def test_committed_intents_on_other_ranges_resolve(env: ClusterEnv) -> None:
    run(env, sc.async_resolution)


def test_zz_no_intent_left_on_any_replica(env: ClusterEnv) -> None:
    """Last (file order): once quiet, every store holds no intent at all —
    every intent of every scenario above was resolved on every replica."""
    from crdb_py.storage.rocks import RocksEngine

    time.sleep(2.0)  # asynchronous resolution finishes
    c = env.c
    engines: dict[int, Any] = {}
    for i in range(c.num_nodes):
        c.stop(i)
    try:
        for i in range(c.num_nodes):
            engines[i] = RocksEngine(os.path.join(c.dir, f"n{i}"))  # LocalCluster's layout
        left = intents_of(engines)
    finally:
        for e in engines.values():
            e.close()
    assert not left, left
