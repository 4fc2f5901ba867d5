"""Replicas of a dead node are replaced — on real node processes.

Four `crdb-py start` processes, replication factor 3, with
``server.time_until_store_dead`` lowered to 2 s: kill -9 the node holding
the most replicas, wait until every range has three voters on live nodes,
then kill a second original node — writes to every range still succeed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from crdb_py import LocalCluster
from crdb_py.pb import data_pb2
from tests.cli.procs import child_pids

U = b"\x05"
SPLITS = [U + b"r2", U + b"r4"]
KEYS = [U + b"r1", U + b"r3", U + b"r5"]  # one per user range


@pytest.fixture(autouse=True)
def no_leaked_processes() -> Iterator[None]:
    before = child_pids()
    yield
    leaked = child_pids() - before
    assert not leaked, f"test leaked child processes {sorted(leaked)}"


def _ranges(c: LocalCluster) -> list[data_pb2.RangeDescriptor] | None:
    try:
        return c.ranges()
    except Exception:
        return None  # meta briefly unavailable (its leaseholder died)


def _voters(d: data_pb2.RangeDescriptor) -> list[int]:
    return [x.node_id for x in d.replicas if x.type == data_pb2.VOTER_FULL]


def _fully_replicated(c: LocalCluster, nranges: int, avoid: int = 0) -> bool:
    rs = _ranges(c)
    return (
        rs is not None and len(rs) == nranges
        and all(len(_voters(d)) == 3 == len(d.replicas) and avoid not in _voters(d) for d in rs)
    )


def test_killed_node_replaced_and_second_kill_survived() -> None:
    with LocalCluster(nodes=4, sync=False, start_timeout=40, time_until_store_dead=2.0) as c:
        kv = c.kv()
        for k in KEYS:
            kv.put(k, b"before")
        for s in SPLITS:
            kv.split(s)
        nranges = 1 + len(SPLITS)
        c.wait_for(lambda: _fully_replicated(c, nranges), 30, "initial replication")
        counts: dict[int, int] = {}
        for d in c.ranges():
            for n in _voters(d):
                counts[n] = counts.get(n, 0) + 1
        victim_id = max(sorted(counts), key=lambda n: counts[n])
        victim = c.index_of(victim_id)
        t0 = time.monotonic()
        c.kill(victim)
        c.wait_for(lambda: _fully_replicated(c, nranges, avoid=victim_id), 30,
                   "replacement of the killed node's replicas")
        replaced_after = time.monotonic() - t0
        assert replaced_after > 2.0  # not before the node was dead
        assert [kv.get(k) for k in KEYS] == [b"before"] * len(KEYS)
        for k in KEYS:
            kv.put(k, b"replaced")
        second = next(i for i in range(4) if i != victim and c.is_running(i))
        c.kill(second)
        for k in KEYS:
            kv.put(k, b"after")
        assert [kv.get(k) for k in KEYS] == [b"after"] * len(KEYS)
        for d in c.ranges():
            assert victim_id not in [x.node_id for x in d.replicas]
