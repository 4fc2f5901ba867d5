"""The RawNode interface: the Ready contract, restart from storage,
proposals, the package's purity (no I/O imports), and the wire form."""

from __future__ import annotations

import ast
import dataclasses
import pathlib
import random

import pytest

import crdb_py.raft
from crdb_py.raft import (
    ConfChange,
    ConfChangeType,
    Config,
    ConfState,
    Entry,
    EntryType,
    HardState,
    MemoryStorage,
    Message,
    MessageType,
    ProposalDroppedError,
    RawNode,
    Ready,
    Snapshot,
    SnapshotMetadata,
    StateType,
)
from crdb_py.raft.wire import (
    decode_conf_change,
    encode_conf_change,
    entry_from_proto,
    entry_to_proto,
    hard_state_from_proto,
    hard_state_to_proto,
    message_from_bytes,
    message_from_proto,
    message_to_bytes,
    message_to_proto,
    snapshot_from_proto,
    snapshot_to_proto,
)
from crdb_py.util.errors import InvalidArgumentError
from tests.raft.harness import Network

MT = MessageType


# ---- the Ready contract ---------------------------------------------------------


class ContractViolation(AssertionError):
    pass


def check_ready_contract(readies: list[Ready]) -> None:
    """Replay one node's Readies, persisting as the contract says, and check
    that every message that vouches for durable state is released only with
    (or after) that state: a granted vote only once a hard state with that
    vote and term was handed out; an append ack for index i only once the
    entry at i was handed out (or covered by a snapshot)."""
    hs = HardState()
    log: dict[int, int] = {}
    snap_index = 0
    for rd in readies:
        if rd.snapshot is not None and not rd.snapshot.is_empty():
            snap_index = rd.snapshot.metadata.index
            log = {}
        if rd.entries:
            first = rd.entries[0].index
            log = {i: t for i, t in log.items() if i < first}
            log.update((e.index, e.term) for e in rd.entries)
        if rd.hard_state is not None:
            hs = rd.hard_state
        for m in rd.messages:
            if m.type == MT.VOTE_RESP and not m.reject:
                if not (hs.term == m.term and hs.vote == m.to):
                    raise ContractViolation(
                        f"vote for {m.to} in term {m.term} released before it was persisted "
                        f"(persisted {hs})"
                    )
            if m.type == MT.APP_RESP and not m.reject and m.index > snap_index:
                if m.index not in log:
                    raise ContractViolation(f"append ack {m.index} released before persisting it")


def _run_elections(seed: int) -> Network:
    nt = Network(3, seed=seed, election_tick=5)
    rng = random.Random(seed)
    for step in range(200):
        for n in nt.nodes.values():
            n.rn.tick()
        if rng.random() < 0.1:
            nt.isolate(rng.randint(1, 3))
        elif rng.random() < 0.2:
            nt.recover()
        lead = nt.leader()
        if lead is not None and rng.random() < 0.5:
            try:
                nt[lead].propose(b"x%d" % step)
            except ProposalDroppedError:
                pass
        nt.stabilize()
    return nt


@pytest.mark.parametrize("seed", range(3))
def test_messages_depending_on_durable_state_come_with_it(seed: int) -> None:
    nt = _run_elections(seed)
    votes = 0
    for n in nt.nodes.values():
        check_ready_contract(n.readies)
        votes += sum(
            1 for rd in n.readies for m in rd.messages if m.type == MT.VOTE_RESP and not m.reject
        )
    assert votes > 0  # the run exercised elections


def test_contract_checker_catches_an_early_vote() -> None:
    """The checker above is not vacuous: a RawNode that hands out messages one
    Ready before the hard state they depend on is caught."""

    class EarlyMessages(RawNode):
        __slots__ = ("_held",)

        def ready(self) -> Ready:
            rd = super().ready()
            held = getattr(self, "_held", None)
            if rd.hard_state is not None:
                # withhold the new hard state until the next Ready
                self._held, rd.hard_state = rd.hard_state, held
            elif held is not None:
                self._held, rd.hard_state = None, held
            return rd

    st = MemoryStorage(ConfState(voters=(1, 2, 3)))
    rn = EarlyMessages(Config(2, rng=random.Random(1), pre_vote=False), st)
    rn._held = None
    rn.step(Message(MT.VOTE, frm=1, to=2, term=1, index=0, log_term=0))
    rd = rn.ready()
    assert any(m.type == MT.VOTE_RESP and not m.reject for m in rd.messages)
    with pytest.raises(ContractViolation):
        check_ready_contract([rd])
    # and the real node passes on the same input
    st2 = MemoryStorage(ConfState(voters=(1, 2, 3)))
    good = RawNode(Config(2, rng=random.Random(1), pre_vote=False), st2)
    good.step(Message(MT.VOTE, frm=1, to=2, term=1, index=0, log_term=0))
    check_ready_contract([good.ready()])


def test_ready_is_handed_out_once_and_advance_acknowledges() -> None:
    st = MemoryStorage(ConfState(voters=(1,)))
    rn = RawNode(Config(1, rng=random.Random(0)), st)
    rn.campaign()
    rd = rn.ready()
    assert rd.soft_state is not None and rd.soft_state.state == StateType.LEADER
    assert rd.hard_state == HardState(term=1, vote=1, commit=1)
    assert [(e.term, e.index) for e in rd.entries] == [(1, 1)]
    assert [e.index for e in rd.committed_entries] == [1]
    assert rd.must_sync
    assert not rn.has_ready()  # handed out: not offered twice
    st.append(rd.entries)
    st.set_hard_state(rd.hard_state)
    rn.advance(rd)
    assert rn.basic_status().applied == 1
    rn.propose(b"a")
    rn.propose(b"b")
    assert rn.has_ready()
    rd = rn.ready()
    assert [e.data for e in rd.entries] == [b"a", b"b"]
    assert [e.data for e in rd.committed_entries] == [b"a", b"b"]
    # a second Ready before advance: nothing new to offer
    assert not rn.has_ready()
    st.append(rd.entries)
    st.set_hard_state(rd.hard_state)
    rn.advance(rd)
    assert rn.raft.log.unstable.entries == []  # stable now: read from storage
    assert [e.data for e in rn.raft.log.entries(2)] == [b"a", b"b"]


def test_restart_recovers_persisted_state() -> None:
    nt = Network(3)
    nt.campaign(1)
    for i in range(5):
        nt.propose(1, b"v%d" % i)
    n2 = nt.nodes[2]
    before = n2.rn.basic_status()
    log_before = [(e.index, e.term, e.data) for e in n2.rn.raft.log.all_entries()]
    n2.restart()
    after = n2.rn.basic_status()
    assert (after.term, after.vote, after.commit) == (before.term, before.vote, before.commit)
    assert after.applied == before.applied
    assert after.state == StateType.FOLLOWER
    assert [(e.index, e.term, e.data) for e in n2.rn.raft.log.all_entries()] == log_before
    assert not n2.rn.raft.log.has_next_committed_ents()  # nothing re-applied
    nt.propose(1, b"after")
    assert nt.data_applied(2)[-1] == b"after"


def test_propose_on_follower_or_without_leader_is_dropped() -> None:
    nt = Network(3)
    with pytest.raises(ProposalDroppedError):
        nt[1].propose(b"x")
    nt.campaign(1)
    with pytest.raises(ProposalDroppedError) as ei:
        nt[2].propose(b"x")
    assert ei.value.lead == 1
    assert ei.value.retryable


def test_step_ignores_local_messages_and_unknown_responders() -> None:
    nt = Network(3)
    nt.campaign(1)
    rn = nt[1]
    rn.step(Message(MT.HUP, frm=1))
    rn.step(Message(MT.CHECK_QUORUM, frm=1))
    rn.step(Message(MT.APP_RESP, frm=9, to=1, term=rn.term, index=100))
    assert rn.is_leader
    assert not rn.raft.msgs


def test_config_validation() -> None:
    st = MemoryStorage(ConfState(voters=(1,)))
    with pytest.raises(InvalidArgumentError):
        RawNode(Config(0, rng=random.Random(0)), st)
    with pytest.raises(InvalidArgumentError):
        RawNode(Config(1, rng=random.Random(0), election_tick=1, heartbeat_tick=1), st)


def test_same_seed_same_behaviour() -> None:
    def trace(seed: int) -> list[tuple[int, int, int]]:
        nt = Network(5, seed=seed, election_tick=5)
        out = []
        for _ in range(40):
            nt.tick_all()
            out.append(tuple(nt[i].term for i in nt.nodes) + (nt.leader() or 0,))
        return out

    assert trace(3) == trace(3)
    assert trace(3) != trace(4)


# ---- purity: no I/O, clocks, global randomness -----------------------------------

FORBIDDEN = {"asyncio", "time", "random", "threading", "grpc", "rocksdict", "socket",
             "crdb_py.storage", "crdb_py.kvserver", "crdb_py.rpc"}


def _imports(tree: ast.AST) -> set[str]:
    mods = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            mods.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            mods.add(node.module)
    return mods


def _forbidden(mods: set[str]) -> set[str]:
    return {m for m in mods for f in FORBIDDEN if m == f or m.startswith(f + ".")}


def test_raft_package_imports_no_io() -> None:
    pkg = pathlib.Path(crdb_py.raft.__file__).parent
    files = sorted(pkg.glob("*.py"))
    assert len(files) >= 8
    bad = {f.name: _forbidden(_imports(ast.parse(f.read_text()))) for f in files}
    assert {k: v for k, v in bad.items() if v} == {}
    # the scan itself detects forbidden imports
    assert _forbidden(_imports(ast.parse("import time\nfrom asyncio import sleep\n"
                                         "from crdb_py.storage.engine import Engine"))) == {
        "time", "asyncio", "crdb_py.storage.engine"}


# ---- wire form ---------------------------------------------------------------------


def test_wire_round_trip() -> None:
    snap = Snapshot(
        data=b"state",
        metadata=SnapshotMetadata(conf_state=ConfState(voters=(1, 2), learners=(3,)), index=7,
                                  term=2),
    )
    msgs = [
        Message(MT.APP, to=2, frm=1, term=3, log_term=2, index=5, commit=4,
                entries=[Entry(3, 6, EntryType.NORMAL, b"a"), Entry(3, 7, EntryType.CONF_CHANGE,
                                                                    b"\x00\x01")]),
        Message(MT.APP_RESP, to=1, frm=2, term=3, index=5, reject=True, reject_hint=4, log_term=2),
        Message(MT.SNAP, to=3, frm=1, term=3, snapshot=snap),
        Message(MT.HEARTBEAT, to=2, frm=1, term=3, commit=9, context=b"\x00" * 8),
        Message(MT.PRE_VOTE, to=2, frm=1, term=4, index=9, log_term=3, context=b"transfer"),
    ]
    for m in msgs:
        assert message_from_proto(message_to_proto(m)) == m
        assert message_from_bytes(message_to_bytes(m)) == m
    e = Entry(4, 9, EntryType.CONF_CHANGE, b"zz")
    assert entry_from_proto(entry_to_proto(e)) == e
    hs = HardState(5, 2, 11)
    assert hard_state_from_proto(hard_state_to_proto(hs)) == hs
    assert snapshot_from_proto(snapshot_to_proto(snap)) == snap
    for t in ConfChangeType:
        cc = ConfChange(t, 7, b"ctx")
        assert decode_conf_change(encode_conf_change(cc)) == cc
    # every field survives: a changed field changes the round-tripped message
    for f in dataclasses.fields(Message):
        if f.name in ("type", "entries", "snapshot"):
            continue
        m = Message(MT.APP)
        v = getattr(m, f.name)
        setattr(m, f.name, (v + 1) if isinstance(v, int) and not isinstance(v, bool)
                else (not v) if isinstance(v, bool) else b"x")
        assert message_from_bytes(message_to_bytes(m)) != Message(MT.APP), f.name


def test_propose_batch_travels_in_one_append() -> None:
    nt = Network(3)
    nt.campaign(1)
    nt.tick_all(1)
    start = len(nt.delivered)
    nt[1].propose_batch([b"a", b"b", b"c"])
    nt.stabilize()
    apps = [m for m in nt.delivered[start:] if m.type == MT.APP and m.entries]
    assert sorted(m.to for m in apps) == [2, 3]
    assert all([e.data for e in m.entries] == [b"a", b"b", b"c"] for m in apps)
    assert nt.data_applied(3) == [b"a", b"b", b"c"]
    nt[1].propose_batch([])  # nothing to do
    with pytest.raises(ProposalDroppedError):
        nt[2].propose_batch([b"x"])
