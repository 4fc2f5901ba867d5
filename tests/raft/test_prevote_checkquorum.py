"""Pre-vote and check-quorum: a partitioned node rejoining does not disrupt a
healthy leader; a leader that lost its quorum steps down."""

from __future__ import annotations

import pytest

from crdb_py.raft import Message, MessageType, StateType
from tests.raft.harness import Network, new_raft, read_msgs

MT = MessageType


def test_prevote_partitioned_node_rejoining_does_not_disrupt() -> None:
    nt = Network(3, pre_vote=True, check_quorum=False, election_tick=5)
    nt.campaign(1)
    term = nt[1].term
    nt.isolate(3)
    nt.tick(3, 50)  # campaigns over and over, but only pre-votes: no term inflation
    assert nt[3].term == term
    assert nt[3].state == StateType.PRE_CANDIDATE
    nt.recover()
    nt.tick_all(20)
    assert nt.leader() == 1 and nt[1].term == term
    nt.propose(1, b"after")
    assert nt.data_applied(3)[-1] == b"after"


def test_without_prevote_a_rejoining_node_disrupts() -> None:
    """The contrast: without pre-vote (and check-quorum) the isolated node
    inflates its term and deposes the leader when it returns."""
    nt = Network(3, pre_vote=False, check_quorum=False, election_tick=5)
    nt.campaign(1)
    term = nt[1].term
    nt.isolate(3)
    nt.tick(3, 50)
    assert nt[3].term > term
    nt.recover()
    nt.tick(3, 15)  # 3's next vote request carries a higher term: 1 steps down
    assert nt[1].state == StateType.FOLLOWER
    assert nt[1].term > term


def test_prevote_does_not_change_terms_or_votes() -> None:
    r = new_raft(1, pre_vote=True)
    r.step(Message(MessageType.HUP, frm=1))
    assert r.state == StateType.PRE_CANDIDATE
    assert r.term == 0 and r.vote == 0
    msgs = read_msgs(r)
    assert {(m.type, m.term) for m in msgs} == {(MT.PRE_VOTE, 1)}
    # a voter answers a pre-vote without touching its own term or vote
    v = new_raft(2, pre_vote=True)
    v.step(msgs[0])
    (resp,) = read_msgs(v)
    assert (resp.type, resp.term, resp.reject) == (MT.PRE_VOTE_RESP, 1, False)
    assert v.term == 0 and v.vote == 0
    # with a majority of pre-votes the node becomes a real candidate
    r.step(resp)
    assert r.state == StateType.CANDIDATE and r.term == 1 and r.vote == 1


def test_prevote_rejected_for_stale_log() -> None:
    nt = Network(3, pre_vote=True, election_tick=5)
    nt.campaign(1)
    nt.isolate(3)
    nt.propose(1, b"x")
    nt.isolate(1)  # now only 2 and 3 talk; 3 lacks "x"
    nt.cut(1, 3)
    nt.dropped.pop((2, 3), None)
    nt.dropped.pop((3, 2), None)
    nt[3].campaign()
    nt.stabilize()
    assert nt[3].state != StateType.LEADER  # 2 refuses: 3's log is stale
    nt[2].campaign()
    nt.stabilize()
    assert nt[2].state == StateType.LEADER  # 2 has the entry: 3 grants


def test_check_quorum_leader_steps_down_without_quorum() -> None:
    nt = Network(3, check_quorum=True, election_tick=5)
    nt.campaign(1)
    nt.isolate(1)
    for _ in range(5):
        nt[1].tick()
    assert nt[1].state == StateType.LEADER  # the first check only resets activity
    for _ in range(5):
        nt[1].tick()
    assert nt[1].state == StateType.FOLLOWER


def test_without_check_quorum_isolated_leader_stays() -> None:
    nt = Network(3, check_quorum=False, election_tick=5)
    nt.campaign(1)
    nt.isolate(1)
    for _ in range(50):
        nt[1].tick()
    assert nt[1].state == StateType.LEADER


def test_check_quorum_followers_ignore_votes_while_leader_alive() -> None:
    """Leader stickiness: a follower that heard from the leader within the
    election timeout ignores a higher-term vote request (and keeps its term)."""
    nt = Network(3, check_quorum=True, pre_vote=False, election_tick=5)
    nt.campaign(1)
    term = nt[1].term
    nt[3].raft.become_follower(term, 0)  # forget the leader only on node 3
    nt[3].raft.randomized_election_timeout = 5
    for _ in range(5):
        nt[3].tick()  # 3 campaigns at term+1
    nt.stabilize()
    assert nt[2].term == term  # 2 ignored the request entirely
    assert nt[1].state == StateType.LEADER
    assert nt[3].state == StateType.CANDIDATE


def test_check_quorum_stale_leader_learns_new_term() -> None:
    """A leader partitioned away and replaced learns the new term from a
    follower's response to its stale heartbeat, and steps down."""
    nt = Network(3, check_quorum=True, pre_vote=True, election_tick=5)
    nt.campaign(1)
    nt.isolate(1)
    nt.tick_all(30)
    lead = nt.leader()
    assert lead is not None
    new = [i for i in nt.nodes if i != 1 and nt[i].is_leader]
    assert new
    nt.recover()
    nt.tick(1, 1)
    nt.stabilize()
    assert nt[1].state == StateType.FOLLOWER
    assert nt[1].term == nt[new[0]].term


@pytest.mark.parametrize("pre_vote", [False, True])
def test_free_stuck_candidate_with_check_quorum(pre_vote: bool) -> None:
    """A node that was partitioned and campaigned rejoins: the cluster
    converges on one leader and the node follows it."""
    nt = Network(3, check_quorum=True, pre_vote=pre_vote, election_tick=5)
    nt.campaign(1)
    nt.isolate(2)
    nt.tick(2, 30)
    nt.recover()
    nt.tick_all(40)
    lead = nt.leader()
    assert lead is not None
    assert all(nt[i].lead == lead for i in nt.nodes)
    assert len({nt[i].term for i in nt.nodes}) == 1
