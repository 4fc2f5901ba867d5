"""Each workload over an in-memory client: valid when the database is
serializable, flagged by its checker when transactions are switched off
(`NonTransactionalDB`: the planted bug), and failures / ambiguity are
recorded as `fail` / `info` as the client contract says."""

from __future__ import annotations

import random
import threading

import pytest

from crdb_py.jepsen.client import KVClient, NonTransactionalDB, classify
from crdb_py.jepsen.history import History, load
from crdb_py.jepsen.workloads import WORKLOADS
from crdb_py.util import errors
from tests.jepsen.fakedb import FakeDB


def _drive(workload_name: str, db: object, tmp_path, *, workers: int = 4, ops: int = 60,
           seed: int = 7):
    w = WORKLOADS[workload_name]()
    client = KVClient(db, b"t/")
    path = tmp_path / "h.jsonl"
    h = History(path=path)
    w.setup(client)
    pids = iter(range(10_000))
    lock = threading.Lock()

    def one(p: int, op) -> bool:
        h.invoke(p, op.f, op.value, key=op.key)
        try:
            h.ok(p, w.apply(client, op))
            return True
        except Exception as e:
            (h.fail if classify(e) == "fail" else h.info)(p, error=repr(e))
            return classify(e) == "fail"

    def worker(i: int) -> None:
        rng = random.Random(seed * 100 + i)
        with lock:
            p = next(pids)
        for _ in range(ops):
            if not one(p, w.generate(rng)):
                with lock:
                    p = next(pids)

    ts = [threading.Thread(target=worker, args=(i,)) for i in range(workers)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    with lock:
        p = next(pids)
    for op in w.final_ops():
        one(p, op)
    h.close()
    return w, load(path)


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_workload_valid_on_a_serializable_db(name: str, tmp_path) -> None:
    w, h = _drive(name, FakeDB(), tmp_path)
    v = w.check(h)
    assert v.valid, v.explanation
    oks = [o for o in h.ops if o.type == "ok"]
    assert len(oks) >= 4 * 60, "every operation of the serial fake succeeds"


@pytest.mark.parametrize("name,expect", [
    ("bank", {"wrong-total", "negative-balance"}),
    ("list-append", None),
    ("monotonic", {"duplicate-value", "same-timestamp", "out-of-order"}),
])
def test_checkers_catch_non_transactional_db(name: str, expect, tmp_path) -> None:
    w, h = _drive(name, NonTransactionalDB(FakeDB(step=0.0005)), tmp_path, ops=40)
    v = w.check(h)
    assert not v.valid, f"{name}: the checker missed a non-transactional database"
    if expect is not None:
        assert set(v.anomalies) & expect, v.anomalies


def test_register_cas_failure_is_recorded_as_ok_false(tmp_path) -> None:
    db = FakeDB()
    c = KVClient(db, b"r/")
    c.reg_write(1, 5)
    assert c.reg_cas(1, 4, 9) is False
    assert c.reg_read(1) == 5
    assert c.reg_cas(1, 5, 9) is True
    assert c.reg_read(1) == 9


def test_classify_never_calls_ambiguity_a_failure() -> None:
    assert classify(errors.AmbiguousResultError("x")) == "info"
    assert classify(TimeoutError()) == "info"
    assert classify(errors.NodeUnavailableError(2)) == "info"
    assert classify(errors.InternalError("boom")) == "info"
    assert classify(errors.TransactionAbortedError("ABORT_REASON_PUSHER_ABORTED")) == "fail"
    assert classify(errors.ConditionFailedError(b"1")) == "fail"


def test_list_append_and_monotonic_values() -> None:
    db = FakeDB()
    c = KVClient(db, b"x/")
    assert c.list_txn([["append", 1, 10], ["r", 1, None]]) == [["append", 1, 10], ["r", 1, [10]]]
    a, b = c.mono_inc(), c.mono_inc()
    assert (a["read"], a["insert"], b["read"], b["insert"]) == (0, 1, 1, 2)
    assert a["ts"] < b["ts"]
    assert c.mono_read() == [1, 2]
    c.bank_setup({0: 10, 1: 0})
    assert c.transfer(0, 1, 30) is False
    assert c.transfer(0, 1, 4) is True
    assert c.read_balances() == {0: 6, 1: 4}
