"""Leader leases: who may serve a range's reads and evaluate its writes.

A lease names one replica and a time interval ``[start, expiration)`` on the
HLC. It is a replicated record (applied through Raft like any command), so
every replica agrees on the sequence of leases, and a new leaseholder can
only take over once the previous lease has *expired* — by its own clock,
which may be ahead of the old holder's by up to the maximum clock offset.
The old holder therefore stops serving at ``expiration - max_offset`` (the
*stasis* period): when the new lease starts (``start > prev.expiration`` by
the new holder's clock) no old-holder read can still be in progress.

Rules enforced when a lease request applies (deterministically on every
replica, in `check_lease_request`):

* the request names the lease it replaces (`prev_lease_seq`); if another
  lease applied in between, it is rejected;
* an *extension* (same replica) keeps start and sequence and moves
  expiration forward only;
* a *new holder* must start after the previous lease's expiration, unless the
  previous holder itself proposed the change (a *transfer*: the transferor
  stops serving as soon as it proposes, so an overlap is harmless);
* a new holder gets ``sequence = prev.sequence + 1``.

The leaseholder is the range's Raft leader: only the leader requests leases
(see `Replica.maybe_acquire_lease`), and a leader that sees the lease held by
another live replica hands Raft leadership to it. The timestamp cache of a new
leaseholder starts with its low-water mark at the lease start.
"""

from __future__ import annotations

import enum

from crdb_py.pb import data_pb2
from crdb_py.util.hlc import Timestamp, ts_from_proto, ts_to_proto


class LeaseState(enum.Enum):
    VALID = "valid"  # may serve
    STASIS = "stasis"  # within max-offset of expiration: may not serve
    EXPIRED = "expired"
    NONE = "none"  # the range never had a lease


def lease_state(lease: data_pb2.Lease | None, now: Timestamp, max_offset_nanos: int) -> LeaseState:
    if lease is None or lease.sequence == 0:
        return LeaseState.NONE
    exp = ts_from_proto(lease.expiration)
    if now >= exp:
        return LeaseState.EXPIRED
    if now.wall_time >= exp.wall_time - max_offset_nanos:
        return LeaseState.STASIS
    return LeaseState.VALID


def owned_by(lease: data_pb2.Lease | None, replica_id: int) -> bool:
    return lease is not None and lease.sequence > 0 and lease.replica.replica_id == replica_id


def make_lease(
    prev: data_pb2.Lease | None,
    replica: data_pb2.ReplicaDescriptor,
    now: Timestamp,
    duration_nanos: int,
    term: int,
    *,
    transfer_start: Timestamp | None = None,
) -> data_pb2.Lease:
    """The lease `replica` should request now (an extension when it holds `prev`)."""
    lease = data_pb2.Lease()
    lease.replica.CopyFrom(replica)
    lease.term = term
    exp = Timestamp(now.wall_time + duration_nanos, 0)
    if prev is not None and prev.sequence > 0 and prev.replica.replica_id == replica.replica_id:
        lease.start.CopyFrom(prev.start)
        lease.sequence = prev.sequence
        exp = exp.forward(ts_from_proto(prev.expiration))
    else:
        start = transfer_start if transfer_start is not None else now
        if prev is not None and prev.sequence > 0 and transfer_start is None:
            start = start.forward(ts_from_proto(prev.expiration).next())
        ts_to_proto(start, lease.start)
        lease.sequence = (prev.sequence if prev is not None else 0) + 1
        exp = exp.forward(Timestamp(start.wall_time + duration_nanos, 0))
    ts_to_proto(exp, lease.expiration)
    return lease


def check_lease_request(
    prev: data_pb2.Lease | None,
    new: data_pb2.Lease,
    prev_lease_seq: int,
    *,
    transfer: bool,
) -> str | None:
    """None if `new` may replace `prev`, else the reason it is rejected."""
    prev_seq = prev.sequence if prev is not None else 0
    if prev_lease_seq != prev_seq:
        return f"lease request based on lease #{prev_lease_seq}, but lease #{prev_seq} applied since"
    if prev is None or prev_seq == 0:
        return None if new.sequence == 1 else f"first lease must have sequence 1, not {new.sequence}"
    if prev.replica.replica_id == new.replica.replica_id and not transfer:
        if new.sequence != prev.sequence:
            return "lease extension must keep the sequence"
        if ts_from_proto(new.expiration) < ts_from_proto(prev.expiration):
            return "lease extension may not shorten the lease"
        return None
    if new.sequence != prev.sequence + 1:
        return f"new lease must have sequence {prev.sequence + 1}, not {new.sequence}"
    if transfer:
        return None
    if not ts_from_proto(prev.expiration) < ts_from_proto(new.start):
        return "previous lease has not expired at the new lease's start"
    return None
