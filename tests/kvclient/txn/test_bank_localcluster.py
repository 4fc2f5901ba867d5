"""Bank on a real 3-node `LocalCluster`, under the four commit settings.

One cluster serves all four settings: each switches the cluster settings at
run time (`LocalCluster.set_setting`), checks a fresh transaction of the
cluster's client took the matching commit path, then runs concurrent
transfers (threads calling `kv().run_txn`) with readers for a few seconds
and a lease move midway. Every read must see the same total; the final total
is unchanged and transfers committed.
"""

from __future__ import annotations

import random
import threading
import time

import pytest

from crdb_py.kvclient.db import Batch
from crdb_py.kvclient.txn.rounds import CommitPath
from crdb_py.kvclient.txn.settings import PARALLEL_COMMITS_ENABLED, WRITE_PIPELINING_ENABLED
from crdb_py.kvclient.txn.sync import SyncTxn
from crdb_py.localcluster import LocalCluster, SyncKV

ACCOUNTS = [b"lbank/a0", b"lbank/a1", b"lbank/a2", b"lbank/b3", b"lbank/b4", b"lbank/b5"]
SPLIT = b"lbank/b"
SECONDS = 2.5


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(3, sql=False, parallel_commits=False, write_pipelining=False) as c:
        kv = c.kv()
        kv.split(SPLIT)
        yield c


def _read_all(t: SyncTxn) -> tuple[int, ...]:
    rows = dict(t.scan(b"lbank/", b"lbank0"))
    return tuple(int(rows[k]) for k in ACCOUNTS)


def _commit_path(kv: SyncKV) -> CommitPath:
    t = kv.txn()
    t.put(b"lbank/p1", b"x")
    t.commit_in_batch(Batch().put(b"lbank/z1", b"x"))  # the other range
    return t.trace.commit_path


def test_constructor_settings_are_cluster_settings(cluster: LocalCluster) -> None:
    assert cluster.get_setting(PARALLEL_COMMITS_ENABLED) is False
    assert cluster.get_setting(WRITE_PIPELINING_ENABLED) is False
    assert _commit_path(cluster.kv()) is CommitPath.TWO_PC


@pytest.mark.parametrize("parallel", [True, False])
@pytest.mark.parametrize("pipelining", [True, False])
def test_bank_on_a_local_cluster(cluster: LocalCluster, parallel: bool, pipelining: bool) -> None:
    c = cluster
    kv = c.kv()
    c.set_setting(PARALLEL_COMMITS_ENABLED, parallel)
    c.set_setting(WRITE_PIPELINING_ENABLED, pipelining)
    assert _commit_path(kv) is (CommitPath.PARALLEL if parallel else CommitPath.TWO_PC)
    for k in ACCOUNTS:
        kv.put(k, b"100")
    total = 100 * len(ACCOUNTS)
    stop = threading.Event()
    committed = [0]
    reads: list[tuple[int, ...]] = []
    errors: list[BaseException] = []

    def transfer(t: SyncTxn, src: bytes, dst: bytes, amount: int) -> None:
        s, d = int(t.get(src)), int(t.get(dst))
        if s >= amount:
            t.put(src, b"%d" % (s - amount))
            t.put(dst, b"%d" % (d + amount))

    def client(seed: int) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            src, dst = rng.sample(ACCOUNTS, 2)
            amount = rng.randint(1, 30)
            try:
                kv.run_txn(lambda t, s=src, d=dst, a=amount: transfer(t, s, d, a), max_retries=50)
                committed[0] += 1
            except BaseException as e:  # reported below
                errors.append(e)

    def reader() -> None:
        while not stop.is_set():
            reads.append(kv.run_txn(_read_all, max_retries=50))
            time.sleep(0.02)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
    threads.append(threading.Thread(target=reader))
    for t in threads:
        t.start()
    try:
        time.sleep(SECONDS / 2)
        holder = c.leaseholder(ACCOUNTS[0])
        kv.transfer_lease(ACCOUNTS[0], c.node_id((holder + 1) % 3))
        time.sleep(SECONDS / 2)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert not errors, errors[:3]
    bad = [r for r in reads if sum(r) != total or min(r) < 0]
    assert not bad, bad[:5]
    final = kv.run_txn(_read_all)
    assert sum(final) == total and min(final) >= 0, final
    assert committed[0] > 0 and reads, (committed[0], len(reads))
