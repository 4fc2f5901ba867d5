"""Nemeses against a scripted cluster: what they break they always heal."""

from __future__ import annotations

import random

import pytest

from crdb_py.jepsen.history import History
from crdb_py.jepsen.nemesis import ClockSkew, Kill, NemesisContext, Partition, SplitLease
from crdb_py.jepsen.workloads import BankWorkload


class _Faults:
    latency_ms = 0.0


class FakeCluster:
    num_nodes = 3

    def __init__(self, push_failures: int = 0) -> None:
        self.running = [True] * 3
        self.calls: list[tuple] = []
        self._node_args = ["--log-level", "INFO"]
        self._faults = _Faults()
        self.push_failures = push_failures

    def kill(self, i: int) -> None:
        self.running[i] = False
        self.calls.append(("kill", i))

    def restart(self, i: int) -> None:
        self.running[i] = True
        self.calls.append(("restart", i, tuple(self._node_args)))
        if self.push_failures:
            self.push_failures -= 1
            raise ConnectionError("admin channel in reconnect backoff")

    def set_latency(self, ms: float) -> None:
        if self.push_failures:
            self.push_failures -= 1
            raise ConnectionError("still backing off")
        self.calls.append(("push", ms))

    def is_running(self, i: int) -> bool:
        return self.running[i]

    def isolate(self, i: int) -> None:
        self.calls.append(("isolate", i))

    def heal(self) -> None:
        self.calls.append(("heal",))

    def node_id(self, i: int) -> int:
        return i + 1


class FakeKV:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def split(self, key: bytes) -> None:
        self.calls.append(("split", key))

    def transfer_lease(self, key: bytes, node_id: int) -> None:
        self.calls.append(("lease", key, node_id))


def _ctx(cluster: FakeCluster, kv: FakeKV | None = None) -> NemesisContext:
    return NemesisContext(cluster=cluster, kv=kv or FakeKV(), rng=random.Random(5),
                          history=History(), workload=BankWorkload(), client_prefix=b"p/",
                          settings=(True, True), next_process=iter(range(100)).__next__)


def test_kill_kills_a_minority_and_heal_all_restarts_it() -> None:
    c = FakeCluster()
    ctx = _ctx(c)
    k = Kill()
    k.fault(ctx)
    k.fault(ctx)  # a second fault while one node is down does nothing (minority)
    assert sum(not r for r in c.running) == 1
    k.heal_all(ctx)
    assert all(c.running)
    assert [e["what"] for e in ctx.events] == ["kill", "restart"]


def test_restart_retries_pushing_the_fault_table() -> None:
    c = FakeCluster(push_failures=3)
    ctx = _ctx(c)
    k = Kill()
    k.fault(ctx)
    k.heal(ctx)
    assert all(c.running)
    assert ("push", 0.0) in c.calls
    assert not k.dead


def test_clock_skew_is_within_the_max_offset_and_undone() -> None:
    c = FakeCluster()
    ctx = _ctx(c)
    s = ClockSkew(skew_fraction=0.4)
    s.fault(ctx)
    (_, i, args), = [x for x in c.calls if x[0] == "restart"]
    off = float(args[args.index("--clock-offset-ms") + 1])
    assert 0 < abs(off) <= 0.4 * ctx.max_offset_ms
    assert c._node_args == ["--log-level", "INFO"], "the flag must not leak to other restarts"
    s.heal_all(ctx)
    last = [x for x in c.calls if x[0] == "restart"][-1]
    assert last[1] == i and "--clock-offset-ms" not in last[2]


def test_partition_heals_and_split_lease_targets_workload_keys() -> None:
    c, kv = FakeCluster(), FakeKV()
    ctx = _ctx(c, kv)
    p = Partition()
    p.fault(ctx)
    p.heal_all(ctx)
    assert c.calls[0][0] == "isolate" and c.calls[-1] == ("heal",)
    SplitLease().fault(ctx)
    (_, skey), (_, lkey, node) = kv.calls
    assert skey.startswith(b"p/bank/") and lkey.startswith(b"p/bank/") and 1 <= node <= 3


@pytest.mark.parametrize("n", [Kill, Partition, ClockSkew, SplitLease])
def test_heal_all_is_safe_when_nothing_happened(n) -> None:
    c = FakeCluster()
    n().heal_all(_ctx(c))
    assert all(c.running)
