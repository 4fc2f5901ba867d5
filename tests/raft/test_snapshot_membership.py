"""Log truncation and snapshots; membership changes (learners, promotion,
removal, one at a time); leadership transfer; the leader lease."""

from __future__ import annotations

import pytest

from crdb_py.raft import (
    ConfChange,
    ConfChangeType,
    ConfState,
    Message,
    MessageType,
    ProgressState,
    ProposalDroppedError,
    Snapshot,
    SnapshotMetadata,
    StateType,
)
from tests.raft.harness import Network, log_terms, new_raft, new_storage, read_msgs

MT = MessageType
CCT = ConfChangeType


# ---- snapshots ----------------------------------------------------------------------


def test_lagging_follower_behind_compaction_gets_snapshot_and_catches_up() -> None:
    nt = Network(3)
    nt.campaign(1)
    nt.isolate(3)
    for i in range(20):
        nt.propose(1, b"v%d" % i)
    nt.nodes[1].take_snapshot()  # compacts the leader's log past what 3 has
    assert nt[1].raft.log.first_index() > nt[3].raft.log.last_index() + 1
    nt.recover()
    nt.tick_all(3)
    snaps = [m for m in nt.delivered if m.type == MT.SNAP and m.to == 3]
    assert len(snaps) == 1
    assert nt[3].raft.log.first_index() == snaps[0].snapshot.metadata.index + 1
    nt.propose(1, b"after")
    assert nt.applied(3) == nt.applied(1)
    assert nt.data_applied(3)[-1] == b"after"
    assert nt[1].status().progress[3].state == ProgressState.REPLICATE


def test_snapshot_failure_reported_then_retried() -> None:
    nt = Network(3)
    nt.campaign(1)
    nt.isolate(3)
    for i in range(5):
        nt.propose(1, b"v%d" % i)
    nt.nodes[1].take_snapshot()
    nt.recover()
    nt.ignore(MT.SNAP)  # the snapshot is lost in transit
    nt.tick_all(2)
    pr = nt[1].raft.trk.progress[3]
    assert pr.state == ProgressState.SNAPSHOT and pr.is_paused()
    nt[1].report_snapshot(3, ok=False)
    assert pr.state == ProgressState.PROBE and pr.is_paused()
    nt.recover()
    nt.tick_all(3)
    assert nt.applied(3) == nt.applied(1)


def test_snapshot_not_sent_to_inactive_peer() -> None:
    """A snapshot is only shipped to a peer that recently responded."""
    st = new_storage([1, 2, 3], [1, 1, 1])
    st.create_snapshot(2, None, b"snap")
    st.compact(2)
    r = new_raft(1, storage=st)
    r.term = 1
    r.become_candidate()
    r.become_leader()
    read_msgs(r)
    pr = r.trk.progress[2]
    pr.next = 2  # needs the term of index 1: compacted
    pr.recent_active = False
    assert not r.maybe_send_append(2)
    assert pr.state == ProgressState.PROBE and read_msgs(r) == []
    pr.recent_active = True
    assert r.maybe_send_append(2)
    (m,) = read_msgs(r)
    assert m.type == MT.SNAP and m.snapshot.metadata.index == 2 and m.snapshot.data == b"snap"
    assert pr.state == ProgressState.SNAPSHOT and pr.pending_snapshot == 2


def test_follower_restores_snapshot_and_fast_forwards() -> None:
    r = new_raft(2, storage=new_storage([1, 2, 3], [1, 1, 1]))
    r.become_follower(2, 1)
    snap = Snapshot(b"s", SnapshotMetadata(ConfState((1, 2, 3)), index=10, term=2))
    r.step(Message(MT.SNAP, frm=1, to=2, term=2, snapshot=snap))
    (m,) = read_msgs(r)
    assert m.type == MT.APP_RESP and m.index == 10
    assert r.log.committed == 10 and r.log.last_index() == 10
    assert r.log.has_pending_snapshot()
    # a snapshot that is not newer than our commit index is answered with it
    old = Snapshot(b"o", SnapshotMetadata(ConfState((1, 2, 3)), index=5, term=1))
    r.step(Message(MT.SNAP, frm=1, to=2, term=2, snapshot=old))
    (m,) = read_msgs(r)
    assert m.index == 10
    # when our log already has the snapshot's last entry, only commit moves
    r2 = new_raft(2, storage=new_storage([1, 2, 3], [1, 1, 2, 2]))
    r2.become_follower(2, 1)
    s2 = Snapshot(b"", SnapshotMetadata(ConfState((1, 2, 3)), index=3, term=2))
    r2.step(Message(MT.SNAP, frm=1, to=2, term=2, snapshot=s2))
    assert r2.log.committed == 3 and r2.log.last_index() == 4
    assert not r2.log.has_pending_snapshot()


def test_snapshot_for_other_configuration_is_refused() -> None:
    r = new_raft(2)
    r.become_follower(2, 1)
    snap = Snapshot(b"", SnapshotMetadata(ConfState((1, 3, 4)), index=10, term=2))
    r.step(Message(MT.SNAP, frm=1, to=2, term=2, snapshot=snap))
    assert not r.log.has_pending_snapshot() and r.log.committed == 0


def test_restart_after_snapshot_and_compaction() -> None:
    nt = Network(3)
    nt.campaign(1)
    for i in range(10):
        nt.propose(1, b"v%d" % i)
    n2 = nt.nodes[2]
    n2.take_snapshot()
    n2.restart()
    assert n2.rn.raft.log.first_index() == n2.storage.first_index()
    nt.propose(1, b"more")
    assert nt.data_applied(2)[-1] == b"more"


# ---- membership -------------------------------------------------------------------


def _apply_conf(nt: Network, lead: int, cc: ConfChange) -> None:
    nt[lead].propose_conf_change(cc)
    nt.stabilize()


def test_add_learner_catch_up_promote_remove() -> None:
    nt = Network([1, 2, 3])
    nt.campaign(1)
    for i in range(5):
        nt.propose(1, b"v%d" % i)
    # a new node starts empty; it is added as a learner and catches up from a
    # snapshot (which carries the configuration: the bootstrap configuration
    # is not in the log). The snapshot must include the learner itself, or the
    # new node refuses it: take it after the change applied.
    nt.add_node(4)
    nt.isolate(4)
    _apply_conf(nt, 1, ConfChange(CCT.ADD_LEARNER_NODE, 4))
    nt.nodes[1].take_snapshot()
    nt.recover()
    nt.tick_all(3)
    st = nt[1].status()
    assert st.conf_state == ConfState(voters=(1, 2, 3), learners=(4,))
    assert st.progress[4].is_learner
    assert nt.applied(4) == nt.applied(1)
    # learners do not vote and do not count for commit
    nt.isolate(2)
    nt.isolate(3)
    with_learner_only = nt[1].raft.log.committed
    nt[1].propose(b"needs-a-voter")
    nt.stabilize()
    assert nt[1].raft.log.committed == with_learner_only
    nt.recover()
    nt.tick_all(2)
    # a learner never campaigns
    for _ in range(50):
        nt[4].tick()
    assert nt[4].state == StateType.FOLLOWER
    # promote it to a voter
    _apply_conf(nt, 1, ConfChange(CCT.ADD_NODE, 4))
    nt.tick_all(2)
    assert nt[1].status().conf_state == ConfState(voters=(1, 2, 3, 4))
    assert nt[4].status().conf_state == ConfState(voters=(1, 2, 3, 4))
    # remove a voter: the remaining three commit without it
    _apply_conf(nt, 1, ConfChange(CCT.REMOVE_NODE, 2))
    nt.tick_all(2)
    assert nt[1].status().conf_state == ConfState(voters=(1, 3, 4))
    nt.isolate(2)
    nt.propose(1, b"without-2")
    assert nt.data_applied(4)[-1] == b"without-2"


def test_one_conf_change_at_a_time() -> None:
    nt = Network(3)
    nt.campaign(1)
    nt.add_node(4)
    nt.add_node(5)
    nt.isolate(2)
    nt.isolate(3)  # keep the first change from committing
    nt[1].propose_conf_change(ConfChange(CCT.ADD_LEARNER_NODE, 4))
    with pytest.raises(ProposalDroppedError):
        nt[1].propose_conf_change(ConfChange(CCT.ADD_LEARNER_NODE, 5))
    nt[1].propose(b"normal proposals still flow")
    nt.recover()
    nt.tick_all(3)
    assert nt[1].status().conf_state.learners == (4,)
    nt[1].propose_conf_change(ConfChange(CCT.ADD_LEARNER_NODE, 5))  # now accepted
    nt.tick_all(3)
    assert nt[1].status().conf_state.learners == (4, 5)


def test_removed_leader_steps_down_and_others_elect() -> None:
    nt = Network(3, election_tick=5)
    nt.campaign(1)
    _apply_conf(nt, 1, ConfChange(CCT.REMOVE_NODE, 1))
    assert nt[1].state == StateType.FOLLOWER
    nt.isolate(1)
    nt.tick_all(30)
    lead = nt.leader()
    assert lead in (2, 3)
    assert nt[lead].status().conf_state == ConfState(voters=(2, 3))
    nt.propose(lead, b"two-node")
    assert nt.data_applied(2)[-1] == b"two-node" == nt.data_applied(3)[-1]


def test_no_campaign_with_unapplied_conf_change() -> None:
    r = new_raft(1, storage=new_storage([1, 2, 3], [1]))
    from crdb_py.raft import Entry, EntryType, HardState
    from crdb_py.raft.wire import encode_conf_change

    st = r.log.storage
    st.append([Entry(1, 2, EntryType.CONF_CHANGE, encode_conf_change(ConfChange(CCT.ADD_NODE, 4)))])
    st.set_hard_state(HardState(term=1, commit=2))
    r = new_raft(1, storage=st)
    r.step(Message(MT.HUP, frm=1))
    assert r.state == StateType.FOLLOWER
    r.log.applied_to(2)
    r.step(Message(MT.HUP, frm=1))
    assert r.state == StateType.CANDIDATE


# ---- leadership transfer ------------------------------------------------------------


def test_transfer_leader_to_up_to_date_follower() -> None:
    nt = Network(3)
    nt.campaign(1)
    nt.propose(1, b"x")
    nt[1].transfer_leader(2)
    nt.stabilize()
    assert nt.leader() == 2
    assert nt[1].state == StateType.FOLLOWER and nt[1].lead == 2


def test_transfer_leader_to_lagging_follower_catches_it_up_first() -> None:
    nt = Network(3)
    nt.campaign(1)
    nt.isolate(3)
    for i in range(5):
        nt.propose(1, b"v%d" % i)
    nt.recover()
    nt[1].transfer_leader(3)
    assert nt[1].raft.lead_transferee == 3
    with pytest.raises(ProposalDroppedError):
        nt[1].propose(b"during transfer")
    nt.stabilize()
    assert nt.leader() == 3
    assert log_terms(nt[3].raft)[:6] == log_terms(nt[1].raft)[:6]


def test_transfer_leader_aborted_after_election_timeout() -> None:
    nt = Network(3, election_tick=5)
    nt.campaign(1)
    nt.isolate(3)
    nt[1].transfer_leader(3)
    nt.stabilize()
    assert nt[1].raft.lead_transferee == 3
    for _ in range(5):
        nt[1].tick()
    assert nt[1].raft.lead_transferee == 0
    nt.propose(1, b"ok again")


def test_transfer_bypasses_leader_stickiness() -> None:
    """With check-quorum on, followers ignore vote requests while the leader
    is alive — but a transfer's forced campaign is honoured."""
    nt = Network(3, check_quorum=True, pre_vote=True)
    nt.campaign(1)
    nt.tick_all(2)
    nt[1].transfer_leader(2)
    nt.stabilize()
    assert nt.leader() == 2


def test_transfer_via_follower_is_forwarded() -> None:
    nt = Network(3)
    nt.campaign(1)
    nt[3].transfer_leader(2)
    nt.stabilize()
    assert nt.leader() == 2
    fwd = [m for m in nt.delivered if m.type == MT.TRANSFER_LEADER]
    # the forwarded request names its true sender; the transferee rides in `index`
    assert [(m.frm, m.to, m.index) for m in fwd] == [(3, 1, 2)]


def test_transfer_to_learner_or_unknown_is_ignored() -> None:
    nt = Network([1, 2, 3], learners=[4])
    nt.campaign(1)
    for to in (4, 9):
        nt[1].transfer_leader(to)
        assert nt[1].raft.lead_transferee == 0
    nt.stabilize()
    assert nt.leader() == 1


# ---- the leader lease ---------------------------------------------------------------


def test_lease_valid_only_with_recent_quorum_heartbeat_acks() -> None:
    et = 10
    nt = Network(3, election_tick=et, check_quorum=True)
    nt.campaign(1)
    assert not nt[1].leader_lease_valid()  # no heartbeat acked yet
    nt.tick_all(1)
    assert nt[1].leader_lease_valid()
    assert not nt[2].leader_lease_valid()  # followers never hold it
    # partition the leader: the lease runs out before any other node could vote
    nt.isolate(1)
    valid_for = 0
    while nt[1].leader_lease_valid():
        nt[1].tick()
        nt.stabilize()
        valid_for += 1
    assert valid_for == et - 1  # served at ticks s .. s+et-2 of the acked heartbeat
    # lease expiry comes strictly before any follower would grant a vote:
    # the followers still refuse a (forced-free) vote request now
    f = nt[2].raft
    assert f.election_elapsed < f.election_timeout
    # and the leader is still leader (check-quorum is coarser than the lease)
    assert nt[1].is_leader


def test_lease_survives_one_lost_follower() -> None:
    nt = Network(3, check_quorum=True)
    nt.campaign(1)
    nt.isolate(3)
    nt.tick_all(30)
    assert nt[1].is_leader and nt[1].leader_lease_valid()


def test_no_lease_during_transfer_or_without_check_quorum() -> None:
    nt = Network(3, check_quorum=True)
    nt.campaign(1)
    nt.isolate(3)
    nt.tick_all(1)
    assert nt[1].leader_lease_valid()
    nt[1].transfer_leader(3)  # 3 is cut off: the transfer hangs
    assert not nt[1].leader_lease_valid()
    nt2 = Network(3, check_quorum=False)
    nt2.campaign(1)
    nt2.tick_all(2)
    assert not nt2[1].leader_lease_valid()


def test_lease_and_stickiness_agree_no_new_leader_while_valid() -> None:
    """While the old leader's lease is valid no other node can become leader,
    even if all other nodes campaign as early as they can."""
    et = 6
    nt = Network(5, election_tick=et, check_quorum=True, pre_vote=True)
    nt.campaign(1)
    nt.tick_all(1)
    nt.isolate(1)
    for _ in range(4 * et):
        nt[1].tick()
        nt[2].raft.randomized_election_timeout = et  # 2 campaigns at the earliest
        for i in (2, 3, 4, 5):
            nt[i].tick()
        nt.stabilize()
        others = [i for i in (2, 3, 4, 5) if nt[i].is_leader]
        if nt[1].leader_lease_valid():
            assert not others
    assert [i for i in (2, 3, 4, 5) if nt[i].is_leader]


def test_uninitialized_replica_accepts_only_a_snapshot() -> None:
    """A replica without configuration must not build its state from log
    entries (the bootstrap configuration is not in the log: replaying the
    conf changes alone would give it a wrong, e.g. single-voter, config)."""
    from crdb_py.raft import Entry, EntryType, MemoryStorage
    from crdb_py.raft.wire import encode_conf_change
    from tests.raft.harness import new_raft as mk

    r = mk(4, storage=MemoryStorage())
    cc = [Entry(1, 1), Entry(1, 2, EntryType.CONF_CHANGE,
                             encode_conf_change(ConfChange(CCT.ADD_NODE, 4)))]
    r.step(Message(MT.APP, frm=1, to=4, term=1, index=0, log_term=0, entries=cc, commit=2))
    assert r.log.last_index() == 0 and read_msgs(r) == []  # ignored
    r.step(Message(MT.APP, frm=1, to=4, term=1, index=5, log_term=1, commit=5))
    (m,) = read_msgs(r)
    assert m.type == MT.APP_RESP and m.reject and m.reject_hint == 0
    snap = Snapshot(b"", SnapshotMetadata(ConfState((1, 2, 3), (4,)), index=5, term=1))
    r.step(Message(MT.SNAP, frm=1, to=4, term=1, snapshot=snap))
    assert r.log.committed == 5 and r.trk.conf_state() == ConfState((1, 2, 3), (4,))
    read_msgs(r)
    r.step(Message(MT.APP, frm=1, to=4, term=1, index=5, log_term=1, entries=[Entry(1, 6)],
                   commit=6))
    (m,) = read_msgs(r)
    assert not m.reject and m.index == 6


def test_new_node_joins_while_leader_log_uncompacted() -> None:
    """Adding a node before any compaction: it is not fed the log from index
    1; once the leader compacts, it gets a snapshot and joins correctly."""
    nt = Network(3)
    nt.campaign(1)
    nt.add_node(4)
    _apply_conf(nt, 1, ConfChange(CCT.ADD_LEARNER_NODE, 4))
    nt.tick_all(3)
    assert nt[4].raft.log.last_index() == 0
    nt.nodes[1].take_snapshot()
    nt.tick_all(3)
    assert nt[4].status().conf_state == ConfState((1, 2, 3), (4,))
    _apply_conf(nt, 1, ConfChange(CCT.ADD_NODE, 4))
    nt.propose(1, b"x")
    assert nt.data_applied(4)[-1] == b"x"
    assert nt[4].status().conf_state == ConfState((1, 2, 3, 4))


def test_no_lease_for_the_rest_of_the_term_after_timeout_now() -> None:
    nt = Network(3, check_quorum=True, election_tick=5)
    nt.campaign(1)
    nt.ignore(MT.TIMEOUT_NOW)  # the transferee never (yet) gets it
    nt[1].transfer_leader(2)
    nt.stabilize()
    for _ in range(5):
        nt[1].tick()  # the transfer is abandoned after an election timeout
    nt.stabilize()
    assert nt[1].raft.lead_transferee == 0 and nt[1].is_leader
    nt.tick_all(1)
    assert not nt[1].leader_lease_valid()  # a delayed TIMEOUT_NOW may still arrive
    nt2 = Network(3, check_quorum=True, election_tick=5)
    nt2.campaign(1)
    nt2.tick_all(1)
    assert nt2[1].leader_lease_valid()  # the control
