"""What a leader knows about each peer, and the quorum arithmetic.

A `Progress` per peer (voter or learner) holds `match` (highest index known
to be replicated there) and `next` (the next index to send), and a flow
control state:

* PROBE — we do not know where the follower's log ends. Send one append at a
  time (`paused` after each) and back up on rejections until one matches.
* REPLICATE — the follower is in sync: stream appends optimistically, moving
  `next` ahead without waiting, bounded by `Inflights` (at most
  `max_inflight_msgs` unacknowledged appends).
* SNAPSHOT — the entries the follower needs were compacted; a snapshot is on
  its way and nothing else is sent until it is reported applied or failed.

Configurations change one voter at a time (no joint consensus), so a quorum
is always a simple majority of the current voters; learners receive the log
but count for neither commit nor elections.
"""

from __future__ import annotations

import enum
from collections import deque

from crdb_py.raft.types import ConfState


class ProgressState(enum.IntEnum):
    PROBE = 0
    REPLICATE = 1
    SNAPSHOT = 2


class VoteResult(enum.IntEnum):
    PENDING = 0
    LOST = 1
    WON = 2


class Inflights:
    """The last indexes of the append messages in flight to one peer."""

    __slots__ = ("_q", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self._q: deque[int] = deque()

    def add(self, index: int) -> None:
        self._q.append(index)

    def free_le(self, to: int) -> None:
        q = self._q
        while q and q[0] <= to:
            q.popleft()

    def free_first_one(self) -> None:
        if self._q:
            self._q.popleft()

    def full(self) -> bool:
        return len(self._q) >= self.size

    def count(self) -> int:
        return len(self._q)

    def reset(self) -> None:
        self._q.clear()


class Progress:
    __slots__ = (
        "inflights",
        "is_learner",
        "match",
        "next",
        "paused",
        "pending_snapshot",
        "recent_active",
        "state",
    )

    def __init__(self, next_index: int, max_inflight: int, is_learner: bool = False) -> None:
        self.match = 0
        self.next = next_index
        self.state = ProgressState.PROBE
        self.paused = False  # PROBE: a probe is outstanding; REPLICATE: inflights full
        self.pending_snapshot = 0
        self.recent_active = False
        self.inflights = Inflights(max_inflight)
        self.is_learner = is_learner

    def __repr__(self) -> str:
        s = f"{self.state.name} match={self.match} next={self.next}"
        if self.is_learner:
            s += " learner"
        if self.paused:
            s += " paused"
        if self.state == ProgressState.SNAPSHOT:
            s += f" pending_snap={self.pending_snapshot}"
        if self.inflights.count():
            s += f" inflight={self.inflights.count()}"
            if self.inflights.full():
                s += "[full]"
        return s

    def _reset_state(self, state: ProgressState) -> None:
        self.paused = False
        self.pending_snapshot = 0
        self.state = state
        self.inflights.reset()

    def become_probe(self) -> None:
        if self.state == ProgressState.SNAPSHOT:
            pending = self.pending_snapshot
            self._reset_state(ProgressState.PROBE)
            self.next = max(self.match + 1, pending + 1)
        else:
            self._reset_state(ProgressState.PROBE)
            self.next = self.match + 1

    def become_replicate(self) -> None:
        self._reset_state(ProgressState.REPLICATE)
        self.next = self.match + 1

    def become_snapshot(self, snapshot_index: int) -> None:
        self._reset_state(ProgressState.SNAPSHOT)
        self.pending_snapshot = snapshot_index

    def maybe_update(self, n: int) -> bool:
        """An append up to n was acknowledged. False if it was stale."""
        updated = False
        if self.match < n:
            self.match = n
            updated = True
            self.paused = False
        if self.next < n + 1:
            self.next = n + 1
        return updated

    def update_on_entries_send(self, entries: int, next_index: int) -> None:
        if self.state == ProgressState.REPLICATE:
            if entries:
                last = next_index + entries - 1
                self.next = last + 1
                self.inflights.add(last)
            self.paused = self.inflights.full()
        elif self.state == ProgressState.PROBE:
            self.paused = True  # one probe at a time
        else:
            raise AssertionError(f"sending append in state {self.state.name}")

    def maybe_decr_to(self, rejected: int, match_hint: int) -> bool:
        """The follower rejected an append at index `rejected`, hinting that
        its log may match up to `match_hint`. Back `next` up; False if the
        rejection is stale."""
        if self.state == ProgressState.REPLICATE:
            if rejected <= self.match:
                return False
            self.next = self.match + 1
            return True
        if self.next - 1 != rejected:
            return False  # not the probe we are waiting for
        self.next = max(min(rejected, match_hint + 1), self.match + 1, 1)
        self.paused = False
        return True

    def is_paused(self) -> bool:
        if self.state == ProgressState.SNAPSHOT:
            return True
        return self.paused


class ProgressTracker:
    """Voters, learners, their progress, and the votes of an election."""

    __slots__ = ("learners", "max_inflight", "progress", "voters", "votes")

    def __init__(self, max_inflight: int) -> None:
        self.max_inflight = max_inflight
        self.voters: set[int] = set()
        self.learners: set[int] = set()
        self.progress: dict[int, Progress] = {}
        self.votes: dict[int, bool] = {}

    def conf_state(self) -> ConfState:
        return ConfState(voters=tuple(sorted(self.voters)), learners=tuple(sorted(self.learners)))

    def quorum(self) -> int:
        return len(self.voters) // 2 + 1

    def is_singleton(self) -> bool:
        return len(self.voters) == 1

    def committed(self) -> int:
        """The largest index replicated on a majority of voters."""
        n = len(self.voters)
        if n == 0:
            return 0  # no configuration: commit nothing (etcd commits everything)
        prs = self.progress
        matches = sorted(prs[v].match for v in self.voters)
        return matches[n - (n // 2 + 1)]

    def quorum_value(self, values: dict[int, int]) -> int:
        """The largest v such that a majority of voters have values >= v
        (voters missing from `values` count as -1)."""
        n = len(self.voters)
        if n == 0:
            return -1
        vs = sorted(values.get(v, -1) for v in self.voters)
        return vs[n - (n // 2 + 1)]

    def quorum_active(self) -> bool:
        prs = self.progress
        active = sum(1 for v in self.voters if prs[v].recent_active)
        return active >= self.quorum()

    def reset_votes(self) -> None:
        self.votes = {}

    def record_vote(self, id: int, granted: bool) -> None:
        if id not in self.votes:
            self.votes[id] = granted

    def tally_votes(self) -> tuple[int, int, VoteResult]:
        granted = rejected = 0
        for v in self.voters:
            r = self.votes.get(v)
            if r is None:
                continue
            if r:
                granted += 1
            else:
                rejected += 1
        q = self.quorum()
        missing = len(self.voters) - granted - rejected
        if granted >= q:
            res = VoteResult.WON
        elif granted + missing >= q:
            res = VoteResult.PENDING
        else:
            res = VoteResult.LOST
        return granted, rejected, res
