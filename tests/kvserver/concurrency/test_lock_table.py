"""The lock table as a data structure: conflicts, queues, reservations, wake-ups."""

from __future__ import annotations

import pytest

from crdb_py.kvserver.concurrency.lock_table import LockTable, LockTableGuard
from crdb_py.kvserver.spanset import SpanAccess, SpanSet
from crdb_py.pb import data_pb2
from crdb_py.util.errors import InternalError
from crdb_py.util.hlc import Timestamp, ts_to_proto


def meta(tid: bytes, ts: int = 10, epoch: int = 0) -> data_pb2.TxnMeta:
    m = data_pb2.TxnMeta(id=tid, key=tid, epoch=epoch)
    ts_to_proto(Timestamp(ts), m.write_timestamp)
    return m


def spans(*items: tuple[str, bytes, bytes | None, int]) -> SpanSet:
    ss = SpanSet()
    for kind, key, end, ts in items:
        access = SpanAccess.READ_WRITE if kind == "w" else SpanAccess.READ_ONLY
        ss.add(access, key, end, Timestamp(ts))
    return ss


def writer(lt: LockTable, tid: bytes | None, key: bytes = b"k") -> LockTableGuard:
    return lt.new_guard(tid, spans(("w", key, None, 0)))


def reader(lt: LockTable, tid: bytes | None, ts: int, key: bytes = b"k") -> LockTableGuard:
    return lt.new_guard(tid, spans(("r", key, None, ts)))


def update(txn: data_pb2.TxnMeta, status: int, key: bytes = b"k", end: bytes = b"") -> data_pb2.LockUpdate:
    up = data_pb2.LockUpdate(status=status)
    up.span.key, up.span.end_key = key, end
    up.txn.CopyFrom(txn)
    return up


def held_by(lt: LockTable, holder: data_pb2.TxnMeta, key: bytes = b"k") -> None:
    lt.add_discovered_lock(None, key, holder)


# ---- the conflict matrix ---------------------------------------------------------------------

# (request txn, access, conflict ts, lock holder, lock ts) -> must wait
MATRIX = [
    (b"t", "r", 9, b"h", 10, False),  # read below the lock
    (b"t", "r", 10, b"h", 10, True),  # read at the lock's ts
    (b"t", "r", 11, b"h", 10, True),  # read above
    (b"t", "w", 0, b"h", 10, True),  # writes conflict whatever the ts
    (b"t", "w", 5, b"h", 10, True),
    (b"h", "r", 11, b"h", 10, False),  # a txn never conflicts with itself
    (b"h", "w", 0, b"h", 10, False),
    (None, "r", 9, b"h", 10, False),  # non-txn requests conflict like a txn
    (None, "r", 10, b"h", 10, True),
    (None, "w", 0, b"h", 10, True),
]


@pytest.mark.parametrize(("txn", "kind", "ts", "holder", "lock_ts", "wait"), MATRIX)
def test_conflict_matrix_held(txn, kind, ts, holder, lock_ts, wait):
    lt = LockTable()
    held_by(lt, meta(holder, lock_ts))
    g = lt.new_guard(txn, spans((kind, b"k", None, ts)))
    assert lt.scan_and_enqueue(g) is wait
    assert g.waiting is wait
    if wait:
        assert g.wait_state.holder.id == holder
        assert g.wait_state.key == b"k"
        assert g.wait_state.conflict_ts == Timestamp(ts)
    lt.dequeue(g)
    assert lt.waiter_count() == 0


def _reserved_lock(lt: LockTable) -> LockTableGuard:
    """A lock on b"k" released by its holder and reserved by the first writer."""
    h = meta(b"h")
    held_by(lt, h)
    w1 = writer(lt, b"w1")
    assert lt.scan_and_enqueue(w1)
    lt.update_locks(update(h, data_pb2.COMMITTED))
    assert not w1.waiting and lt.reserved_by(b"k") == w1.seq
    return w1


def test_reservation_conflicts():
    lt = LockTable()
    w1 = _reserved_lock(lt)
    # reads ignore reservations
    r = reader(lt, b"r", 100)
    assert not lt.scan_and_enqueue(r)
    # a later writer of another txn waits behind the reservation, with nobody to push
    w2 = writer(lt, b"w2")
    assert lt.scan_and_enqueue(w2)
    assert w2.wait_state.holder is None
    # a writer of the reserving txn does not
    w1b = writer(lt, b"w1")
    assert not lt.scan_and_enqueue(w1b)
    # the reserving request itself re-scans freely
    assert not lt.scan_and_enqueue(w1)
    assert lt.reserved_by(b"k") == w1.seq


def test_older_writer_takes_reservation_over():
    lt = LockTable()
    old = writer(lt, b"old")  # seq 1, not yet scanned
    w1 = _reserved_lock(lt)
    assert old.seq < w1.seq
    assert not lt.scan_and_enqueue(old)
    assert lt.reserved_by(b"k") == old.seq
    assert b"k" not in w1.reserved
    lt.dequeue(w1)  # w1 no longer owns it: nothing happens
    assert lt.reserved_by(b"k") == old.seq


def test_unheld_lock_is_reserved_by_first_writer_scanning():
    lt = LockTable()
    w1 = _reserved_lock(lt)
    lt.dequeue(w1)
    assert len(lt) == 0  # nothing queued: the entry is gone


def test_discovered_own_intent_is_an_invariant_violation():
    lt = LockTable()
    g = writer(lt, b"t")
    with pytest.raises(InternalError):
        lt.add_discovered_lock(g, b"k", meta(b"t"))


# ---- queues and wake-ups ---------------------------------------------------------------------


def test_writers_queue_by_sequence_and_release_wakes_only_the_first():
    lt = LockTable()
    h = meta(b"h")
    held_by(lt, h)
    ws = [writer(lt, b"w%d" % i) for i in range(4)]
    for g in (ws[2], ws[0], ws[3], ws[1]):  # enqueue out of order
        assert lt.scan_and_enqueue(g)
    readers = [reader(lt, b"r%d" % i, 50) for i in range(3)]
    for r in readers:
        assert lt.scan_and_enqueue(r)
    assert lt.queued(b"k") == [g.seq for g in ws]
    lt.update_locks(update(h, data_pb2.ABORTED))
    assert [r.wakeups for r in readers] == [1, 1, 1] and not any(r.waiting for r in readers)
    assert [g.wakeups for g in ws] == [1, 0, 0, 0]
    assert lt.reserved_by(b"k") == ws[0].seq
    assert all(g.waiting and g.wait_state.holder is None for g in ws[1:])
    # the reservation passes on in order as each request finishes
    for i in range(1, 4):
        lt.dequeue(ws[i - 1])
        assert lt.reserved_by(b"k") == ws[i].seq
        assert ws[i].wakeups == 1 and not ws[i].waiting
        assert all(g.wakeups == 0 for g in ws[i + 1 :])
    lt.dequeue(ws[3])
    assert len(lt) == 0


def test_intent_of_reserving_txn_becomes_the_lock_and_next_writers_wait_on_it():
    lt = LockTable()
    w1 = _reserved_lock(lt)
    w2 = writer(lt, b"w2")
    assert lt.scan_and_enqueue(w2)
    lt.acquire_lock(b"k", meta(b"w1", 20))  # w1's write applied
    assert lt.lock_holder(b"k").id == b"w1" and lt.reserved_by(b"k") is None
    assert w2.waiting and w2.wait_state.holder.id == b"w1" and w2.wakeups == 1
    lt.dequeue(w1)
    assert w2.waiting  # finishing the request does not release the txn's lock


def test_acquire_on_uncontended_key_is_not_remembered():
    lt = LockTable()
    lt.acquire_lock(b"k", meta(b"t"))
    assert len(lt) == 0


def test_rediscovery_by_next_writer_replaces_reservation():
    lt = LockTable()
    w1 = _reserved_lock(lt)
    w2, w3 = writer(lt, b"w2"), writer(lt, b"w3")
    assert lt.scan_and_enqueue(w2) and lt.scan_and_enqueue(w3)
    lt.dequeue(w1)  # w1 wrote an intent nobody reported
    assert lt.reserved_by(b"k") == w2.seq and w3.wakeups == 0
    lt.add_discovered_lock(w2, b"k", meta(b"w1", 20))  # w2's evaluation met it
    assert lt.scan_and_enqueue(w2)
    assert lt.queued(b"k") == [w2.seq, w3.seq]  # w2 keeps its place ahead of w3
    assert w3.wait_state.holder.id == b"w1"


def test_pushed_lock_wakes_only_readers_below_it():
    lt = LockTable()
    h = meta(b"h", 10)
    held_by(lt, h)
    r12, r20 = reader(lt, b"a", 12), reader(lt, b"b", 20)
    w = writer(lt, b"w")
    for g in (r12, r20, w):
        assert lt.scan_and_enqueue(g)
    lt.update_locks(update(meta(b"h", 15), data_pb2.PENDING))
    assert (r12.waiting, r20.waiting, w.waiting) == (False, True, True)
    assert (r12.wakeups, r20.wakeups, w.wakeups) == (1, 0, 0)
    assert lt.lock_holder(b"k").write_timestamp.wall_time == 15
    # a later reader at 12 no longer conflicts
    assert not lt.scan_and_enqueue(reader(lt, None, 12))
    # an older timestamp never moves the lock down
    lt.update_locks(update(meta(b"h", 11), data_pb2.PENDING))
    assert lt.lock_holder(b"k").write_timestamp.wall_time == 15


def test_newer_epoch_releases_and_other_txns_updates_are_ignored():
    lt = LockTable()
    held_by(lt, meta(b"h", 10, epoch=0))
    w = writer(lt, b"w")
    assert lt.scan_and_enqueue(w)
    assert lt.update_locks(update(meta(b"x"), data_pb2.COMMITTED)) == 0
    assert w.waiting
    assert lt.update_locks(update(meta(b"h", 10, epoch=1), data_pb2.PENDING)) == 1
    assert not w.waiting and lt.reserved_by(b"k") == w.seq


def test_ranged_spans_and_ranged_updates():
    lt = LockTable()
    h = meta(b"h")
    for k in (b"a", b"b", b"x"):
        held_by(lt, h, k)
    g = lt.new_guard(b"t", spans(("r", b"a", b"c", 50)))
    assert lt.scan_and_enqueue(g) and g.wait_state.key == b"a"
    lt.update_locks(update(h, data_pb2.COMMITTED, b"a"))
    assert not g.waiting
    assert lt.scan_and_enqueue(g) and g.wait_state.key == b"b"
    assert lt.update_locks(update(h, data_pb2.COMMITTED, b"a", b"z")) == 2
    assert not lt.scan_and_enqueue(g)
    assert len(lt) == 0


def test_enqueue_on_a_lock_the_spans_do_not_cover():
    lt = LockTable()
    held_by(lt, meta(b"h", 10))
    g = reader(lt, b"t", 5)  # by its spans it would not wait
    assert not lt.scan_and_enqueue(g)
    assert lt.enqueue_on(g, b"k") and g.waiting
    assert not lt.enqueue_on(reader(lt, b"h", 5), b"k")  # own lock
    assert not lt.enqueue_on(g, b"nope")


def test_dequeue_and_clear_leave_nothing():
    lt = LockTable()
    h = meta(b"h")
    held_by(lt, h, b"k")
    held_by(lt, h, b"j")
    gs = [writer(lt, b"w%d" % i) for i in range(3)] + [reader(lt, b"r", 50, b"j")]
    for g in gs:
        assert lt.scan_and_enqueue(g)
    lt.dequeue(gs[1])
    assert lt.queued(b"k") == [gs[0].seq, gs[2].seq]
    lt.clear()
    assert len(lt) == 0 and lt.waiter_count() == 0
    assert all(not g.waiting for g in gs)
    assert [g.wakeups for g in gs] == [1, 0, 1, 1]
