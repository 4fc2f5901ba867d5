"""The virtual-time event loop: time jumps, timeouts, determinism, no real I/O."""

from __future__ import annotations

import asyncio
import time

import pytest

from crdb_py.sim import vloop
from crdb_py.util.hlc import HLC


def test_sleep_costs_no_wall_time():
    async def main():
        await asyncio.sleep(3600)
        await asyncio.sleep(0.25)
        return asyncio.get_running_loop().time()

    t0 = time.perf_counter()
    assert vloop.run(main()) == 3600.25
    assert time.perf_counter() - t0 < 30  # generous: only proves no real hour passed


def test_timers_fire_in_virtual_order_and_wait_for_times_out():
    async def main():
        loop = vloop.current()
        seen = []
        for d in (3.0, 1.0, 2.0, 1.0):
            loop.call_later(d, lambda d=d: seen.append((d, loop.time())))
        assert loop.pending_timers() == 4 and loop.next_timer() == 1.0
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.sleep(100), 5)
        assert loop.time() == 5.0
        assert loop.pending_timers() == 0 and loop.next_timer() is None
        return seen

    assert vloop.run(main()) == [(1.0, 1.0), (1.0, 1.0), (2.0, 2.0), (3.0, 3.0)]


def test_call_soon_is_fifo_and_runs_before_time_moves():
    async def main():
        loop = vloop.current()
        out = []
        for i in range(5):
            loop.call_soon(out.append, (i, loop.time()))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return out

    assert vloop.run(main()) == [(i, 0.0) for i in range(5)]


def test_deadlock_is_detected():
    async def main():
        await asyncio.get_running_loop().create_future()

    with pytest.raises(vloop.SimulationDeadlockError):
        vloop.run(main())


def test_budgets():
    async def forever():
        while True:
            await asyncio.sleep(1)

    with pytest.raises(vloop.SimulationLimitError):
        vloop.run(forever(), max_time=50)

    async def spin():
        while True:
            await asyncio.sleep(0)

    with pytest.raises(vloop.SimulationLimitError):
        vloop.run(spin(), max_steps=1000)


@pytest.mark.parametrize(
    "what",
    [
        lambda: asyncio.open_connection("127.0.0.1", 9),
        lambda: asyncio.start_server(lambda r, w: None, "127.0.0.1", 0),
        lambda: asyncio.get_running_loop().getaddrinfo("localhost", 80),
        lambda: asyncio.to_thread(time.sleep, 0),
        lambda: asyncio.create_subprocess_exec("true"),
    ],
)
def test_real_io_is_forbidden(what):
    async def main():
        await what()

    with pytest.raises(vloop.RealIOForbiddenError):
        vloop.run(main())


def test_hlc_on_virtual_time_with_skew():
    async def main():
        loop = vloop.current()
        a = HLC(loop.physical_clock())
        b = HLC(loop.physical_clock(skew_nanos=200_000_000))
        t1 = a.now()
        await asyncio.sleep(1.5)
        t2 = a.now()
        return t1, t2, b.now()

    t1, t2, tb = vloop.run(main())
    assert t1.wall_time == vloop.EPOCH_NANOS
    assert t2.wall_time - t1.wall_time == 1_500_000_000
    assert tb.wall_time - t2.wall_time == 200_000_000


async def _workers(loop: vloop.VirtualEventLoop) -> str:
    """Workers with seeded random sleeps contending on a queue and a lock."""
    rng = loop.rng
    q: asyncio.Queue[int] = asyncio.Queue()
    lock = asyncio.Lock()

    async def producer(i: int) -> None:
        for j in range(20):
            await asyncio.sleep(rng.expovariate(10))
            await q.put(i * 100 + j)
            loop.record("put", i, j)

    async def consumer(i: int) -> None:
        while True:
            v = await q.get()
            async with lock:
                await asyncio.sleep(rng.random() / 50)
                loop.record("got", i, v)
            q.task_done()

    cons = [asyncio.create_task(consumer(i)) for i in range(3)]
    await asyncio.gather(*(producer(i) for i in range(4)))
    await q.join()
    for c in cons:
        c.cancel()
    await asyncio.gather(*cons, return_exceptions=True)
    return loop.trace_digest()


def test_same_seed_same_trace_different_seed_differs():
    traces = {}
    for seed in (1, 1, 2):
        loops: list[vloop.VirtualEventLoop] = []
        digest = vloop.run(_workers, seed=seed, on_loop=loops.append)
        assert len(loops[0].trace) == 80 + 80
        traces.setdefault(seed, []).append((digest, list(loops[0].trace)))
    (d1, t1), (d1b, t1b) = traces[1]
    assert t1 == t1b and d1 == d1b
    ((d2, t2),) = traces[2]
    assert d2 != d1 and t2 != t1


def test_fork_rng_is_stable_per_name():
    async def main():
        loop = vloop.current()
        a = loop.fork_rng("net").random()
        loop.rng.random()  # unrelated draw
        return a, loop.fork_rng("net").random(), loop.fork_rng("other").random()

    a, a2, b = vloop.run(main(), seed=5)
    assert a == a2 and a != b
    assert vloop.run(main(), seed=6)[0] != a
