"""KV scenarios on the deterministic simulator (virtual time, seeded faults).

Each scenario is a coroutine of the virtual loop, run over a few seeds by
default and over many seeds under `-m slow`. A failing seed reproduces with
`vloop.run(<scenario>, seed=<seed>)`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

import pytest

from crdb_py.jepsen.linearizability import History, check
from crdb_py.kvserver.replica import Replica
from crdb_py.sim import vloop
from crdb_py.sim.kvsim import KVSim, NetFaults, nemesis, register_workload, retry
from crdb_py.util.errors import NodeUnavailableError
from crdb_py.util.hlc import ts_from_proto, ts_to_proto

FAULTS = NetFaults(drop=0.02, duplicate=0.01, raft_delay_max=0.01, rpc_delay_max=0.005)
SKEW = 100_000_000  # per-node clock skew up to ±100 ms (max offset 500 ms)
FAST_SEEDS = [1, 2]
SLOW_SEEDS = list(range(100, 120))


@pytest.fixture(autouse=True)
def _quiet_logs():
    # Nemeses make servers log expected failures (lost leases, cancelled work).
    logging.disable(logging.ERROR)
    yield
    logging.disable(logging.NOTSET)


def run(scenario, seed, max_time=600.0):
    return vloop.run(scenario, seed=seed, max_time=max_time)


async def _attempt(coro, acked: set, ambiguous: set, key: bytes, timeout: float = 10.0) -> None:
    try:
        await asyncio.wait_for(coro, timeout)
        acked.add(key)
    except NodeUnavailableError:
        pass  # never delivered
    except Exception:
        ambiguous.add(key)  # may or may not have been applied


# ---- (a) acknowledged writes survive crashes ------------------------------------------


async def crash_durability(loop: vloop.VirtualEventLoop) -> tuple[int, int]:
    sim = KVSim(loop, 3, faults=FAULTS, max_skew_nanos=SKEW)
    await sim.start()
    rng = loop.fork_rng("scenario")
    acked: set[bytes] = set()
    ambiguous: set[bytes] = set()
    try:

        async def writer(w: int) -> None:
            for i in range(30):
                k = b"w%d-%03d" % (w, i)
                await _attempt(sim.db(rng.choice(sim.live())).put(k, k), acked, ambiguous, k)
                await asyncio.sleep(rng.uniform(0, 0.05))

        async def crasher() -> None:
            await asyncio.sleep(rng.uniform(0.2, 0.6))
            victim = rng.choice(sim.live())
            await sim.crash(victim)
            await asyncio.sleep(rng.uniform(0.5, 2.0))
            await sim.restart(victim)

        await asyncio.gather(*(writer(w) for w in range(4)), crasher())
        # then the whole cluster goes down at once and comes back
        for i in list(sim.live()):
            await sim.crash(i)
        await asyncio.sleep(1.0)
        for i in range(1, sim.n + 1):
            await sim.restart(i)
        rows = await retry(lambda: sim.db().scan(b"w", b"x"))
        got = {k for k, v in rows if k == v}
        assert len(got) == len(rows)
        missing = acked - got
        assert not missing, f"acknowledged writes lost: {sorted(missing)[:10]}"
        extra = got - acked - ambiguous
        assert not extra, f"writes that were never acknowledged nor ambiguous: {sorted(extra)}"
        return len(acked), len(ambiguous)
    finally:
        await sim.close()


@pytest.mark.parametrize("seed", FAST_SEEDS)
def test_acked_writes_survive_crash_and_restart(seed):
    n_acked, _ = run(crash_durability, seed)
    assert n_acked >= 60  # the workload made progress through the crash


@pytest.mark.slow
@pytest.mark.parametrize("seed", SLOW_SEEDS)
def test_acked_writes_survive_crash_and_restart_many_seeds(seed):
    run(crash_durability, seed)


# ---- (b) crashing the leaseholder moves the lease ----------------------------------


async def leaseholder_crash(loop: vloop.VirtualEventLoop) -> float:
    sim = KVSim(loop, 3, faults=FAULTS, max_skew_nanos=SKEW)
    await sim.start()
    try:
        key = b"lease-key"
        await retry(lambda: sim.db().put(key, b"v0"))
        await sim.wait_for(lambda: sim.leaseholder(key) is not None)
        old = sim.leaseholder(key)
        assert old is not None
        await sim.crash(old)
        t0 = loop.time()
        gw = sim.db(sim.live()[0])
        await retry(lambda: gw.put(key, b"v1"), attempts=100)
        recovery = loop.time() - t0
        new = sim.leaseholder(key)
        assert new is not None and new != old, (old, new)
        assert await retry(lambda: gw.get(key)) == b"v1"
        # the old leaseholder comes back, catches up, and serves the new value
        await sim.restart(old)
        await sim.wait_for(lambda: sim.cluster.nodes[old].store.replicas.get(1) is not None)
        assert await retry(lambda: sim.db(old).get(key)) == b"v1"
        await retry(lambda: sim.db(old).put(key, b"v2"))
        assert await retry(lambda: gw.get(key)) == b"v2"
        return recovery
    finally:
        await sim.close()


@pytest.mark.parametrize("seed", FAST_SEEDS)
def test_leaseholder_crash_moves_lease_and_writes_resume(seed):
    recovery = run(leaseholder_crash, seed)
    # the lease must expire (3 s lease) before another replica takes over;
    # a bound in virtual seconds, not a speed assertion
    assert 0 < recovery < 20


@pytest.mark.slow
@pytest.mark.parametrize("seed", SLOW_SEEDS)
def test_leaseholder_crash_many_seeds(seed):
    run(leaseholder_crash, seed)


# ---- (c) splits under concurrent writes ------------------------------------------------


async def split_under_writes(loop: vloop.VirtualEventLoop) -> int:
    sim = KVSim(loop, 3, faults=FAULTS, max_skew_nanos=SKEW)
    await sim.start()
    rng = loop.fork_rng("scenario")
    acked: set[bytes] = set()
    ambiguous: set[bytes] = set()
    try:

        async def writer(w: int) -> None:
            for i in range(40):
                k = b"s-%03d-%d" % (rng.randrange(1000), w * 1000 + i)
                await _attempt(sim.db(rng.choice(sim.live())).put(k, k), acked, ambiguous, k)

        async def splitter() -> int:
            n = 0
            for _ in range(6):
                await asyncio.sleep(rng.uniform(0.0, 0.3))
                at = b"s-%03d" % rng.randrange(1000)
                try:
                    await asyncio.wait_for(sim.db(rng.choice(sim.live())).admin_split(at), 10)
                    n += 1
                except Exception:
                    pass
            return n

        *_, splits = await asyncio.gather(*(writer(w) for w in range(4)), splitter())
        rows = await retry(lambda: sim.db().scan(b"s-", b"s.\xff"))
        got = [k for k, _ in rows]
        assert got == sorted(got)
        missing = acked - set(got)
        assert not missing, f"writes lost across splits: {sorted(missing)[:10]}"
        assert set(got) <= acked | ambiguous
        return splits
    finally:
        await sim.close()


@pytest.mark.parametrize("seed", FAST_SEEDS)
def test_split_under_concurrent_writes_loses_nothing(seed):
    assert run(split_under_writes, seed) >= 3


@pytest.mark.slow
@pytest.mark.parametrize("seed", SLOW_SEEDS)
def test_split_under_concurrent_writes_many_seeds(seed):
    run(split_under_writes, seed)


# ---- (d) scans across many ranges -------------------------------------------------------


async def scan_many_ranges(loop: vloop.VirtualEventLoop) -> int:
    sim = KVSim(loop, 3, faults=FAULTS, max_skew_nanos=SKEW)
    await sim.start()
    rng = loop.fork_rng("scenario")
    try:
        db = sim.db()
        want = sorted({b"t%04d" % rng.randrange(10000) for _ in range(150)})
        for k in rng.sample(want, len(want)):  # written in random order
            await retry(lambda k=k: db.put(k, k[::-1]))
        splits = sorted(rng.sample(want, 12))
        for at in splits:
            await retry(lambda at=at: db.admin_split(at))
        await sim.cluster.wait_replicated(timeout=60)
        ranges = {sim.range_of(k) for k in want}
        assert len(ranges) >= 10
        rows = await retry(lambda: sim.db(rng.choice(sim.live())).scan(b"t", b"u"))
        assert rows == [(k, k[::-1]) for k in want]
        rev = await retry(lambda: db.reverse_scan(b"t", b"u"))
        assert rev == rows[::-1]
        # paging with a row limit returns the same keys, in order
        paged: list[bytes] = []
        start = b"t"
        while True:
            page, resume = await retry(lambda start=start: db.scan_page(start, b"u", max_rows=7))
            assert len(page) <= 7
            paged += [k for k, _ in page]
            if resume is None:
                break
            start = resume[0]
        assert paged == want
        return len(ranges)
    finally:
        await sim.close()


@pytest.mark.parametrize("seed", FAST_SEEDS)
def test_scan_across_ten_ranges_is_ordered(seed):
    assert run(scan_many_ranges, seed) >= 10


@pytest.mark.slow
@pytest.mark.parametrize("seed", SLOW_SEEDS)
def test_scan_across_ten_ranges_many_seeds(seed):
    run(scan_many_ranges, seed)


# ---- (e) linearizable registers under lease moves, crashes and partitions ----------------


async def splitter(sim: KVSim, rng, at_keys: list[bytes]) -> list[tuple[float, str]]:
    """Split at each key at a random moment of the workload's first seconds."""
    done = []
    for at in at_keys:
        await asyncio.sleep(rng.uniform(0.2, 2.0))
        for _ in range(5):
            try:
                await asyncio.wait_for(sim.db(rng.choice(sim.live())).admin_split(at), 5)
                done.append((sim.loop.time(), f"split at {at!r}"))
                break
            except Exception:
                await asyncio.sleep(0.5)
    return done


def register_scenario(*, clients=5, ops=60, partition=True, faults=FAULTS, skew=SKEW,
                      keys=(b"reg-a", b"reg-b", b"reg-c"), split_keys=None, think_max=0.2):
    async def scenario(loop: vloop.VirtualEventLoop):
        sim = KVSim(loop, 3, faults=faults, max_skew_nanos=skew)
        await sim.start()
        try:
            await retry(lambda: sim.db().admin_split(keys[1]))  # two ranges
            h = History(clock=loop.time)
            stop = asyncio.Event()
            nem = asyncio.create_task(nemesis(
                sim, loop.fork_rng("nemesis"), stop, keys=list(keys), partition=partition,
                interval=(0.2, 0.8)))
            splits = asyncio.create_task(splitter(sim, loop.fork_rng("splits"), split_keys or []))
            await register_workload(sim, h, keys=list(keys), clients=clients, ops_per_client=ops,
                                    rng=loop.fork_rng("workload"), think_max=think_max)
            stop.set()
            actions = await nem + await splits
            return h, sorted(actions)
        finally:
            await sim.close()

    return scenario


# Harsher: more loss, reordering, lost responses, skew near half the max
# offset, more clients and keys, and splits between the keys.
HARSH = dict(
    clients=8, ops=80, think_max=0.1, skew=240_000_000,
    faults=NetFaults(drop=0.05, duplicate=0.03, raft_delay_max=0.05, rpc_delay_max=0.02,
                     rpc_response_drop=0.02),
    keys=(b"reg-a", b"reg-b", b"reg-c", b"reg-d"),
    split_keys=[b"reg-a\x00", b"reg-c", b"reg-d"],
)


def _assert_linearizable(h: History, actions) -> None:
    res = check(h)
    assert res.ok, f"{res.explain()}\nnemesis: {actions}"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_registers_linearizable_under_nemesis(seed):
    h, actions = run(register_scenario(), seed)
    kinds = Counter(e.type for e in h.events)
    assert kinds["ok"] >= 150  # the workload made progress
    assert any(a.startswith("crash") for _, a in actions)
    assert any(a.startswith("transfer") for _, a in actions)
    _assert_linearizable(h, actions)


@pytest.mark.slow
@pytest.mark.parametrize("seed", list(range(200, 240)))
def test_registers_linearizable_many_seeds(seed):
    h, actions = run(register_scenario(clients=6, ops=100), seed, max_time=1200)
    _assert_linearizable(h, actions)


def test_registers_linearizable_under_harsh_faults_and_splits():
    h, actions = run(register_scenario(**{**HARSH, "ops": 40}), 11, max_time=1200)
    assert Counter(e.type for e in h.events)["ok"] >= 200
    assert any(a.startswith("split") for _, a in actions)
    _assert_linearizable(h, actions)


@pytest.mark.slow
@pytest.mark.parametrize("seed", list(range(300, 330)))
def test_registers_linearizable_harsh_many_seeds(seed):
    h, actions = run(register_scenario(**HARSH), seed, max_time=1200)
    _assert_linearizable(h, actions)


def test_same_seed_same_history_different_seed_differs():
    def once(seed):
        loops: list[vloop.VirtualEventLoop] = []
        h, actions = vloop.run(register_scenario(ops=30), seed=seed, on_loop=loops.append)
        lp = loops[0]
        return h.events, actions, lp.trace, lp.time(), lp.steps

    a, b, c = once(7), once(7), once(8)
    assert a[0] == b[0]  # every event, value and virtual time
    assert a[1:] == b[1:]
    assert a[0] != c[0]
    assert a[1] != c[1]


def test_checker_catches_stale_reads_from_a_broken_server(monkeypatch):
    """The broken variant: leaseholders serve non-transactional reads 1 s in
    the past. The same scenario that passes above must be flagged."""
    orig = Replica._assign_timestamp

    def stale(self, ba):
        out = orig(self, ba)
        if all(ru.WhichOneof("value") == "get" for ru in out.requests):
            ts = ts_from_proto(out.header.timestamp)
            out.header.timestamp.Clear()
            ts_to_proto(ts.add(-1_000_000_000), out.header.timestamp)
        return out

    monkeypatch.setattr(Replica, "_assign_timestamp", stale)
    h, actions = run(register_scenario(ops=40, partition=False, faults=NetFaults()), 1)
    res = check(h)
    assert res.status == "illegal", "a server serving stale reads went unnoticed"
    bad = res.bad_keys[0]
    assert bad.blocked is not None


# ---- bugs found by the simulator ------------------------------------------------------


def test_write_applied_in_the_same_batch_as_a_lease_transfer_applies_once():
    async def scenario(loop: vloop.VirtualEventLoop):
        sim = KVSim(loop, 3)
        await sim.start()
        try:
            key = b"counter"
            await retry(lambda: sim.db().put(b"warm", b"x"))
            lh = sim.leaseholder(key)
            target = next(i for i in sim.live() if i != lh)
            db = sim.db(lh)
            await db.get(key)
            # the increment and the transfer commit in one raft round
            inc = asyncio.create_task(db.inc(key, 1))
            transfer = asyncio.create_task(db.admin_transfer_lease(key, target))
            new_value, _ = await asyncio.gather(inc, transfer)
            return new_value, await retry(lambda: db.inc(key, 0))
        finally:
            await sim.close()

    new_value, final = run(scenario, 0)
    assert (new_value, final) == (1, 1)  # one increment of 1, applied once


def test_write_in_flight_on_a_crashing_node_is_ambiguous_not_cancelled():
    async def scenario(loop: vloop.VirtualEventLoop):
        sim = KVSim(loop, 3)
        await sim.start()
        try:
            key = b"inflight"
            await retry(lambda: sim.db().put(key, b"v0"))
            lh = sim.leaseholder(key)
            assert lh is not None
            db = sim.db(lh)
            sim.isolate(lh)  # the proposal cannot commit
            put = asyncio.create_task(db.put(key, b"v1"))
            read = asyncio.create_task(db.get(key))  # queued behind the put's latch
            await asyncio.sleep(0.5)
            assert not put.done()
            await sim.crash(lh)
            sim.heal()
            res = await asyncio.gather(put, read, return_exceptions=True)
            return [type(r).__name__ if isinstance(r, BaseException) else r for r in res]
        finally:
            await sim.close()

    put_res, read_res = run(scenario, 0)
    assert put_res == "AmbiguousResultError"
    # the read was not answered by the dead node; it failed over or failed cleanly
    assert read_res in (b"v0", b"v1", "NodeUnavailableError"), read_res


def test_isolation_directions():
    async def main(loop: vloop.VirtualEventLoop):
        sim = KVSim(loop, 3)
        links = sim.net.links
        sim.isolate(1, "out")
        out = (links.is_blocked(1, 2), links.is_blocked(2, 1))
        sim.heal()
        sim.isolate(1, "in")
        inn = (links.is_blocked(1, 3), links.is_blocked(3, 1))
        sim.heal()
        sim.isolate(2)
        both = sorted(links.blocked_links())
        with pytest.raises(ValueError):
            sim.isolate(1, "sideways")
        return out, inn, both

    out, inn, both = vloop.run(main)
    assert out == (True, False) and inn == (False, True)
    assert both == [(1, 2), (2, 1), (2, 3), (3, 2)]
