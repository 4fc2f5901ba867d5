"""A virtual-time asyncio event loop for deterministic simulation.

What it is. `VirtualEventLoop` is an ordinary `asyncio.BaseEventLoop` whose
clock is *virtual*: `time()` returns a number that only moves when the loop
has nothing ready to run, and then it jumps straight to the earliest
scheduled timer. `await asyncio.sleep(5)` therefore costs no wall-clock time,
timeouts (`asyncio.wait_for`) fire exactly when their virtual deadline comes,
and a whole cluster with raft ticks, lease expirations and retry backoffs can
run minutes of virtual time in seconds. Code under test does not know: it
uses the normal asyncio API (`sleep`, `call_later`, `wait_for`, tasks,
futures) and `loop.time()`.

Determinism. The loop never polls a real clock or a selector, so given the
same program and the same seed it runs the same callbacks in the same order
at the same virtual instants:

- ready callbacks run FIFO (asyncio's contract, which the in-process
  transport relies on);
- timers run in `(when, heap order)` order; the heap is deterministic for a
  deterministic sequence of `call_at`s;
- the only randomness offered is `loop.rng`, a `random.Random(seed)`; code
  that wants seeded randomness takes it from there (or from a sub-generator
  made with `loop.fork_rng(name)`, which stays stable when unrelated draws are
  added elsewhere).

What still breaks determinism is outside the loop's reach and must be kept
out of the simulated code: real clocks (`time.monotonic`, `time.time`),
unseeded `random`, iteration over sets of objects hashed by identity or of
str/bytes under different `PYTHONHASHSEED`s, and threads. `os.urandom`
values are fine as long as they are only used as opaque identifiers.

No real I/O. Sockets, pipes, subprocesses, signal handlers, executors and
DNS raise `RealIOForbiddenError`: a simulated program that touched the real
world could neither be replayed nor run at virtual speed. If nothing is
ready and no timer is pending, no event can ever arrive (there is no I/O to
wait for), so the loop raises `SimulationDeadlockError` instead of hanging.

Budget. `max_time` (virtual seconds) and `max_steps` (loop iterations) bound
a run; exceeding either raises `SimulationLimitError` from the loop, which
turns a livelock into a failing test instead of a hung one.

Clocks for nodes. `loop.physical_clock(skew_nanos)` is an HLC physical clock
(`() -> int` nanoseconds) reading the virtual time plus a fixed per-node
skew, on an epoch far from zero (`EPOCH_NANOS`), so HLC timestamps look like
wall-clock nanoseconds.

Trace. `loop.record(*fields)` appends `(virtual_time, fields)` to
`loop.trace`; tests compare traces (or `loop.trace_digest()`) of two runs to
prove determinism.

Usage::

    from crdb_py.sim import vloop

    async def main():
        await asyncio.sleep(3600)          # instant
        return asyncio.get_running_loop().time()

    assert vloop.run(main(), seed=7) == 3600.0

Rejected alternatives. Patching `time.monotonic` (global, leaks into pytest
and other threads); a custom scheduler replacing asyncio (the code under test
is written against asyncio, and the point is to run *that* code); shuffling
ready callbacks per seed (breaks asyncio's FIFO guarantee that the transport
documents and depends on).
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn, TypeVar

__all__ = [
    "EPOCH_NANOS",
    "RealIOForbiddenError",
    "SimulationDeadlockError",
    "SimulationLimitError",
    "VirtualEventLoop",
    "current",
    "run",
]

T = TypeVar("T")

# Virtual time 0 reads as 2020-09-13T12:26:40Z on node clocks.
EPOCH_NANOS = 1_600_000_000 * 1_000_000_000


class RealIOForbiddenError(RuntimeError):
    """Simulated code tried to do real I/O (or use threads / signals)."""


class SimulationDeadlockError(RuntimeError):
    """Nothing is ready and no timer is pending: the program can never progress."""


class SimulationLimitError(RuntimeError):
    """The run exceeded its virtual-time or step budget."""


class _VirtualSelector:
    """Stands in for the selector: `select(timeout)` advances virtual time."""

    def __init__(self, loop: VirtualEventLoop) -> None:
        self._loop = loop

    def select(self, timeout: float | None) -> list[Any]:
        loop = self._loop
        if timeout is None:
            raise SimulationDeadlockError(
                f"virtual loop deadlocked at t={loop.time():.6f}: no callback is ready and "
                "no timer is scheduled, so nothing can ever happen again"
            )
        if timeout > 0:
            # Jump exactly to the earliest timer (not now + timeout: float
            # rounding could leave us a hair short of it).
            sched = loop._scheduled  # type: ignore[attr-defined]
            target = loop._now + timeout
            if sched:
                target = min(target, sched[0]._when)
            loop._now = max(loop._now, target)
            if loop.max_time is not None and loop._now > loop.max_time:
                raise SimulationLimitError(f"virtual time budget of {loop.max_time}s exceeded")
        return []

    def close(self) -> None:
        pass


class VirtualEventLoop(asyncio.BaseEventLoop):
    """An asyncio event loop on virtual time (see the module docstring)."""

    def __init__(
        self,
        seed: int = 0,
        *,
        start_time: float = 0.0,
        max_time: float | None = None,
        max_steps: int | None = None,
    ) -> None:
        super().__init__()
        self._now = float(start_time)
        self._selector = _VirtualSelector(self)
        # Timers due within this much of now are run; virtual time is exact,
        # so a tiny resolution (not the OS clock's) is right.
        self._clock_resolution = 1e-9
        self.seed = seed
        self.rng = random.Random(seed)
        self.max_time = max_time
        self.max_steps = max_steps
        self.steps = 0
        self.trace: list[tuple[float, tuple[Any, ...]]] = []

    # ---- time -----------------------------------------------------------------

    def time(self) -> float:
        return self._now

    def physical_clock(self, skew_nanos: int = 0) -> Callable[[], int]:
        """An HLC physical clock: virtual time in ns on `EPOCH_NANOS`, plus a skew."""

        def clock() -> int:
            return EPOCH_NANOS + round(self._now * 1e9) + skew_nanos

        return clock

    # ---- randomness and trace -------------------------------------------------

    def fork_rng(self, name: str) -> random.Random:
        """A generator derived from (seed, name): independent of other draws."""
        h = hashlib.sha256(f"{self.seed}/{name}".encode()).digest()
        return random.Random(int.from_bytes(h[:8], "big"))

    def record(self, *fields: Any) -> None:
        self.trace.append((self._now, fields))

    def trace_digest(self) -> str:
        return hashlib.sha256(repr(self.trace).encode()).hexdigest()

    # ---- the loop -------------------------------------------------------------

    def _run_once(self) -> None:
        self.steps += 1
        if self.max_steps is not None and self.steps > self.max_steps:
            raise SimulationLimitError(f"step budget of {self.max_steps} loop iterations exceeded")
        super()._run_once()  # type: ignore[misc]

    def _process_events(self, event_list: list[Any]) -> None:
        pass

    def _write_to_self(self) -> None:
        # call_soon_threadsafe: nothing to wake, the loop never blocks.
        pass

    def pending_timers(self) -> int:
        return sum(1 for h in self._scheduled if not h._cancelled)  # type: ignore[attr-defined]

    def next_timer(self) -> float | None:
        live = [h._when for h in self._scheduled if not h._cancelled]  # type: ignore[attr-defined]
        return min(live) if live else None

    # ---- everything that would touch the real world ---------------------------

    def _forbidden(self, what: str) -> NoReturn:
        raise RealIOForbiddenError(
            f"{what} is not allowed on the virtual-time loop: simulated code must "
            "not do real I/O, use threads or signals (inject a fake instead)"
        )

    def run_in_executor(self, executor: Any, func: Any, *args: Any) -> NoReturn:  # type: ignore[override]
        self._forbidden("run_in_executor")

    def set_default_executor(self, executor: Any) -> NoReturn:
        self._forbidden("set_default_executor")

    async def getaddrinfo(self, *args: Any, **kwargs: Any) -> NoReturn:  # type: ignore[override]
        self._forbidden("getaddrinfo")

    async def getnameinfo(self, *args: Any, **kwargs: Any) -> NoReturn:  # type: ignore[override]
        self._forbidden("getnameinfo")

    async def create_connection(self, *args: Any, **kwargs: Any) -> NoReturn:  # type: ignore[override]
        self._forbidden("create_connection")

    async def create_server(self, *args: Any, **kwargs: Any) -> NoReturn:  # type: ignore[override]
        self._forbidden("create_server")

    async def create_datagram_endpoint(self, *args: Any, **kwargs: Any) -> NoReturn:  # type: ignore[override]
        self._forbidden("create_datagram_endpoint")

    async def create_unix_connection(self, *args: Any, **kwargs: Any) -> NoReturn:  # type: ignore[override]
        self._forbidden("create_unix_connection")

    async def create_unix_server(self, *args: Any, **kwargs: Any) -> NoReturn:  # type: ignore[override]
        self._forbidden("create_unix_server")

    async def connect_accepted_socket(self, *args: Any, **kwargs: Any) -> NoReturn:  # type: ignore[override]
        self._forbidden("connect_accepted_socket")

    async def connect_read_pipe(self, *args: Any, **kwargs: Any) -> NoReturn:  # type: ignore[override]
        self._forbidden("connect_read_pipe")

    async def connect_write_pipe(self, *args: Any, **kwargs: Any) -> NoReturn:  # type: ignore[override]
        self._forbidden("connect_write_pipe")

    async def subprocess_exec(self, *args: Any, **kwargs: Any) -> NoReturn:  # type: ignore[override]
        self._forbidden("subprocess_exec")

    async def subprocess_shell(self, *args: Any, **kwargs: Any) -> NoReturn:  # type: ignore[override]
        self._forbidden("subprocess_shell")

    async def sendfile(self, *args: Any, **kwargs: Any) -> NoReturn:  # type: ignore[override]
        self._forbidden("sendfile")

    async def start_tls(self, *args: Any, **kwargs: Any) -> NoReturn:  # type: ignore[override]
        self._forbidden("start_tls")

    def add_reader(self, *args: Any, **kwargs: Any) -> NoReturn:
        self._forbidden("add_reader")

    def add_writer(self, *args: Any, **kwargs: Any) -> NoReturn:
        self._forbidden("add_writer")

    def remove_reader(self, *args: Any, **kwargs: Any) -> bool:
        return False

    def remove_writer(self, *args: Any, **kwargs: Any) -> bool:
        return False

    def add_signal_handler(self, *args: Any, **kwargs: Any) -> NoReturn:
        self._forbidden("add_signal_handler")

    def remove_signal_handler(self, sig: int) -> bool:
        return False

    async def sock_recv(self, *args: Any, **kwargs: Any) -> NoReturn:  # type: ignore[override]
        self._forbidden("sock_recv")

    async def sock_recv_into(self, *args: Any, **kwargs: Any) -> NoReturn:  # type: ignore[override]
        self._forbidden("sock_recv_into")

    async def sock_sendall(self, *args: Any, **kwargs: Any) -> NoReturn:  # type: ignore[override]
        self._forbidden("sock_sendall")

    async def sock_connect(self, *args: Any, **kwargs: Any) -> NoReturn:  # type: ignore[override]
        self._forbidden("sock_connect")

    async def sock_accept(self, *args: Any, **kwargs: Any) -> NoReturn:  # type: ignore[override]
        self._forbidden("sock_accept")

    async def shutdown_default_executor(self) -> None:  # type: ignore[override]
        return None


def current() -> VirtualEventLoop:
    """The running loop, which must be a `VirtualEventLoop`."""
    loop = asyncio.get_running_loop()
    if not isinstance(loop, VirtualEventLoop):
        raise RuntimeError("not running on a VirtualEventLoop (use crdb_py.sim.vloop.run)")
    return loop


def run(
    main: Coroutine[Any, Any, T] | Callable[[VirtualEventLoop], Coroutine[Any, Any, T]],
    *,
    seed: int = 0,
    max_time: float | None = None,
    max_steps: int | None = None,
    start_time: float = 0.0,
    on_loop: Callable[[VirtualEventLoop], None] | None = None,
) -> T:
    """Run `main` to completion on a fresh `VirtualEventLoop(seed)`.

    `main` is a coroutine, or a function of the loop returning one (handy to
    read `loop.rng` / `loop.trace` before and after). Like `asyncio.run`,
    leftover tasks are cancelled and the loop is closed afterwards;
    `on_loop(loop)` runs first (to keep a reference for inspection).
    """
    loop = VirtualEventLoop(seed, start_time=start_time, max_time=max_time, max_steps=max_steps)
    if on_loop is not None:
        on_loop(loop)
    coro = main(loop) if callable(main) else main
    with asyncio.Runner(loop_factory=lambda: loop) as runner:
        return runner.run(coro)
