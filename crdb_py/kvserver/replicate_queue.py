"""The replicate queue: keep every range at its replication factor, on live nodes.

Run periodically by each range's leaseholder. Every run makes at most **one**
membership change (crdb-py has no joint consensus: raft changes one replica
at a time, docs/design/raft.md), chosen by `plan_change`, a pure function of
the descriptor and the store's view of the cluster:

1. a *learner* on a **dead** node is removed (it counts for nothing);
2. else a learner is **promoted** to voter once it has caught up (its raft
   match index reached our applied index) — provided the new configuration
   has a live quorum;
3. else, if fewer voters than ``min(replication factor, live nodes)`` sit on
   nodes that are not dead, a learner is **added** on a live node without a
   replica: it receives a raft snapshot and the log without counting toward
   quorum, so a slow new replica never stalls writes;
4. else a **voter on a dead node is removed** — once its replacement voter is
   in place (or no spare node exists and enough voters remain anyway, see
   `needed_voters`) and only if the remaining voters that are live still form
   a quorum of the new configuration. The leaseholder never removes itself;
5. else, with more voters than the replication factor (a dead node that came
   back before its replacement finished), one voter is removed — a non-live
   one first, else a lagging one, else the oldest — again never below a
   live quorum.

So replacing a dead voter is *add learner → snapshot → promote → remove the
dead voter*: four runs, each waiting for the previous change to apply. In the
window between promotion and removal the range has an even number of voters
(e.g. 4, quorum 3, one of them dead) and tolerates no further failure;
CockroachDB closes that window with an atomic joint-consensus swap, which we
do not have. Removing first would be the mirror image (2 voters, quorum 2).

*Dead* means "not live, without interruption, for longer than
``time_until_store_dead``" as observed by this store (`Store.dead_node_ids`).
A node that is merely slow or briefly partitioned keeps its replicas; one
that comes back after being removed holds a replica that is no longer in the
descriptor: the others never send it anything, and pre-vote with
check-quorum keeps its campaigns from disturbing the range; replica GC
(`Store._maybe_gc_replica`) deletes it once meta shows it was removed.

A membership change is a raft conf change whose context carries the command
that writes the new descriptor; meta addressing is updated after it applies.
Rebalancing (moving live replicas between live nodes) is not done.
See docs/design/replication.md.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from crdb_py.kvserver.raftcmd import RaftCommand
from crdb_py.kvserver.replica import write_descriptor
from crdb_py.kvserver.spanset import SpanAccess, SpanSet
from crdb_py.pb import data_pb2
from crdb_py.raft import ConfChange, ConfChangeType
from crdb_py.storage import MVCCStats
from crdb_py.util import keys

if TYPE_CHECKING:
    from crdb_py.kvserver.replica import Replica


@dataclass(frozen=True, slots=True)
class Change:
    """One planned step. `kind` is "add", "promote", "remove" or "none";
    `replica_id`/`node_id` name the replica (for "add": the target node)."""

    kind: str
    reason: str
    node_id: int = 0
    replica_id: int = 0


NOTHING = Change("none", "")


def needed_voters(replication_factor: int, live_nodes: int) -> int:
    """How many voters a range should keep when removing dead ones
    (CockroachDB's GetNeededVoters): the replication factor, lowered to the
    number of live nodes, never to an even number, nor below 3, unless the
    replication factor itself says so."""
    need = min(replication_factor, live_nodes)
    if need == replication_factor:
        return need
    if need % 2 == 0:
        need -= 1
    return min(max(need, 3), replication_factor)


def _quorum(n: int) -> int:
    return n // 2 + 1


def plan_change(
    desc: data_pb2.RangeDescriptor,
    *,
    self_replica_id: int,
    live: Collection[int],
    dead: Collection[int],
    replication_factor: int,
    caught_up: Callable[[int], bool],
) -> Change:
    """The next membership change of the range (see module docstring).
    `live`/`dead` are node ids; `caught_up(replica_id)` says whether a
    learner has the log up to the leaseholder's applied index."""
    live_set = set(live)
    dead_set = set(dead) - live_set
    voters = [x for x in desc.replicas if x.type == data_pb2.VOTER_FULL]
    learners = [x for x in desc.replicas if x.type == data_pb2.LEARNER]
    for lr in learners:
        if lr.node_id in dead_set and lr.replica_id != self_replica_id:
            return Change("remove", f"removed learner {lr.replica_id} on dead n{lr.node_id}",
                          lr.node_id, lr.replica_id)
    if learners:
        lr = learners[0]
        if not caught_up(lr.replica_id):
            return NOTHING
        new_voters = [*voters, lr]
        if sum(1 for x in new_voters if x.node_id in live_set) < _quorum(len(new_voters)):
            return Change("none", f"not promoting learner {lr.replica_id}: no live quorum after")
        return Change("promote", f"promoted learner {lr.replica_id} on n{lr.node_id}",
                      lr.node_id, lr.replica_id)
    want = min(replication_factor, len(live_set))
    healthy = [x for x in voters if x.node_id not in dead_set]
    dead_voters = [x for x in voters if x.node_id in dead_set and x.replica_id != self_replica_id]
    have = {x.node_id for x in desc.replicas}
    spare = sorted(n for n in live_set if n not in have)
    if len(healthy) < want:
        if not spare:
            return NOTHING
        node = spare[(desc.range_id + len(voters)) % len(spare)]
        why = f"replacing dead n{dead_voters[0].node_id}: " if dead_voters else ""
        return Change("add", f"{why}added learner on n{node}", node)
    if not dead_voters:
        if len(voters) > replication_factor:
            return _remove_extra_voter(voters, self_replica_id, live_set, caught_up)
        return NOTHING
    dv = dead_voters[0]
    if len(healthy) < needed_voters(replication_factor, len(live_set)):
        return Change("none", f"no spare live node to replace dead voter {dv.replica_id} on n{dv.node_id}")
    rest = [x for x in voters if x.replica_id != dv.replica_id]
    if sum(1 for x in rest if x.node_id in live_set) < _quorum(len(rest)):
        return Change("none", f"not removing dead voter {dv.replica_id}: no live quorum after")
    return Change("remove", f"removed dead voter {dv.replica_id} on n{dv.node_id}",
                  dv.node_id, dv.replica_id)


def _remove_extra_voter(
    voters: list[data_pb2.ReplicaDescriptor],
    self_replica_id: int,
    live: set[int],
    caught_up: Callable[[int], bool],
) -> Change:
    """More voters than the replication factor (a dead node came back
    between its replacement's promotion and its removal): drop one — a
    voter that is not live if any, else one that lags behind, else the
    oldest (lowest replica id) — never the leaseholder, never below a live
    quorum."""
    others = [x for x in voters if x.replica_id != self_replica_id]
    others.sort(key=lambda x: (x.node_id in live, caught_up(x.replica_id), x.replica_id))
    v = others[0]
    rest = [x for x in voters if x.replica_id != v.replica_id]
    if sum(1 for x in rest if x.node_id in live) < _quorum(len(rest)):
        return Change("none", f"not removing extra voter {v.replica_id}: no live quorum after")
    return Change("remove", f"removed extra voter {v.replica_id} on n{v.node_id}",
                  v.node_id, v.replica_id)


async def maybe_replicate(r: Replica) -> str | None:
    """One step toward the replication target; returns what it did (or why
    it did nothing, when that is worth saying), else None."""
    if r.changing_replicas or r.desc is None or not r.is_leader() or not r.owns_valid_lease():
        return None
    store = r.store
    desc = r.desc
    progress = r.raw_node.status().progress
    applied = r.applied.raft_applied_index

    def caught_up(replica_id: int) -> bool:
        pr = progress.get(replica_id)
        return pr is not None and pr.match >= applied

    ch = plan_change(
        desc,
        self_replica_id=r.replica_id,
        live=store.node_dialer.live_node_ids(),
        dead=store.dead_node_ids(),
        replication_factor=store.config.replication_factor,
        caught_up=caught_up,
    )
    if ch.kind == "none":
        return ch.reason or None
    new = _copy(desc)
    if ch.kind == "promote":
        for x in new.replicas:
            if x.replica_id == ch.replica_id:
                x.type = data_pb2.VOTER_FULL
        cc = ConfChange(ConfChangeType.ADD_NODE, ch.replica_id)
    elif ch.kind == "remove":
        kept = [x for x in new.replicas if x.replica_id != ch.replica_id]
        del new.replicas[:]
        new.replicas.extend(kept)
        cc = ConfChange(ConfChangeType.REMOVE_NODE, ch.replica_id)
    else:
        rd = new.replicas.add()
        rd.node_id = ch.node_id
        rd.store_id = ch.node_id
        rd.replica_id = new.next_replica_id
        rd.type = data_pb2.LEARNER
        new.next_replica_id += 1
        cc = ConfChange(ConfChangeType.ADD_LEARNER_NODE, rd.replica_id)
    if not await change_replicas(r, new, cc):
        return None
    return ch.reason


def _copy(desc: data_pb2.RangeDescriptor) -> data_pb2.RangeDescriptor:
    d = data_pb2.RangeDescriptor()
    d.CopyFrom(desc)
    d.generation += 1
    return d


async def change_replicas(r: Replica, new: data_pb2.RangeDescriptor, cc: ConfChange) -> bool:
    """Replicate `new` (the current descriptor's successor) with conf change
    `cc`; False if the descriptor changed meanwhile (nothing was proposed)."""
    r.changing_replicas = True
    try:
        spans = SpanSet()
        spans.add_non_mvcc(SpanAccess.READ_WRITE, keys.range_descriptor_key(new.start_key))
        guard = await r.latches.acquire(spans)
        try:
            await r._ensure_lease()
            cur = r.desc
            if cur is None or cur.generation + 1 != new.generation or cur.range_id != new.range_id:
                return False  # a split or another change got in first: plan again
            batch = r.store.engine.new_batch()
            delta = MVCCStats()
            write_descriptor(batch, new, delta)
            cmd = RaftCommand(
                id=os.urandom(8),
                proposer_lease_seq=r.lease.sequence if r.lease is not None else 0,
                write_batch=batch.repr(),
                stats_delta={k: v for k, v in delta.counters().items() if v},
                new_desc=new.SerializeToString(),
            )
            await r.propose_and_wait(cmd, conf_change=cc)
        finally:
            r.latches.release(guard)
        await r.store.update_meta([new])
        return True
    finally:
        r.changing_replicas = False
