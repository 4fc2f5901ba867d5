"""Range splits: one range becomes two at a split key.

The leaseholder evaluates `AdminSplit` under a write latch over the whole
range: it writes the shrunken left descriptor and the new right descriptor
(range-local keys) and proposes them with a *split trigger*. When the command
applies — on every replica, deterministically — the right-hand range is born
with raft state at index 10 (identical on all its replicas, so no snapshot is
needed), the left's lease copied, and its MVCC stats computed from the data.
The right-hand range's replicas have the same replica ids and stores as the
left's; the left's raft leader campaigns for the right at once.

Addressing (the meta entries `meta_key(end_key) -> descriptor`) is updated
after the split applied, with ordinary writes to the meta range. The two
steps are not atomic (M4's transactions will make them so): a lookup in
between finds the old, wider descriptor, is answered `RangeKeyMismatchError`
carrying the current descriptor, and the client retries — nothing is lost.

The right-hand range inherits the left's abort span (`abortspan.copy_to`):
a poisoned txn's removed intents may lie on either side, so both must keep
refusing it. The copies are written at evaluation, into the split's write
batch under the right's range id, so every replica applies the same entries
(entries older than the GC threshold are left behind).

The right-hand range also inherits the left's GC thresholds
(`gcthreshold`), written by the trigger from the left's applied state: its
data was collected under them, so reads at or below them must keep failing
on both sides.

If the right-hand replica already exists and is initialized (a snapshot from
the right's leader overtook the split on a slow replica), the trigger leaves
it alone.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from crdb_py.kvserver import abortspan, gcthreshold
from crdb_py.kvserver.raftcmd import RaftCommand
from crdb_py.kvserver.replica import (
    compute_range_stats,
    range_data_spans,
    replica_for_node,
    write_descriptor,
    write_initial_range_state,
)
from crdb_py.kvserver.spanset import SpanAccess, SpanSet
from crdb_py.pb import data_pb2
from crdb_py.storage import MVCCStats
from crdb_py.util import keys
from crdb_py.util.errors import InvalidArgumentError, RangeKeyMismatchError

if TYPE_CHECKING:
    from crdb_py.kvserver.replica import Replica


def validate_split_key(split_key: bytes) -> None:
    if not split_key:
        raise InvalidArgumentError("split key must not be empty")
    if split_key < keys.META_MAX:
        raise InvalidArgumentError(
            f"cannot split at {split_key!r}: keys below {keys.META_MAX!r} (local and meta) "
            f"must stay in the first range"
        )
    if split_key >= keys.KEY_MAX:
        raise InvalidArgumentError(f"cannot split at {split_key!r}: beyond the key space")


async def admin_split(r: Replica, split_key: bytes) -> tuple[data_pb2.RangeDescriptor, data_pb2.RangeDescriptor]:
    validate_split_key(split_key)
    assert r.desc is not None
    if split_key == r.desc.start_key:
        return data_pb2.RangeDescriptor(), r.desc  # already split here
    if not (r.desc.start_key < split_key < r.desc.end_key):
        raise RangeKeyMismatchError(split_key, b"", r.desc)
    await r._ensure_lease()
    new_id = await r.store.allocate_range_id()
    spans = SpanSet()
    for s, e in range_data_spans(r.desc):
        spans.add_non_mvcc(SpanAccess.READ_WRITE, s, e)
    guard = await r.latches.acquire(spans)
    try:
        await r._ensure_lease()
        desc = r.desc
        if split_key == desc.start_key:
            return data_pb2.RangeDescriptor(), desc
        if not (desc.start_key < split_key < desc.end_key):
            raise RangeKeyMismatchError(split_key, b"", desc)
        left = data_pb2.RangeDescriptor()
        left.CopyFrom(desc)
        left.end_key = split_key
        left.generation = desc.generation + 1
        right = data_pb2.RangeDescriptor(
            range_id=new_id,
            start_key=split_key,
            end_key=desc.end_key,
            next_replica_id=desc.next_replica_id,
            generation=left.generation,
        )
        right.replicas.extend(desc.replicas)
        batch = r.store.engine.new_batch()
        delta = MVCCStats()
        write_descriptor(batch, left, delta)
        write_descriptor(batch, right, delta)
        abortspan.copy_to(
            r.store.engine,
            batch,
            desc.range_id,
            new_id,
            threshold=r.store.clock.now().add(-abortspan.TXN_CLEANUP_THRESHOLD_NANOS),
        )
        cmd = RaftCommand(
            id=os.urandom(8),
            proposer_lease_seq=r.lease.sequence if r.lease is not None else 0,
            write_batch=batch.repr(),
            stats_delta={k: v for k, v in delta.counters().items() if v},
            split_left=left.SerializeToString(),
            split_right=right.SerializeToString(),
        )
        await r.propose_and_wait(cmd)
    finally:
        r.latches.release(guard)
    await r.store.update_meta([left, right])
    return left, right


def apply_split(r: Replica, cmd: RaftCommand, batch: object, post: list) -> None:
    """The split trigger, run while applying the split command on every replica."""
    left = data_pb2.RangeDescriptor.FromString(cmd.split_left)
    right = data_pb2.RangeDescriptor.FromString(cmd.split_right)
    right_stats = compute_range_stats(batch, right)
    r.stats.subtract(right_stats)
    r.set_desc(left)
    store = r.store
    if replica_for_node(right, store.config.store_id) is None:
        return
    existing = store.replicas.get(right.range_id)
    if existing is not None and existing.initialized:
        return
    term, vote = 0, 0
    if existing is not None:
        hs = existing.raft_storage.hard_state()
        term, vote = hs.term, hs.vote
        existing.destroyed = True
    lease = None
    if r.lease is not None:
        lease = data_pb2.Lease()
        lease.CopyFrom(r.lease)
    write_initial_range_state(batch, store.engine, right, right_stats, lease, term, vote)
    # The right-hand side's data was collected under the left's thresholds.
    if not r.gc_threshold.is_empty():
        gcthreshold.set_gc_threshold(batch, right.range_id, r.gc_threshold)  # type: ignore[arg-type]
    if not r.txn_span_gc_threshold.is_empty():
        gcthreshold.set_txn_span_gc_threshold(batch, right.range_id, r.txn_span_gc_threshold)  # type: ignore[arg-type]
    campaign = r.is_leader()
    post.append(lambda: store.add_split_replica(right, campaign=campaign))
