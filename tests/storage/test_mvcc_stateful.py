"""Random MVCC histories on both engines, checked against a pure-Python model.

Every step runs on the model, on a MemEngine (directly) and on a RocksEngine
(through a readable WriteBatch, as command evaluation does); results and
errors must agree, both engines must hold identical bytes, and the
incrementally maintained stats must equal `compute_stats` from scratch.
"""

from __future__ import annotations

import copy

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from crdb_py.pb import data_pb2
from crdb_py.storage import (
    MemEngine,
    MVCCStats,
    compute_stats,
    mvcc_conditional_put,
    mvcc_delete_range,
    mvcc_garbage_collect,
    mvcc_get,
    mvcc_put,
    mvcc_resolve_write_intent,
    mvcc_resolve_write_intent_range,
    mvcc_scan,
)
from crdb_py.storage.mvcc import _put
from crdb_py.storage.rocks import RocksEngine
from crdb_py.util.errors import (
    ConditionFailedError,
    ReadWithinUncertaintyIntervalError,
    WriteIntentError,
    WriteTooOldError,
)
from crdb_py.util.hlc import Timestamp, ts_to_proto
from tests.storage.conftest import wipe
from tests.storage.mvcc_model import Model, ModelError, MTxn

KEYS = [b"a", b"a\x00", b"b", b"c\x00\x01", b"d"]
keys_ = st.sampled_from(KEYS)
tss = st.builds(Timestamp, st.integers(1, 12), st.integers(0, 1))
vals = st.sampled_from([b"", b"x", b"yy", b"\x00z"])
slots = st.integers(0, 1)
ignored_ = st.lists(st.tuples(st.integers(1, 6), st.integers(0, 2)).map(lambda t: (t[0], t[0] + t[1])), max_size=2)
STATUS = {"COMMITTED": data_pb2.COMMITTED, "ABORTED": data_pb2.ABORTED, "PENDING": data_pb2.PENDING}
_ROCKS: list[RocksEngine] = []


def _norm(fn, *args, **kw):  # type: ignore[no-untyped-def]
    """Run fn, turning results and errors into comparable values."""
    try:
        return ("ok", fn(*args, **kw))
    except ModelError as e:
        return ("err", e.kind, e.detail)
    except WriteIntentError as e:
        return ("err", "WriteIntentError", [i.key for i in e.intents])
    except WriteTooOldError as e:
        return ("err", "WriteTooOldError", e.actual_timestamp)
    except ReadWithinUncertaintyIntervalError as e:
        return ("err", "ReadWithinUncertaintyIntervalError", e.existing_timestamp)
    except ConditionFailedError as e:
        return ("err", "ConditionFailedError", e.actual_value)


class MVCCMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.model = Model()
        self.mem = MemEngine()
        self.rocks = wipe(_ROCKS[0])
        self.engines = [self.mem, self.rocks]
        self.stats = [MVCCStats(), MVCCStats()]
        self.txns: list[MTxn | None] = [None, None]
        self.next_id = 0

    # ---- plumbing ----
    def pb(self, t: MTxn | None) -> data_pb2.TxnMeta | None:
        if t is None:
            return None
        m = data_pb2.TxnMeta(id=t.id, key=b"a", epoch=t.epoch, sequence=t.seq)
        ts_to_proto(t.wts, m.write_timestamp)
        return m

    def reader(self, slot: int | None, back: int) -> MTxn | None:
        """The txn of `slot` reading as of `back` sequence numbers ago."""
        t = self.txns[slot] if slot is not None else None
        if t is None:
            return None
        r = copy.copy(t)
        r.seq = max(0, t.seq - back)
        return r

    def run(self, model_fn, engine_fn, write: bool = False):  # type: ignore[no-untyped-def]
        want = _norm(model_fn)
        for i, e in enumerate(self.engines):
            if write and e is self.rocks:
                b = e.new_batch()
                delta = MVCCStats()
                got = _norm(engine_fn, b, delta)
                if got[0] == "ok":
                    e.write(b)
                    self.stats[i].add(delta)
            elif write:
                got = _norm(engine_fn, e, self.stats[i])
            else:
                got = _norm(engine_fn, e)
            assert got == want, (type(e).__name__, got, want)
        return want

    # ---- rules ----
    @rule(key=keys_, ts=tss, val=vals)
    def put(self, key: bytes, ts: Timestamp, val: bytes) -> None:
        self.run(
            lambda: self.model.put(key, ts, val, None),
            lambda e, s: mvcc_put(e, key, ts, val, stats=s),
            write=True,
        )

    @rule(key=keys_, ts=tss)
    def delete(self, key: bytes, ts: Timestamp) -> None:
        self.run(
            lambda: self.model.put(key, ts, None, None),
            lambda e, s: _put(e, key, ts, b"", None, s),
            write=True,
        )

    @rule(slot=slots, ts=tss)
    @precondition(lambda self: None in self.txns)
    def begin(self, slot: int, ts: Timestamp) -> None:
        if self.txns[slot] is None:
            self.next_id += 1
            self.txns[slot] = MTxn(id=self.next_id.to_bytes(16, "big"), wts=ts)

    @rule(slot=slots, key=keys_, val=st.none() | vals)
    def txn_write(self, slot: int, key: bytes, val: bytes | None) -> None:
        t = self.txns[slot]
        if t is None:
            return
        t.seq += 1
        before = copy.deepcopy(t)
        pb = self.pb(t)
        enc = b"" if val is None else b"\x01" + val
        out = self.run(
            lambda: self.model.put(key, before.wts, val, t),
            lambda e, s: _put(e, key, before.wts, enc, pb, s),
            write=True,
        )
        if out[:2] == ("err", "WriteTooOldError"):
            t.wts = out[2]  # the coordinator moves the txn up and retries later

    @rule(slot=slots, key=keys_, val=vals, expected=st.none() | vals)
    def cput(self, slot: int, key: bytes, val: bytes, expected: bytes | None) -> None:
        t = self.txns[slot]
        ts = t.wts if t is not None else Timestamp(13)
        if t is not None:
            t.seq += 1
        pb = self.pb(t)

        def model() -> None:
            actual = self.model.latest(key, t)
            if actual != expected:
                raise ModelError("ConditionFailedError", actual)
            self.model.put(key, ts, val, t)

        out = self.run(
            model,
            lambda e, s: mvcc_conditional_put(e, key, ts, val, expected, txn=pb, stats=s),
            write=True,
        )
        if t is not None and out[:2] == ("err", "WriteTooOldError"):
            t.wts = out[2]

    @rule(slot=slots)
    def restart(self, slot: int) -> None:
        t = self.txns[slot]
        if t is not None:
            t.epoch += 1

    @rule(slot=slots, ts=tss)
    def push(self, slot: int, ts: Timestamp) -> None:
        t = self.txns[slot]
        if t is None:
            return
        t.wts = t.wts.forward(ts)
        pb = self.pb(t)
        for k in KEYS:
            self.run(
                lambda k=k: self.model.resolve(k, t, "PENDING"),
                lambda e, s, k=k: mvcc_resolve_write_intent(e, k, pb, data_pb2.PENDING, stats=s),
                write=True,
            )

    @rule(
        slot=slots,
        key=keys_,
        status=st.sampled_from(["COMMITTED", "ABORTED", "PENDING"]),
        ignored=ignored_,
    )
    def resolve_one(self, slot: int, key: bytes, status: str, ignored: list) -> None:
        t = self.txns[slot]
        if t is None:
            return
        pb = self.pb(t)
        self.run(
            lambda: self.model.resolve(key, t, status, ignored),
            lambda e, s: mvcc_resolve_write_intent(
                e, key, pb, STATUS[status], stats=s, ignored_seqnums=ignored
            ),
            write=True,
        )

    @rule(slot=slots, status=st.sampled_from(["COMMITTED", "ABORTED"]), ignored=ignored_)
    def finish(self, slot: int, status: str, ignored: list) -> None:
        t = self.txns[slot]
        if t is None:
            return
        pb = self.pb(t)

        def model() -> int:
            return sum(self.model.resolve(k, t, status, ignored) for k in KEYS)

        self.run(
            model,
            lambda e, s: mvcc_resolve_write_intent_range(
                e, b"", b"\xff", pb, STATUS[status], stats=s, ignored_seqnums=ignored
            )[0],
            write=True,
        )
        self.txns[slot] = None

    @rule(threshold=tss)
    def gc(self, threshold: Timestamp) -> None:
        def model() -> None:
            self.model.gc(threshold)

        def eng(e, s) -> None:  # type: ignore[no-untyped-def]
            mvcc_garbage_collect(e, b"", b"\xff", threshold, stats=s)

        self.run(model, eng, write=True)

    @rule(start=keys_, end=keys_, ts=tss, slot=st.none() | slots)
    def delete_range(self, start: bytes, end: bytes, ts: Timestamp, slot: int | None) -> None:
        t = self.txns[slot] if slot is not None else None
        if t is not None:
            t.seq += 1
            ts = t.wts
        pb = self.pb(t)

        def model() -> list[bytes]:
            kvs, _ = self.model.scan(start, end, ts, txn=t, fomr=True)
            saved = copy.deepcopy(self.model.keys)
            try:
                for k, _ in kvs:
                    self.model.put(k, ts, None, t)
            except ModelError:
                self.model.keys = saved
                raise
            return [k for k, _ in kvs]

        out = self.run(
            model, lambda e, s: mvcc_delete_range(e, start, end, ts, txn=pb, stats=s)[0], write=True
        )
        if t is not None and out[:2] == ("err", "WriteTooOldError"):
            t.wts = out[2]

    @rule(
        key=keys_,
        ts=tss,
        slot=st.none() | slots,
        unc=st.none() | tss,
        fomr=st.booleans(),
        inconsistent=st.booleans(),
        back=st.integers(0, 3),
    )
    def get(self, key, ts, slot, unc, fomr, inconsistent, back) -> None:  # type: ignore[no-untyped-def]
        t = self.reader(slot, back)
        if t is not None:
            inconsistent = False
        pb = self.pb(t)
        self.run(
            lambda: self.model.get(key, ts, txn=t, unc=unc, fomr=fomr, inconsistent=inconsistent),
            lambda e: mvcc_get(
                e, key, ts, txn=pb, uncertainty_limit=unc, fail_on_more_recent=fomr,
                inconsistent=inconsistent,
            ).value,
        )

    @rule(
        start=keys_,
        end=st.sampled_from([*KEYS, b"\xff"]),
        ts=tss,
        slot=st.none() | slots,
        unc=st.none() | tss,
        reverse=st.booleans(),
        max_keys=st.integers(0, 3),
        inconsistent=st.booleans(),
        back=st.integers(0, 3),
    )
    def scan(self, start, end, ts, slot, unc, reverse, max_keys, inconsistent, back) -> None:  # type: ignore[no-untyped-def]
        t = self.reader(slot, back)
        if t is not None:
            inconsistent = False
        pb = self.pb(t)

        def model():  # type: ignore[no-untyped-def]
            kvs, resume = self.model.scan(
                start, end, ts, reverse=reverse, max_keys=max_keys, txn=t, unc=unc,
                inconsistent=inconsistent,
            )
            if resume is None:
                return kvs, None
            return kvs, ((start, resume + b"\x00") if reverse else (resume, end))

        def eng(e):  # type: ignore[no-untyped-def]
            r = mvcc_scan(
                e, start, end, ts, txn=pb, reverse=reverse, max_keys=max_keys,
                uncertainty_limit=unc, inconsistent=inconsistent,
            )
            return r.kvs, r.resume_span

        self.run(model, eng)

    # ---- invariants ----
    @invariant()
    def engines_agree_and_stats_exact(self) -> None:
        data = [list(e.iter_range(b"\x01", b"\x02")) for e in self.engines]
        assert data[0] == data[1]
        for e, s in zip(self.engines, self.stats):
            assert compute_stats(e).counters() == s.counters()


def test_mvcc_matches_model_on_both_engines(shared_rocks: RocksEngine) -> None:
    _ROCKS[:] = [shared_rocks]
    run_state_machine_as_test(
        MVCCMachine,
        settings=settings(
            max_examples=200,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_mvcc_matches_model_soak(shared_rocks: RocksEngine) -> None:
    _ROCKS[:] = [shared_rocks]
    run_state_machine_as_test(
        MVCCMachine,
        settings=settings(max_examples=1500, stateful_step_count=50, deadline=None),
    )
