"""Hybrid logical clock.

An HLC timestamp is a pair (wall_time, logical): wall_time is nanoseconds of
physical time, logical breaks ties between events within the same wall time.
The clock never goes backwards; `update()` with a timestamp received from
another node moves it forward so that causally later events get later
timestamps. A remote timestamp further ahead of our physical clock than the
configured maximum offset means some node's clock is broken: it is rejected
with `ClockOffsetError` instead of dragging this clock into the future.

The physical clock is injected (`physical_clock: () -> int` nanoseconds), so
tests and the simulator run on a manual clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from crdb_py.util.errors import ClockOffsetError

DEFAULT_MAX_OFFSET_NANOS = 500_000_000  # 500 ms


@dataclass(frozen=True, slots=True, init=False)
class Timestamp:
    """An HLC timestamp, ordered by (wall_time, logical)."""

    wall_time: int = 0
    logical: int = 0

    def __init__(self, wall_time: int = 0, logical: int = 0) -> None:
        # The slots' own setters: a frozen dataclass's generated __init__
        # goes through object.__setattr__ by name, ~40% slower, and
        # timestamps are built in every hot path of the KV layers.
        _set_wall(self, wall_time)
        _set_logical(self, logical)

    # The four comparisons are written out (not `functools.total_ordering`,
    # whose derived methods cost two calls each): timestamps are compared in
    # every hot path of the KV layers.
    def __lt__(self, other: Timestamp) -> bool:
        w, ow = self.wall_time, other.wall_time
        return w < ow or (w == ow and self.logical < other.logical)

    def __le__(self, other: Timestamp) -> bool:
        w, ow = self.wall_time, other.wall_time
        return w < ow or (w == ow and self.logical <= other.logical)

    def __gt__(self, other: Timestamp) -> bool:
        w, ow = self.wall_time, other.wall_time
        return w > ow or (w == ow and self.logical > other.logical)

    def __ge__(self, other: Timestamp) -> bool:
        w, ow = self.wall_time, other.wall_time
        return w > ow or (w == ow and self.logical >= other.logical)

    def is_empty(self) -> bool:
        return self.wall_time == 0 and self.logical == 0

    def next(self) -> Timestamp:
        """The smallest timestamp greater than this one."""
        return Timestamp(self.wall_time, self.logical + 1)

    def prev(self) -> Timestamp:
        """The largest timestamp smaller than this one."""
        if self.logical > 0:
            return Timestamp(self.wall_time, self.logical - 1)
        if self.wall_time == 0:
            raise ValueError("no timestamp precedes the zero timestamp")
        return Timestamp(self.wall_time - 1, 2**31 - 1)

    def forward(self, other: Timestamp) -> Timestamp:
        """max(self, other)."""
        return other if self < other else self

    def backward(self, other: Timestamp) -> Timestamp:
        """min(self, other)."""
        return other if other < self else self

    def add(self, wall_nanos: int, logical: int = 0) -> Timestamp:
        return Timestamp(self.wall_time + wall_nanos, self.logical + logical)

    def __str__(self) -> str:
        return f"{self.wall_time / 1e9:.9f},{self.logical}"


_set_wall = Timestamp.__dict__["wall_time"].__set__
_set_logical = Timestamp.__dict__["logical"].__set__
_new = object.__new__


def _make_ts(wall_time: int, logical: int) -> Timestamp:
    """`Timestamp(wall_time, logical)` without the call through `type`."""
    t = _new(Timestamp)
    _set_wall(t, wall_time)
    _set_logical(t, logical)
    return t


MIN_TIMESTAMP = Timestamp(0, 0)
MAX_TIMESTAMP = Timestamp(2**63 - 1, 2**31 - 1)


def system_clock_nanos() -> int:
    return time.time_ns()


class ManualClock:
    """A physical clock for tests: time moves only when told to."""

    def __init__(self, nanos: int = 1_000_000_000) -> None:
        self._nanos = nanos

    def __call__(self) -> int:
        return self._nanos

    def advance(self, nanos: int) -> None:
        self._nanos += nanos

    def set(self, nanos: int) -> None:
        self._nanos = nanos


class HLC:
    """A thread-safe hybrid logical clock.

    >>> c = ManualClock(100); h = HLC(c)
    >>> h.now()
    Timestamp(wall_time=100, logical=0)
    >>> h.now()
    Timestamp(wall_time=100, logical=1)
    """

    def __init__(
        self,
        physical_clock: Callable[[], int] = system_clock_nanos,
        max_offset_nanos: int = DEFAULT_MAX_OFFSET_NANOS,
    ) -> None:
        self._physical = physical_clock
        self.max_offset_nanos = max_offset_nanos
        self._wall = 0
        self._logical = 0
        self._lock = threading.Lock()

    def physical_now(self) -> int:
        return self._physical()

    def now(self) -> Timestamp:
        """A timestamp greater than every timestamp this clock returned or saw."""
        with self._lock:
            phys = self._physical()
            if phys > self._wall:
                self._wall, self._logical = phys, 0
            else:
                self._logical += 1
            return _make_ts(self._wall, self._logical)

    def peek(self) -> Timestamp:
        """The latest timestamp without advancing the clock."""
        with self._lock:
            return Timestamp(self._wall, self._logical)

    def update(self, remote: Timestamp) -> None:
        """Ratchet the clock forward to a timestamp seen from another node.

        Raises `ClockOffsetError` when `remote` is further ahead of this
        node's physical clock than the maximum offset; the clock is then left
        untouched.
        """
        with self._lock:
            phys = self._physical()
            if self.max_offset_nanos > 0 and remote.wall_time - phys > self.max_offset_nanos:
                raise ClockOffsetError(
                    f"remote timestamp {remote} is {(remote.wall_time - phys) / 1e6:.1f} ms "
                    f"ahead of the local clock, more than the maximum offset of "
                    f"{self.max_offset_nanos / 1e6:.0f} ms; check the clock synchronization "
                    f"of the cluster's nodes"
                )
            if remote.wall_time > self._wall:
                self._wall, self._logical = remote.wall_time, remote.logical
            elif remote.wall_time == self._wall and remote.logical > self._logical:
                self._logical = remote.logical


def ts_from_proto(p: object) -> Timestamp:
    """Convert any object with `wall_time`/`logical` (e.g. a pb Timestamp)."""
    return _make_ts(p.wall_time, p.logical)  # type: ignore[attr-defined]


def ts_to_proto(ts: Timestamp, p: object) -> object:
    """Fill a pb Timestamp `p` in place from `ts` and return it."""
    p.wall_time = ts.wall_time  # type: ignore[attr-defined]
    p.logical = ts.logical  # type: ignore[attr-defined]
    return p
