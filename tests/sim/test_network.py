"""SimNetwork: seeded faults, partitions, determinism."""

from __future__ import annotations

import random

import pytest

from crdb_py.sim.clock import FakeClock
from crdb_py.sim.network import FaultConfig, SimNetwork


def run(seed: int, faults: FaultConfig, n: int = 200) -> list[tuple]:
    net = SimNetwork(random.Random(seed), faults, trace=[])
    out: list[tuple] = []
    for t in range(n):
        net.send(1 + t % 3, 1 + (t + 1) % 3, t, now=t)
        out.extend(("recv", t, e.src, e.dst, e.payload) for e in net.due(t))
    out.extend(net.trace or [])
    return out


FAULTY = FaultConfig(drop=0.2, duplicate=0.2, reorder=0.3, min_delay=1, max_delay=4)


def test_same_seed_same_trace() -> None:
    assert run(7, FAULTY) == run(7, FAULTY)
    assert run(7, FAULTY) != run(8, FAULTY)


def test_reliable_links_are_fifo_and_lossless() -> None:
    net = SimNetwork(random.Random(1))
    for i in range(50):
        net.send(1, 2, i, now=0)
    got = [e.payload for e in net.due(0)]
    assert got == []  # min_delay 1: nothing arrives instantly
    assert [e.payload for e in net.due(1)] == list(range(50))
    assert net.stats.delivered == 50 and net.stats.dropped == 0


def test_drop_duplicate_reorder_rates() -> None:
    net = SimNetwork(
        random.Random(3), FaultConfig(drop=0.3, duplicate=0.2, reorder=0.5, max_delay=3)
    )
    n = 4000
    for i in range(n):
        net.send(1, 2, i, now=0)
    got = [e.payload for e in net.due(1000)]
    assert 0.25 * n < net.stats.dropped < 0.35 * n
    assert len(got) == n - net.stats.dropped + net.stats.duplicated
    assert len(set(got)) < len(got)  # duplicates
    assert got != sorted(got)  # reordered


def test_symmetric_partition_and_heal() -> None:
    net = SimNetwork(random.Random(0))
    lost: list[tuple[int, int, str]] = []
    net.on_lost = lambda e, why: lost.append((e.src, e.dst, why))
    net.partition({1, 2}, {3})
    for a in (1, 2, 3):
        for b in (1, 2, 3):
            if a != b:
                net.send(a, b, (a, b), now=0)
    got = {e.payload for e in net.due(1)}
    assert got == {(1, 2), (2, 1)}
    assert sorted((s, d) for s, d, _ in lost) == [(1, 3), (2, 3), (3, 1), (3, 2)]
    net.heal()
    net.send(3, 1, "x", now=1)
    assert [e.payload for e in net.due(2)] == ["x"]


def test_one_way_partition() -> None:
    net = SimNetwork(random.Random(0))
    net.cut_one_way(1, 2)
    net.send(1, 2, "a", now=0)
    net.send(2, 1, "b", now=0)
    assert [e.payload for e in net.due(1)] == ["b"]


def test_in_flight_messages_lost_when_partitioned_or_down() -> None:
    net = SimNetwork(random.Random(0), FaultConfig(min_delay=5, max_delay=5))
    net.send(1, 2, "a", now=0)
    net.send(1, 3, "b", now=0)
    net.cut(1, 2)
    net.set_down(3)
    assert net.due(10) == []
    assert net.stats.cut == 1 and net.stats.to_down == 1


def test_fault_config_validation() -> None:
    with pytest.raises(ValueError):
        FaultConfig(drop=1.5)
    with pytest.raises(ValueError):
        FaultConfig(min_delay=3, max_delay=1)


def test_fake_clock() -> None:
    c = FakeClock(nanos_per_unit=10)
    c.advance(3)
    assert c.now == 3 and c() == 30
    s = c.skewed(-5)
    assert s() == 25
    with pytest.raises(ValueError):
        c.advance(-1)
