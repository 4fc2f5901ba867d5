"""A seeded, faulty, in-process network.

`SimNetwork` carries opaque payloads between integer node ids. It knows
nothing about raft: the raft cluster (`crdb_py/sim/cluster.py`) sends raft
`Message`s through it, and later layers can send KV batches through the same
object.

Faults, all decided by the one `random.Random` the network is given (so a
seed fixes every decision and two runs with the same seed produce the same
trace):

* **drop** — a message is lost with probability `drop`;
* **duplicate** — with probability `duplicate` a second copy is delivered
  (with its own delay);
* **delay / reorder** — each copy takes ``uniform(min_delay, max_delay)``
  units; with probability `reorder` it takes up to `reorder_spread` units
  more, so later messages on the same link overtake it. With
  ``min_delay == max_delay`` and ``reorder == 0`` every link is FIFO;
* **partitions** — a directed link ``src -> dst`` can be *cut*. `partition`
  cuts every link between groups (symmetric), `cut_one_way` only one
  direction, `isolate` one node from all others. A cut is checked when a
  message is sent and again when it is due, so messages in flight when a
  partition starts are lost too. `heal` removes every cut.

A node that is *down* (`set_down`) loses every message addressed to it.
Delivery order is (due time, send sequence): deterministic.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Envelope", "FaultConfig", "NetStats", "SimNetwork"]


@dataclass(frozen=True, slots=True)
class FaultConfig:
    drop: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    min_delay: int = 1
    max_delay: int = 1
    reorder_spread: int = 10

    def __post_init__(self) -> None:
        for p in (self.drop, self.duplicate, self.reorder):
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"probability {p} not in [0, 1]")
        if not 0 <= self.min_delay <= self.max_delay:
            raise ValueError("need 0 <= min_delay <= max_delay")

    @property
    def faulty(self) -> bool:
        return self.drop > 0 or self.duplicate > 0 or self.reorder > 0


NO_FAULTS = FaultConfig()


@dataclass(slots=True)
class Envelope:
    src: int
    dst: int
    payload: Any
    due: int
    seq: int


@dataclass(slots=True)
class NetStats:
    sent: int = 0
    delivered: int = 0
    dropped: int = 0
    cut: int = 0
    duplicated: int = 0
    to_down: int = 0


@dataclass(slots=True)
class SimNetwork:
    """The network. `send` queues, `due(now)` hands out what arrives by `now`."""

    rng: random.Random
    faults: FaultConfig = NO_FAULTS
    stats: NetStats = field(default_factory=NetStats)
    trace: list[tuple[Hashable, ...]] | None = None
    # called with (envelope, "cut" | "drop" | "down") for every lost message
    on_lost: Callable[[Envelope, str], None] | None = None
    _queue: list[tuple[int, int, Envelope]] = field(default_factory=list)
    _seq: int = 0
    _cuts: set[tuple[int, int]] = field(default_factory=set)
    _down: set[int] = field(default_factory=set)

    # ---- sending / delivering -------------------------------------------------------

    def send(self, src: int, dst: int, payload: Any, now: int) -> None:
        st = self.stats
        st.sent += 1
        if (src, dst) in self._cuts:
            st.cut += 1
            self._lost(Envelope(src, dst, payload, now, 0), "cut", now)
            return
        f = self.faults
        rng = self.rng
        if f.drop and rng.random() < f.drop:
            st.dropped += 1
            self._lost(Envelope(src, dst, payload, now, 0), "drop", now)
            return
        copies = 1
        if f.duplicate and rng.random() < f.duplicate:
            copies = 2
            st.duplicated += 1
        for _ in range(copies):
            delay = (
                f.min_delay if f.min_delay == f.max_delay else rng.randint(f.min_delay, f.max_delay)
            )
            if f.reorder and rng.random() < f.reorder:
                delay += rng.randint(1, max(1, f.reorder_spread))
            self._seq += 1
            env = Envelope(src, dst, payload, now + delay, self._seq)
            heapq.heappush(self._queue, (env.due, env.seq, env))

    def due(self, now: int) -> list[Envelope]:
        """Remove and return every envelope due at or before `now` that is
        still deliverable (link not cut, destination up), in delivery order."""
        q = self._queue
        out: list[Envelope] = []
        st = self.stats
        while q and q[0][0] <= now:
            env = heapq.heappop(q)[2]
            if (env.src, env.dst) in self._cuts:
                st.cut += 1
                self._lost(env, "cut", now)
                continue
            if env.dst in self._down:
                st.to_down += 1
                self._lost(env, "down", now)
                continue
            st.delivered += 1
            out.append(env)
        return out

    def pending(self) -> int:
        return len(self._queue)

    def next_due(self) -> int | None:
        return self._queue[0][0] if self._queue else None

    def clear(self) -> None:
        self._queue.clear()

    # ---- faults --------------------------------------------------------------------

    def set_faults(self, faults: FaultConfig) -> None:
        self.faults = faults

    def cut(self, a: int, b: int) -> None:
        """Cut both directions between `a` and `b`."""
        self._cuts.add((a, b))
        self._cuts.add((b, a))

    def cut_one_way(self, src: int, dst: int) -> None:
        self._cuts.add((src, dst))

    def partition(self, *groups: Iterable[int]) -> None:
        """Cut every link between different groups (symmetric partition)."""
        gs = [set(g) for g in groups]
        for i, ga in enumerate(gs):
            for gb in gs[i + 1 :]:
                for a in ga:
                    for b in gb:
                        self.cut(a, b)

    def isolate(self, node: int, others: Iterable[int]) -> None:
        for o in others:
            if o != node:
                self.cut(node, o)

    def heal(self) -> None:
        self._cuts.clear()

    def is_cut(self, src: int, dst: int) -> bool:
        return (src, dst) in self._cuts

    @property
    def cuts(self) -> frozenset[tuple[int, int]]:
        return frozenset(self._cuts)

    def set_down(self, node: int, down: bool = True) -> None:
        if down:
            self._down.add(node)
        else:
            self._down.discard(node)

    def _lost(self, env: Envelope, why: str, now: int) -> None:
        if self.trace is not None:
            self.trace.append((now, why, env.src, env.dst))
        if self.on_lost is not None:
            self.on_lost(env, why)
