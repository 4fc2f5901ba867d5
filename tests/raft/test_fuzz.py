"""Randomized runs of the core with everything at once: message loss,
duplication and reordering, partitions, crashes and restarts, compaction
and snapshots, membership changes (learners added, promoted, voters removed)
and leadership transfers. The §5 safety properties are checked after every
step; after healing, a leader must emerge and all members must converge.

A small number of seeds run by default; `-m slow` runs many more."""

from __future__ import annotations

import random

import pytest

from crdb_py.raft import (
    ConfChange,
    ConfChangeType,
    ConfState,
    Message,
    MessageType,
    ProposalDroppedError,
    StateType,
)
from tests.raft.harness import Node, SafetyChecker

MT = MessageType
CCT = ConfChangeType


class FuzzCluster:
    def __init__(self, seed: int, n: int = 3, spare: int = 2) -> None:
        self.rng = random.Random(seed)
        cfg = dict(election_tick=5, pre_vote=self.rng.random() < 0.7,
                   check_quorum=self.rng.random() < 0.7,
                   max_inflight_msgs=self.rng.choice([1, 4, 256]),
                   max_size_per_msg=self.rng.choice([0, 64, 1 << 20]))
        voters = tuple(range(1, n + 1))
        from crdb_py.raft import MemoryStorage

        self.nodes: dict[int, Node] = {}
        for id in range(1, n + spare + 1):
            cs = ConfState(voters) if id <= n else ConfState()
            node = Node(id, MemoryStorage(cs), seed=seed, **cfg)
            node.on_apply = self._on_apply
            self.nodes[id] = node
        self.pool: list[Message] = []
        self.drop = 0.0
        self.dup = 0.0
        self.cut: set[tuple[int, int]] = set()
        self.down: set[int] = set()
        self.checker = SafetyChecker()
        self.stats = {"snapshots_sent": 0, "conf_changes": 0, "restarts": 0, "transfers": 0}

    def _on_apply(self, node: Node, index: int) -> None:
        # produce a fresh snapshot after each configuration change, so a
        # snapshot always describes a configuration that contains its receiver
        if node.applied and node.applied[-1][0] == index:
            e = node.rn.raft.log.slice(index, index + 1)[0]
            if e.type == 1:
                # compact too: a new member is initialized by a snapshot
                node.storage.create_snapshot(index, node.rn.raft.trk.conf_state(),
                                             _encode(node.applied))
                node.storage.compact(index)
                self.stats["conf_changes"] += 1

    def leader(self) -> int | None:
        ls = [i for i, n in self.nodes.items() if n.rn.is_leader and i not in self.down]
        return max(ls, key=lambda i: self.nodes[i].rn.term) if ls else None

    def members(self) -> set[int]:
        lead = self.leader()
        ref = self.nodes[lead] if lead else self.nodes[1]
        cs = ref.rn.raft.trk.conf_state()
        return set(cs.voters) | set(cs.learners)

    def process(self) -> None:
        for id, n in self.nodes.items():
            if id not in self.down:
                self.pool.extend(n.handle_ready())

    def deliver(self, k: int) -> None:
        for _ in range(min(k, len(self.pool))):
            m = self.pool.pop(self.rng.randrange(len(self.pool)))
            lost = (m.frm, m.to) in self.cut or m.to in self.down or self.rng.random() < self.drop
            if m.type == MT.SNAP:
                sender = self.nodes[m.frm]
                if m.frm not in self.down:
                    sender.rn.report_snapshot(m.to, not lost)
                self.stats["snapshots_sent"] += not lost
            if lost:
                continue
            if self.rng.random() < self.dup:
                self.pool.append(m)
            self.nodes[m.to].rn.step(m)
            self.process()

    def step(self) -> None:
        rng = self.rng
        r = rng.random()
        live = [i for i in self.nodes if i not in self.down]
        lead = self.leader()
        if r < 0.03:
            self.drop = rng.choice([0.0, 0.1, 0.3])
            self.dup = rng.choice([0.0, 0.1])
        elif r < 0.06:
            a, b = rng.sample(sorted(self.nodes), 2)
            self.cut |= {(a, b), (b, a)}
        elif r < 0.09:
            self.cut.clear()
        elif r < 0.12 and len(self.down) < 1:
            victim = rng.choice(live)
            self.down.add(victim)
        elif r < 0.16 and self.down:
            id = self.down.pop()
            self.nodes[id].restart()
            self.nodes[id].rn.raft.msgs.clear()
            self.stats["restarts"] += 1
        elif r < 0.20:
            n = self.nodes[rng.choice(live)]
            applied = n.rn.raft.log.applied
            if applied > n.storage.first_index() and n.applied:
                idx = n.applied[-1][0]
                if idx == applied and idx > n.storage.snapshot().metadata.index:
                    n.storage.create_snapshot(idx, n.rn.raft.trk.conf_state(), _encode(n.applied))
                    n.storage.compact(idx)
        elif r < 0.25 and lead is not None:
            self._conf_change(lead)
        elif r < 0.27 and lead is not None:
            st = self.nodes[lead].rn.raft.trk
            to = rng.choice(sorted(st.voters))
            self.nodes[lead].rn.transfer_leader(to)
            self.stats["transfers"] += 1
        elif r < 0.60 and lead is not None:
            try:
                self.nodes[lead].rn.propose(b"p%d" % rng.randrange(1 << 30))
            except ProposalDroppedError:
                pass
        for id in live:
            if id not in self.down:
                self.nodes[id].rn.tick()
        self.process()
        self.deliver(rng.randrange(1, 3 * len(self.nodes) + 2))
        self.checker.check(self.nodes)

    def _conf_change(self, lead: int) -> None:
        rn = self.nodes[lead].rn
        trk = rn.raft.trk
        outside = [i for i in self.nodes if i not in trk.progress]
        choices: list[ConfChange] = []
        if outside:
            choices.append(ConfChange(CCT.ADD_LEARNER_NODE, self.rng.choice(outside)))
        if trk.learners:
            choices.append(ConfChange(CCT.ADD_NODE, self.rng.choice(sorted(trk.learners))))
        if len(trk.voters) > 3:
            choices.append(ConfChange(CCT.REMOVE_NODE, self.rng.choice(sorted(trk.voters))))
        if not choices:
            return
        try:
            rn.propose_conf_change(self.rng.choice(choices))
        except ProposalDroppedError:
            pass

    def heal_and_converge(self, max_ticks: int = 400) -> None:
        self.drop = self.dup = 0.0
        self.cut.clear()
        for id in list(self.down):
            self.down.discard(id)
            self.nodes[id].restart()
        proposed = False
        for _ in range(max_ticks):
            for n in self.nodes.values():
                n.rn.tick()
            self.process()
            while self.pool:
                self.deliver(len(self.pool))
            self.checker.check(self.nodes)
            lead = self.leader()
            if lead is None:
                continue
            if not proposed:
                try:
                    self.nodes[lead].rn.propose(b"final")
                    proposed = True
                except ProposalDroppedError:
                    continue
            members = self.members()
            logs = [self.nodes[i].applied for i in members]
            if all(any(d == b"final" for _, _, d in log) for log in logs):
                ref = self.nodes[lead].applied
                assert all(log[-1] == ref[-1] for log in logs)
                return
        raise AssertionError(f"no convergence: leader={self.leader()} "
                             f"states={[(i, n.rn.state.name, n.rn.term) for i, n in self.nodes.items()]}")


def _encode(applied: list[tuple[int, int, bytes]]) -> bytes:
    from tests.raft.harness import encode_applied

    return encode_applied(applied)


def run_fuzz(seed: int, steps: int = 250) -> FuzzCluster:
    c = FuzzCluster(seed, n=3 if seed % 2 == 0 else 5)
    for _ in range(steps):
        c.step()
    c.heal_and_converge()
    return c


@pytest.mark.parametrize("seed", range(8))
def test_fuzz(seed: int) -> None:
    c = run_fuzz(seed)
    assert any(n.rn.state == StateType.LEADER for n in c.nodes.values())


def test_fuzz_exercises_the_features() -> None:
    totals: dict[str, int] = {}
    for seed in range(8):
        for k, v in run_fuzz(seed).stats.items():
            totals[k] = totals.get(k, 0) + v
    assert all(v > 0 for v in totals.values()), totals


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(8, 400))
def test_fuzz_many_seeds(seed: int) -> None:
    run_fuzz(seed, steps=400)
