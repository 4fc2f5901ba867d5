"""An in-memory cluster of RawNodes for unit tests, after etcd's `network`.

Messages are delivered synchronously (`send` runs until no node has anything
more to say); `cut`, `isolate`, `drop` and `ignore` shape what gets through.
Every node processes its Readies by the contract: persist to MemoryStorage,
send, apply, advance. Applied entries are recorded per node so tests can
compare state machines.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterable

from crdb_py.raft import (
    Config,
    ConfState,
    EntryType,
    MemoryStorage,
    Message,
    MessageType,
    RawNode,
    Ready,
    Snapshot,
    decode_conf_change,
)

Applied = tuple[int, int, bytes]  # (index, term, data)


class Node:
    """A RawNode with its storage and state machine (a list of applied entries)."""

    def __init__(
        self,
        id: int,
        storage: MemoryStorage,
        *,
        seed: int = 0,
        applied: int = 0,
        **cfg: object,
    ) -> None:
        self.id = id
        self.storage = storage
        self.seed = seed
        self.cfg = cfg
        self.rn = RawNode(
            Config(id, rng=random.Random(seed * 1000 + id), applied=applied, **cfg),  # type: ignore[arg-type]
            storage,
        )
        self.applied: list[Applied] = []
        self.snapshot_data: bytes = b""
        self.readies: list[Ready] = []  # every Ready handed out, for contract tests
        self.on_apply: Callable[[Node, int], None] | None = None

    def restart(self) -> None:
        """Crash (drop all volatile state) and restart from storage."""
        applied = self.applied[-1][0] if self.applied else 0
        self.rn = RawNode(
            Config(self.id, rng=random.Random(self.seed * 1000 + self.id + 7), applied=applied,
                   **self.cfg),  # type: ignore[arg-type]
            self.storage,
        )

    def handle_ready(self) -> list[Message]:
        if not self.rn.has_ready():
            return []
        rd = self.rn.ready()
        self.readies.append(rd)
        st = self.storage
        if rd.snapshot is not None and not rd.snapshot.is_empty():
            st.apply_snapshot(rd.snapshot)
            self.install_snapshot(rd.snapshot)
        if rd.entries:
            st.append(rd.entries)
        if rd.hard_state is not None:
            st.set_hard_state(rd.hard_state)
        msgs = rd.messages
        for e in rd.committed_entries:
            self.applied.append((e.index, e.term, e.data))
            if e.type == EntryType.CONF_CHANGE:
                cs = self.rn.apply_conf_change(decode_conf_change(e.data))
                st.set_conf_state(cs)
            if self.on_apply is not None:
                self.on_apply(self, e.index)
        self.rn.advance(rd)
        return msgs

    def install_snapshot(self, snap: Snapshot) -> None:
        # the state machine is the list of applied entries; a snapshot carries
        # it encoded as its data
        self.applied = decode_applied(snap.data)
        self.snapshot_data = snap.data

    def take_snapshot(self, compact: bool = True) -> Snapshot:
        """Snapshot the state machine at the applied index and compact the log."""
        idx = self.applied[-1][0]
        snap = self.storage.create_snapshot(idx, self.rn.status().conf_state, encode_applied(self.applied))
        if compact:
            self.storage.compact(idx)
        return snap


def encode_applied(applied: list[Applied]) -> bytes:
    import msgpack

    return msgpack.packb([list(a) for a in applied])


def decode_applied(b: bytes) -> list[Applied]:
    import msgpack

    return [(a[0], a[1], a[2]) for a in msgpack.unpackb(b)]


class Network:
    def __init__(
        self,
        ids: Iterable[int] | int = 3,
        *,
        learners: Iterable[int] = (),
        seed: int = 0,
        **cfg: object,
    ) -> None:
        ids = list(range(1, ids + 1)) if isinstance(ids, int) else list(ids)
        learners = list(learners)
        cs = ConfState(voters=tuple(ids), learners=tuple(learners))
        self.seed = seed
        self.cfg = cfg
        self.nodes: dict[int, Node] = {}
        for id in ids + learners:
            self.nodes[id] = Node(id, MemoryStorage(cs), seed=seed, **cfg)
        self.dropped: dict[tuple[int, int], float] = {}  # (from, to) -> drop probability
        self.ignored: set[MessageType] = set()
        self.rng = random.Random(seed)
        self.delivered: list[Message] = []
        self.msg_hook: Callable[[Message], bool] | None = None  # False drops the message

    def add_node(self, id: int, conf_state: ConfState | None = None) -> Node:
        """A new, empty node (it learns the configuration from a snapshot or log)."""
        n = Node(id, MemoryStorage(conf_state or ConfState()), seed=self.seed, **self.cfg)
        self.nodes[id] = n
        return n

    def __getitem__(self, id: int) -> RawNode:
        return self.nodes[id].rn

    # ---- faults -------------------------------------------------------------

    def drop(self, frm: int, to: int, perc: float = 1.0) -> None:
        self.dropped[(frm, to)] = perc

    def cut(self, a: int, b: int) -> None:
        self.drop(a, b)
        self.drop(b, a)

    def isolate(self, id: int) -> None:
        for other in self.nodes:
            if other != id:
                self.cut(id, other)

    def ignore(self, t: MessageType) -> None:
        self.ignored.add(t)

    def recover(self) -> None:
        self.dropped.clear()
        self.ignored.clear()

    def _passes(self, m: Message) -> bool:
        if m.type in self.ignored:
            return False
        if m.to not in self.nodes:
            return False
        p = self.dropped.get((m.frm, m.to), 0.0)
        if p and (p >= 1.0 or self.rng.random() < p):
            return False
        return self.msg_hook is None or self.msg_hook(m)

    # ---- driving ------------------------------------------------------------

    def send(self, *msgs: Message) -> None:
        """Deliver msgs, and everything they cause, until quiescent."""
        q = deque(msgs)
        for n in self.nodes.values():
            q.extend(n.handle_ready())
        while q:
            m = q.popleft()
            if not self._passes(m):
                continue
            self.delivered.append(m)
            n = self.nodes[m.to]
            n.rn.step(m)
            q.extend(n.handle_ready())
            if not q:
                for n in self.nodes.values():
                    q.extend(n.handle_ready())

    def stabilize(self) -> None:
        self.send()

    def campaign(self, id: int) -> None:
        self[id].campaign()
        self.stabilize()

    def propose(self, id: int, data: bytes) -> None:
        self[id].propose(data)
        self.stabilize()

    def tick(self, id: int, n: int = 1) -> None:
        for _ in range(n):
            self[id].tick()
        self.stabilize()

    def tick_all(self, n: int = 1) -> None:
        for _ in range(n):
            for node in self.nodes.values():
                node.rn.tick()
            self.stabilize()

    def leader(self) -> int | None:
        leads = [id for id, n in self.nodes.items() if n.rn.is_leader]
        return max(leads, key=lambda i: self[i].term) if leads else None

    def applied(self, id: int) -> list[Applied]:
        return self.nodes[id].applied

    def data_applied(self, id: int) -> list[bytes]:
        return [d for _, _, d in self.nodes[id].applied if d]


# ---- single-replica helpers (etcd's newTestRaft & friends) -------------------


def new_storage(voters: Iterable[int], terms: Iterable[int] = (), learners: Iterable[int] = ()) -> MemoryStorage:
    """A storage with entries at indexes 1.. of the given terms."""
    st = MemoryStorage(ConfState(voters=tuple(voters), learners=tuple(learners)))
    from crdb_py.raft import Entry

    st.append([Entry(term=t, index=i + 1) for i, t in enumerate(terms)])
    return st


def new_raft(
    id: int,
    voters: Iterable[int] = (1, 2, 3),
    *,
    election: int = 10,
    heartbeat: int = 1,
    storage: MemoryStorage | None = None,
    pre_vote: bool = False,
    check_quorum: bool = False,
    **kw: object,
):
    from crdb_py.raft.raft import Raft

    st = storage if storage is not None else new_storage(voters)
    c = Config(
        id, rng=random.Random(id), election_tick=election, heartbeat_tick=heartbeat,
        pre_vote=pre_vote, check_quorum=check_quorum, **kw,  # type: ignore[arg-type]
    )
    return Raft(c, st)


def read_msgs(r) -> list[Message]:  # type: ignore[no-untyped-def]
    msgs = r.msgs
    r.msgs = []
    return msgs


def log_terms(r) -> list[int]:  # type: ignore[no-untyped-def]
    return [e.term for e in r.log.all_entries()]


class SafetyChecker:
    """The §5 safety properties, checked over a whole run (call `check` after
    every step): election safety, leader append-only, log matching, state
    machine safety, leader completeness."""

    def __init__(self) -> None:
        self.leaders: dict[int, int] = {}  # term -> leader
        self.committed: dict[int, tuple[int, bytes]] = {}  # index -> (term, data)
        self.committed_by: dict[int, int] = {}  # index -> a term at which it was committed
        self.leader_logs: dict[tuple[int, int], dict[int, int]] = {}

    def check(self, nodes: dict[int, Node]) -> None:
        logs: dict[int, dict[int, int]] = {}
        for id, n in nodes.items():
            log = n.rn.raft.log
            logs[id] = {e.index: e.term for e in log.all_entries()}
            logs[id][log.first_index() - 1] = log.term(log.first_index() - 1)
        for id, n in nodes.items():
            rn = n.rn
            if rn.is_leader:
                # election safety
                assert self.leaders.setdefault(rn.term, id) == id, f"two leaders in term {rn.term}"
                # leader append-only (within its term, over what is not compacted)
                prev = self.leader_logs.get((id, rn.term), {})
                cur = logs[id]
                for idx, t in prev.items():
                    if idx in cur:
                        assert cur[idx] == t, f"leader {id} overwrote its entry {idx}"
                self.leader_logs[(id, rn.term)] = dict(cur)
        # log matching: if two logs agree at an index, they agree on all common earlier indexes
        ids = sorted(logs)
        for x, a in enumerate(ids):
            for b in ids[x + 1 :]:
                la, lb = logs[a], logs[b]
                common = sorted(set(la) & set(lb))
                agree = [i for i in common if la[i] == lb[i]]
                if agree:
                    top = agree[-1]
                    bad = [i for i in common if i <= top and la[i] != lb[i]]
                    assert not bad, f"logs of {a} and {b} match at {top} but differ at {bad}"
        # state machine safety
        for n in nodes.values():
            for idx, term, data in n.applied:
                got = self.committed.setdefault(idx, (term, data))
                assert got == (term, data), f"index {idx} applied as {got} and {(term, data)}"
                # the entry was committed by a leader of a term <= the applier's current term
                self.committed_by.setdefault(idx, n.rn.term)
        # leader completeness: a committed entry is in the log of every leader of
        # a later term (a stale leader of an older term may lack it)
        for id, n in nodes.items():
            if n.rn.is_leader:
                first = n.rn.raft.log.first_index()
                for idx, (term, _) in self.committed.items():
                    if idx >= first and n.rn.term > self.committed_by[idx]:
                        assert logs[id].get(idx) == term, f"leader {id} lacks committed {idx}"
