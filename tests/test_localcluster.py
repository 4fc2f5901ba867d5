"""LocalCluster and the CLI against real node processes on loopback.

Each test starts real `crdb-py start` processes; a fixture asserts that no
child process outlives its test and that cluster directories are removed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from collections.abc import Iterator

import pytest

from crdb_py import LocalCluster
from crdb_py.localcluster import open_kv
from tests.cli.procs import child_pids, cli, reap, spawn, wait_file

U = b"\x05"  # user key prefix used by these tests


@pytest.fixture(autouse=True)
def no_leaked_processes() -> Iterator[None]:
    before = child_pids()
    yield
    leaked = child_pids() - before
    assert not leaked, f"test leaked child processes {sorted(leaked)}"


def key(i: int) -> bytes:
    return U + b"k%05d" % i


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    """A shared 3-node cluster for tests that leave it healthy."""
    with LocalCluster(nodes=3, start_timeout=40) as c:
        yield c


def test_three_node_smoke_split_and_status(cluster: LocalCluster) -> None:
    kv = cluster.kv()
    assert len(set(cluster.addresses)) == 3
    assert sorted(cluster.node_id(i) for i in range(3)) == [1, 2, 3]
    for i in range(20):
        kv.put(key(i), b"v%d" % i)
    left, right = kv.split(key(10))
    assert right.start_key == key(10) and left.end_key == key(10)
    for i in range(20, 30):
        kv.put(key(i), b"v%d" % i)
    assert [kv.get(key(i)) for i in range(30)] == [b"v%d" % i for i in range(30)]
    rows = kv.scan(key(0), key(30))
    assert [k for k, _ in rows] == [key(i) for i in range(30)]
    assert kv.inc(U + b"counter", 5) == 5 and kv.inc(U + b"counter", 2) == 7
    # `crdb-py node status` (a real CLI process) sees three live nodes
    r = cli(["node", "status", "--host", cluster.address(1), "--format", "json"])
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    assert [(x["id"], x["address"]) for x in st] == sorted(
        (cluster.node_id(i), cluster.address(i)) for i in range(3)
    )
    deadline = time.monotonic() + 10
    while True:
        rows_ = cluster.node_statuses()
        if all(x["ranges"] >= 2 for x in rows_) and all(x["live"] for x in rows_):
            break  # the split's right-hand range is on all three stores too
        assert time.monotonic() < deadline, rows_
        time.sleep(0.1)
    assert sum(x["leases"] for x in cluster.node_statuses()) >= 1
    descs = cluster.ranges()
    assert [d.start_key for d in descs][-1] == key(10)
    assert all(a.end_key == b.start_key for a, b in zip(descs, descs[1:]))
    cluster.wait_for(
        lambda: all(len(d.replicas) == 3 for d in cluster.ranges()), 10, "3 replicas per range"
    )
    table = cli(["node", "status", "--host", cluster.address(0)])
    assert table.returncode == 0 and "live" in table.stdout and cluster.address(2) in table.stdout


def test_transfer_lease_moves_it(cluster: LocalCluster) -> None:
    kv = cluster.kv()
    kv.put(U + b"tl", b"1")
    target = cluster.node_id(2)
    kv.transfer_lease(U + b"tl", target)
    cluster.wait_for(lambda: cluster.leaseholder(U + b"tl") == 2, 10, "lease on node 2")
    kv.put(U + b"tl", b"2")
    assert kv.get(U + b"tl") == b"2"


def test_second_init_is_refused(cluster: LocalCluster) -> None:
    r = cli(["init", "--host", cluster.address(2)])
    assert r.returncode == 1
    assert "cluster has already been initialized" in r.stderr
    assert "Traceback" not in r.stderr


def test_partition_and_heal_change_liveness(cluster: LocalCluster) -> None:
    n0, n2 = cluster.node_id(0), cluster.node_id(2)

    def live_seen_by(i: int) -> dict[int, bool]:
        return {s.desc.node_id: s.live for s in cluster.status(i).nodes}

    def live_seen_by_0() -> dict[int, bool]:
        return live_seen_by(0)

    cluster.partition(0, 2)
    try:
        cluster.wait_for(
            lambda: not live_seen_by(0)[n2] and not live_seen_by(2)[n0], 10,
            "both sides of the cut to see each other as not live",
        )
        assert live_seen_by_0()[cluster.node_id(1)] is True  # other links untouched
        assert live_seen_by(2)[cluster.node_id(1)] is True
        # the majority side still serves KV
        cluster.kv().put(U + b"during-partition", b"x")
    finally:
        cluster.heal()
    deadline = time.monotonic() + 10
    while not all(live_seen_by_0().values()):
        assert time.monotonic() < deadline, "healed node not live again"
        time.sleep(0.1)
    assert cluster.kv().get(U + b"during-partition") == b"x"


def test_latency_is_injected(cluster: LocalCluster) -> None:
    kv = cluster.kv()
    kv.put(U + b"lat", b"0")
    cluster.set_latency(60.0)
    try:
        t0 = time.monotonic()
        kv.put(U + b"lat", b"1")
        elapsed = time.monotonic() - t0
    finally:
        cluster.set_latency(0.0)
    # replication needs a round trip leaseholder -> follower -> leaseholder
    assert elapsed >= 0.12, elapsed
    assert kv.get(U + b"lat") == b"1"


def test_close_kills_processes_and_removes_directory() -> None:
    c = LocalCluster(nodes=1, start_timeout=30)
    with pytest.raises(RuntimeError, match="boom"), c:
        pids = [c.pid(0)]
        assert pids[0] is not None
        raise RuntimeError("boom")
    assert not os.path.exists(c.dir)
    assert c.pid(0) is None
    with pytest.raises(ProcessLookupError):
        os.kill(pids[0], 0)  # type: ignore[arg-type]


def test_single_node_cli_start_init_put_get_restart(tmp_path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        addr = f"127.0.0.1:{s.getsockname()[1]}"
    store, ready, log = str(tmp_path / "s"), str(tmp_path / "ready"), str(tmp_path / "n.log")
    args = ["start", "--store", store, "--listen-addr", addr, "--ready-file", ready,
            "--replication-factor", "1", "--pid-file", str(tmp_path / "pid")]
    p = spawn(args, log)
    try:
        wait_file(str(tmp_path / "pid"), p)
        r = cli(["init", "--host", addr])
        assert r.returncode == 0, r.stderr
        assert "cluster initialized" in r.stdout
        info = json.loads(wait_file(ready, p))
        assert info["node_id"] == 1 and info["address"] == addr and info["pid"] == p.pid
        kv = open_kv({1: addr})
        try:
            kv.put(U + b"a", b"1")
            assert kv.get(U + b"a") == b"1"
        finally:
            kv.close()
        p.send_signal(signal.SIGTERM)
        assert p.wait(15) == 0
        os.remove(ready)
        p = spawn(args, log)  # restart: same store, identity reused, no init
        assert json.loads(wait_file(ready, p))["node_id"] == 1
        kv = open_kv({1: addr})
        try:
            assert kv.get(U + b"a") == b"1"
        finally:
            kv.close()
        r = cli(["init", "--host", addr])
        assert r.returncode == 1 and "already been initialized" in r.stderr
    finally:
        reap(p)
    out = open(log).read()
    assert "node 1 ready, listening on " + addr in out


def test_nodes_die_with_a_killed_parent(tmp_path) -> None:
    import shutil
    import subprocess
    import sys

    script = (
        "import sys, time\n"
        "from crdb_py.localcluster import LocalCluster\n"
        f"c = LocalCluster(nodes=1, base_dir={str(tmp_path / 'c')!r}, start_timeout=30)\n"
        "c.start()\n"
        "print(c.pid(0), flush=True)\n"
        "time.sleep(120)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        node_pid = int(parent.stdout.readline())
        assert os.path.exists(f"/proc/{node_pid}")
        parent.kill()  # no close(), no atexit: only PR_SET_PDEATHSIG can stop the node
        parent.wait()
        deadline = time.monotonic() + 15
        while os.path.exists(f"/proc/{node_pid}"):
            try:
                with open(f"/proc/{node_pid}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                        break  # dead, waiting to be reaped by init
            except FileNotFoundError:
                break
            assert time.monotonic() < deadline, "node outlived its killed parent"
            time.sleep(0.1)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        shutil.rmtree(tmp_path / "c", ignore_errors=True)
