"""Property: whatever sequence of record commands hits one txn record, a final
status never changes, and the record's epoch and write timestamp never
decrease (MODEL-CHECKS.md, parallel commits)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crdb_py.kvserver.batcheval import txn_record as tr
from crdb_py.pb import api_pb2, data_pb2
from crdb_py.storage import MemEngine
from crdb_py.util.errors import CrdbError
from crdb_py.util.hlc import Timestamp, ts_from_proto, ts_to_proto
from tests.kvserver.batcheval.helpers import Env, batch, k, make_txn, ts
from tests.kvserver.batcheval.txn_helpers import (
    SECOND,
    end_txn,
    heartbeat,
    push,
    recover,
    span,
)

BASE = make_txn(ts(10), anchor=k("a"))
# The checker's own references (the mutation tests patch the module's).
_read = tr.read_record
_FINAL = (data_pb2.COMMITTED, data_pb2.ABORTED)

attempts = st.tuples(st.integers(0, 2), st.sampled_from([10, 20, 30]), st.booleans())
nows = st.sampled_from([SECOND, 20 * SECOND])

ops = st.one_of(
    st.tuples(st.just("heartbeat"), attempts, nows),
    st.tuples(
        st.just("end"),
        attempts,
        st.sampled_from(["commit", "abort", "stage"]),
    ),
    st.tuples(
        st.just("push"),
        attempts,
        st.sampled_from([api_pb2.PUSH_TIMESTAMP, api_pb2.PUSH_ABORT, api_pb2.PUSH_TOUCH]),
        st.integers(0, 3),  # pusher priority (the pushee has 1)
        st.booleans(),  # force
        nows,
    ),
    st.tuples(st.just("recover"), attempts, st.booleans(), st.booleans()),
)


def _txn(attempt: tuple[int, int, bool]) -> data_pb2.Transaction:
    epoch, wts, refreshed = attempt
    t = data_pb2.Transaction()
    t.CopyFrom(BASE)
    t.meta.epoch = epoch
    t.meta.priority = 1
    ts_to_proto(ts(wts), t.meta.write_timestamp)
    ts_to_proto(ts(wts if refreshed else 10), t.read_timestamp)
    return t


def _apply(env: Env, op: tuple[Any, ...]) -> None:
    kind, attempt = op[0], _txn(op[1])
    if kind == "heartbeat":
        env.now = Timestamp(op[2])
        env.run(batch(heartbeat(attempt, Timestamp(op[2])), txn=attempt))
    elif kind == "end":
        how = op[2]
        ru = end_txn(
            attempt,
            commit=how != "abort",
            locks=[span(k("a"))],
            in_flight=[(k("b"), 1)] if how == "stage" else None,
        )
        env.run(batch(ru, txn=attempt))
    elif kind == "push":
        _, _, ptype, prio, force, now = op
        env.now = Timestamp(now)
        pusher = make_txn(ts(40), anchor=k("p"))
        pusher.meta.priority = prio
        env.run(batch(push(attempt.meta, pusher=pusher, kind=ptype, to=ts(35), force=force)))
    else:
        _, _, committed, use_record = op
        meta = attempt.meta
        rec = tr.read_record(env.engine, BASE.meta)
        if use_record and rec is not None:
            meta = rec.meta  # the attempt the recoverer actually saw
        env.run(batch(recover(meta, committed)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ops, min_size=1, max_size=12))
def test_final_status_never_changes(seq: list[tuple[Any, ...]]) -> None:
    engine = MemEngine()
    env = Env(engine)
    prev: data_pb2.TransactionRecord | None = None
    for op in seq:
        try:
            _apply(env, op)
        except CrdbError:
            pass  # a refused command writes nothing (Env.run applies only on success)
        rec = _read(engine, BASE.meta)
        if prev is not None:
            assert rec is not None, "a record disappeared"
            if prev.status in _FINAL:
                assert rec == prev, f"final record changed by {op}"
            assert rec.meta.epoch >= prev.meta.epoch
            assert ts_from_proto(rec.meta.write_timestamp) >= ts_from_proto(
                prev.meta.write_timestamp
            )
        prev = rec
    engine.close()


def test_property_catches_a_broken_end_txn(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check can fail: with EndTxn ignoring a COMMITTED record, a second
    rollback rewrites it as ABORTED."""
    from crdb_py.kvserver.batcheval import cmd_end_txn

    real = tr.read_record

    def forgetful(reader: Any, meta: Any) -> Any:
        rec = real(reader, meta)
        return None if rec is not None and rec.status == tr.COMMITTED else rec

    monkeypatch.setattr(cmd_end_txn.tr, "read_record", forgetful)
    with pytest.raises(AssertionError, match="final record changed"):
        test_final_status_never_changes.hypothesis.inner_test(  # type: ignore[attr-defined]
            [("end", (0, 10, True), "commit"), ("end", (0, 10, True), "abort")]
        )


def test_property_catches_a_push_that_ignores_final_status(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With PushTxn treating final records as live, a forced push aborts a
    committed txn."""
    from crdb_py.kvserver.batcheval import cmd_push_txn

    monkeypatch.setattr(cmd_push_txn.tr, "is_final", lambda status: False)
    with pytest.raises(AssertionError, match="final record changed"):
        test_final_status_never_changes.hypothesis.inner_test(  # type: ignore[attr-defined]
            [
                ("end", (0, 10, True), "commit"),
                ("push", (0, 10, True), api_pb2.PUSH_ABORT, 0, True, SECOND),
            ]
        )
