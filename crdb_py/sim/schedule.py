"""Fault schedules: a list of actions run against a `SimCluster`.

A schedule is data (frozen dataclasses), so hypothesis can generate and
shrink it and a failing one prints as a readable reproduction. `run_schedule`
executes it with every checker on, then heals everything (restart crashed
nodes, remove partitions, stop dropping) and requires liveness: a leader
within bounded ticks and a fresh proposal applied by every node.

Crashes are limited to a minority at any time (the action is skipped
otherwise): with a majority down Raft is *meant* to stop, and the point of
these schedules is safety under faults plus liveness once a majority is back.
`random_schedule` draws a schedule from a `random.Random` for the soak
(`python -m crdb_py.sim.soak`).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from crdb_py.raft.types import MessageType
from crdb_py.sim.checkers import Checker
from crdb_py.sim.cluster import SimCluster
from crdb_py.sim.network import FaultConfig

__all__ = [
    "AddVoter",
    "RemoveVoter",
    "Crash",
    "Heal",
    "OneWay",
    "Partition",
    "Propose",
    "Restart",
    "Run",
    "RunResult",
    "SetFaults",
    "Transfer",
    "random_schedule",
    "run_schedule",
]


@dataclass(frozen=True)
class Run:
    steps: int


@dataclass(frozen=True)
class Propose:
    count: int = 1
    at: int = 0  # propose at live node `at % len(live)`; if dropped, at the leader
    batch: bool = False


@dataclass(frozen=True)
class SetFaults:
    drop: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    max_delay: int = 1


@dataclass(frozen=True)
class Partition:
    groups: tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class OneWay:
    src: int
    dst: int


@dataclass(frozen=True)
class Crash:
    node: int


@dataclass(frozen=True)
class Restart:
    node: int


@dataclass(frozen=True)
class Heal:
    pass


@dataclass(frozen=True)
class Transfer:
    """Ask the current leader to hand leadership to `to`."""

    to: int


@dataclass(frozen=True)
class AddVoter:
    """Add a fresh node (learner by snapshot, then voter); at most `MAX_NODES`."""


@dataclass(frozen=True)
class RemoveVoter:
    """Remove voter number `at % len(voters)` (never below 3 voters)."""

    at: int = 0


MAX_NODES = 7

Action = (
    Run
    | Propose
    | SetFaults
    | Partition
    | OneWay
    | Crash
    | Restart
    | Heal
    | Transfer
    | AddVoter
    | RemoveVoter
)


@dataclass
class RunResult:
    seed: int
    steps: int
    proposed: int
    applied: int
    leaders: int  # distinct terms with a leader
    delivered: int
    liveness_steps: int
    stats: dict[str, int] = field(default_factory=dict)


def run_schedule(
    n: int,
    seed: int,
    actions: Sequence[Action],
    *,
    compact_every: int = 8,
    max_size_per_msg: int | None = None,
    pre_vote: bool = True,
    check_quorum: bool = True,
    checkers: list[Checker] | None = None,
    liveness: bool = True,
    cluster: SimCluster | None = None,
) -> RunResult:
    """Run `actions` on a fresh cluster (or `cluster`); raises
    `InvariantViolation` / `LivenessViolation` on the first broken property.
    A small `max_size_per_msg` makes every append carry one entry, which
    widens the interleavings of partial replication."""
    overrides = {} if max_size_per_msg is None else {"max_size_per_msg": max_size_per_msg}
    c = cluster or SimCluster(
        n,
        seed=seed,
        compact_every=compact_every,
        checkers=checkers,
        pre_vote=pre_vote,
        check_quorum=check_quorum,
        config_overrides=overrides,
    )
    k = 0
    for a in actions:
        if isinstance(a, Run):
            c.run(a.steps)
        elif isinstance(a, Propose):
            live = c.live()
            if live:
                node = live[a.at % len(live)]
                payloads = [b"p%d.%d" % (seed, k + j) for j in range(a.count)]
                k += a.count
                # like a client: try the chosen node, then follow to the leader
                if a.batch:
                    if c.propose_many(payloads, node) == 0:
                        c.propose_many(payloads)
                else:
                    for p in payloads:
                        if not c.propose(p, node):
                            c.propose(p)
        elif isinstance(a, SetFaults):
            c.net.set_faults(
                FaultConfig(
                    drop=a.drop,
                    duplicate=a.duplicate,
                    reorder=a.reorder,
                    min_delay=1,
                    max_delay=max(1, a.max_delay),
                )
            )
        elif isinstance(a, Partition):
            c.partition(*a.groups)
        elif isinstance(a, OneWay):
            c.cut_one_way(a.src, a.dst)
        elif isinstance(a, Crash):
            # only while a majority of the voters stays up
            voters = c.voters()
            up = [v for v in voters if v in c.live() and v != a.node]
            if a.node in c.live() and len(up) >= len(voters) // 2 + 1:
                c.crash(a.node)
        elif isinstance(a, Restart):
            if a.node in c.nodes:
                c.restart(a.node)
        elif isinstance(a, Heal):
            c.heal(restart_all=False, clear_faults=False)
        elif isinstance(a, Transfer):
            c.transfer_leader(a.to)
        elif isinstance(a, AddVoter):
            if len(c.nodes) < MAX_NODES:
                c.add_voter(max(c.nodes) + 1)
        elif isinstance(a, RemoveVoter):
            voters = c.voters()
            if len(voters) > 3:
                c.remove_voter(voters[a.at % len(voters)])
    liveness_steps = 0
    if liveness:
        c.heal()
        liveness_steps = c.check_liveness()
    c.check_logs()
    terms = {ev[3] for ev in c.trace if ev[1] == "leader"}
    st = c.net.stats
    return RunResult(
        seed=seed,
        steps=c.steps,
        proposed=len(c.proposed),
        applied=len(c.applied_at),
        leaders=len(terms),
        delivered=c.delivered,
        liveness_steps=liveness_steps,
        stats={
            "sent": st.sent,
            "dropped": st.dropped,
            "cut": st.cut,
            "duplicated": st.duplicated,
            "to_down": st.to_down,
            "snapshots": c.delivered_by_type.get(MessageType.SNAP, 0),
            "crashes": sum(nd.restarts for nd in c.nodes.values()),
            "voters_added": sum(1 for i in c.nodes if i > n and i in c.config().voters),
            "voters_removed": len(c.removed),
        },
    )


def random_schedule(
    rng: random.Random, n: int, length: int = 30, membership: bool = False
) -> list[Action]:
    """A random fault schedule: bursts of running and proposing interleaved
    with fault changes, partitions (symmetric and one-way), minority crashes
    and restarts, leader transfers, heals, and (with `membership`) voters
    added and removed."""
    nodes = list(range(1, n + 1))
    out: list[Action] = []
    for _ in range(length):
        r = rng.random()
        if r < 0.35:
            out.append(Run(rng.randint(1, 40)))
        elif r < 0.55:
            out.append(Propose(rng.randint(1, 8), rng.randint(0, n - 1), rng.random() < 0.5))
        elif r < 0.65:
            out.append(
                SetFaults(
                    drop=rng.choice((0.0, 0.05, 0.2, 0.4)),
                    duplicate=rng.choice((0.0, 0.1, 0.3)),
                    reorder=rng.choice((0.0, 0.2, 0.5)),
                    max_delay=rng.randint(1, 6),
                )
            )
        elif r < 0.73:
            shuffled = nodes[:]
            rng.shuffle(shuffled)
            cut = rng.randint(1, n - 1)
            out.append(Partition((tuple(shuffled[:cut]), tuple(shuffled[cut:]))))
        elif r < 0.78:
            a, b = rng.sample(nodes, 2)
            out.append(OneWay(a, b))
        elif r < 0.86:
            out.append(Crash(rng.choice(nodes)))
        elif r < 0.93:
            out.append(Restart(rng.choice(nodes)))
        elif r < 0.96:
            out.append(Transfer(rng.choice(nodes)))
        else:
            out.append(Heal())
        if membership and rng.random() < 0.08:
            out.append(AddVoter() if rng.random() < 0.5 else RemoveVoter(rng.randint(0, 6)))
    return out
