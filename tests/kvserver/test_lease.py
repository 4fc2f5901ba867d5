"""Lease rules (crdb_py/kvserver/lease.py): every rule has a case that breaks it."""

from __future__ import annotations

from crdb_py.kvserver.lease import (
    LeaseState,
    check_lease_request,
    lease_state,
    make_lease,
    owned_by,
)
from crdb_py.pb import data_pb2
from crdb_py.util.hlc import Timestamp

SEC = 1_000_000_000
OFFSET = SEC // 2


def rep(i: int) -> data_pb2.ReplicaDescriptor:
    return data_pb2.ReplicaDescriptor(node_id=i, store_id=i, replica_id=i)


def test_first_lease_and_states():
    lease = make_lease(None, rep(1), Timestamp(10 * SEC), 3 * SEC, term=1)
    assert lease.sequence == 1 and owned_by(lease, 1) and not owned_by(lease, 2)
    assert check_lease_request(None, lease, 0, transfer=False) is None
    assert lease_state(lease, Timestamp(11 * SEC), OFFSET) == LeaseState.VALID
    # within max offset of the expiration: stasis, must not serve
    assert lease_state(lease, Timestamp(12 * SEC + OFFSET), OFFSET) == LeaseState.STASIS
    assert lease_state(lease, Timestamp(13 * SEC), OFFSET) == LeaseState.EXPIRED
    assert lease_state(None, Timestamp(1), OFFSET) == LeaseState.NONE


def test_extension_keeps_sequence_and_start():
    l1 = make_lease(None, rep(1), Timestamp(10 * SEC), 3 * SEC, term=1)
    l2 = make_lease(l1, rep(1), Timestamp(12 * SEC), 3 * SEC, term=1)
    assert l2.sequence == l1.sequence and l2.start == l1.start
    assert l2.expiration.wall_time == 15 * SEC
    assert check_lease_request(l1, l2, l1.sequence, transfer=False) is None
    shrunk = data_pb2.Lease()
    shrunk.CopyFrom(l2)
    shrunk.expiration.wall_time = 11 * SEC
    assert "shorten" in check_lease_request(l1, shrunk, l1.sequence, transfer=False)


def test_new_holder_must_wait_for_expiration():
    l1 = make_lease(None, rep(1), Timestamp(10 * SEC), 3 * SEC, term=1)
    # proposed by replica 2 while lease 1 is still valid: its start is pushed
    # past l1's expiration by make_lease, and the check accepts it
    l2 = make_lease(l1, rep(2), Timestamp(11 * SEC), 3 * SEC, term=2)
    assert l2.sequence == 2 and l2.start.wall_time >= l1.expiration.wall_time
    assert check_lease_request(l1, l2, 1, transfer=False) is None
    # a forged overlapping lease is rejected
    bad = data_pb2.Lease()
    bad.CopyFrom(l2)
    bad.start.wall_time = 11 * SEC
    bad.start.logical = 0
    assert "not expired" in check_lease_request(l1, bad, 1, transfer=False)
    # unless the current holder proposed it (a transfer)
    assert check_lease_request(l1, bad, 1, transfer=True) is None


def test_stale_request_rejected():
    l1 = make_lease(None, rep(1), Timestamp(10 * SEC), 3 * SEC, term=1)
    l2 = make_lease(l1, rep(2), Timestamp(14 * SEC), 3 * SEC, term=2)
    # a request that was based on "no lease" arrives after l1 applied
    late = make_lease(None, rep(3), Timestamp(10 * SEC), 3 * SEC, term=1)
    assert "applied since" in check_lease_request(l1, late, 0, transfer=False)
    assert "sequence" in check_lease_request(l1, l1, 1, transfer=True)
    assert check_lease_request(l1, l2, 1, transfer=False) is None
