"""Up-replication: bring every range to its replication factor.

Run periodically by each range's leaseholder (one change at a time):

1. if the range has a learner, promote it to voter once it has caught up
   (its raft match index reached our applied index);
2. else, if the range has fewer voters than ``min(replication factor, live
   nodes)``, add a *learner* on a live node that has no replica: the learner
   receives a raft snapshot and the log without counting toward quorum, so a
   slow new replica never stalls writes.

A membership change is a raft conf change whose context carries the command
that writes the new descriptor; meta addressing is updated after it applies.
Removing replicas of dead nodes (down-replication / rebalancing) is not done
yet.
"""

from __future__ import annotations

import os
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


async def maybe_replicate(r: Replica) -> str | None:
    """One step toward the replication target; returns what it did."""
    if r.changing_replicas or r.desc is None or not r.is_leader() or not r.owns_valid_lease():
        return None
    store = r.store
    desc = r.desc
    live = sorted(store.node_dialer.live_node_ids())
    want = min(store.config.replication_factor, len(live))
    learners = [x for x in desc.replicas if x.type == data_pb2.LEARNER]
    voters = [x for x in desc.replicas if x.type == data_pb2.VOTER_FULL]
    if learners:
        lr = learners[0]
        pr = r.raw_node.status().progress.get(lr.replica_id)
        if pr is not None and pr.match >= r.applied.raft_applied_index:
            new = _copy(desc)
            for x in new.replicas:
                if x.replica_id == lr.replica_id:
                    x.type = data_pb2.VOTER_FULL
            await change_replicas(r, new, ConfChange(ConfChangeType.ADD_NODE, lr.replica_id))
            return f"promoted learner {lr.replica_id} on n{lr.node_id}"
        return None
    if len(voters) >= want:
        return None
    have = {x.node_id for x in desc.replicas}
    candidates = [n for n in live if n not in have]
    if not candidates:
        return None
    node = candidates[(r.range_id + len(voters)) % len(candidates)]
    new = _copy(desc)
    rd = new.replicas.add()
    rd.node_id = node
    rd.store_id = node
    rd.replica_id = new.next_replica_id
    rd.type = data_pb2.LEARNER
    new.next_replica_id += 1
    await change_replicas(r, new, ConfChange(ConfChangeType.ADD_LEARNER_NODE, rd.replica_id))
    return f"added learner {rd.replica_id} on n{node}"


def _copy(desc: data_pb2.RangeDescriptor) -> data_pb2.RangeDescriptor:
    d = data_pb2.RangeDescriptor()
    d.CopyFrom(desc)
    d.generation += 1
    return d


async def change_replicas(r: Replica, new: data_pb2.RangeDescriptor, cc: ConfChange) -> None:
    r.changing_replicas = True
    try:
        spans = SpanSet()
        spans.add_non_mvcc(SpanAccess.READ_WRITE, keys.range_descriptor_key(new.start_key))
        guard = await r.latches.acquire(spans)
        try:
            await r._ensure_lease()
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
    finally:
        r.changing_replicas = False
