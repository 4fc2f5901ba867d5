"""Shared test helpers: a fake clock whose sleeps advance it, and a
DistSender wired to a FakeCluster."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

from crdb_py.kvclient.dist_sender import DistSender, RetryOptions
from crdb_py.pb import data_pb2
from tests.kvclient.fake_cluster import FakeCluster

LETTER_SPLITS = [bytes([c]) for c in range(ord("b"), ord("n"))]  # 13 ranges: ""-b, b-c, ..., m-max


class FakeTime:
    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []
        self.on_sleep: Callable[[int], None] | None = None

    def clock(self) -> float:
        return self.t

    async def sleep(self, d: float) -> None:
        self.sleeps.append(d)
        self.t += d
        if self.on_sleep is not None:
            self.on_sleep(len(self.sleeps))
        await asyncio.sleep(0)


class ClusterFirstRange:
    """The first range as the cluster currently knows it (gossip stand-in)."""

    def __init__(self, cluster: FakeCluster) -> None:
        self.cluster = cluster
        self.calls = 0

    async def first_range(self) -> data_pb2.RangeDescriptor:
        self.calls += 1
        out = data_pb2.RangeDescriptor()
        out.CopyFrom(self.cluster.first_range())
        return out


def make_sender(
    cluster: FakeCluster, *, seed: int = 1, timeout: float = 5.0, **kw: Any
) -> tuple[DistSender, FakeTime]:
    ft = FakeTime()
    ds = DistSender(
        cluster,
        ClusterFirstRange(cluster),
        rng=random.Random(seed),
        clock=ft.clock,
        sleep=ft.sleep,
        retry=RetryOptions(timeout=timeout),
        **kw,
    )
    return ds, ft


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def letter_cluster(keys_per_range: int = 2, nodes: list[int] | None = None) -> FakeCluster:
    """13 ranges split at b..m, each holding `keys_per_range` keys like b"c0"."""
    c = FakeCluster.with_splits(LETTER_SPLITS, nodes=nodes)
    for ch in range(ord("a"), ord("z") + 1):
        for i in range(keys_per_range):
            k = bytes([ch]) + str(i).encode()
            c.data[k] = b"v-" + k
    return c


def user_rows(c: FakeCluster, start: bytes, end: bytes) -> list[tuple[bytes, bytes]]:
    return [(k, c.data[k]) for k in c.data.irange(start, end, inclusive=(True, False))]
