"""`RawNode`: the application's handle on one raft replica.

Drive it like this (one thread, no I/O inside)::

    node = RawNode(Config(1, rng=random.Random(seed)), storage)
    loop:
        node.tick()                    # on a timer
        node.step(msg)                 # for each message from the network
        node.propose(data)             # at the leader
        if node.has_ready():
            rd = node.ready()
            persist rd.hard_state, rd.entries, rd.snapshot  (atomically, synced)
            send rd.messages
            apply rd.committed_entries (CONF_CHANGE ones via apply_conf_change)
            node.advance(rd)

Readies must be processed (persisted) in the order they were handed out;
`ready()` may be called again before `advance()` of the previous one, as
long as the previous one was persisted first. See `types.Ready` and
docs/design/raft.md for the full contract.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from crdb_py.raft.raft import LOCAL_MSGS, RESPONSE_MSGS, Config, Raft
from crdb_py.raft.storage import Storage
from crdb_py.raft.tracker import ProgressState
from crdb_py.raft.types import (
    ConfChange,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    Ready,
    SoftState,
    StateType,
)
from crdb_py.raft.wire import encode_conf_change

__all__ = ["BasicStatus", "Config", "PeerProgress", "RawNode", "Status"]


@dataclass(slots=True, frozen=True)
class PeerProgress:
    match: int
    next: int
    state: ProgressState
    recent_active: bool
    is_learner: bool
    paused: bool
    inflight: int


@dataclass(slots=True, frozen=True)
class BasicStatus:
    id: int
    term: int
    vote: int
    commit: int
    applied: int
    lead: int
    state: StateType
    lead_transferee: int


@dataclass(slots=True, frozen=True)
class Status:
    id: int
    term: int
    vote: int
    commit: int
    applied: int
    lead: int
    state: StateType
    lead_transferee: int
    conf_state: ConfState
    progress: dict[int, PeerProgress] = field(default_factory=dict)  # leader only
    lease_valid: bool = False
    ticks: int = 0


class RawNode:
    __slots__ = ("_prev_hard", "_prev_soft", "raft")

    def __init__(self, config: Config, storage: Storage) -> None:
        self.raft = Raft(config, storage)
        self._prev_soft = self.raft.soft_state()
        self._prev_hard = self.raft.hard_state()

    def __repr__(self) -> str:
        return f"RawNode({self.raft!r})"

    # ---- properties ---------------------------------------------------------

    @property
    def id(self) -> int:
        return self.raft.id

    @property
    def lead(self) -> int:
        return self.raft.lead

    @property
    def term(self) -> int:
        return self.raft.term

    @property
    def state(self) -> StateType:
        return self.raft.state

    @property
    def is_leader(self) -> bool:
        return self.raft.state == StateType.LEADER

    # ---- inputs -------------------------------------------------------------

    def tick(self) -> None:
        self.raft.tick()

    def campaign(self) -> None:
        """Start an election now (pre-vote first if configured)."""
        self.raft.step(Message(MessageType.HUP, frm=self.raft.id))

    def propose(self, data: bytes) -> None:
        """Append `data` to the log. Only the leader accepts proposals; raises
        ProposalDroppedError otherwise (its `lead` says where to retry)."""
        self.raft.step(
            Message(MessageType.PROP, frm=self.raft.id, entries=[Entry(term=0, index=0, data=data)])
        )

    def propose_batch(self, datas: list[bytes]) -> None:
        """Propose several commands at once: they are appended together and
        travel to each follower in one append message (the cheap way to batch;
        `propose` in a loop sends one message per command)."""
        if not datas:
            return
        self.raft.step(
            Message(MessageType.PROP, frm=self.raft.id,
                    entries=[Entry(term=0, index=0, data=d) for d in datas])
        )

    def propose_conf_change(self, cc: ConfChange) -> None:
        """Propose a one-voter-at-a-time configuration change. Takes effect when
        the app applies the committed entry and calls `apply_conf_change`."""
        e = Entry(term=0, index=0, type=EntryType.CONF_CHANGE, data=encode_conf_change(cc))
        self.raft.step(Message(MessageType.PROP, frm=self.raft.id, entries=[e]))

    def apply_conf_change(self, cc: ConfChange) -> ConfState:
        """Apply a committed configuration change; returns the new ConfState
        (persist it with the applied state, e.g. MemoryStorage.set_conf_state)."""
        return self.raft.apply_conf_change(cc)

    def step(self, m: Message) -> None:
        """Feed a message received from the network. Local message types and
        responses from peers not in the configuration are ignored."""
        if m.type in LOCAL_MSGS:
            return
        if m.type in RESPONSE_MSGS and m.frm not in self.raft.trk.progress:
            return
        self.raft.step(m)

    def transfer_leader(self, to: int) -> None:
        """Ask the leader (this node, or forwarded to it) to hand leadership to
        `to`: it brings `to` up to date, then tells it to campaign at once.
        Proposals are dropped while the transfer is in progress."""
        self.raft.step(Message(MessageType.TRANSFER_LEADER, frm=self.raft.id, index=to))

    def report_unreachable(self, id: int) -> None:
        self.raft.step(Message(MessageType.UNREACHABLE, frm=id))

    def report_snapshot(self, id: int, ok: bool) -> None:
        """Tell the leader whether the snapshot sent to `id` was delivered."""
        self.raft.step(Message(MessageType.SNAP_STATUS, frm=id, reject=not ok))

    # ---- outputs ------------------------------------------------------------

    def has_ready(self) -> bool:
        r = self.raft
        if r.msgs:
            return True
        ps = self._prev_soft
        if r.lead != ps.lead or r.state != ps.state:
            return True
        ph = self._prev_hard
        if r.term != ph.term or r.vote != ph.vote or r.log.committed != ph.commit:
            return True
        u = r.log.unstable
        if u.next_snapshot() is not None:
            return True
        if u.offset_in_progress < u.offset + len(u.entries):
            return True
        return r.log.has_next_committed_ents()

    def ready(self) -> Ready:
        """Everything to persist, send and apply now (see `types.Ready`). The
        Ready is considered handed out: its entries will not be offered again."""
        r = self.raft
        log = r.log
        u = log.unstable
        rd = Ready(
            entries=u.next_entries(),
            committed_entries=log.next_committed_ents(),
            messages=r.msgs,
        )
        r.msgs = []
        ss = r.soft_state()
        if ss != self._prev_soft:
            rd.soft_state = ss
            self._prev_soft = ss
        hs = r.hard_state()
        if hs != self._prev_hard:
            if not hs.is_empty():
                rd.hard_state = hs
            prev = self._prev_hard
            rd.must_sync = hs.term != prev.term or hs.vote != prev.vote
            self._prev_hard = hs
        snap = u.next_snapshot()
        if snap is not None:
            rd.snapshot = snap
        if rd.entries or snap is not None:
            rd.must_sync = True
        u.accept_in_progress()
        if rd.committed_entries:
            log.applying = rd.committed_entries[-1].index
        return rd

    def advance(self, rd: Ready) -> None:
        """Acknowledge that `rd` was persisted and its committed entries applied."""
        self.raft.advance(rd.entries, rd.committed_entries, rd.snapshot)

    # ---- introspection ------------------------------------------------------

    def basic_status(self) -> BasicStatus:
        r = self.raft
        return BasicStatus(
            id=r.id, term=r.term, vote=r.vote, commit=r.log.committed, applied=r.log.applied,
            lead=r.lead, state=r.state, lead_transferee=r.lead_transferee,
        )

    def status(self) -> Status:
        r = self.raft
        progress: dict[int, PeerProgress] = {}
        if r.state == StateType.LEADER:
            for id, pr in r.trk.progress.items():
                progress[id] = PeerProgress(
                    match=pr.match, next=pr.next, state=pr.state, recent_active=pr.recent_active,
                    is_learner=pr.is_learner, paused=pr.is_paused(), inflight=pr.inflights.count(),
                )
        return Status(
            id=r.id, term=r.term, vote=r.vote, commit=r.log.committed, applied=r.log.applied,
            lead=r.lead, state=r.state, lead_transferee=r.lead_transferee,
            conf_state=r.trk.conf_state(), progress=progress, lease_valid=r.lease_valid(),
            ticks=r.ticks,
        )

    def hard_state(self) -> HardState:
        return self.raft.hard_state()

    def soft_state(self) -> SoftState:
        return self.raft.soft_state()

    def leader_lease_valid(self) -> bool:
        """May this leader serve a read locally, without a raft round?

        True only on a leader with check-quorum on, no leadership transfer in
        progress, and a majority of voters (counting itself) that acknowledged
        a heartbeat the leader sent at tick `s` with `ticks - s < election_tick - 1`.

        Why that is safe: with check-quorum, a follower that heard from the
        leader ignores vote and pre-vote requests (without raising its term)
        until `election_tick` of *its own* ticks have passed. A majority that
        acked a heartbeat sent at leader tick `s` therefore cannot have helped
        elect a newer leader before `s + election_tick - 1` (the `-1` absorbs
        tick phase between nodes), so no newer leader can have committed a write
        we would miss. Forced campaigns (leader transfer) bypass followers'
        stickiness, hence no lease during a transfer, nor for the rest of the
        term once TIMEOUT_NOW was sent (a delayed forced campaign may still
        succeed after the transfer was abandoned).

        Assumptions the M3 lease must turn into clock time: ticks advance at the
        same rate on all nodes (a tick is a duration on each node's clock; the
        lease must be shortened by the max clock-rate drift / offset over its
        length), and a follower that *restarts* forgets it heard from us (it may
        vote at once), so a time-based lease must also be recorded durably
        (CockroachDB: the lease is a replicated record with an expiration that a
        new leaseholder must wait out)."""
        return self.raft.lease_valid()


def is_local_msg(t: MessageType) -> bool:
    return t in LOCAL_MSGS



