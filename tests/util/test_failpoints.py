"""crdb_py.util.failpoints: the unarmed fast path keeps counting and waking.

(The actions — pause, error, kill, sleep, counts, the env var — are tested in
tests/kvclient/txn/test_failpoints.py.)
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from crdb_py.util import failpoints


@pytest.fixture(autouse=True)
def _reset() -> None:
    failpoints.reset()
    yield
    failpoints.reset()


def test_unarmed_hits_count_without_creating_events() -> None:
    for _ in range(3):
        failpoints.hit_sync("fast")
    asyncio.run(failpoints.hit("fast"))
    assert failpoints.hits("fast") == 4
    assert failpoints._reached == {}  # nothing allocated on the fast path


def test_wait_reached_sees_a_fast_path_hit_made_before_the_wait() -> None:
    failpoints.hit_sync("early")
    assert failpoints.wait_reached_sync("early", timeout=0.5)
    assert not failpoints.wait_reached_sync("never", timeout=0.01)


def test_wait_reached_is_woken_by_a_fast_path_hit_from_another_thread() -> None:
    got: list[bool] = []
    waiter = threading.Thread(target=lambda: got.append(failpoints.wait_reached_sync("late", 5)))
    waiter.start()
    while "late" not in failpoints._reached:  # the waiter is parked
        threading.Event().wait(0.001)
    failpoints.hit_sync("late")
    waiter.join(5)
    assert got == [True]


def test_async_wait_reached_after_unarmed_hit_in_a_coroutine() -> None:
    async def main() -> bool:
        async def later() -> None:
            await asyncio.sleep(0.01)
            await failpoints.hit("co")

        t = asyncio.ensure_future(later())
        ok = await failpoints.wait_reached("co", timeout=5)
        await t
        return ok

    assert asyncio.run(main())


def test_arming_any_point_takes_the_slow_path_for_all_and_counts_alike() -> None:
    failpoints.enable("armed", "error*1")
    failpoints.hit_sync("other")  # not armed itself, but the table is not empty
    with pytest.raises(failpoints.FailpointError):
        failpoints.hit_sync("armed")
    failpoints.hit_sync("armed")  # used up
    assert failpoints.hits("other") == 1 and failpoints.hits("armed") == 2
    failpoints.disable("armed")
    failpoints.hit_sync("other")
    assert failpoints.hits("other") == 2


def test_reset_forgets_fast_path_hits() -> None:
    failpoints.hit_sync("gone")
    failpoints.reset()
    assert failpoints.hits("gone") == 0
    assert not failpoints.wait_reached_sync("gone", timeout=0.01)
