"""Simulated time.

The simulator measures time in integer *units*. Everything that happens in a
simulated cluster happens at a unit: message delivery, a raft tick (every
`ticks_every` units, see `SimCluster`), a fault. `FakeClock` also reads as a
physical clock in nanoseconds (``clock()``), so an `HLC` or a lease can be
driven by simulated time; `skewed(offset)` gives one node's view with a fixed
clock offset, for clock-skew nemeses.
"""

from __future__ import annotations

__all__ = ["FakeClock", "SkewedClock"]


class FakeClock:
    """A clock that only moves when told to."""

    __slots__ = ("nanos_per_unit", "now")

    def __init__(self, *, start: int = 0, nanos_per_unit: int = 1_000_000) -> None:
        self.now = start
        self.nanos_per_unit = nanos_per_unit

    def advance(self, units: int = 1) -> int:
        if units < 0:
            raise ValueError("time does not go backwards")
        self.now += units
        return self.now

    def __call__(self) -> int:
        """Physical time in nanoseconds (the `HLC` physical-clock signature)."""
        return self.now * self.nanos_per_unit

    def skewed(self, offset_nanos: int) -> SkewedClock:
        return SkewedClock(self, offset_nanos)


class SkewedClock:
    """One node's view of a `FakeClock`, off by a fixed (adjustable) offset."""

    __slots__ = ("base", "offset_nanos")

    def __init__(self, base: FakeClock, offset_nanos: int) -> None:
        self.base = base
        self.offset_nanos = offset_nanos

    def __call__(self) -> int:
        return self.base() + self.offset_nanos
