from __future__ import annotations

import asyncio
import doctest
import random
from dataclasses import dataclass, field

import pytest

from crdb_py.kvserver import spanlatch
from crdb_py.kvserver.spanlatch import Guard, LatchManager
from crdb_py.kvserver.spanset import SpanAccess, SpanSet
from crdb_py.util.errors import InternalError
from crdb_py.util.hlc import MIN_TIMESTAMP, Timestamp

R, W = SpanAccess.READ_ONLY, SpanAccess.READ_WRITE
T = Timestamp
Z = MIN_TIMESTAMP


def ss(*decls: tuple) -> SpanSet:
    """ss((R, b"a"), (W, b"a", b"c", T(5)), ...) — (access, key[, end][, ts])."""
    out = SpanSet()
    for d in decls:
        access, key, *rest = d
        end = rest[0] if rest and isinstance(rest[0], bytes | type(None)) else None
        ts = rest[-1] if rest and isinstance(rest[-1], Timestamp) else Z
        out.add(access, key, end, ts)
    return out


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def run(coro):
    return asyncio.run(coro)


def test_doctests():
    assert doctest.testmod(spanlatch).failed == 0


# ---- the conflict matrix -----------------------------------------------------

# (first request, second request, do they conflict)
_MATRIX = [
    # read/read never, whatever the spans and timestamps
    ((R, b"k", T(5)), (R, b"k", T(5)), False),
    ((R, b"a", b"z"), (R, b"k"), False),
    ((R, b"k", Z), (R, b"k", T(3)), False),
    # write/write always on overlap, whatever the timestamps
    ((W, b"k", T(5)), (W, b"k", T(9)), True),
    ((W, b"k", T(9)), (W, b"k", T(5)), True),
    ((W, b"k", Z), (W, b"k", T(5)), True),
    ((W, b"a", b"c", T(1)), (W, b"b", T(1)), True),
    ((W, b"a", b"c", T(1)), (W, b"b", b"z", T(1)), True),
    # ... and never without overlap
    ((W, b"a", b"c", T(1)), (W, b"c", T(1)), False),
    ((W, b"a", b"c", T(1)), (W, b"c", b"d", T(1)), False),
    ((W, b"k"), (W, b"k\x00"), False),
    ((W, b"b", b"c"), (W, b"a", b"b"), False),
    # read at R vs write at W: conflict unless R < W (both MVCC)
    ((W, b"k", T(5)), (R, b"k", T(4)), False),
    ((W, b"k", T(5)), (R, b"k", T(5)), True),
    ((W, b"k", T(5)), (R, b"k", T(6)), True),
    ((R, b"k", T(4)), (W, b"k", T(5)), False),
    ((R, b"k", T(5)), (W, b"k", T(5)), True),
    ((R, b"k", T(6)), (W, b"k", T(5)), True),
    ((R, b"a", b"m", T(4)), (W, b"c", T(5)), False),
    ((R, b"a", b"m", T(6)), (W, b"c", T(5)), True),
    ((W, b"c", T(5)), (R, b"a", b"m", T(6)), True),
    # non-MVCC latches conflict with every overlapping latch of the other kind
    ((W, b"k", Z), (R, b"k", T(1)), True),
    ((R, b"k", T(1)), (W, b"k", Z), True),
    ((R, b"k", Z), (W, b"k", T(100)), True),
    ((W, b"k", T(100)), (R, b"k", Z), True),
    ((W, b"a", b"z", Z), (R, b"y", T(1)), True),
    ((W, b"a", b"z", Z), (R, b"z", T(1)), False),
]


@pytest.mark.parametrize("first, second, conflict", _MATRIX)
def test_conflict_matrix(first, second, conflict):
    async def go():
        m = LatchManager()
        g1 = await m.acquire(ss(first))
        g2 = m.try_acquire(ss(second))
        assert (g2 is None) is conflict
        # the same through the waiting path
        if g2 is not None:
            m.release(g2)
        task = asyncio.create_task(m.acquire(ss(second)))
        await settle()
        assert task.done() is (not conflict)
        m.release(g1)
        g2 = await asyncio.wait_for(task, 1)
        assert g2.held
        m.release(g2)
        assert len(m) == 0
        assert m.metrics()["waits"] == (1 if conflict else 0)

    run(go())


def test_try_acquire_inserts_nothing_on_conflict():
    async def go():
        m = LatchManager()
        g = await m.acquire(ss((W, b"a", b"c")))
        assert m.try_acquire(ss((R, b"x"), (W, b"b"))) is None
        assert len(m) == 1
        m.release(g)
        g2 = m.try_acquire(ss((R, b"x"), (W, b"b")))
        assert g2 is not None and g2.held and len(m) == 2

    run(go())


def test_own_spans_never_conflict_with_each_other():
    async def go():
        m = LatchManager()
        g = await asyncio.wait_for(m.acquire(ss((R, b"k", Z), (W, b"k", Z), (W, b"a", b"z"))), 1)
        assert g.held and len(m) == 3

    run(go())


def test_release_twice_is_an_invariant_violation():
    async def go():
        m = LatchManager()
        g = await m.acquire(ss((W, b"k")))
        m.release(g)
        with pytest.raises(InternalError):
            m.release(g)

    run(go())


# ---- ordering ----------------------------------------------------------------


def test_fifo_later_request_never_overtakes_an_earlier_conflicting_one():
    """A read holds k; a write queues behind it; a second read arrives. The
    second read does not conflict with the first read, but must not overtake
    the queued write."""

    async def go():
        m = LatchManager()
        order: list[str] = []

        async def req(name: str, spans: SpanSet, hold: asyncio.Event) -> None:
            g = await m.acquire(spans)
            order.append(name)
            await hold.wait()
            m.release(g)

        holds = {n: asyncio.Event() for n in ("r1", "w", "r2", "w2")}
        tasks = []
        for name, spans in [
            ("r1", ss((R, b"k", T(10)))),
            ("w", ss((W, b"k", T(5)))),
            ("r2", ss((R, b"k", T(10)))),
            ("w2", ss((W, b"j", b"l", T(1)))),
        ]:
            tasks.append(asyncio.create_task(req(name, spans, holds[name])))
            await settle()
        assert order == ["r1"]
        holds["r1"].set()
        await settle()
        assert order == ["r1", "w"]
        holds["w"].set()
        await settle()
        assert order == ["r1", "w", "r2"]
        holds["r2"].set()
        await settle()
        assert order == ["r1", "w", "r2", "w2"]
        holds["w2"].set()
        await asyncio.gather(*tasks)
        assert len(m) == 0

    run(go())


def test_no_starvation_of_a_writer_under_a_stream_of_readers():
    async def go():
        m = LatchManager()
        held_readers = [await m.acquire(ss((R, b"k"))) for _ in range(3)]
        writer = asyncio.create_task(m.acquire(ss((W, b"k"))))
        late_readers = [asyncio.create_task(m.acquire(ss((R, b"k")))) for _ in range(5)]
        await settle()
        assert not writer.done() and not any(t.done() for t in late_readers)
        for g in held_readers:
            m.release(g)
        gw = await asyncio.wait_for(writer, 1)
        await settle()
        assert not any(t.done() for t in late_readers)  # still behind the writer
        m.release(gw)
        for g in await asyncio.wait_for(asyncio.gather(*late_readers), 1):
            m.release(g)
        assert len(m) == 0

    run(go())


def test_disjoint_requests_proceed_while_others_wait():
    async def go():
        m = LatchManager()
        g = await m.acquire(ss((W, b"a", b"c")))
        blocked = asyncio.create_task(m.acquire(ss((W, b"b"))))
        free = asyncio.create_task(m.acquire(ss((W, b"c"), (R, b"x", b"z"))))
        await settle()
        assert free.done() and not blocked.done()
        m.release(g)
        await asyncio.wait_for(blocked, 1)

    run(go())


# ---- cancellation --------------------------------------------------------------


def test_cancelled_acquire_leaves_no_latch_and_unblocks_those_behind_it():
    async def go():
        m = LatchManager()
        g1 = await m.acquire(ss((W, b"k")))
        waiting = asyncio.create_task(m.acquire(ss((W, b"k"), (R, b"a", b"z"))))
        await settle()
        behind = asyncio.create_task(m.acquire(ss((W, b"q"))))  # conflicts only with `waiting`
        await settle()
        assert len(m) == 4 and not behind.done()
        waiting.cancel()
        await settle()
        assert waiting.cancelled()
        assert behind.done()  # no longer queued behind a request that gave up
        m.release(behind.result())
        assert len(m) == 1
        m.release(g1)
        assert len(m) == 0

    run(go())


def test_wait_for_timeout_leaves_no_latch():
    async def go():
        m = LatchManager()
        g1 = await m.acquire(ss((W, b"k")))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(m.acquire(ss((R, b"k"))), 0.01)
        assert len(m) == 1
        m.release(g1)
        assert len(m) == 0

    run(go())


def test_cancelling_one_waiter_does_not_disturb_another_waiting_on_the_same_guard():
    async def go():
        m = LatchManager()
        g1 = await m.acquire(ss((W, b"k")))
        a = asyncio.create_task(m.acquire(ss((R, b"k"))))
        b = asyncio.create_task(m.acquire(ss((R, b"k"))))
        await settle()
        a.cancel()
        await settle()
        assert a.cancelled() and not b.done()
        m.release(g1)
        gb = await asyncio.wait_for(b, 1)
        assert gb.held
        m.release(gb)
        assert len(m) == 0

    run(go())


# ---- optimistic acquisition -----------------------------------------------------


def test_optimistic_acquire_checks_only_the_spans_actually_read():
    async def go():
        m = LatchManager()
        gw = await m.acquire(ss((W, b"y", T(5))))
        scan = ss((R, b"a", b"z", T(10)))
        g = m.acquire_optimistic(scan)
        assert not g.held and not g.released
        # the limited scan only got to b..d: no conflict with the write at y
        assert m.check_optimistic_no_conflicts(g, ss((R, b"a", b"d", T(10))))
        assert not m.check_optimistic_no_conflicts(g, scan)
        # a write that arrives later is not the optimistic reader's concern
        later = asyncio.create_task(m.acquire(ss((W, b"b", T(1)))))
        await settle()
        assert m.check_optimistic_no_conflicts(g, ss((R, b"a", b"d", T(10))))
        assert not later.done()  # but the later write does wait for the reader
        waiting = asyncio.create_task(m.wait_until_acquired(g))
        await settle()
        assert not waiting.done()
        m.release(gw)
        await asyncio.wait_for(waiting, 1)
        assert g.held and m.check_optimistic_no_conflicts(g, scan)
        m.release(g)
        m.release(await asyncio.wait_for(later, 1))
        assert len(m) == 0

    run(go())


def test_optimistic_guard_without_conflicts_released_directly():
    async def go():
        m = LatchManager()
        g = m.acquire_optimistic(ss((R, b"a", b"z", T(3))))
        assert m.check_optimistic_no_conflicts(g, ss((R, b"a", b"z", T(3))))
        m.release(g)
        assert len(m) == 0
        with pytest.raises(InternalError):
            await m.wait_until_acquired(g)

    run(go())


def test_latched_context_manager_releases_on_error():
    async def go():
        m = LatchManager()
        with pytest.raises(RuntimeError):
            async with m.latched(ss((W, b"k"))) as g:
                assert g.held and len(m) == 1
                raise RuntimeError("evaluation failed")
        assert len(m) == 0 and g.released

    run(go())


# ---- randomized model check ------------------------------------------------------

_KEYS = [b"a", b"b", b"c", b"d", b"e"]


def _conflicts(a: tuple, b: tuple) -> bool:
    """Brute-force conflict of two declared (access, key, end, ts) — written
    independently of the manager from the table in its docstring."""
    (acc_a, ka, ea, ta), (acc_b, kb, eb, tb) = a, b
    end_a, end_b = ea or ka + b"\x00", eb or kb + b"\x00"
    if not (ka < end_b and kb < end_a):
        return False
    if acc_a == R and acc_b == R:
        return False
    if acc_a == W and acc_b == W:
        return True
    rts, wts = (ta, tb) if acc_a == R else (tb, ta)
    return rts.is_empty() or wts.is_empty() or not rts < wts


def _random_decls(rng: random.Random) -> list[tuple]:
    out = []
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(_KEYS))
        end = None
        if rng.random() < 0.3:
            end = _KEYS[rng.randint(i + 1, len(_KEYS) - 1)] if i + 1 < len(_KEYS) else b"f"
        ts = Z if rng.random() < 0.2 else T(rng.randint(1, 4))
        out.append((rng.choice([R, W]), _KEYS[i], end, ts))
    return out


@dataclass
class _Checker:
    held: dict[int, list[tuple]] = field(default_factory=dict)  # arrival -> decls
    acquired_order: list[int] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    trace: list[tuple] = field(default_factory=list)


def _simulate(seed: int, n: int = 120, cancel_p: float = 0.1) -> _Checker:
    rng = random.Random(seed)
    chk = _Checker()
    decls_by_arrival: dict[int, list[tuple]] = {}

    async def request(arrival: int, decls: list[tuple], hold_turns: int, cancel_after: int | None):
        spans = SpanSet()
        for acc, k, e, ts in decls:
            spans.add(acc, k, e, ts)
        async def acquire() -> Guard:
            try:
                return await m.acquire(spans)
            except asyncio.CancelledError:
                cancelled.add(arrival)  # in the same step that gives up the latches
                raise

        task = asyncio.create_task(acquire())
        if cancel_after is not None:
            for _ in range(cancel_after):
                await asyncio.sleep(0)
            if not task.done():
                task.cancel()
        try:
            g: Guard = await task
        except asyncio.CancelledError:
            cancelled.add(arrival)  # (cancelled before its acquire even started)
            chk.trace.append(("cancel", arrival))
            return
        for other, odecls in chk.held.items():
            if any(_conflicts(a, b) for a in decls for b in odecls):
                chk.violations.append(f"{arrival} acquired while conflicting {other} held")
        for earlier in range(arrival):
            if earlier in chk.held or earlier in done or earlier in cancelled:
                continue
            # an earlier, still-queued request that conflicts must not be overtaken
            if any(_conflicts(a, b) for a in decls for b in decls_by_arrival[earlier]):
                chk.violations.append(f"{arrival} overtook earlier conflicting {earlier}")
        chk.held[arrival] = decls
        chk.trace.append(("acquire", arrival))
        for _ in range(hold_turns):
            await asyncio.sleep(0)
        del chk.held[arrival]
        done.add(arrival)
        m.release(g)

    done: set[int] = set()
    cancelled: set[int] = set()

    async def main() -> None:
        tasks = []
        for arrival in range(n):
            decls = _random_decls(rng)
            decls_by_arrival[arrival] = decls
            cancel_after = rng.randint(0, 3) if rng.random() < cancel_p else None
            tasks.append(asyncio.create_task(request(arrival, decls, rng.randint(0, 6), cancel_after)))
            for _ in range(rng.randint(0, 2)):
                await asyncio.sleep(0)
        await asyncio.wait_for(asyncio.gather(*tasks), 10)

    m = LatchManager()
    asyncio.run(main())
    if len(m) != 0:
        chk.violations.append(f"{len(m)} latches leaked")
    return chk


@pytest.mark.parametrize("seed", range(8))
def test_randomized_no_conflicting_guards_held_together(seed):
    chk = _simulate(seed)
    assert chk.violations == []
    assert sum(1 for e in chk.trace if e[0] == "acquire") > 50  # the run did real work


def test_randomized_run_is_deterministic():
    assert _simulate(3).trace == _simulate(3).trace


def test_randomized_checker_catches_a_manager_that_ignores_conflicts(monkeypatch):
    monkeypatch.setattr(LatchManager, "_newest_conflict", lambda self, spans, seq: None)
    chk = _simulate(0, cancel_p=0.0)
    assert any("while conflicting" in v for v in chk.violations)


def test_randomized_checker_catches_unfair_ordering(monkeypatch):
    """A manager that only waits for *held* latches (not queued ones) lets later
    requests overtake earlier waiting ones: the FIFO check must notice."""
    orig = LatchManager._newest_conflict

    def held_only(self, spans, seq):
        while True:  # look past waiting guards to the newest held one
            g = orig(self, spans, seq)
            if g is None or g.held:
                return g
            seq = g.seq

    monkeypatch.setattr(LatchManager, "_newest_conflict", held_only)
    chk = _simulate(0, cancel_p=0.0)
    assert any("overtook" in v for v in chk.violations)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(100, 300))
def test_randomized_soak(seed):
    chk = _simulate(seed, n=400, cancel_p=0.15)
    assert chk.violations == []


@pytest.mark.parametrize("mixed", [False, True])
def test_hot_key_queue_wakes_each_waiter_about_once(monkeypatch, mixed):
    """n requests queued on one key: O(n) wake-ups in total, not O(n^2)."""
    parks = 0
    orig = Guard._wait_released

    def counting(self):
        nonlocal parks
        parks += 1
        return orig(self)

    monkeypatch.setattr(Guard, "_wait_released", counting)
    n = 300
    order: list[int] = []

    async def go():
        m = LatchManager()

        async def req(i: int) -> None:
            access = R if mixed and i % 3 else W
            g = await m.acquire(ss((access, b"hot", T(5))))
            order.append(i)
            await asyncio.sleep(0)
            m.release(g)

        await asyncio.wait_for(asyncio.gather(*(req(i) for i in range(n))), 10)
        assert len(m) == 0

    run(go())
    assert parks <= 2 * n
    if not mixed:
        assert order == list(range(n))


def test_try_acquire_does_not_jump_the_queue():
    """A read that would not conflict with the held read still fails to
    try_acquire while a conflicting write waits ahead of it."""

    async def go():
        m = LatchManager()
        r1 = await m.acquire(ss((R, b"k", T(10))))
        w = asyncio.create_task(m.acquire(ss((W, b"k", T(5)))))
        await settle()
        assert m.try_acquire(ss((R, b"k", T(10)))) is None
        assert m.try_acquire(ss((R, b"k", T(4)))) is not None  # below the write: no conflict
        m.release(r1)
        m.release(await asyncio.wait_for(w, 1))

    run(go())
