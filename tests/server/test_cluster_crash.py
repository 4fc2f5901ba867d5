"""Crash durability on real node processes: kill -9 and restart.

Kept apart from tests/test_localcluster.py so that module's shared cluster is
not running (and competing for the CPUs) while these clusters crash.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from crdb_py import LocalCluster
from tests.cli.procs import child_pids

U = b"\x05"


@pytest.fixture(autouse=True)
def no_leaked_processes() -> Iterator[None]:
    before = child_pids()
    yield
    leaked = child_pids() - before
    assert not leaked, f"test leaked child processes {sorted(leaked)}"


def key(i: int) -> bytes:
    return U + b"k%05d" % i


def test_kill9_any_node_keeps_acknowledged_writes() -> None:
    with LocalCluster(nodes=3, start_timeout=40) as c:
        kv = c.kv()
        acked: dict[bytes, bytes] = {}
        for victim in range(3):
            for i in range(15):
                k = key(victim * 100 + i)
                kv.put(k, b"v%d" % i)
                acked[k] = b"v%d" % i
            c.kill(victim)
            assert not c.is_running(victim)
            c.restart(victim)
            for k, v in acked.items():
                assert kv.get(k) == v, (victim, k)
        rows = kv.scan(U, U + b"\xff")
        assert dict(rows) == acked


def test_kill9_every_node_then_restart_all() -> None:
    with LocalCluster(nodes=3, start_timeout=40) as c:
        kv = c.kv()
        for i in range(30):
            kv.put(key(i), b"%d" % i)
        kv.split(key(15))
        for i in range(3):
            c.kill(i)
        for i in range(3):
            c.restart(i)
        assert [kv.get(key(i)) for i in range(30)] == [b"%d" % i for i in range(30)]
    assert not os.path.exists(c.dir)
