"""Configuration of one raft replica (see `RawNode`)."""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from typing import Protocol

from crdb_py.raft.types import NONE
from crdb_py.util.errors import InvalidArgumentError


class Rng(Protocol):
    """The randomness the core needs (a seeded `random.Random` fits)."""

    def randrange(self, start: int, stop: int) -> int: ...


@dataclass
class Config:
    """`election_tick`: ticks without hearing from a leader before a follower
    campaigns (randomized in [election_tick, 2*election_tick)); also the
    check-quorum period and the basis of the leader lease. `heartbeat_tick`:
    ticks between leader heartbeats. `applied`: the app's applied index when
    restarting (committed entries above it are handed out again).
    `max_size_per_msg` / `max_inflight_msgs`: flow control per follower.
    `max_committed_size_per_ready`: bound on committed entries per Ready."""

    id: int
    _: KW_ONLY
    rng: Rng  # injected, seeded: the only source of randomness
    election_tick: int = 10
    heartbeat_tick: int = 1
    applied: int = 0  # last applied index on restart
    max_size_per_msg: int = 1 << 20
    max_inflight_msgs: int = 256
    check_quorum: bool = True
    pre_vote: bool = True
    max_committed_size_per_ready: int = 1 << 24

    def validate(self) -> None:
        if self.id == NONE:
            raise InvalidArgumentError("raft: cannot use 0 as id")
        if self.heartbeat_tick <= 0:
            raise InvalidArgumentError("raft: heartbeat tick must be greater than 0")
        if self.election_tick <= self.heartbeat_tick:
            raise InvalidArgumentError("raft: election tick must be greater than heartbeat tick")
        if self.max_inflight_msgs <= 0:
            raise InvalidArgumentError("raft: max inflight messages must be greater than 0")
