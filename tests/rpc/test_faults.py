"""LinkFaultTable: queries, the idle fast-path flag, the wire form."""

from __future__ import annotations

import pytest

from crdb_py.pb import services_pb2
from crdb_py.rpc import LinkFaultTable


def test_latency_lookup_and_overrides() -> None:
    t = LinkFaultTable()
    assert t.idle and t.latency(1, 2) == 0.0
    t.set_latency(10)
    assert not t.idle and t.latency(1, 2) == pytest.approx(0.010)
    t.set_link_latency(1, 2, 25)
    assert t.latency(1, 2) == pytest.approx(0.025)
    assert t.latency(2, 1) == pytest.approx(0.010)  # one-way
    t.set_link_latency(1, 2, None)
    assert t.latency(1, 2) == pytest.approx(0.010)
    t.set_latency(0)
    assert t.idle
    t.set_link_latency(3, 4, 0)  # an explicit zero override is still idle
    assert t.idle
    t.set_link_latency(3, 4, 1)
    assert not t.idle


def test_blocks_are_one_way_and_heal() -> None:
    t = LinkFaultTable()
    t.block(1, 2)
    assert t.is_blocked(1, 2) and not t.is_blocked(2, 1) and not t.idle
    t.unblock(1, 2)
    assert t.idle
    t.partition(1, 3)
    assert t.is_blocked(1, 3) and t.is_blocked(3, 1)
    t.isolate(5, [1, 2, 5])
    assert t.blocked_links() == {(1, 3), (3, 1), (5, 1), (1, 5), (5, 2), (2, 5)}
    t.set_latency(7)
    t.heal()
    assert t.blocked_links() == frozenset() and t.latency(1, 2) == pytest.approx(0.007)
    t.reset()
    assert t.idle


def test_version_bumps_on_every_change() -> None:
    t = LinkFaultTable()
    v = t.version
    t.block(1, 2)
    t.heal()
    assert t.version == v + 2


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_bad_latency_rejected(bad: float) -> None:
    t = LinkFaultTable()
    with pytest.raises(ValueError):
        t.set_latency(bad)
    with pytest.raises(ValueError):
        t.apply_proto(services_pb2.LinkFaults(default_latency_ms=5, link_latencies=[
            services_pb2.LinkLatency(from_node_id=1, to_node_id=2, latency_ms=bad)]))
    assert t.idle  # nothing applied


def test_proto_round_trip_replaces_whole_table() -> None:
    t = LinkFaultTable(default_latency_ms=3)
    t.set_link_latency(2, 1, 9)
    t.block(1, 2)
    p = t.to_proto()
    u = LinkFaultTable()
    u.block(7, 8)  # replaced, not merged
    u.apply_proto(p)
    assert u.to_proto() == p
    assert u.blocked_links() == {(1, 2)}
    assert u.latency(2, 1) == pytest.approx(0.009) and u.latency(1, 2) == pytest.approx(0.003)
    u.apply_proto(services_pb2.LinkFaults())
    assert u.idle
