"""M3's KV scenarios on real node processes on loopback: leaseholder death,
splits under load, scans across many ranges, and linearizable registers while
leases move and a node is killed.

The same scenarios run deterministically on the simulator in
`tests/sim/test_kvsim.py`; here the point is real processes, real gRPC and
real SIGKILLs.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator

import pytest

from crdb_py import LocalCluster
from crdb_py.jepsen.linearizability import CasFailed, History, check
from crdb_py.util.errors import ConditionFailedError, NodeUnavailableError
from tests.cli.procs import child_pids

U = b"\x06"  # this module's user key prefix


@pytest.fixture(autouse=True, scope="module")
def no_leaked_processes() -> Iterator[None]:
    before = child_pids()
    yield
    leaked = child_pids() - before
    assert not leaked, f"test leaked child processes {sorted(leaked)}"


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with LocalCluster(nodes=3, start_timeout=40) as c:
        yield c


def test_scan_across_twelve_ranges_is_in_order(cluster: LocalCluster) -> None:
    kv = cluster.kv()
    keys = [U + b"scan/%03d" % i for i in range(120)]
    for k in keys:
        kv.put(k, k[::-1])
    for i in range(10, 120, 10):
        kv.split(keys[i])
    spanned = [r for r in cluster.ranges() if r.start_key >= U + b"scan/" or r.end_key > U + b"scan/"]
    assert len([r for r in spanned if r.start_key < U + b"scan0"]) >= 12
    rows = kv.scan(U + b"scan/", U + b"scan0")
    assert [k for k, _ in rows] == keys
    assert all(v == k[::-1] for k, v in rows)
    assert [k for k, _ in kv.reverse_scan(U + b"scan/", U + b"scan0")] == keys[::-1]
    # a limited scan stops at the limit, in order, across range boundaries
    assert [k for k, _ in kv.scan(U + b"scan/", U + b"scan0", max_rows=25)] == keys[:25]


def test_split_under_concurrent_writes_loses_nothing(cluster: LocalCluster) -> None:
    kv = cluster.kv()
    acked: list[bytes] = []
    unsure: list[bytes] = []
    stop = threading.Event()
    lock = threading.Lock()

    def writer(w: int) -> None:
        i = 0
        while not stop.is_set():
            k = U + b"split/%02d/%05d" % (i % 50, w * 100000 + i)
            try:
                kv.put(k, b"v")
                with lock:
                    acked.append(k)
            except Exception:
                with lock:
                    unsure.append(k)
            i += 1

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    try:
        for j in (10, 20, 30, 40):
            time.sleep(0.3)
            kv.split(U + b"split/%02d" % j)
    finally:
        time.sleep(0.3)
        stop.set()
        for t in threads:
            t.join(30)
    present = {k for k, _ in kv.scan(U + b"split/", U + b"split0")}
    assert len(acked) > 50, "the writers made too little progress to mean anything"
    missing = [k for k in acked if k not in present]
    assert not missing, f"{len(missing)} acknowledged writes lost across splits"
    assert present <= set(acked) | set(unsure)


def test_registers_stay_linearizable_while_leases_move(cluster: LocalCluster) -> None:
    kv = cluster.kv()
    keys = [U + b"reg/%d" % i for i in range(3)]
    kv.split(U + b"reg/")
    kv.split(U + b"reg0")
    h = History(clock=time.monotonic)
    hlock = threading.Lock()
    stop = threading.Event()

    def client(p: int) -> None:
        rng = random.Random(p)
        n = 0
        last: dict[bytes, bytes | None] = {}
        while not stop.is_set():
            k = rng.choice(keys)
            r = rng.random()
            n += 1
            val = b"p%d-%d" % (p, n)
            if r < 0.4:
                f, arg = "read", None
            elif r < 0.7:
                f, arg = "write", val
            else:
                f, arg = "cas", (last.get(k), val)
            with hlock:
                h.invoke(p, f, k, arg)
            try:
                if f == "read":
                    out = kv.get(k)
                    last[k] = out
                elif f == "write":
                    kv.put(k, val)
                    out = None
                else:
                    kv.cput(k, val, arg[0])
                    out = True
            except ConditionFailedError as e:
                last[k] = e.actual_value
                with hlock:
                    h.ok(p, CasFailed(e.actual_value))
            except NodeUnavailableError:
                with hlock:
                    h.fail(p)
            except Exception:
                with hlock:
                    h.info(p)
            else:
                with hlock:
                    h.ok(p, out)

    threads = [threading.Thread(target=client, args=(p,)) for p in range(4)]
    for t in threads:
        t.start()
    try:
        ids = [cluster.node_id(i) for i in range(3)]
        deadline = time.monotonic() + 6
        i = 0
        while time.monotonic() < deadline:
            time.sleep(0.5)
            try:
                kv.transfer_lease(keys[0], ids[i % 3])
            except Exception:
                pass
            i += 1
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    oks = sum(1 for e in h.events if e.type == "ok")
    assert oks > 30, f"too few completed operations ({oks}) to mean anything"
    res = check(h)
    assert res.ok, res.explain()


def test_leaseholder_kill_moves_the_lease_and_writes_resume(cluster: LocalCluster) -> None:
    kv = cluster.kv()
    k0 = U + b"lh/key"
    kv.split(U + b"lh/")
    acked = []
    for i in range(20):
        k = U + b"lh/%02d" % i
        kv.put(k, b"v%d" % i)
        acked.append(k)
    victim = cluster.leaseholder(k0)
    cluster.kill(victim)
    try:
        start = time.monotonic()
        while True:
            try:
                kv.put(k0, b"after")
                break
            except Exception:
                if time.monotonic() - start > 20:
                    raise
                time.sleep(0.1)
        took = time.monotonic() - start
        assert took < 12, f"writes resumed only after {took:.1f}s"
        assert kv.get(k0) == b"after"
        assert [kv.get(k) for k in acked] == [b"v%d" % i for i in range(20)]
    finally:
        cluster.restart(victim)
    assert kv.get(k0) == b"after"
