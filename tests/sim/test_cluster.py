"""SimCluster: determinism, replication, crash/restart from durable state,
partitions, snapshots, and the liveness check."""

from __future__ import annotations

import pytest

from crdb_py.raft.types import MessageType, StateType
from crdb_py.sim.cluster import LivenessViolation, SimCluster
from crdb_py.sim.network import FaultConfig

FAULTY = FaultConfig(drop=0.1, duplicate=0.1, reorder=0.2, min_delay=1, max_delay=4)


def elect_any(c: SimCluster, steps: int = 400) -> int:
    assert c.run_until(lambda: c._stable_leader() is not None, steps)
    lead = c.leader()
    assert lead is not None
    return lead


def scripted(seed: int) -> list[tuple]:
    c = SimCluster(5, seed=seed, faults=FAULTY, compact_every=5)
    c.run(100)
    for i in range(30):
        c.propose(b"v%d" % i)
        c.run(3)
    c.crash(2)
    c.partition({1, 3}, {4, 5})
    c.run(150)
    c.restart(2)
    c.heal()
    c.check_liveness()
    return c.trace


def test_same_seed_same_trace_different_seed_different_trace() -> None:
    a, b = scripted(5), scripted(5)
    assert a == b
    assert len(a) > 500
    assert scripted(6) != a


def test_elects_a_leader_and_replicates() -> None:
    c = SimCluster(3, seed=2)
    lead = elect_any(c)
    for i in range(10):
        assert c.propose(b"x%d" % i)
    c.run(10)
    for node in c.nodes.values():
        assert node.sm is not None and node.sm.applied >= 11
        assert node.storage is not None and node.storage.hard_state().commit >= 11
    digests = {nd.sm.digest() for nd in c.nodes.values() if nd.sm is not None}
    assert len(digests) == 1
    assert c.nodes[lead].raw.state == StateType.LEADER  # type: ignore[union-attr]


def test_batched_proposals_share_a_ready() -> None:
    c = SimCluster(3, seed=3)
    lead = elect_any(c)
    c.run(10)  # followers acked the leader's first entry: replicate state
    sent_before = c.net.stats.sent
    assert c.propose(b"single")
    assert c.net.stats.sent - sent_before == 2
    sent_before = c.net.stats.sent
    assert c.propose_many([b"b%d" % i for i in range(50)]) == 50
    # one Ready: one append per follower, not fifty
    assert c.net.stats.sent - sent_before == 2
    c.run(10)
    assert all(c._applied(i, b"b49") for i in c.nodes)
    assert lead == c.leader()


def test_restart_recovers_persisted_state_and_catches_up() -> None:
    c = SimCluster(3, seed=4)
    elect_any(c)
    for i in range(5):
        c.propose(b"a%d" % i)
    c.run(10)
    victim = next(i for i in c.nodes if i != c.leader())
    st = c.nodes[victim].storage
    assert st is not None
    before = (st.hard_state(), st.last_index(), st.term(st.last_index()))
    c.crash(victim)
    assert c.nodes[victim].raw is None and c.nodes[victim].storage is None
    for i in range(5):
        c.propose(b"b%d" % i)
    c.run(10)
    c.restart(victim)
    st2 = c.nodes[victim].storage
    assert st2 is not None
    # reopened from the engine: exactly what was persisted before the crash
    assert (st2.hard_state().term, st2.hard_state().vote) == (before[0].term, before[0].vote)
    assert st2.hard_state().commit >= before[0].commit
    c.run(20)
    assert c._applied(victim, b"b4")
    assert c.nodes[victim].restarts == 1


def test_lagging_follower_catches_up_by_snapshot() -> None:
    c = SimCluster(3, seed=5, compact_every=4)
    elect_any(c)
    victim = next(i for i in c.nodes if i != c.leader())
    c.crash(victim)
    for i in range(40):
        c.propose(b"s%d" % i)
        c.run(2)
    lead = c.leader()
    assert lead is not None
    lst = c.nodes[lead].storage
    assert lst is not None and lst.first_index() > 10  # the leader compacted
    c.restart(victim)
    c.run(60)
    assert c.delivered_by_type.get(MessageType.SNAP, 0) >= 1
    assert c._applied(victim, b"s39")
    c.check_logs()


def test_minority_side_of_a_partition_cannot_commit() -> None:
    c = SimCluster(5, seed=6)
    lead = elect_any(c)
    others = [i for i in c.nodes if i != lead]
    minority = {lead, others[0]}
    majority = set(others[1:])
    c.partition(minority, majority)
    c.propose(b"lost?", lead)
    c.run(200)
    assert b"lost?" not in c.applied_at or all(
        c.nodes[i].sm.applied < c.applied_at[b"lost?"][1]  # type: ignore[union-attr]
        for i in majority
    )
    new = c.leader()
    assert new in majority  # the majority elected its own leader
    assert c.propose(b"won", new)
    c.run(20)
    assert all(c._applied(i, b"won") for i in majority)
    c.heal()
    c.check_liveness()
    assert all(c._applied(i, b"won") for i in c.nodes)


def test_one_way_partition_and_recovery() -> None:
    c = SimCluster(3, seed=7)
    lead = elect_any(c)
    for other in c.nodes:
        if other != lead:
            c.cut_one_way(lead, other)  # the leader can hear but not speak
    c.run(300)
    c.heal()
    c.check_liveness()


def test_liveness_check_fails_without_a_majority() -> None:
    c = SimCluster(3, seed=8)
    elect_any(c)
    c.crash(1)
    c.crash(2)
    with pytest.raises(LivenessViolation):
        c.check_liveness(max_ticks=50)


def test_liveness_check_fails_when_messages_never_arrive() -> None:
    c = SimCluster(3, seed=9, faults=FaultConfig(drop=1.0))
    with pytest.raises(LivenessViolation):
        c.check_liveness(max_ticks=50)


def test_membership_change_learner_promote_remove_and_restart() -> None:
    from crdb_py.raft.types import ConfChange, ConfChangeType

    c = SimCluster(3, seed=10)
    lead = elect_any(c)
    for i in range(5):
        c.propose(b"m%d" % i)
    c.run(10)
    assert c.add_learner(4)  # initialized by a snapshot that includes it
    assert c._applied(4, b"m4")
    cs4 = c.nodes[4].storage.conf_state()  # type: ignore[union-attr]
    assert (set(cs4.voters), cs4.learners) == ({1, 2, 3}, (4,))
    assert c.delivered_by_type.get(MessageType.SNAP, 0) >= 1  # initialized by a snapshot
    assert c.propose_conf_change(ConfChange(ConfChangeType.ADD_NODE, 4))
    c.run(40)
    for i in c.nodes:
        assert set(c.nodes[i].storage.conf_state().voters) == {1, 2, 3, 4}  # type: ignore[union-attr]
    victim = next(i for i in (1, 2, 3) if i != lead)
    assert c.propose_conf_change(ConfChange(ConfChangeType.REMOVE_NODE, victim))
    c.run(40)
    assert set(c.nodes[4].storage.conf_state().voters) == {1, 2, 3, 4} - {victim}  # type: ignore[union-attr]
    c.crash(victim)
    # node 4 restarts from its durable conf state and still votes
    c.crash(4)
    c.restart(4)
    assert set(c.nodes[4].raw.status().conf_state.voters) == {1, 2, 3, 4} - {victim}  # type: ignore[union-attr]
    assert c.propose(b"after")
    c.run(40)
    assert c._applied(4, b"after")
    c.check_logs()


def test_cluster_on_rocksdb_crash_closes_and_restart_reopens(tmp_path) -> None:
    from crdb_py.storage.rocks import RocksEngine

    def path(i: int) -> str:
        return str(tmp_path / f"n{i}")

    c = SimCluster(
        3,
        seed=12,
        compact_every=5,
        faults=FaultConfig(drop=0.05, max_delay=3),
        engine_factory=lambda i: RocksEngine(path(i)),
        engine_reopen=lambda i, old: RocksEngine(path(i)),
    )
    try:
        elect_any(c)
        for i in range(20):
            c.propose(b"r%d" % i)
            c.run(2)
        victim = next(i for i in c.nodes if i != c.leader())
        before = c.nodes[victim].storage.hard_state()  # type: ignore[union-attr]
        old_engine = c.nodes[victim].engine
        c.crash(victim)
        for i in range(20, 40):
            c.propose(b"r%d" % i)
            c.run(2)
        c.restart(victim)
        assert c.nodes[victim].engine is not old_engine  # really reopened from disk
        after = c.nodes[victim].storage.hard_state()  # type: ignore[union-attr]
        assert (after.term, after.vote) == (before.term, before.vote)
        assert after.commit >= before.commit
        c.heal()
        c.check_liveness()
        assert all(c._applied(i, b"r39") or b"r39" not in c.applied_at for i in c.nodes)
        c.check_logs()
    finally:
        c.close()
