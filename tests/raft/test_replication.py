"""Replication flow control (probe / replicate, in-flight bound) and fast
backtracking over log conflicts."""

from __future__ import annotations

from crdb_py.raft import Entry, HardState, Message, MessageType, ProgressState
from tests.raft.harness import Network, log_terms, new_raft, new_storage, read_msgs

MT = MessageType


def _leader(n: int = 3, **kw: object):  # type: ignore[no-untyped-def]
    r = new_raft(1, range(1, n + 1), **kw)
    r.become_candidate()
    r.become_leader()
    read_msgs(r)
    return r


def _prop(r, data: bytes = b"x") -> None:  # type: ignore[no-untyped-def]
    r.step(Message(MT.PROP, frm=r.id, entries=[Entry(0, 0, data=data)]))


def test_probe_sends_one_append_at_a_time() -> None:
    r = _leader()
    pr = r.trk.progress[2]
    assert pr.state == ProgressState.PROBE
    for _ in range(3):
        _prop(r)
    to2 = [m for m in read_msgs(r) if m.to == 2 and m.type == MT.APP]
    assert len(to2) == 1  # one probe in flight; later proposals wait
    assert pr.is_paused()
    # a heartbeat response unpauses and triggers the next probe
    r.step(Message(MT.HEARTBEAT_RESP, frm=2, to=1, term=r.term))
    assert [m.type for m in read_msgs(r) if m.to == 2] == [MT.APP]


def test_replicate_streams_bounded_by_inflight() -> None:
    r = _leader(max_inflight_msgs=3)
    _prop(r)
    read_msgs(r)
    r.step(Message(MT.APP_RESP, frm=2, to=1, term=r.term, index=2))
    pr = r.trk.progress[2]
    assert pr.state == ProgressState.REPLICATE
    read_msgs(r)
    for i in range(10):
        _prop(r, b"%d" % i)
    to2 = [m for m in read_msgs(r) if m.to == 2 and m.type == MT.APP]
    assert len(to2) == 3  # optimistic, but bounded by max_inflight_msgs
    assert pr.inflights.full() and pr.is_paused()
    assert pr.next == to2[-1].index + len(to2[-1].entries) + 1
    # acks free slots and the remaining entries flow in one batch
    r.step(Message(MT.APP_RESP, frm=2, to=1, term=r.term,
                   index=to2[-1].index + len(to2[-1].entries)))
    more = [m for m in read_msgs(r) if m.to == 2 and m.type == MT.APP and m.entries]
    assert more and more[0].index == to2[-1].index + len(to2[-1].entries)
    assert sum(len(m.entries) for m in more) == 10 - 3  # the rest


def test_max_size_per_msg_splits_appends() -> None:
    r = _leader(max_size_per_msg=100)
    _prop(r)
    r.step(Message(MT.APP_RESP, frm=2, to=1, term=r.term, index=1))
    read_msgs(r)
    for _i in range(10):
        _prop(r, b"y" * 40)
    to2 = [m for m in read_msgs(r) if m.to == 2 and m.type == MT.APP and m.entries]
    assert len(to2) == 10  # 56 bytes each with the header: one per message


def test_reject_moves_replicate_back_to_probe() -> None:
    r = _leader()
    _prop(r)
    r.step(Message(MT.APP_RESP, frm=2, to=1, term=r.term, index=2))
    pr = r.trk.progress[2]
    assert pr.state == ProgressState.REPLICATE
    _prop(r)
    read_msgs(r)
    r.step(Message(MT.APP_RESP, frm=2, to=1, term=r.term, index=3, reject=True, reject_hint=2))
    assert pr.state == ProgressState.PROBE
    assert pr.next == 3


def test_unreachable_moves_replicate_to_probe() -> None:
    r = _leader()
    _prop(r)
    r.step(Message(MT.APP_RESP, frm=2, to=1, term=r.term, index=2))
    assert r.trk.progress[2].state == ProgressState.REPLICATE
    r.step(Message(MT.UNREACHABLE, frm=2))
    assert r.trk.progress[2].state == ProgressState.PROBE


def test_stale_rejection_is_ignored() -> None:
    r = _leader()
    _prop(r)
    r.step(Message(MT.APP_RESP, frm=2, to=1, term=r.term, index=2))
    pr = r.trk.progress[2]
    nxt = pr.next
    r.step(Message(MT.APP_RESP, frm=2, to=1, term=r.term, index=1, reject=True, reject_hint=0))
    assert pr.state == ProgressState.REPLICATE and pr.next == nxt


def test_fast_backtracking_skips_a_whole_term_per_round_trip() -> None:
    """A follower with a long divergent tail of an old term: the leader needs
    a number of probes on the order of the number of distinct terms, not of
    entries."""
    leader_terms = [1] + [2] * 5 + [4] * 50
    follower_terms = [1] + [2] * 5 + [3] * 50
    lst = new_storage([1, 2, 3], leader_terms)
    lst.set_hard_state(HardState(term=4, commit=6))
    fst = new_storage([1, 2, 3], follower_terms)
    fst.set_hard_state(HardState(term=4, commit=6))
    nt = Network(3)
    from tests.raft.harness import Node

    nt.nodes[1] = Node(1, lst)
    nt.nodes[2] = Node(2, fst)
    nt.nodes[3] = Node(3, new_storage([1, 2, 3], leader_terms))
    nt.campaign(1)
    assert nt[1].is_leader
    rejects = [m for m in nt.delivered if m.type == MT.APP_RESP and m.frm == 2 and m.reject]
    assert 1 <= len(rejects) <= 3
    assert log_terms(nt[2].raft) == log_terms(nt[1].raft)


def test_follower_rejection_hint() -> None:
    """The follower's hint: the largest index <= the probed index whose term
    is <= the probe's log term (etcd's findConflictByTerm)."""
    r = new_raft(2, storage=new_storage([1, 2, 3], [1, 2, 2, 5, 5, 5]))
    r.become_follower(6, 1)
    r.step(Message(MT.APP, frm=1, to=2, term=6, index=6, log_term=4))
    (m,) = read_msgs(r)
    assert m.reject and (m.reject_hint, m.log_term) == (3, 2)
    r.step(Message(MT.APP, frm=1, to=2, term=6, index=10, log_term=6))
    (m,) = read_msgs(r)
    assert m.reject and (m.reject_hint, m.log_term) == (6, 5)


def test_lost_messages_are_retried_via_heartbeats() -> None:
    nt = Network(3)
    nt.campaign(1)
    nt.drop(1, 3)
    nt.propose(1, b"a")
    nt.propose(1, b"b")
    assert nt.data_applied(3) == []
    nt.recover()
    nt.tick_all(3)
    assert nt.data_applied(3) == [b"a", b"b"]


def test_duplicate_and_reordered_appends_are_harmless() -> None:
    nt = Network(3)
    nt.campaign(1)
    app: list[Message] = []

    def capture(m: Message) -> bool:
        if m.type == MT.APP and m.to == 2 and m.entries:
            app.append(m)
        return True

    nt.msg_hook = capture
    for i in range(3):
        nt.propose(1, b"%d" % i)
    nt.msg_hook = None
    for m in reversed(app * 2):
        nt.send(m)
    assert nt.data_applied(2) == [b"0", b"1", b"2"]
    assert log_terms(nt[2].raft) == log_terms(nt[1].raft)
