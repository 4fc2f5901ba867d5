"""One test per rule of the Raft paper, §5 (after etcd's raft_paper_test.go).

Pre-vote and check-quorum are off here unless a test says otherwise: these
tests pin the paper's basic algorithm. Their effects are tested in
test_prevote_checkquorum.py.
"""

from __future__ import annotations

import random

import pytest

from crdb_py.raft import Entry, HardState, Message, MessageType, StateType
from crdb_py.raft.raft import Raft
from tests.raft.harness import (
    Network,
    SafetyChecker,
    log_terms,
    new_raft,
    new_storage,
    read_msgs,
)

MT = MessageType
F, C, L = StateType.FOLLOWER, StateType.CANDIDATE, StateType.LEADER


def become(r: Raft, state: StateType) -> None:
    if state == F:
        r.become_follower(r.term + 1, 2)
    elif state == C:
        r.become_candidate()
    else:
        r.become_candidate()
        r.become_leader()
    read_msgs(r)


def commit_noop(r: Raft) -> None:
    """Make a fresh leader's no-op entry committed (acks from all peers)."""
    for id in list(r.trk.progress):
        if id != r.id:
            r.step(Message(MT.APP_RESP, frm=id, to=r.id, term=r.term, index=r.log.last_index()))
    read_msgs(r)
    r.advance([], r.log.next_committed_ents(), None)  # pretend applied


# ---- §5.1: terms --------------------------------------------------------------


@pytest.mark.parametrize("state", [F, C, L])
def test_update_term_from_message(state: StateType) -> None:
    """§5.1: a server that sees a larger term adopts it; a candidate or leader
    reverts to follower."""
    r = new_raft(1)
    become(r, state)
    before = r.term
    r.step(Message(MT.APP, frm=2, to=1, term=before + 5))
    assert r.term == before + 5
    assert r.state == F
    assert r.lead == 2


def test_reject_stale_term_message() -> None:
    """§5.1: a request with a stale term is rejected (ignored)."""
    r = new_raft(1)
    r.become_follower(2, 2)
    r.step(Message(MT.APP, frm=2, to=1, term=1, index=0, log_term=0,
                   entries=[Entry(1, 1)], commit=1))
    assert r.log.last_index() == 0
    assert r.log.committed == 0
    assert read_msgs(r) == []  # no response without check-quorum/pre-vote


def test_start_as_follower() -> None:
    """§5.2: servers start as followers."""
    r = new_raft(1)
    assert r.state == F and r.term == 0 and r.lead == 0


def test_leader_bcast_beat() -> None:
    """§5.2: a leader sends heartbeats to all followers every heartbeat interval."""
    hi = 2
    r = new_raft(1, election=10, heartbeat=hi)
    become(r, L)
    for _ in range(hi):
        r.tick()
    msgs = sorted(read_msgs(r), key=lambda m: m.to)
    assert [(m.type, m.to, m.term) for m in msgs] == [(MT.HEARTBEAT, 2, 1), (MT.HEARTBEAT, 3, 1)]


# ---- §5.2: leader election ------------------------------------------------------


@pytest.mark.parametrize("state", [F, C])
def test_nonleader_start_election(state: StateType) -> None:
    """§5.2: after an election timeout without a leader a follower (or a
    candidate whose election timed out) increments its term, votes for itself
    and requests votes from all others."""
    r = new_raft(1)
    if state == F:
        r.become_follower(1, 2)
    else:
        r.become_candidate()
    read_msgs(r)
    for _ in range(2 * r.election_timeout):
        r.tick()
    assert r.term == 2
    assert r.state == C
    assert r.vote == 1
    assert r.trk.votes[1] is True
    msgs = sorted(read_msgs(r), key=lambda m: m.to)
    assert [(m.type, m.to, m.term) for m in msgs] == [(MT.VOTE, 2, 2), (MT.VOTE, 3, 2)]


@pytest.mark.parametrize(
    "size,votes,want",
    [
        (1, {}, L),
        (3, {2: True, 3: True}, L),
        (3, {2: True}, L),
        (5, {2: True, 3: True, 4: True, 5: True}, L),
        (5, {2: True, 3: True, 4: True}, L),
        (5, {2: True, 3: True}, L),
        (3, {2: False, 3: False}, F),
        (5, {2: False, 3: False, 4: False, 5: False}, F),
        (5, {2: True, 3: False, 4: False, 5: False}, F),
        (3, {}, C),
        (5, {2: True}, C),
        (5, {2: False, 3: False}, C),
        (5, {}, C),
    ],
)
def test_leader_election_in_one_round(size: int, votes: dict[int, bool], want: StateType) -> None:
    """§5.2: a candidate wins with a majority of votes, loses (back to
    follower) once a majority rejected it, and otherwise stays candidate."""
    r = new_raft(1, range(1, size + 1))
    r.step(Message(MT.HUP, frm=1))
    for id, granted in votes.items():
        r.step(Message(MT.VOTE_RESP, frm=id, to=1, term=r.term, reject=not granted))
    assert r.state == want
    assert r.term == 1


@pytest.mark.parametrize(
    "vote,nvote,reject",
    [(0, 2, False), (0, 3, False), (2, 2, False), (3, 3, False), (2, 3, True), (3, 2, True)],
)
def test_follower_vote_once_per_term(vote: int, nvote: int, reject: bool) -> None:
    """§5.2: each server votes for at most one candidate in a term, first come
    first served."""
    r = new_raft(1)
    r.term, r.vote = 1, vote
    r.step(Message(MT.VOTE, frm=nvote, to=1, term=1))
    msgs = read_msgs(r)
    assert [(m.type, m.to, m.term, m.reject) for m in msgs] == [(MT.VOTE_RESP, nvote, 1, reject)]
    assert r.vote == (vote or nvote)


@pytest.mark.parametrize("higher", [False, True])
def test_candidate_fallback(higher: bool) -> None:
    """§5.2: a candidate that receives an append from a leader of a term at
    least as large as its own recognizes the leader and becomes follower."""
    r = new_raft(1)
    r.step(Message(MT.HUP, frm=1))
    assert r.state == C
    term = r.term + 1 if higher else r.term
    r.step(Message(MT.APP, frm=2, to=1, term=term))
    assert r.state == F and r.term == term and r.lead == 2


@pytest.mark.parametrize("state", [F, C])
def test_election_timeout_randomized(state: StateType) -> None:
    """§5.2: election timeouts are chosen randomly in [et, 2et)."""
    et = 10
    r = new_raft(1, election=et)
    seen = set()
    for round_ in range(50 * et):
        if state == F:
            r.become_follower(r.term + 1, 2)
        else:
            r.become_candidate()
        ticks = 0
        while r.state == state and r.term == (r.term if True else 0):
            term = r.term
            r.tick()
            ticks += 1
            read_msgs(r)
            if r.term != term:
                break
        seen.add(ticks)
        assert et <= ticks < 2 * et, (round_, ticks)
    assert len(seen) > et // 2  # actually random across the whole range


def test_election_timeouts_rarely_collide() -> None:
    """§5.2: randomized timeouts make split votes rare: of five followers,
    one usually times out alone."""
    et, size, rounds = 10, 5, 200
    conflicts = 0
    for round_ in range(rounds):
        rs = [new_raft(i, range(1, size + 1), election=et) for i in range(1, size + 1)]
        for i, r in enumerate(rs):
            r.rng = random.Random(round_ * 31 + i)
            r.become_follower(r.term + 1, 0)
        timed_out = False
        while not timed_out:
            started = 0
            for r in rs:
                r.tick()
                if read_msgs(r):
                    started += 1
            if started:
                timed_out = True
                if started > 1:
                    conflicts += 1
    assert conflicts / rounds <= 0.3


def test_vote_request_carries_last_log() -> None:
    """§5.2/§5.4.1: a vote request carries the candidate's last log index and
    term."""
    st = new_storage([1, 2, 3], [1, 2])
    r = new_raft(1, storage=st)
    r.term = 2
    for _ in range(2 * r.election_timeout):
        r.tick()
    msgs = read_msgs(r)
    assert {(m.type, m.term, m.index, m.log_term) for m in msgs} == {(MT.VOTE, 3, 2, 2)}


# ---- §5.3: log replication -----------------------------------------------------


def test_leader_start_replication() -> None:
    """§5.3: the leader appends a proposal to its log and sends it to followers
    with the index and term of the preceding entry."""
    r = new_raft(1)
    become(r, L)
    commit_noop(r)
    li = r.log.last_index()
    r.step(Message(MT.PROP, frm=1, entries=[Entry(0, 0, data=b"some data")]))
    assert r.log.last_index() == li + 1
    assert r.log.committed == li
    msgs = sorted(read_msgs(r), key=lambda m: m.to)
    assert [(m.to, m.type, m.index, m.log_term, m.commit) for m in msgs] == [
        (2, MT.APP, li, 1, li), (3, MT.APP, li, 1, li)
    ]
    assert all([(e.index, e.term, e.data) for e in m.entries] == [(li + 1, 1, b"some data")]
               for m in msgs)


def test_leader_commit_entry_and_broadcasts_commit() -> None:
    """§5.3: once the entry is replicated on a majority the leader commits it,
    applies it, and the commit index reaches followers in later appends."""
    r = new_raft(1)
    become(r, L)
    commit_noop(r)
    li = r.log.last_index()
    r.step(Message(MT.PROP, frm=1, entries=[Entry(0, 0, data=b"x")]))
    for m in read_msgs(r):
        r.step(Message(MT.APP_RESP, frm=m.to, to=1, term=1, index=m.index + len(m.entries)))
    assert r.log.committed == li + 1
    assert [e.data for e in r.log.next_committed_ents()] == [b"x"]
    msgs = read_msgs(r)
    assert {(m.to, m.type, m.commit) for m in msgs} >= {(2, MT.APP, li + 1), (3, MT.APP, li + 1)}


@pytest.mark.parametrize(
    "size,acks,committed",
    [(1, set(), True), (3, set(), False), (3, {2}, True), (3, {2, 3}, True),
     (5, set(), False), (5, {2}, False), (5, {2, 3}, True), (5, {2, 3, 4, 5}, True)],
)
def test_leader_acknowledge_commit(size: int, acks: set[int], committed: bool) -> None:
    """§5.3: a log entry is committed once the leader replicated it on a
    majority of servers."""
    r = new_raft(1, range(1, size + 1))
    become(r, L)
    commit_noop(r)
    li = r.log.last_index()
    r.step(Message(MT.PROP, frm=1, entries=[Entry(0, 0, data=b"x")]))
    for m in read_msgs(r):
        if m.to in acks:
            r.step(Message(MT.APP_RESP, frm=m.to, to=1, term=1, index=m.index + len(m.entries)))
    assert (r.log.committed > li) == committed


@pytest.mark.parametrize("prior", [[], [2], [1], [1, 1]])
def test_leader_commit_preceding_entries(prior: list[int]) -> None:
    """§5.3: committing an entry commits all preceding ones, including entries
    of previous terms."""
    st = new_storage([1, 2, 3], prior)
    r = new_raft(1, storage=st)
    r.term = 2
    become(r, L)
    r.step(Message(MT.PROP, frm=1, entries=[Entry(0, 0, data=b"x")]))
    for m in read_msgs(r):
        r.step(Message(MT.APP_RESP, frm=m.to, to=1, term=r.term, index=m.index + len(m.entries)))
    li = len(prior)
    ents = r.log.next_committed_ents()
    assert [(e.index, e.term) for e in ents] == [(i + 1, t) for i, t in enumerate(prior)] + [
        (li + 1, 3), (li + 2, 3)
    ]


def test_follower_commit_entry() -> None:
    """§5.3: once a follower learns an entry is committed it applies it."""
    for ents, commit in [([b"a"], 1), ([b"a", b"b"], 1), ([b"a", b"b"], 2)]:
        r = new_raft(1)
        r.become_follower(1, 2)
        r.step(Message(MT.APP, frm=2, to=1, term=1,
                       entries=[Entry(1, i + 1, data=d) for i, d in enumerate(ents)],
                       commit=commit))
        assert r.log.committed == commit
        assert [e.data for e in r.log.next_committed_ents()] == ents[:commit]


@pytest.mark.parametrize(
    "term,index,reject,hint",
    [
        (0, 0, False, 0),  # match with the dummy entry
        (1, 1, False, 0),
        (2, 2, False, 0),
        (1, 2, True, 1),  # term mismatch at 2: hint our last index with term <= 1
        (3, 3, True, 2),  # index 3 beyond our log
    ],
)
def test_follower_consistency_check(term: int, index: int, reject: bool, hint: int) -> None:
    """§5.3: a follower rejects an append whose preceding (index, term) is not
    in its log (the consistency check that yields log matching)."""
    r = new_raft(1, storage=new_storage([1, 2, 3], [1, 2]))
    r.become_follower(2, 2)
    r.step(Message(MT.APP, frm=2, to=1, term=2, log_term=term, index=index, commit=1))
    (m,) = read_msgs(r)
    assert m.type == MT.APP_RESP and m.reject == reject
    if reject:
        assert m.reject_hint == hint


@pytest.mark.parametrize(
    "index,term,ents,want",
    [
        (2, 2, [(3, 3)], [1, 2, 3]),
        (1, 1, [(2, 3), (3, 4)], [1, 3, 4]),  # conflict at 2: truncate and replace
        (0, 0, [(1, 1)], [1, 2]),  # already present: nothing changes
        (0, 0, [(1, 3)], [3]),  # conflict at 1: replace everything
    ],
)
def test_follower_append_entries(index: int, term: int, ents: list[tuple[int, int]],  # (index, term)
                                 want: list[int]) -> None:
    """§5.3: a conflicting entry (same index, different term) and all that
    follow it are deleted; new entries are appended."""
    r = new_raft(1, storage=new_storage([1, 2, 3], [1, 2]))
    r.become_follower(2, 2)
    r.step(Message(MT.APP, frm=2, to=1, term=2, log_term=term, index=index,
                   entries=[Entry(t, i) for i, t in ents]))
    assert log_terms(r) == want


# Figure 7 of the paper: the leader's log and six possible follower logs.
FIG7_LEADER = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6]
FIG7_FOLLOWERS = [
    [1, 1, 1, 4, 4, 5, 5, 6, 6],  # a: missing one
    [1, 1, 1, 4],  # b: missing many
    [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],  # c: one extra uncommitted
    [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],  # d: extra entries of a later term
    [1, 1, 1, 4, 4, 4, 4],  # e: missing and extra
    [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],  # f: many extra from old terms
]


@pytest.mark.parametrize("follower", FIG7_FOLLOWERS, ids=list("abcdef"))
def test_leader_sync_follower_log(follower: list[int]) -> None:
    """§5.3 Figure 7: the leader forces followers' logs to duplicate its own,
    whatever state they are in (finding the last agreeing entry by
    backtracking)."""
    term = 8
    lead_st = new_storage([1, 2, 3], FIG7_LEADER)
    lead_st.set_hard_state(HardState(term=term, commit=len(FIG7_LEADER)))
    lead = new_raft(1, storage=lead_st)
    fst = new_storage([1, 2, 3], follower)
    fst.set_hard_state(HardState(term=term - 1))
    foll = new_raft(2, storage=fst)
    # the third node votes for the leader but gets no appends
    third = new_raft(3, storage=new_storage([1, 2, 3]))
    nt = _RaftNet({1: lead, 2: foll, 3: third})
    nt.drop_to.add(3)
    lead.step(Message(MT.HUP, frm=1))
    nt.deliver_all(extra_drop={(1, 3)})
    # the vote from 3 is needed: deliver it explicitly
    assert lead.state == L, lead
    nt.drop_to.clear()
    lead.step(Message(MT.PROP, frm=1, entries=[Entry(0, 0)]))
    nt.deliver_all()
    assert log_terms(foll) == log_terms(lead)
    assert log_terms(lead)[: len(FIG7_LEADER)] == FIG7_LEADER


class _RaftNet:
    """Minimal synchronous delivery between bare Raft objects (no Ready)."""

    def __init__(self, rs: dict[int, Raft]) -> None:
        self.rs = rs
        self.drop_to: set[int] = set()

    def deliver_all(self, extra_drop: set[tuple[int, int]] = frozenset()) -> int:  # type: ignore[assignment]
        n = 0
        while True:
            pending = [m for r in self.rs.values() for m in read_msgs(r)]
            if not pending:
                return n
            for m in pending:
                if (m.frm, m.to) in extra_drop and m.type not in (MT.VOTE, MT.VOTE_RESP):
                    continue
                if m.to in self.drop_to and m.type not in (MT.VOTE, MT.VOTE_RESP):
                    continue
                n += 1
                self.rs[m.to].step(m)


@pytest.mark.parametrize(
    "logterm,index,granted",
    [
        # same log term: longer or equal log wins the vote
        (1, 1, True), (1, 2, True), (1, 0, False),  # ours: [1] but see below
        # higher last term always wins
        (3, 1, True), (3, 5, True),
        # lower last term always loses
        (0, 9, False),
    ],
)
def test_voter_up_to_date_check_simple(logterm: int, index: int, granted: bool) -> None:
    """§5.4.1: a vote is granted only if the candidate's log is at least as up
    to date as the voter's: compare last terms, then lengths."""
    r = new_raft(1, storage=new_storage([1, 2, 3], [1]))
    r.step(Message(MT.VOTE, frm=2, to=1, term=3, log_term=logterm, index=index))
    (m,) = read_msgs(r)
    assert m.type == MT.VOTE_RESP and m.reject == (not granted)


@pytest.mark.parametrize(
    "ours,logterm,index,granted",
    [
        ([1, 1], 1, 1, False),  # same term, shorter
        ([1, 1], 1, 2, True),  # same term, same length
        ([1, 1], 1, 3, True),  # same term, longer
        ([1, 2], 1, 3, False),  # lower last term, even if longer
        ([1, 2], 2, 2, True),
        ([1, 2], 3, 1, True),  # higher last term, even if shorter
    ],
)
def test_voter_up_to_date_check(ours: list[int], logterm: int, index: int, granted: bool) -> None:
    """§5.4.1: the election restriction."""
    r = new_raft(1, storage=new_storage([1, 2, 3], ours))
    r.step(Message(MT.VOTE, frm=2, to=1, term=3, log_term=logterm, index=index))
    (m,) = read_msgs(r)
    assert m.reject == (not granted)
    assert r.vote == (2 if granted else 0)


# ---- §5.4.2: committing entries from previous terms ---------------------------------


@pytest.mark.parametrize("index,wcommit", [(1, 0), (2, 0), (3, 3)])
def test_leader_only_commits_log_from_current_term(index: int, wcommit: int) -> None:
    """§5.4.2: a leader never commits an entry of a previous term by counting
    replicas; only entries of its current term are committed that way."""
    st = new_storage([1, 2], [1, 2])
    r = new_raft(1, [1, 2], storage=st)
    r.term = 2
    become(r, L)  # term 3; appends its no-op at index 3
    assert r.term == 3
    r.step(Message(MT.APP_RESP, frm=2, to=1, term=r.term, index=index))
    assert r.log.committed == wcommit


def test_figure8_old_term_entry_not_committed_by_counting() -> None:
    """§5.4.2 Figure 8: an entry of an old term replicated on a majority can
    still be overwritten, so a leader must not count replicas for it.

    (a) S1 leads term 2, writes index 2 to S1,S2 only. (b) S1 crashes; S5
    leads term 3 (votes of S3,S4,S5) and writes index 2 (term 3) only
    locally. (c) S5 crashes; S1 leads term 4 and replicates its term-2 entry
    to S3 — now on a majority (S1,S2,S3) — but must NOT commit it. (d) S1
    crashes; S5 can be re-elected (its last term 3 > 2) and overwrites index 2
    everywhere. Had S1 committed it, committed data would be lost."""
    def mk(id: int, terms: list[int], term: int) -> Raft:
        st = new_storage([1, 2, 3, 4, 5], terms)
        st.set_hard_state(HardState(term=term, commit=1))
        return new_raft(id, [1, 2, 3, 4, 5], storage=st)

    # state after (b): S1,S2 have [1,2]; S5 has [1,3]; S3,S4 have [1]
    s1 = mk(1, [1, 2], 3)
    s2 = mk(2, [1, 2], 3)
    s3 = mk(3, [1], 3)
    net = _RaftNet({1: s1, 2: s2, 3: s3})
    # (c) S1 is elected in term 4 with votes of S2, S3
    s1.step(Message(MT.HUP, frm=1))
    msgs = [m for m in read_msgs(s1) if m.to in (2, 3)]
    for m in msgs:
        net.rs[m.to].step(m)
    for r in (s2, s3):
        for m in read_msgs(r):
            s1.step(m)
    assert s1.state == L and s1.term == 4
    # S1 replicates only its old entry (index 2, term 2) to S3: drop its no-op
    assert any(m.to == 3 and m.type == MT.APP for m in read_msgs(s1))
    s3.step(Message(MT.APP, frm=1, to=3, term=4, index=1, log_term=1,
                    entries=[Entry(2, 2)], commit=s1.log.committed))
    for resp in read_msgs(s3):
        s1.step(resp)
    s1.step(Message(MT.APP_RESP, frm=2, to=1, term=4, index=2))
    # index 2 (term 2) is on S1, S2, S3: a majority of 5 — still not committed
    assert [e.term for e in s1.log.all_entries()][:2] == [1, 2]
    assert s1.log.committed == 1
    # and once a current-term entry (the no-op at 3) reaches a majority, both commit
    s1.step(Message(MT.APP_RESP, frm=2, to=1, term=4, index=3))
    s1.step(Message(MT.APP_RESP, frm=3, to=1, term=4, index=3))
    assert s1.log.committed == 3


def test_election_safety_split_vote() -> None:
    """§5.2 election safety: two candidates in the same term split the vote;
    neither may become leader without a majority, and never both."""
    rs = {i: new_raft(i, range(1, 6)) for i in range(1, 6)}
    net = _RaftNet(rs)
    rs[1].step(Message(MT.HUP, frm=1))
    rs[2].step(Message(MT.HUP, frm=2))
    # 3 hears from 1 first, 4 from 2 first, 5 hears nobody
    msgs = read_msgs(rs[1]) + read_msgs(rs[2])
    order = sorted((m for m in msgs if m.to in (3, 4)),
                   key=lambda m: (m.to, 0 if (m.to, m.frm) in ((3, 1), (4, 2)) else 1))
    for m in order:
        rs[m.to].step(m)
    net.deliver_all()
    assert rs[1].term == rs[2].term == 1
    leaders = [i for i, r in rs.items() if r.state == L]
    assert leaders == []
    assert rs[3].vote == 1 and rs[4].vote == 2


def test_leader_append_only() -> None:
    """§5.3 leader append-only: a leader never overwrites or deletes entries
    in its own log — not even when handed a conflicting append for its term."""
    r = new_raft(1)
    become(r, L)
    r.step(Message(MT.PROP, frm=1, entries=[Entry(0, 0, data=b"mine")]))
    before = [(e.index, e.term, e.data) for e in r.log.all_entries()]
    r.step(Message(MT.APP, frm=2, to=1, term=r.term, index=0, log_term=0,
                   entries=[Entry(r.term, 1, data=b"theirs")], commit=1))
    assert [(e.index, e.term, e.data) for e in r.log.all_entries()] == before
    assert r.state == L


# ---- §5.4: safety properties under random faults ----------------------------------


def _chaos(seed: int, steps: int = 300, n: int = 5) -> Network:
    """Random ticks, proposals, drops and partitions; asserts the §5.2/§5.3/
    §5.4 safety properties after every step."""
    rng = random.Random(seed)
    nt = Network(n, seed=seed, election_tick=5, pre_vote=rng.random() < 0.5,
                 check_quorum=rng.random() < 0.5)
    checker = SafetyChecker()
    for step in range(steps):
        r = rng.random()
        if r < 0.05:
            nt.isolate(rng.randint(1, n))
        elif r < 0.10:
            nt.recover()
        elif r < 0.15:
            for i in nt.nodes:
                for j in nt.nodes:
                    if i != j:
                        nt.dropped[(i, j)] = 0.2
        elif r < 0.45:
            lead = nt.leader()
            if lead is not None:
                try:
                    nt[lead].propose(f"{seed}-{step}".encode())
                except Exception:
                    pass
        for node in nt.nodes.values():
            node.rn.tick()
        nt.stabilize()
        checker.check(nt.nodes)
    return nt


@pytest.mark.parametrize("seed", range(6))
def test_safety_properties_under_faults(seed: int) -> None:
    """§5.2 election safety, §5.3 leader append-only and log matching, §5.4
    leader completeness and state machine safety — checked after every step
    of a randomized run with partitions and message loss; then liveness: once
    the network heals, a leader emerges and every replica applies the same log."""
    nt = _chaos(seed)
    nt.recover()
    nt.tick_all(60)
    lead = nt.leader()
    assert lead is not None
    nt.propose(lead, b"final")
    nt.tick_all(5)
    logs = {id: nt.applied(id) for id in nt.nodes}
    assert all(log == logs[lead] for log in logs.values())
    assert logs[lead][-1][2] == b"final"
