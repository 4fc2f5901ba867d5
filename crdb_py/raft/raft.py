"""The raft consensus state machine (sans-IO), after etcd-io/raft.

What it is
----------
`Raft` is one replica of one raft group as a pure state machine. It has two
inputs — `tick()` (one unit of logical time) and `step(msg)` (a message from
a peer, or a local request such as a proposal or a campaign) — and one
output: the `msgs` it wants sent plus the changes in its log and hard state,
which `RawNode.ready()` bundles into a `Ready`. It never performs I/O, never
reads a clock and never draws randomness except from the injected `rng`, so
a whole cluster can be driven deterministically from one thread.

Roles (Raft paper §5, plus etcd's extensions):

* FOLLOWER — accepts appends/heartbeats/snapshots from the leader of its
  term; after a randomized election timeout in [E, 2E) ticks without hearing
  from one, it campaigns.
* PRE_CANDIDATE — pre-vote (Ongaro's thesis §9.6): asks peers "would you vote
  for me at term+1?" without bumping its own term. Peers answer yes only if
  our log is up to date *and* they have not heard from a leader within the
  election timeout. Only with a majority of yes does it become a candidate,
  so a node rejoining from a partition cannot disrupt a healthy leader by
  inflating terms.
* CANDIDATE — increments the term, votes for itself, asks for votes (§5.2).
* LEADER — appends a no-op entry of its term on election (so entries of old
  terms become committed through it, §5.4.2), replicates with per-peer flow
  control (`tracker.py`), and commits an index once a majority of voters has
  it *and* it belongs to the current term.

Invariants kept here (the §5 tests pin each one):

* at most one vote per term — `vote` is part of the hard state; a vote is
  released (in a Ready) only together with the hard state recording it;
* a vote is granted only to a log at least as up to date as ours (§5.4.1);
* a higher term in any message makes us follow it (§5.1), except vote
  requests received while we believe a leader is alive (check-quorum
  "leader stickiness");
* the leader never overwrites its own log; a follower truncates only a
  conflicting, uncommitted suffix (log matching, §5.3);
* commit by counting replicas only for current-term entries (§5.4.2).

Check-quorum: every election timeout, a leader that has not heard from a
majority (including itself) since the last check steps down. Together with
leader stickiness above this yields the leader lease (`lease_valid`).

Persistence is the application's job, ordered by the Ready contract (see
`types.Ready`): persist, then send, then apply. Because every message in a
Ready is sent only after that Ready's hard state and entries are durable,
votes and append acknowledgements never leave before the state they vouch
for. The leader counts its own log as matched at append time; this is safe
for the same reason (nobody else can count its entry before the leader's
copy is durable, since the leader's MsgApp leaves only after persisting).

Not implemented (see docs/design/raft.md): joint consensus (changes are one
voter at a time), ReadIndex reads, proposal forwarding (followers drop
proposals: kvserver proposes at the leader), async storage writes.
"""

from __future__ import annotations

from crdb_py.raft.config import Config, Rng
from crdb_py.raft.errors import (
    CompactedError,
    ProposalDroppedError,
    SnapshotTemporarilyUnavailable,
    UnavailableError,
)
from crdb_py.raft.log import RaftLog
from crdb_py.raft.storage import Storage
from crdb_py.raft.tracker import Progress, ProgressState, ProgressTracker, VoteResult
from crdb_py.raft.types import (
    NONE,
    ConfChange,
    ConfChangeType,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    Snapshot,
    SoftState,
    StateType,
)
from crdb_py.util.errors import InternalError

MT = MessageType

CAMPAIGN_PRE_ELECTION = b"pre-election"
CAMPAIGN_ELECTION = b"election"
CAMPAIGN_TRANSFER = b"transfer"  # context of forced vote requests

LOCAL_MSGS = frozenset(
    {MT.HUP, MT.BEAT, MT.PROP, MT.CHECK_QUORUM, MT.SNAP_STATUS, MT.UNREACHABLE}
)
RESPONSE_MSGS = frozenset(
    {MT.APP_RESP, MT.VOTE_RESP, MT.PRE_VOTE_RESP, MT.HEARTBEAT_RESP, MT.UNREACHABLE,
     MT.SNAP_STATUS}
)
_VOTE_MSGS = frozenset({MT.VOTE, MT.VOTE_RESP, MT.PRE_VOTE, MT.PRE_VOTE_RESP})
_VOTE_RESP = {MT.VOTE: MT.VOTE_RESP, MT.PRE_VOTE: MT.PRE_VOTE_RESP}

__all__ = ["CAMPAIGN_ELECTION", "CAMPAIGN_PRE_ELECTION", "CAMPAIGN_TRANSFER", "Config", "Raft", "Rng"]


def lease_ctx(tick: int) -> bytes:
    return tick.to_bytes(8, "big")


class Raft:
    __slots__ = (
        "check_quorum",
        "election_elapsed",
        "election_timeout",
        "heartbeat_elapsed",
        "heartbeat_timeout",
        "id",
        "lead",
        "lead_transferee",
        "lease_acks",
        "log",
        "max_msg_size",
        "msgs",
        "pending_conf_index",
        "pre_vote",
        "randomized_election_timeout",
        "rng",
        "state",
        "term",
        "ticks",
        "timeout_now_sent",
        "trk",
        "vote",
    )

    def __init__(self, c: Config, storage: Storage) -> None:
        c.validate()
        self.id = c.id
        self.log = RaftLog(storage, c.max_committed_size_per_ready)
        self.trk = ProgressTracker(c.max_inflight_msgs)
        self.max_msg_size = c.max_size_per_msg
        self.election_timeout = c.election_tick
        self.heartbeat_timeout = c.heartbeat_tick
        self.check_quorum = c.check_quorum
        self.pre_vote = c.pre_vote
        self.rng = c.rng
        self.term = 0
        self.vote = NONE
        self.lead = NONE
        self.state = StateType.FOLLOWER
        self.msgs: list[Message] = []
        self.lead_transferee = NONE
        self.pending_conf_index = 0
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.randomized_election_timeout = c.election_tick
        self.ticks = 0  # logical clock of the lease: ticks since start
        self.lease_acks: dict[int, int] = {}  # peer -> latest acked heartbeat send tick
        self.timeout_now_sent = False
        hs, cs = storage.initial_state()
        self._set_conf_state(cs)
        if not hs.is_empty():
            self._load_state(hs)
        if c.applied > 0:
            self.log.applied_to(c.applied)
        self.become_follower(self.term, NONE)

    def __repr__(self) -> str:
        return (
            f"Raft(id={self.id}, {self.state.name}, term={self.term}, vote={self.vote}, "
            f"lead={self.lead}, {self.log!r})"
        )

    # ---- state snapshots ----------------------------------------------------

    def hard_state(self) -> HardState:
        return HardState(term=self.term, vote=self.vote, commit=self.log.committed)

    def soft_state(self) -> SoftState:
        return SoftState(lead=self.lead, state=self.state)

    def _load_state(self, hs: HardState) -> None:
        if hs.commit < self.log.committed or hs.commit > self.log.last_index():
            raise InternalError(
                f"{self.id} state.commit {hs.commit} is out of range "
                f"[{self.log.committed}, {self.log.last_index()}]"
            )
        self.log.committed = hs.commit
        self.term = hs.term
        self.vote = hs.vote

    def _set_conf_state(self, cs: ConfState) -> None:
        trk = self.trk
        trk.voters = set(cs.voters)
        trk.learners = set(cs.learners)
        if trk.voters & trk.learners:
            raise InternalError(f"node(s) both voter and learner: {trk.voters & trk.learners}")
        nxt = self.log.last_index() + 1
        trk.progress = {}
        for id in (*cs.voters, *cs.learners):
            trk.progress[id] = Progress(nxt, trk.max_inflight, is_learner=id in trk.learners)
        if self.id in trk.progress:
            trk.progress[self.id].match = nxt - 1

    def promotable(self) -> bool:
        pr = self.trk.progress.get(self.id)
        return pr is not None and not pr.is_learner and not self.log.has_pending_snapshot()

    # ---- sending ------------------------------------------------------------

    def send(self, m: Message) -> None:
        m.frm = self.id
        if m.type in _VOTE_MSGS:
            if m.term == 0:
                raise InternalError(f"term should be set when sending {m.type.name}")
        else:
            m.term = self.term
        self.msgs.append(m)

    def maybe_send_append(self, to: int, send_if_empty: bool = True) -> bool:
        """Send entries (or a snapshot) to `to` if its flow control allows.
        Returns whether a message was sent."""
        pr = self.trk.progress[to]
        if pr.is_paused():
            return False
        log = self.log
        prev = pr.next - 1
        try:
            prev_term = log.term(prev)
            ents = log.entries(pr.next, self.max_msg_size)
        except (CompactedError, UnavailableError):
            return self._send_snapshot(to, pr)
        if not ents and not send_if_empty:
            return False
        self.send(
            Message(MT.APP, to=to, index=prev, log_term=prev_term, entries=ents,
                    commit=log.committed)
        )
        pr.update_on_entries_send(len(ents), pr.next)
        return True

    def _send_snapshot(self, to: int, pr: Progress) -> bool:
        if not pr.recent_active:
            return False  # don't ship a snapshot to a peer that may be down
        try:
            snap = self.log.snapshot()
        except SnapshotTemporarilyUnavailable:
            return False
        if snap.is_empty():
            raise InternalError("need non-empty snapshot")
        pr.become_snapshot(snap.metadata.index)
        self.send(Message(MT.SNAP, to=to, snapshot=snap))
        return True

    def send_heartbeat(self, to: int) -> None:
        pr = self.trk.progress[to]
        # never tell a follower to commit beyond what it is known to hold
        commit = min(pr.match, self.log.committed)
        self.send(Message(MT.HEARTBEAT, to=to, commit=commit, context=lease_ctx(self.ticks)))

    def bcast_append(self) -> None:
        for id in self.trk.progress:
            if id != self.id:
                self.maybe_send_append(id)

    def bcast_heartbeat(self) -> None:
        for id in self.trk.progress:
            if id != self.id:
                self.send_heartbeat(id)

    # ---- ticking ------------------------------------------------------------

    def tick(self) -> None:
        self.ticks += 1
        if self.state == StateType.LEADER:
            self._tick_heartbeat()
        else:
            self._tick_election()

    def _tick_election(self) -> None:
        self.election_elapsed += 1
        if self.promotable() and self.election_elapsed >= self.randomized_election_timeout:
            self.election_elapsed = 0
            self.step(Message(MT.HUP, frm=self.id))

    def _tick_heartbeat(self) -> None:
        self.heartbeat_elapsed += 1
        self.election_elapsed += 1
        if self.election_elapsed >= self.election_timeout:
            self.election_elapsed = 0
            if self.check_quorum:
                self.step(Message(MT.CHECK_QUORUM, frm=self.id))
            # a transfer that did not finish within an election timeout is abandoned
            if self.state == StateType.LEADER and self.lead_transferee != NONE:
                self.abort_leader_transfer()
        if self.state != StateType.LEADER:
            return
        if self.heartbeat_elapsed >= self.heartbeat_timeout:
            self.heartbeat_elapsed = 0
            self.step(Message(MT.BEAT, frm=self.id))

    def past_election_timeout(self) -> bool:
        return self.election_elapsed >= self.randomized_election_timeout

    def reset_randomized_election_timeout(self) -> None:
        self.randomized_election_timeout = self.rng.randrange(
            self.election_timeout, 2 * self.election_timeout
        )

    # ---- role changes -------------------------------------------------------

    def reset(self, term: int) -> None:
        if self.term != term:
            self.term = term
            self.vote = NONE
        self.lead = NONE
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.reset_randomized_election_timeout()
        self.abort_leader_transfer()
        self.trk.reset_votes()
        last = self.log.last_index()
        trk = self.trk
        for id, pr in trk.progress.items():
            npr = Progress(last + 1, trk.max_inflight, is_learner=pr.is_learner)
            if id == self.id:
                npr.match = last
            trk.progress[id] = npr
        self.pending_conf_index = 0
        self.lease_acks = {}
        self.timeout_now_sent = False

    def become_follower(self, term: int, lead: int) -> None:
        self.reset(term)
        self.lead = lead
        self.state = StateType.FOLLOWER

    def become_pre_candidate(self) -> None:
        if self.state == StateType.LEADER:
            raise InternalError("invalid transition [leader -> pre-candidate]")
        # no change of term or vote: that is the point of pre-vote
        self.trk.reset_votes()
        self.lead = NONE
        self.state = StateType.PRE_CANDIDATE

    def become_candidate(self) -> None:
        if self.state == StateType.LEADER:
            raise InternalError("invalid transition [leader -> candidate]")
        self.reset(self.term + 1)
        self.vote = self.id
        self.state = StateType.CANDIDATE

    def become_leader(self) -> None:
        if self.state == StateType.FOLLOWER:
            raise InternalError("invalid transition [follower -> leader]")
        self.reset(self.term)
        self.lead = self.id
        self.state = StateType.LEADER
        pr = self.trk.progress[self.id]
        pr.become_replicate()
        pr.recent_active = True
        # conservatively assume the log tail may hold an unapplied conf change
        self.pending_conf_index = self.log.last_index()
        self.append_entry([Entry(term=0, index=0)])

    # ---- elections ----------------------------------------------------------

    def hup(self, kind: bytes) -> None:
        if self.state == StateType.LEADER:
            return
        if not self.promotable():
            return
        if self.log.has_unapplied_conf_changes():
            return  # campaign once the pending configuration is applied
        self.campaign(kind)

    def campaign(self, kind: bytes) -> None:
        if kind == CAMPAIGN_PRE_ELECTION:
            self.become_pre_candidate()
            vote_msg, term = MT.PRE_VOTE, self.term + 1
        else:
            self.become_candidate()
            vote_msg, term = MT.VOTE, self.term
        res = self.poll(self.id, _VOTE_RESP[vote_msg], True)
        if res == VoteResult.WON:  # single-voter group
            if kind == CAMPAIGN_PRE_ELECTION:
                self.campaign(CAMPAIGN_ELECTION)
            else:
                self.become_leader()
            return
        ctx = CAMPAIGN_TRANSFER if kind == CAMPAIGN_TRANSFER else b""
        li, lt = self.log.last_index(), self.log.last_term()
        for id in sorted(self.trk.voters):
            if id != self.id:
                self.send(Message(vote_msg, to=id, term=term, index=li, log_term=lt, context=ctx))

    def poll(self, id: int, t: MessageType, granted: bool) -> VoteResult:
        self.trk.record_vote(id, granted)
        return self.trk.tally_votes()[2]

    # ---- stepping -----------------------------------------------------------

    def step(self, m: Message) -> None:
        t = m.type
        if m.term == 0:
            pass  # local message
        elif m.term > self.term:
            if t == MT.VOTE or t == MT.PRE_VOTE:
                force = m.context == CAMPAIGN_TRANSFER
                in_lease = (
                    self.check_quorum
                    and self.lead != NONE
                    and self.election_elapsed < self.election_timeout
                )
                if not force and in_lease:
                    # we heard from a live leader within the election timeout:
                    # neither bump our term nor grant the vote
                    return
            if t == MT.PRE_VOTE:
                pass  # never change our term on a pre-vote
            elif t == MT.PRE_VOTE_RESP and not m.reject:
                pass  # granted pre-votes carry the future term; we bump only on winning
            elif t == MT.APP or t == MT.HEARTBEAT or t == MT.SNAP:
                self.become_follower(m.term, m.frm)
            else:
                self.become_follower(m.term, NONE)
        elif m.term < self.term:
            if (self.check_quorum or self.pre_vote) and (t == MT.HEARTBEAT or t == MT.APP):
                # a stale leader (e.g. back from a partition): tell it the new
                # term so it steps down; otherwise it could never learn it,
                # since our pre-votes/votes are ignored by its sticky followers
                self.send(Message(MT.APP_RESP, to=m.frm))
            elif t == MT.PRE_VOTE:
                self.send(Message(MT.PRE_VOTE_RESP, to=m.frm, term=self.term, reject=True))
            return

        if t == MT.HUP:
            self.hup(CAMPAIGN_PRE_ELECTION if self.pre_vote else CAMPAIGN_ELECTION)
        elif t == MT.VOTE or t == MT.PRE_VOTE:
            self._handle_vote_request(m)
        elif self.state == StateType.LEADER:
            self._step_leader(m)
        elif self.state == StateType.FOLLOWER:
            self._step_follower(m)
        else:
            self._step_candidate(m)

    def _handle_vote_request(self, m: Message) -> None:
        can_vote = (
            self.vote == m.frm
            or (self.vote == NONE and self.lead == NONE)
            or (m.type == MT.PRE_VOTE and m.term > self.term)
        )
        resp = _VOTE_RESP[m.type]
        if can_vote and self.log.is_up_to_date(m.index, m.log_term):
            # for a real vote this changes the hard state; the response is
            # released in the same Ready as that hard state
            self.send(Message(resp, to=m.frm, term=m.term))
            if m.type == MT.VOTE:
                self.election_elapsed = 0
                self.vote = m.frm
        else:
            self.send(Message(resp, to=m.frm, term=self.term, reject=True))

    def _step_leader(self, m: Message) -> None:
        t = m.type
        if t == MT.BEAT:
            self.bcast_heartbeat()
            return
        if t == MT.CHECK_QUORUM:
            if not self.trk.quorum_active():
                self.become_follower(self.term, NONE)
            for id, pr in self.trk.progress.items():
                if id != self.id:
                    pr.recent_active = False
            return
        if t == MT.PROP:
            self._propose(m)
            return
        if t == MT.TRANSFER_LEADER:
            self._handle_transfer_leader(m.index)
            return

        pr = self.trk.progress.get(m.frm)
        if pr is None:
            return
        if t == MT.APP_RESP:
            self._handle_append_response(m, pr)
        elif t == MT.HEARTBEAT_RESP:
            pr.recent_active = True
            pr.paused = False
            if len(m.context) == 8:
                sent = int.from_bytes(m.context, "big")
                if sent > self.lease_acks.get(m.frm, -1):
                    self.lease_acks[m.frm] = sent
            if pr.state == ProgressState.REPLICATE and pr.inflights.full():
                pr.inflights.free_first_one()
            if pr.match < self.log.last_index() or pr.state == ProgressState.PROBE:
                self.maybe_send_append(m.frm)
        elif t == MT.SNAP_STATUS:
            if pr.state != ProgressState.SNAPSHOT:
                return
            if m.reject:
                pr.pending_snapshot = 0
            pr.become_probe()
            # wait for the follower's reply (or a heartbeat) before probing
            pr.paused = True
        elif t == MT.UNREACHABLE:
            if pr.state == ProgressState.REPLICATE:
                pr.become_probe()

    def _propose(self, m: Message) -> None:
        if not m.entries:
            raise InternalError("stepped empty proposal")
        if self.id not in self.trk.progress:
            raise ProposalDroppedError("this replica was removed from the group", self.lead)
        if self.lead_transferee != NONE:
            raise ProposalDroppedError(
                f"leadership transfer to {self.lead_transferee} in progress", self.lead
            )
        cc_at = [i for i, e in enumerate(m.entries) if e.type == EntryType.CONF_CHANGE]
        if cc_at:
            if len(cc_at) > 1 or self.pending_conf_index > self.log.applied:
                raise ProposalDroppedError(
                    "a configuration change is already pending; propose one at a time",
                    self.lead,
                )
            self.pending_conf_index = self.log.last_index() + cc_at[0] + 1
        self.append_entry(m.entries)
        self.bcast_append()

    def append_entry(self, es: list[Entry]) -> None:
        li = self.log.last_index()
        term = self.term
        for i, e in enumerate(es):
            e.term = term
            e.index = li + 1 + i
        li = self.log.append(es)
        self.trk.progress[self.id].maybe_update(li)
        self.maybe_commit()

    def maybe_commit(self) -> bool:
        return self.log.maybe_commit(self.trk.committed(), self.term)

    def _handle_append_response(self, m: Message, pr: Progress) -> None:
        pr.recent_active = True
        if m.reject:
            hint = m.reject_hint
            if m.log_term > 0:
                # the follower's log has term m.log_term at `hint`: every entry of
                # ours with a larger term there cannot match — skip past them all
                hint, _ = self.log.find_conflict_by_term(m.reject_hint, m.log_term)
            if pr.maybe_decr_to(m.index, hint):
                if pr.state == ProgressState.REPLICATE:
                    pr.become_probe()
                self.maybe_send_append(m.frm)
            return
        was_paused = pr.is_paused()
        if not (pr.maybe_update(m.index) or (pr.match == m.index and pr.state == ProgressState.PROBE)):
            return
        if pr.state == ProgressState.PROBE:
            pr.become_replicate()
        elif pr.state == ProgressState.SNAPSHOT and pr.match + 1 >= self.log.first_index():
            # caught up via the snapshot: the log can take it from here
            pr.become_probe()
            pr.become_replicate()
        elif pr.state == ProgressState.REPLICATE:
            pr.inflights.free_le(m.index)
        if self.maybe_commit():
            self.bcast_append()  # tell everyone the new commit index
        elif was_paused:
            self.maybe_send_append(m.frm)
        while self.maybe_send_append(m.frm, send_if_empty=False):
            pass
        if m.frm == self.lead_transferee and pr.match == self.log.last_index():
            self._send_timeout_now(m.frm)

    def _handle_transfer_leader(self, transferee: int) -> None:
        pr = self.trk.progress.get(transferee)
        if pr is None or pr.is_learner:
            return
        if self.lead_transferee != NONE:
            if self.lead_transferee == transferee:
                return
            self.abort_leader_transfer()
        if transferee == self.id:
            return
        self.election_elapsed = 0  # the transfer must finish within one election timeout
        self.lead_transferee = transferee
        if pr.match == self.log.last_index():
            self._send_timeout_now(transferee)
        else:
            self.maybe_send_append(transferee)

    def _send_timeout_now(self, to: int) -> None:
        # the transferee may campaign (forced, past followers' stickiness) at
        # any later time, even after we abandon the transfer: no more lease
        # in this term
        self.timeout_now_sent = True
        self.send(Message(MT.TIMEOUT_NOW, to=to))

    def abort_leader_transfer(self) -> None:
        self.lead_transferee = NONE

    def _step_candidate(self, m: Message) -> None:
        t = m.type
        my_resp = MT.PRE_VOTE_RESP if self.state == StateType.PRE_CANDIDATE else MT.VOTE_RESP
        if t == MT.PROP:
            raise ProposalDroppedError("no leader (election in progress)")
        if t == MT.APP:
            self.become_follower(m.term, m.frm)  # a leader of our term exists
            self._handle_append_entries(m)
        elif t == MT.HEARTBEAT:
            self.become_follower(m.term, m.frm)
            self._handle_heartbeat(m)
        elif t == MT.SNAP:
            self.become_follower(m.term, m.frm)
            self._handle_snapshot(m)
        elif t == my_resp:
            res = self.poll(m.frm, t, not m.reject)
            if res == VoteResult.WON:
                if self.state == StateType.PRE_CANDIDATE:
                    self.campaign(CAMPAIGN_ELECTION)
                else:
                    self.become_leader()
                    self.bcast_append()
            elif res == VoteResult.LOST:
                # a pre-candidate keeps its term; a candidate already bumped it
                self.become_follower(self.term, NONE)

    def _step_follower(self, m: Message) -> None:
        t = m.type
        if t == MT.PROP:
            raise ProposalDroppedError(
                "not the leader" if self.lead != NONE else "no leader", self.lead
            )
        if t == MT.APP:
            self.election_elapsed = 0
            self.lead = m.frm
            self._handle_append_entries(m)
        elif t == MT.HEARTBEAT:
            self.election_elapsed = 0
            self.lead = m.frm
            self._handle_heartbeat(m)
        elif t == MT.SNAP:
            self.election_elapsed = 0
            self.lead = m.frm
            self._handle_snapshot(m)
        elif t == MT.TRANSFER_LEADER:
            if self.lead != NONE:
                # forward to the leader; `index` names the transferee, `frm` is
                # always the true sender (transports may rely on it)
                self.send(Message(MT.TRANSFER_LEADER, to=self.lead, index=m.index))
        elif t == MT.TIMEOUT_NOW:
            # the leader asks us to take over: skip pre-vote, force the vote
            self.hup(CAMPAIGN_TRANSFER)

    # ---- follower handlers --------------------------------------------------

    def _handle_append_entries(self, m: Message) -> None:
        log = self.log
        if not self.trk.voters and not self.trk.learners:
            # Uninitialized replica (no configuration): the bootstrap
            # configuration is not in the log, so entries replayed from
            # index 1 would leave us with a wrong one (e.g. a single-voter
            # group of our own). Only a snapshot may initialize us. Reject
            # probes above 0 (the leader backs up to 1 and, once that is
            # compacted, sends a snapshot); ignore appends from 0 (the leader
            # retries on its next heartbeat).
            if m.index > 0:
                self.send(Message(MT.APP_RESP, to=m.frm, index=m.index, reject=True))
            return
        if m.index < log.committed:
            self.send(Message(MT.APP_RESP, to=m.frm, index=log.committed))
            return
        last_new = log.maybe_append(m.index, m.log_term, m.commit, m.entries)
        if last_new is not None:
            self.send(Message(MT.APP_RESP, to=m.frm, index=last_new))
            return
        # reject, with a hint for fast backtracking: the largest index <= m.index
        # whose term is <= m.log_term, and that term
        hint_index = min(m.index, log.last_index())
        hint_index, hint_term = log.find_conflict_by_term(hint_index, m.log_term)
        self.send(
            Message(MT.APP_RESP, to=m.frm, index=m.index, reject=True, reject_hint=hint_index,
                    log_term=hint_term)
        )

    def _handle_heartbeat(self, m: Message) -> None:
        self.log.commit_to(m.commit)
        self.send(Message(MT.HEARTBEAT_RESP, to=m.frm, context=m.context))

    def _handle_snapshot(self, m: Message) -> None:
        snap = m.snapshot
        if snap is not None and self.restore(snap):
            self.send(Message(MT.APP_RESP, to=m.frm, index=self.log.last_index()))
        else:
            self.send(Message(MT.APP_RESP, to=m.frm, index=self.log.committed))

    def restore(self, s: Snapshot) -> bool:
        """Install a snapshot from the leader. False if it is not newer than
        what we have committed (then we just report our commit index)."""
        md = s.metadata
        if md.index <= self.log.committed:
            return False
        if self.state != StateType.FOLLOWER:
            # defense in depth: never install a snapshot as leader/candidate
            self.become_follower(self.term + 1, NONE)
            return False
        cs = md.conf_state
        if self.id not in cs.voters and self.id not in cs.learners:
            return False  # we are not part of that configuration
        if self.log.match_term(md.index, md.term):
            # we already have the snapshot's last entry: fast-forward commit
            self.log.commit_to(md.index)
            return False
        self.log.restore(s)
        self._set_conf_state(cs)
        return True

    # ---- configuration changes ---------------------------------------------

    def apply_conf_change(self, cc: ConfChange) -> ConfState:
        trk = self.trk
        id = cc.node_id
        if id == NONE:
            return trk.conf_state()
        added = NONE
        if cc.type == ConfChangeType.REMOVE_NODE:
            trk.voters.discard(id)
            trk.learners.discard(id)
            trk.progress.pop(id, None)
            self.lease_acks.pop(id, None)
        else:
            learner = cc.type == ConfChangeType.ADD_LEARNER_NODE
            if learner:
                trk.voters.discard(id)
                trk.learners.add(id)
            else:
                trk.learners.discard(id)
                trk.voters.add(id)
            pr = trk.progress.get(id)
            if pr is None:
                pr = Progress(self.log.last_index() + 1, trk.max_inflight)
                # a new peer counts as active, or check-quorum could depose us
                # before it had a chance to answer
                pr.recent_active = True
                trk.progress[id] = pr
                added = id
            pr.is_learner = learner
        cs = trk.conf_state()
        if self.state == StateType.LEADER:
            if self.id not in trk.voters:
                self.become_follower(self.term, NONE)  # removed or demoted: step down
            elif trk.voters:
                if self.maybe_commit():  # the quorum may have shrunk
                    self.bcast_append()
                else:
                    for pid in trk.progress:
                        if pid != self.id:
                            # probe a new peer at once; others only if there is news
                            self.maybe_send_append(pid, send_if_empty=pid == added)
                if self.lead_transferee != NONE and self.lead_transferee not in trk.voters:
                    self.abort_leader_transfer()
        return cs

    # ---- leases -------------------------------------------------------------

    def lease_valid(self) -> bool:
        """See RawNode.leader_lease_valid."""
        if self.state != StateType.LEADER or not self.check_quorum:
            return False
        if self.lead_transferee != NONE or self.timeout_now_sent:
            return False
        acks = dict(self.lease_acks)
        acks[self.id] = self.ticks
        start = self.trk.quorum_value(acks)
        if start < 0:
            return False
        return self.ticks - start < self.election_timeout - 1

    # ---- persistence acknowledgement ---------------------------------------

    def advance(
        self, entries: list[Entry], committed: list[Entry], snapshot: Snapshot | None
    ) -> None:
        applied = 0
        if committed:
            applied = committed[-1].index
        elif snapshot is not None and not snapshot.is_empty():
            applied = snapshot.metadata.index
        if applied:
            self.log.applied_to(applied)
        if entries:
            e = entries[-1]
            self.log.stable_to(e.index, e.term)
        if snapshot is not None and not snapshot.is_empty():
            self.log.stable_snap_to(snapshot.metadata.index)
