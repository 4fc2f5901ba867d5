from __future__ import annotations

import asyncio

import pytest

from crdb_py.kvclient.range_cache import RangeCache
from crdb_py.pb import data_pb2
from tests.kvclient.helpers import run


def desc(rid: int, start: bytes, end: bytes, gen: int = 0, nodes=(1, 2, 3)) -> data_pb2.RangeDescriptor:
    d = data_pb2.RangeDescriptor(range_id=rid, start_key=start, end_key=end, generation=gen)
    for n in nodes:
        d.replicas.add(node_id=n, store_id=n, replica_id=n)
    return d


RANGES = [desc(1, b"", b"c"), desc(2, b"c", b"f"), desc(3, b"f", b"\xff\xff")]


def lookup_from(ranges, log=None):
    async def lookup(key: bytes, reverse: bool) -> data_pb2.RangeDescriptor:
        if log is not None:
            log.append((key, reverse))
        for d in ranges:
            if (d.start_key < key <= d.end_key) if reverse else (d.start_key <= key < d.end_key):
                return d
        raise LookupError(key)

    return lookup


def test_lookup_forward_and_reverse_boundaries() -> None:
    async def main() -> None:
        log: list = []
        c = RangeCache(lookup_from(RANGES, log))
        assert (await c.lookup(b"a")).range_id == 1
        assert (await c.lookup(b"c")).range_id == 2  # start key belongs to the range
        assert (await c.lookup(b"e")).range_id == 2
        assert c.lookups == 2
        # reverse: the range holding the key just before the exclusive end
        assert (await c.lookup(b"c", reverse=True)).range_id == 1
        assert (await c.lookup(b"f", reverse=True)).range_id == 2
        assert c.lookups == 2  # both served from cache
        assert (await c.lookup(b"z", reverse=True)).range_id == 3
        assert c.lookups == 3 and log[-1] == (b"z", True)
        assert c.get_cached(b"f").range_id == 3
        assert c.get_cached(b"b\xff").range_id == 1

    run(main())


def test_insert_evicts_overlapping_and_respects_generation() -> None:
    c = RangeCache(lookup_from(RANGES))
    for d in RANGES:
        c.insert(d)
    assert len(c) == 3
    # r2 split into [c, d) and [d, f) at generation 1
    c.insert(desc(2, b"c", b"d", gen=1))
    assert c.get_cached(b"e") is None and c.get_cached(b"c").desc.generation == 1
    assert len(c) == 3
    # an older overlapping descriptor is dropped, the newer one kept
    assert c.insert(desc(2, b"c", b"f", gen=0)) is None
    assert c.get_cached(b"c").desc.end_key == b"d"
    c.insert(desc(4, b"d", b"f", gen=1))
    assert [e.range_id for e in c.entries()] == [1, 2, 4, 3]


def test_evict_only_the_same_descriptor() -> None:
    c = RangeCache(lookup_from(RANGES))
    c.insert(desc(2, b"c", b"f", gen=3))
    assert not c.evict(desc(2, b"c", b"f", gen=2))  # stale news: keep the newer entry
    assert c.get_cached(b"d") is not None
    assert c.evict(desc(2, b"c", b"f", gen=3))
    assert c.get_cached(b"d") is None
    assert not c.evict(desc(2, b"c", b"f", gen=3))


def test_leaseholder_updates() -> None:
    c = RangeCache(lookup_from(RANGES))
    c.insert(RANGES[1])
    rep = data_pb2.ReplicaDescriptor(node_id=3, store_id=3, replica_id=3)
    assert c.update_leaseholder(2, rep)
    assert c.get_cached(b"d").leaseholder.node_id == 3
    assert not c.update_leaseholder(2, data_pb2.ReplicaDescriptor(node_id=9))
    assert not c.update_leaseholder(7, rep)  # not cached
    # re-inserting the same descriptor keeps the leaseholder; a new one forgets it
    c.insert(RANGES[1])
    assert c.get_cached(b"d").leaseholder.node_id == 3
    c.insert(desc(2, b"c", b"f", gen=1))
    assert c.get_cached(b"d").leaseholder is None


def test_concurrent_lookups_are_coalesced() -> None:
    async def main() -> None:
        gate = asyncio.Event()
        calls: list = []

        async def slow(key: bytes, reverse: bool) -> data_pb2.RangeDescriptor:
            calls.append(key)
            await gate.wait()
            return RANGES[1]

        c = RangeCache(slow)
        tasks = [asyncio.ensure_future(c.lookup(b"d")) for _ in range(20)]
        await asyncio.sleep(0)
        gate.set()
        got = await asyncio.gather(*tasks)
        assert calls == [b"d"] and c.lookups == 1
        assert {e.range_id for e in got} == {2}

    run(main())


def test_failed_lookup_fails_every_waiter_and_is_not_cached() -> None:
    async def main() -> None:
        gate = asyncio.Event()
        n = 0

        async def failing(key: bytes, reverse: bool) -> data_pb2.RangeDescriptor:
            nonlocal n
            n += 1
            await gate.wait()
            raise ConnectionError("meta unreachable")

        c = RangeCache(failing)
        tasks = [asyncio.ensure_future(c.lookup(b"d")) for _ in range(5)]
        await asyncio.sleep(0)
        gate.set()
        res = await asyncio.gather(*tasks, return_exceptions=True)
        assert n == 1 and all(isinstance(r, ConnectionError) for r in res)
        assert len(c) == 0

    run(main())


def test_lookup_result_must_hold_the_key() -> None:
    async def wrong(key: bytes, reverse: bool) -> data_pb2.RangeDescriptor:
        return RANGES[0]

    c = RangeCache(wrong)
    with pytest.raises(LookupError):
        run(c.lookup(b"x"))
