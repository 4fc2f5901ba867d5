"""Random operation sequences on the lock table, checked against brute force.

After every operation the table's own invariants hold, and every
`scan_and_enqueue` answer is checked against a brute-force reading of the
table: "no conflict" means no lock in the request's spans is held by another
txn at a conflicting timestamp (or reserved against it), "wait" means the
lock it waits on really blocks it. Reservations only ever go to the lowest
queued sequence number.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crdb_py.kvserver.concurrency.lock_table import LockTable, LockTableGuard, _Lock
from crdb_py.kvserver.spanset import SpanAccess, SpanSet
from crdb_py.pb import data_pb2
from crdb_py.util.hlc import Timestamp, ts_to_proto

KEYS = [b"a", b"b", b"c", b"d"]
TXNS = [b"t1", b"t2", b"t3", None]

op = st.one_of(
    st.tuples(
        st.just("request"),
        st.sampled_from(TXNS),
        st.lists(
            st.tuples(st.sampled_from(KEYS), st.booleans(), st.integers(1, 30)),
            min_size=1,
            max_size=3,
        ),
    ),
    st.tuples(st.just("discover"), st.sampled_from(KEYS), st.sampled_from(TXNS[:3]), st.integers(1, 30)),
    st.tuples(st.just("acquire"), st.sampled_from(KEYS), st.sampled_from(TXNS[:3]), st.integers(1, 30)),
    st.tuples(st.just("resolve"), st.sampled_from(KEYS), st.sampled_from(TXNS[:3]),
              st.sampled_from(["commit", "abort", "push"]), st.integers(1, 40)),
    st.tuples(st.just("rescan"), st.integers(0, 50)),
    st.tuples(st.just("finish"), st.integers(0, 50)),
)


def meta(tid: bytes, ts: int) -> data_pb2.TxnMeta:
    m = data_pb2.TxnMeta(id=tid, key=tid)
    ts_to_proto(Timestamp(ts), m.write_timestamp)
    return m


def blocks(lock: _Lock, g: LockTableGuard, write: bool, ts: Timestamp) -> bool:
    """Brute-force conflict rule (the module docstring's table)."""
    if lock.holder is not None:
        if g.txn_id is not None and lock.holder.id == g.txn_id:
            return False
        return True if write else lock.ts <= ts
    res = lock.reservation
    if not write or res is None or res is g:
        return False
    if g.txn_id is not None and res.txn_id == g.txn_id:
        return False
    return res.seq < g.seq


def check_scan(lt: LockTable, g: LockTableGuard, waits: bool) -> None:
    if waits:
        ws = g.wait_state
        lock = lt._locks[ws.key]
        if ws.access is SpanAccess.READ_WRITE:
            assert lock.holder is not None or lock.reservation is not None
        else:
            assert lock.holder is not None and lock.ts <= ws.conflict_ts
        return
    for ds in g.lock_spans:
        lock = lt._locks.get(ds.span.key)
        if lock is not None:
            assert not blocks(lock, g, ds.access is SpanAccess.READ_WRITE, ds.ts), (
                f"{g!r} proceeds past {ds} with holder {lock.holder} reservation {lock.reservation}"
            )


def run_ops(ops) -> None:
    lt = LockTable()
    guards: list[LockTableGuard] = []
    for o in ops:
        kind = o[0]
        if kind == "request":
            _, txn, spans = o
            ss = SpanSet()
            for key, write, ts in spans:
                if write:
                    ss.add(SpanAccess.READ_WRITE, key)
                else:
                    ss.add(SpanAccess.READ_ONLY, key, ts=Timestamp(ts))
            g = lt.new_guard(txn, ss)
            guards.append(g)
            check_scan(lt, g, lt.scan_and_enqueue(g))
        elif kind in ("discover", "acquire"):
            _, key, tid, ts = o
            if kind == "discover":
                lt.add_discovered_lock(None, key, meta(tid, ts))
            else:
                lt.acquire_lock(key, meta(tid, ts))
        elif kind == "resolve":
            _, key, tid, what, ts = o
            status = {"commit": data_pb2.COMMITTED, "abort": data_pb2.ABORTED,
                      "push": data_pb2.PENDING}[what]
            lock = lt._locks.get(key)
            before_res = lock.reservation if lock is not None else None
            before_seqs = [sq for sq, _ in lock.writers] if lock is not None else []
            up = data_pb2.LockUpdate(status=status)
            up.span.key = key
            up.txn.CopyFrom(meta(tid, ts))
            lt.update_locks(up)
            res = lock.reservation if lock is not None else None
            if res is not None and res is not before_res:
                # a released lock goes to the lowest queued sequence number
                assert res.seq == min(before_seqs)
        elif kind == "rescan" and guards:
            g = guards[o[1] % len(guards)]
            check_scan(lt, g, lt.scan_and_enqueue(g))
        elif kind == "finish" and guards:
            g = guards.pop(o[1] % len(guards))
            lt.dequeue(g)
            assert not g.waiting and not g.reserved
        lt.check_invariants()
    for g in guards:
        lt.dequeue(g)
    lt.check_invariants()
    assert all(lk.holder is not None for lk in lt._locks.values())
    assert lt.waiter_count() == 0


@settings(max_examples=300, deadline=None)
@given(st.lists(op, max_size=40))
def test_random_operations_keep_invariants_and_conflict_rules(ops):
    run_ops(ops)


def test_brute_force_checker_catches_a_table_that_ignores_reads(monkeypatch):
    """The property can fail: a table that never blocks reads is caught."""
    orig = LockTable._must_wait

    def no_reads(self, g, lock, access, ts):
        if access is SpanAccess.READ_ONLY:
            return False
        return orig(self, g, lock, access, ts)

    monkeypatch.setattr(LockTable, "_must_wait", no_reads)
    with pytest.raises(AssertionError):
        run_ops([
            ("discover", b"a", b"t1", 5),
            ("request", b"t2", [(b"a", False, 10)]),
        ])
