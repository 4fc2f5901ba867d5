"""A deterministic in-process raft cluster on a fake clock and a faulty network.

`SimCluster(n, seed)` runs `n` raft nodes (one group) in one thread. One
`random.Random(seed)` drives everything — the network's faults, each node's
election jitter (each `RawNode` gets its own `Random` seeded from it) — so a
seed is a reproducible bug report: `trace` records every delivery, leader and
application, and two runs with the same seed and schedule produce identical
traces.

Time. The clock counts units; every `ticks_every` units each live node gets
one raft `tick()`. Messages take ``FaultConfig.min_delay..max_delay`` units
(plus reordering), so several round trips fit in one election timeout.

One `step()`:
  1. advance the clock one unit; on a tick boundary tick every live node;
  2. deliver every message now due, one at a time, in (due, seq) order;
  3. after *every* input to a node (tick, message, proposal) drain its
     `Ready`s, following the Ready contract exactly: persist hard state,
     entries and snapshot in one synced engine batch (`DurableStorage.save`);
     then send the messages; then apply the committed entries; then
     `advance`. Draining after every input means no state the core passes
     through (a leadership that lasts one message) escapes the checkers;
  4. run the checkers' `after_step`.

Durability and crashes. Each node's raft state lives in a `DurableStorage`
over its own `MemEngine`, which survives `crash(i)`; the `RawNode`, the state
machine and everything not yet written are dropped. `restart(i)` rebuilds
from the engine: the state machine is restored from the stored snapshot and
re-applies the committed log above it. Nodes compact their logs (snapshot +
truncate) every `compact_every` applied entries, so lagging and restarted
followers exercise snapshot transfer. The engine is pluggable: with an
on-disk engine (`engine_factory` / `engine_reopen`) a crash closes it and a
restart reopens it from disk.

Membership. `add_learner` / `add_voter` start an unconfigured node that only
a snapshot can initialize (the bootstrap configuration is not in the log):
every node snapshots and truncates when it applies a configuration change,
so what the leader offers includes the newcomer. `remove_voter` stops the
removed replica for good once every live node has applied its removal.

The checkers (`crdb_py/sim/checkers.py`) see every leader, every durable
write and every application as it happens.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from crdb_py.raft.durable import DurableStorage
from crdb_py.raft.errors import ProposalDroppedError
from crdb_py.raft.rawnode import Config, RawNode
from crdb_py.raft.types import (
    ConfChange,
    ConfChangeType,
    ConfState,
    Entry,
    EntryType,
    Message,
    MessageType,
    Ready,
    StateType,
)
from crdb_py.raft.wire import decode_conf_change
from crdb_py.sim.checkers import Checker, InvariantViolation, all_checkers
from crdb_py.sim.clock import FakeClock
from crdb_py.sim.network import Envelope, FaultConfig, SimNetwork
from crdb_py.sim.statemachine import HashChainStateMachine, StateMachine
from crdb_py.storage.mem import MemEngine

__all__ = ["LivenessViolation", "SimCluster", "SimNode"]

RANGE_ID = 1


class LivenessViolation(InvariantViolation):
    def __init__(self, msg: str) -> None:
        super().__init__("liveness", msg)


def _copy_message(m: Message) -> Message:
    """What a real transport does: the receiver gets its own objects."""
    ents = [Entry(e.term, e.index, e.type, e.data) for e in m.entries] if m.entries else []
    return Message(
        m.type,
        m.to,
        m.frm,
        m.term,
        m.log_term,
        m.index,
        ents,
        m.commit,
        m.snapshot,
        m.reject,
        m.reject_hint,
        m.context,
    )


@dataclass
class SimNode:
    """One raft node: a durable engine plus (while up) a RawNode and a state machine."""

    id: int
    engine: Any
    make_config: Callable[[int, int], Config]  # (node id, applied) -> Config
    make_sm: Callable[[], StateMachine] = HashChainStateMachine
    raw_cls: type[RawNode] = RawNode
    # With a real on-disk engine: crash closes it, restart reopens it.
    reopen: Callable[[Any], Any] | None = None
    raw: RawNode | None = None
    storage: DurableStorage | None = None
    sm: StateMachine | None = None
    restarts: int = 0

    @property
    def alive(self) -> bool:
        return self.raw is not None

    def start(self) -> None:
        self.storage = DurableStorage(self.engine, RANGE_ID)
        self.sm = self.make_sm()
        snap = self.storage.snapshot() if self.storage.truncated_state().index else None
        if snap is not None and not snap.is_empty():
            self.sm.restore(snap.data)
        self.raw = self.raw_cls(self.make_config(self.id, self.sm.applied), self.storage)

    def crash(self) -> None:
        self.raw = self.storage = self.sm = None
        if self.reopen is not None:
            self.engine.close()

    def restart(self) -> None:
        if self.reopen is not None:
            self.engine = self.reopen(self.engine)
        self.restarts += 1
        self.start()


@dataclass
class SimCluster:
    """`n` raft nodes of one group, deterministic under `seed`."""

    n: int
    seed: int = 0
    faults: FaultConfig = field(default_factory=FaultConfig)
    ticks_every: int = 2
    election_tick: int = 10
    heartbeat_tick: int = 1
    pre_vote: bool = True
    check_quorum: bool = True
    compact_every: int = 0  # 0 = never compact
    checkers: list[Checker] | None = None
    record_trace: bool = True
    node_factory: Callable[..., SimNode] = SimNode
    raw_node_cls: type[RawNode] = RawNode
    # node id -> a fresh engine; and (node id, closed engine) -> reopened engine
    engine_factory: Callable[[int], Any] | None = None
    engine_reopen: Callable[[int, Any], Any] | None = None
    config_overrides: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.clock = FakeClock()
        self.trace: list[tuple[Any, ...]] = []
        self.net = SimNetwork(random.Random(self.rng.getrandbits(64)), self.faults)
        self.net.on_lost = self._on_lost
        if self.checkers is None:
            self.checkers = all_checkers()
        self.steps = 0
        self.delivered = 0
        self.readies = 0
        self.delivered_by_type: dict[MessageType, int] = {}
        self.proposed: dict[bytes, int] = {}
        # payload -> (step, index) of its first application by any node
        self.applied_at: dict[bytes, tuple[int, int]] = {}
        self._reports: list[tuple[int, int, bool]] = []  # (sender, to, is_snapshot)
        self._removals: list[int] = []
        self.removed: set[int] = set()  # removed from the group and stopped for good
        self.nodes: dict[int, SimNode] = {}
        ids = list(range(1, self.n + 1))
        for i in ids:
            node = self._new_node(i)
            boot = DurableStorage(node.engine, RANGE_ID)
            boot.set_conf_state(ConfState(voters=tuple(ids)))
            node.start()
            self.nodes[i] = node

    def _new_node(self, node_id: int) -> SimNode:
        engine = self.engine_factory(node_id) if self.engine_factory else MemEngine()
        reopen = None
        if self.engine_reopen is not None:
            fn = self.engine_reopen
            reopen = lambda old: fn(node_id, old)  # noqa: E731
        return self.node_factory(
            id=node_id,
            engine=engine,
            make_config=self._make_config,
            raw_cls=self.raw_node_cls,
            reopen=reopen,
        )

    def close(self) -> None:
        """Close every engine (on-disk engines hold files/locks)."""
        for node in self.nodes.values():
            if node.raw is not None or node.reopen is None:
                node.raw = node.storage = node.sm = None
                node.engine.close()

    def _make_config(self, node_id: int, applied: int) -> Config:
        kw: dict[str, Any] = dict(
            id=node_id,
            election_tick=self.election_tick,
            heartbeat_tick=self.heartbeat_tick,
            applied=applied,
            check_quorum=self.check_quorum,
            pre_vote=self.pre_vote,
            rng=random.Random(self.rng.getrandbits(64)),
        )
        kw.update(self.config_overrides)
        return Config(**kw)

    # ---- driving ------------------------------------------------------------------------

    def step(self) -> None:
        now = self.clock.advance(1)
        self.steps += 1
        if now % self.ticks_every == 0:
            for node in self.nodes.values():
                if node.raw is not None:
                    node.raw.tick()
                    self._drain(node)
        for env in self.net.due(now):
            self._deliver(env)
        self._flush_reports()
        self._flush_removals()
        logs = {i: nd.storage for i, nd in self.nodes.items() if nd.storage is not None}
        for c in self.checkers:  # type: ignore[union-attr]
            c.after_step(logs, self.steps)

    def run(self, steps: int) -> None:
        for _ in range(steps):
            self.step()

    def run_until(self, pred: Callable[[], bool], max_steps: int) -> bool:
        for _ in range(max_steps):
            if pred():
                return True
            self.step()
        return pred()

    def stabilize(self, max_rounds: int = 10_000) -> int:
        """Deliver messages without advancing time until none are due (useful
        with zero-delay links). Returns the number delivered."""
        count = 0
        for _ in range(max_rounds):
            envs = self.net.due(self.clock.now)
            if not envs:
                break
            for env in envs:
                self._deliver(env)
            count += len(envs)
        return count

    def _deliver(self, env: Envelope) -> None:
        node = self.nodes[env.dst]
        if node.raw is None:
            return
        m: Message = env.payload
        self.delivered += 1
        self.delivered_by_type[m.type] = self.delivered_by_type.get(m.type, 0) + 1
        if self.record_trace:
            self.trace.append(
                (
                    self.clock.now,
                    "recv",
                    env.src,
                    env.dst,
                    int(m.type),
                    m.term,
                    m.index,
                    len(m.entries),
                    m.commit,
                    m.reject,
                )
            )
        node.raw.step(m)
        self._drain(node)
        if m.type == MessageType.SNAP:
            sender = self.nodes[env.src]
            if sender.raw is not None:
                sender.raw.report_snapshot(env.dst, True)
                self._drain(sender)

    def _on_lost(self, env: Envelope, why: str) -> None:
        # Queued, not called: the sender may be in the middle of its Ready.
        m = env.payload
        if isinstance(m, Message) and (m.type == MessageType.SNAP or why != "drop"):
            self._reports.append((env.src, env.dst, m.type == MessageType.SNAP))

    def _flush_removals(self) -> None:
        # A replica removed from the group is stopped for good (CockroachDB
        # garbage-collects it; left running it would campaign in vain) — but
        # only once every other live node has applied its removal: until
        # then some still count it as a voter and may need its vote.
        keep: list[int] = []
        for i in self._removals:
            if i in self.removed:
                continue
            stale = any(
                i in (nd.storage.conf_state().voters + nd.storage.conf_state().learners)
                for j, nd in self.nodes.items()
                if j != i and nd.raw is not None and nd.storage is not None
            )
            if stale:
                keep.append(i)
            else:
                self.removed.add(i)
                self.crash(i)
        self._removals = keep

    def _flush_reports(self) -> None:
        while self._reports:
            reports, self._reports = self._reports, []
            for src, dst, is_snap in reports:
                sender = self.nodes[src]
                if sender.raw is None:
                    continue
                if is_snap:
                    sender.raw.report_snapshot(dst, False)
                else:
                    sender.raw.report_unreachable(dst)
                self._drain(sender)

    def _drain(self, node: SimNode) -> None:
        raw = node.raw
        while raw is not None and raw.has_ready():
            rd = raw.ready()
            self._handle_ready(node, rd)
            raw = node.raw

    def _handle_ready(self, node: SimNode, rd: Ready) -> None:
        raw, st, sm = node.raw, node.storage, node.sm
        assert raw is not None and st is not None and sm is not None
        self.readies += 1
        checkers = self.checkers or ()
        # 1. persist: one atomic synced batch
        snap = rd.snapshot
        if rd.hard_state is not None or rd.entries or snap is not None:
            batch = node.engine.new_batch()
            st.save(rd.hard_state, rd.entries, snap, batch=batch)
            node.engine.write(batch, sync=True)
        if snap is not None and not snap.is_empty():
            sm.restore(snap.data)
            for c in checkers:
                c.on_restore(node.id, sm.applied, sm.digest())
        if rd.hard_state is not None or rd.entries:
            for c in checkers:
                c.on_persist(node.id, rd.hard_state, rd.entries, st)
        if rd.soft_state is not None and rd.soft_state.state == StateType.LEADER:
            term = st.hard_state().term
            if self.record_trace:
                self.trace.append((self.clock.now, "leader", node.id, term))
            for c in checkers:
                c.on_leader(node.id, term, st)
        # 2. send
        now = self.clock.now
        for m in rd.messages:
            self.net.send(m.frm, m.to, _copy_message(m), now)
        # 3. apply
        commit = st.hard_state().commit
        conf_changed = False
        for e in rd.committed_entries:
            if e.index <= sm.applied:
                continue  # already in the restored snapshot
            if e.type == EntryType.CONF_CHANGE and e.data:
                cc = decode_conf_change(e.data)
                cs = raw.apply_conf_change(cc)
                st.set_conf_state(cs)
                # snapshot the new configuration: a replica being added is
                # initialized only by a snapshot that includes it
                conf_changed = True
                if cc.type == ConfChangeType.REMOVE_NODE and cc.node_id in self.nodes:
                    if cc.node_id not in self._removals:
                        self._removals.append(cc.node_id)  # see _flush_removals
            sm.apply(e)
            for c in checkers:
                c.on_apply(node.id, e.index, e.term, sm.digest(), commit)
            if e.data and e.data not in self.applied_at:
                self.applied_at[e.data] = (self.steps, e.index)
                if self.record_trace:
                    self.trace.append((now, "apply", node.id, e.index, e.term))
        # 4. advance
        raw.advance(rd)
        if conf_changed or (
            self.compact_every and sm.applied - st.first_index() >= self.compact_every
        ):
            self.compact(node.id)

    # ---- client ---------------------------------------------------------------------------

    def propose(self, data: bytes, node: int | None = None) -> bool:
        """Propose `data` at `node` (default: the current leader). False if the
        proposal was dropped (no leader known, not leader, transfer, ...)."""
        if node is None:
            node = self.leader()
            if node is None:
                return False
        nd = self.nodes[node]
        if nd.raw is None:
            return False
        self.proposed.setdefault(data, self.steps)
        try:
            nd.raw.propose(data)
        except ProposalDroppedError:
            return False
        self._drain(nd)
        return True

    def propose_many(self, payloads: Iterable[bytes], node: int | None = None) -> int:
        """Propose several payloads as one batch: one proposal message carrying
        all entries, so the leader appends them together and sends one append
        per follower (etcd's MsgProp with many entries). Returns how many
        were accepted (all or none)."""
        if node is None:
            node = self.leader()
            if node is None:
                return 0
        nd = self.nodes[node]
        raw = nd.raw
        if raw is None:
            return 0
        batch = list(payloads)
        if not batch:
            return 0
        for p in batch:
            self.proposed.setdefault(p, self.steps)
        try:
            raw.propose_batch(batch)
        except ProposalDroppedError:
            return 0
        self._drain(nd)
        return len(batch)

    def propose_conf_change(self, cc: ConfChange, node: int | None = None) -> bool:
        """Propose a membership change at `node` (default: the leader). It
        takes effect on each node when applied (see `_handle_ready`)."""
        if node is None:
            node = self.leader()
            if node is None:
                return False
        nd = self.nodes[node]
        if nd.raw is None:
            return False
        try:
            nd.raw.propose_conf_change(cc)
        except ProposalDroppedError:
            return False
        self._drain(nd)
        return True

    def add_node(self, node_id: int) -> SimNode:
        """Start a fresh, empty node (no configuration). Like a CockroachDB
        learner it must be initialized by a snapshot that carries a
        configuration including it (see `add_learner`)."""
        if node_id in self.nodes:
            raise ValueError(f"node {node_id} exists")
        node = self._new_node(node_id)
        node.start()
        self.nodes[node_id] = node
        assert node.sm is not None
        for c in self.checkers or ():
            c.on_restore(node_id, node.sm.applied, node.sm.digest())
        return node

    def transfer_leader(self, to: int) -> bool:
        """Ask the current leader to transfer leadership to `to`."""
        lead = self.leader()
        if lead is None or lead == to or to not in self.nodes:
            return False
        raw = self.nodes[lead].raw
        assert raw is not None
        raw.transfer_leader(to)
        self._drain(self.nodes[lead])
        return True

    def add_learner(self, node_id: int, max_steps: int = 400) -> bool:
        """Add a fresh node as a learner. It is initialized by a snapshot:
        every node snapshots and truncates its log when it applies a
        configuration change, so the leader has only that snapshot (which
        includes the learner) to offer. True once the learner applied it."""
        lead = self.leader()
        if lead is None:
            return False
        self.add_node(node_id)
        if not self.propose_conf_change(ConfChange(ConfChangeType.ADD_LEARNER_NODE, node_id), lead):
            return False
        st = self.nodes[lead].storage
        assert st is not None
        idx = st.last_index()
        return self.run_until(lambda: self._sm_applied(node_id) >= idx, max_steps)

    def _sm_applied(self, i: int) -> int:
        sm = self.nodes[i].sm
        return sm.applied if sm is not None else -1

    def compact(self, node: int) -> None:
        """Snapshot `node`'s state machine at its applied index and truncate
        its log there."""
        nd = self.nodes[node]
        st, sm = nd.storage, nd.sm
        if st is None or sm is None or sm.applied < st.first_index():
            return
        st.create_snapshot(sm.applied, None, sm.snapshot())
        st.compact(sm.applied)

    def campaign(self, node: int) -> None:
        raw = self.nodes[node].raw
        if raw is not None:
            raw.campaign()
            self._drain(self.nodes[node])

    # ---- faults ---------------------------------------------------------------------------

    def crash(self, i: int) -> None:
        node = self.nodes[i]
        if node.raw is None:
            return
        node.crash()
        self.net.set_down(i, True)
        if self.record_trace:
            self.trace.append((self.clock.now, "crash", i))

    def restart(self, i: int) -> None:
        node = self.nodes[i]
        if node.raw is not None or i in self.removed:
            return
        node.restart()
        self.net.set_down(i, False)
        assert node.sm is not None
        for c in self.checkers or ():
            c.on_restore(i, node.sm.applied, node.sm.digest())
        if self.record_trace:
            self.trace.append((self.clock.now, "restart", i))
        self._drain(node)

    def partition(self, *groups: Iterable[int]) -> None:
        self.net.partition(*groups)

    def cut_one_way(self, src: int, dst: int) -> None:
        self.net.cut_one_way(src, dst)

    def isolate(self, i: int) -> None:
        self.net.isolate(i, self.nodes)

    def heal(self, *, restart_all: bool = True, clear_faults: bool = True) -> None:
        """Remove every partition; optionally restart crashed nodes and make
        the network reliable again."""
        self.net.heal()
        if clear_faults:
            self.net.set_faults(replace(self.net.faults, drop=0.0, duplicate=0.0, reorder=0.0))
        if restart_all:
            for i in self.nodes:
                self.restart(i)

    # ---- observation ----------------------------------------------------------------------

    def live(self) -> list[int]:
        return [i for i, nd in self.nodes.items() if nd.raw is not None]

    def leader(self) -> int | None:
        """The live leader with the highest term, if any."""
        best, best_term = None, -1
        for i, nd in self.nodes.items():
            raw = nd.raw
            if raw is not None and raw.state == StateType.LEADER and raw.term > best_term:
                best, best_term = i, raw.term
        return best

    def committed_everywhere(self, data: bytes) -> bool:
        return data in self.applied_at

    def check_logs(self) -> None:
        """The whole-log log-matching comparison, right now."""
        from crdb_py.sim.checkers import check_logs

        check_logs({i: nd.storage for i, nd in self.nodes.items() if nd.storage is not None})

    def check_liveness(self, *, max_ticks: int | None = None, tag: bytes = b"liveness") -> int:
        """With the network healed and a majority up: a leader must emerge and
        a fresh proposal must be applied by every live node, each within
        `max_ticks` ticks. Returns the steps taken; raises LivenessViolation."""
        ticks = max_ticks if max_ticks is not None else 10 * self.election_tick
        budget = ticks * self.ticks_every
        start = self.steps
        if not self.run_until(lambda: self._stable_leader() is not None, budget):
            raise LivenessViolation(
                f"no leader within {ticks} ticks after heal (seed {self.seed}, step {self.steps})"
            )
        payload = tag + b"#%d" % self.steps
        t0 = self.steps
        retry = 0
        while self.steps - t0 <= budget:
            if retry <= 0:
                self.propose(payload)
                retry = 2 * self.election_tick * self.ticks_every
            if self.members() and all(self._applied(i, payload) for i in self.members()):
                return self.steps - start
            self.step()
            retry -= 1
        raise LivenessViolation(
            f"proposal not applied on all live nodes within {ticks} ticks after a leader "
            f"emerged (seed {self.seed}, step {self.steps})"
        )

    def _stable_leader(self) -> int | None:
        lead = self.leader()
        if lead is None:
            return None
        raw = self.nodes[lead].raw
        assert raw is not None
        # every live member of its configuration follows it in its term
        for i in self.members():
            r = self.nodes[i].raw
            if r is not None and (r.term != raw.term or r.lead != lead):
                return None
        return lead

    def config(self) -> ConfState:
        """The configuration of the leader, else of the node that applied most."""
        lead = self.leader()
        if lead is not None:
            return self.nodes[lead].raw.status().conf_state  # type: ignore[union-attr]
        best = max(self.live() or self.nodes, key=self._sm_applied)
        st = self.nodes[best].storage
        return st.conf_state() if st is not None else ConfState()

    def voters(self) -> list[int]:
        return sorted(v for v in self.config().voters if v in self.nodes and v not in self.removed)

    def members(self) -> list[int]:
        """Live voters and learners of the current configuration."""
        cs = self.config()
        return [
            i
            for i in (*cs.voters, *cs.learners)
            if i in self.nodes and self.nodes[i].raw is not None
        ]

    def add_voter(self, node_id: int, max_steps: int = 400) -> bool:
        """Add a fresh node: as a learner first (snapshot), then promote it."""
        if not self.add_learner(node_id, max_steps):
            return False
        if not self.propose_conf_change(ConfChange(ConfChangeType.ADD_NODE, node_id)):
            return False
        return self.run_until(lambda: node_id in self.config().voters, max_steps)

    def remove_voter(self, node_id: int, max_steps: int = 400) -> bool:
        """Propose removing `node_id`; it is stopped once a node applies it."""
        if not self.propose_conf_change(ConfChange(ConfChangeType.REMOVE_NODE, node_id)):
            return False
        return self.run_until(lambda: node_id in self.removed, max_steps)

    def _applied(self, i: int, payload: bytes) -> bool:
        # a node applied `payload` iff its applied index reached the index the
        # payload was first applied at (state machine safety: the same entry)
        at = self.applied_at.get(payload)
        sm = self.nodes[i].sm
        return at is not None and sm is not None and sm.applied >= at[1]
