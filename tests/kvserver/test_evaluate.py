"""Batch-level evaluation: validation, range bounds, budgets, errors, stats."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from crdb_py.kvserver import evaluate
from crdb_py.kvserver.batcheval.command import REGISTRY, Command, Result
from crdb_py.kvserver.evaluate import batch_flags, declare_keys, evaluate_batch
from crdb_py.kvserver.spanset import SpanAccess, SpanSet
from crdb_py.pb import api_pb2, data_pb2
from crdb_py.storage import (
    MemEngine,
    MVCCStats,
    compute_stats,
    mvcc_resolve_write_intent_range,
)
from crdb_py.util import keys
from crdb_py.util.errors import (
    CrdbError,
    InternalError,
    InvalidArgumentError,
    RangeKeyMismatchError,
    TransactionStatusError,
    ValueTooLargeError,
    WriteIntentError,
)
from crdb_py.util.hlc import ts_from_proto
from tests.kvserver.batcheval.helpers import (
    RU,
    Env,
    batch,
    cput,
    delete,
    delrange,
    get,
    inc,
    k,
    make_txn,
    put,
    rscan,
    scan,
    ts,
)


def _resume(resp: Any) -> tuple[bytes, bytes] | None:
    h = resp.header
    return (h.resume_span.key, h.resume_span.end_key) if h.HasField("resume_span") else None


def _inner(ru: api_pb2.ResponseUnion) -> Any:
    return getattr(ru, ru.WhichOneof("value"))


# ---- flags and declarations ---------------------------------------------------------


@pytest.mark.parametrize(
    ("reqs", "flags"),
    [
        ([get(k("a"))], (False, True, False)),
        ([get(k("a")), scan(k("a"), k("b"))], (False, True, False)),
        ([get(k("a")), put(k("a"), b"v")], (True, False, False)),
        ([delrange(k("a"), k("b"))], (True, False, False)),
    ],
)
def test_batch_flags(reqs: list[RU], flags: tuple[bool, bool, bool]) -> None:
    assert batch_flags(batch(*reqs, at=ts(1))) == flags


def test_batch_flags_admin(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = Command("admin_split", lambda *a: None, lambda *a: Result(), is_admin=True)
    monkeypatch.setitem(REGISTRY, "admin_split", fake)
    ru = RU()
    ru.admin_split.header.key = k("m")
    assert batch_flags(batch(ru)) == (False, False, True)
    with pytest.raises(InvalidArgumentError, match="alone"):
        declare_keys(evaluate_desc(), batch(get(k("a")), ru, at=ts(1)))


def evaluate_desc(
    start: bytes = keys.KEY_MIN, end: bytes = keys.KEY_MAX
) -> data_pb2.RangeDescriptor:
    return data_pb2.RangeDescriptor(range_id=7, start_key=start, end_key=end)


def test_declare_keys_of_a_mixed_batch() -> None:
    txn = make_txn(ts(5), ts(6), uncertainty=ts(9))
    ss = declare_keys(
        evaluate_desc(),
        batch(
            get(k("a")), put(k("b"), b"x"), scan(k("c"), k("f")), delrange(k("x"), k("y")), txn=txn
        ),
    )
    got = sorted((str(d.span), d.access, d.ts) for d in ss)
    assert got == sorted(
        [
            (repr(k("a")), SpanAccess.READ_ONLY, ts(9)),
            (repr(k("b")), SpanAccess.READ_WRITE, ts(6)),
            (f"[{k('c')!r}, {k('f')!r})", SpanAccess.READ_ONLY, ts(9)),
            (f"[{k('x')!r}, {k('y')!r})", SpanAccess.READ_WRITE, ts(6)),
        ]
    )


def test_declare_keys_up_to_a_non_txn_uncertainty_limit() -> None:
    lk = keys.range_descriptor_key(k("a"))
    ss = declare_keys(
        evaluate_desc(),
        batch(get(k("a")), scan(k("b"), k("c")), get(lk), put(k("d"), b"v"), at=ts(5)),
        uncertainty_limit=ts(8),
    )
    got = sorted((str(d.span), d.access, d.ts) for d in ss)
    assert got == sorted(
        [
            (repr(k("a")), SpanAccess.READ_ONLY, ts(8)),
            (f"[{k('b')!r}, {k('c')!r})", SpanAccess.READ_ONLY, ts(8)),
            (repr(lk), SpanAccess.READ_ONLY, ts(0)),  # non-MVCC stays non-MVCC
            (repr(k("d")), SpanAccess.READ_WRITE, ts(5)),  # writes are not moved
        ]
    )


def _with_header(ru: RU, key: bytes, end: bytes = b"") -> RU:
    inner = getattr(ru, ru.WhichOneof("value"))
    inner.header.key, inner.header.end_key = key, end
    return ru


INVALID = [
    ("empty key", get(b""), "key must not be empty"),
    ("point with end", _with_header(get(b""), k("a"), k("b")), "must not have an end key"),
    ("scan without end", _with_header(scan(b"", b""), k("a")), "needs an end key"),
    ("end == key", scan(k("a"), k("a")), "must sort after"),
    ("end < key", rscan(k("b"), k("a")), "must sort after"),
    ("key >= KEY_MAX", put(keys.KEY_MAX, b"v"), "less than KEY_MAX"),
    ("end > KEY_MAX", scan(k("a"), keys.KEY_MAX + b"\x00"), "exceed KEY_MAX"),
    ("raw key", get(keys.raft_log_key(1, 1)), "reserved"),
    ("non-range-local", put(b"\x01z", b"v"), "not addressable"),
    ("span from raw space", scan(b"\x00", k("a")), "reserved"),
    ("mixed local/global", delrange(keys.range_descriptor_key(k("a")), k("b")), "mixes"),
    ("bad local end", scan(keys.range_descriptor_key(k("a")), b"\x01l"), "not an addressable"),
]


@pytest.mark.parametrize(("what", "ru", "msg"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_requests(what: str, ru: RU, msg: str) -> None:
    name = ru.WhichOneof("value")
    ba = batch(get(k("ok")), ru, at=ts(5))
    for call in (
        lambda: declare_keys(evaluate_desc(), ba),
        lambda: evaluate_batch(MemEngine(), ba, desc=evaluate_desc(), now=ts(9), stats=MVCCStats()),
    ):
        with pytest.raises(InvalidArgumentError, match=msg) as ei:
            call()
        assert name in str(ei.value) and "#1" in str(ei.value)
        assert ei.value.index == 1


def test_valid_edge_keys_accepted() -> None:
    """Meta keys, range-local keys and spans, and spans from LOCAL_MAX are fine."""
    lo, hi = keys.range_local_span(k("a"), k("b"))
    ba = batch(
        get(keys.meta_key(k("a"))),
        scan(keys.LOCAL_MAX, keys.META_MAX),
        scan(lo, hi),
        put(keys.transaction_key(k("a"), b"\x03" * 16), b"rec"),
        at=ts(5),
    )
    assert len(declare_keys(evaluate_desc(), ba)) == 4
    evaluate_batch(MemEngine().new_batch(), ba, desc=evaluate_desc(), now=ts(9), stats=MVCCStats())


def test_empty_and_unsupported_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidArgumentError, match="empty batch"):
        declare_keys(evaluate_desc(), batch(at=ts(1)))
    ba = batch(get(k("a")), RU(), at=ts(1))
    with pytest.raises(InvalidArgumentError, match="request 1 of the batch is empty") as ei:
        declare_keys(evaluate_desc(), ba)
    assert ei.value.index == 1
    monkeypatch.delitem(REGISTRY, "increment")
    with pytest.raises(InvalidArgumentError, match="unsupported request 'increment'") as ei:
        batch_flags(batch(get(k("a")), inc(k("a"), 1), at=ts(1)))
    assert ei.value.index == 1


def test_txn_only_command_needs_txn(monkeypatch: pytest.MonkeyPatch) -> None:
    real = REGISTRY["put"]
    monkeypatch.setitem(
        REGISTRY,
        "put",
        Command("put", real.declare_keys, real.evaluate, is_write=True, is_txn=True),
    )
    with pytest.raises(InvalidArgumentError, match="requires a transaction"):
        declare_keys(evaluate_desc(), batch(put(k("a"), b"v"), at=ts(1)))
    declare_keys(evaluate_desc(), batch(put(k("a"), b"v"), txn=make_txn(ts(1))))


@pytest.mark.parametrize(
    ("ba", "msg"),
    [
        (batch(get(k("a")), txn=make_txn(ts(5)), inconsistent=True), "transactional"),
        (batch(get(k("a")), put(k("b"), b"v"), at=ts(5), inconsistent=True), "read-only"),
        (batch(scan(k("a"), k("b")), at=ts(5), max_keys=-1), "negative"),
        (batch(get(k("a")), txn=make_txn(ts(0))), "read timestamp"),
        (batch(get(k("a")), txn=make_txn(ts(9), ts(8))), "below its read timestamp"),
    ],
)
def test_invalid_headers(ba: api_pb2.BatchRequest, msg: str) -> None:
    with pytest.raises(InvalidArgumentError, match=msg):
        declare_keys(evaluate_desc(), ba)


def test_finalized_txn_cannot_write() -> None:
    for status in (data_pb2.COMMITTED, data_pb2.ABORTED):
        txn = make_txn(ts(5))
        txn.status = status
        with pytest.raises(TransactionStatusError):
            evaluate_batch(
                MemEngine().new_batch(),
                batch(put(k("a"), b"v"), txn=txn),
                desc=evaluate_desc(),
                now=ts(9),
                stats=MVCCStats(),
            )


# ---- values too large --------------------------------------------------------------


def test_value_too_large(monkeypatch: pytest.MonkeyPatch) -> None:
    big = b"x" * (evaluate.MAX_VALUE_BYTES + 1)
    for ru in (put(k("a"), big), cput(k("a"), b"v", big)):
        with pytest.raises(ValueTooLargeError) as ei:
            evaluate_batch(
                MemEngine().new_batch(),
                batch(get(k("z")), ru, at=ts(5)),
                desc=evaluate_desc(),
                now=ts(9),
                stats=MVCCStats(),
            )
        assert ei.value.index == 1
    # At the limit is fine.
    evaluate_batch(
        MemEngine().new_batch(),
        batch(put(k("a"), big[:-1]), at=ts(5)),
        desc=evaluate_desc(),
        now=ts(9),
        stats=MVCCStats(),
    )
    monkeypatch.setattr(evaluate, "MAX_BATCH_BYTES", 1000)
    with pytest.raises(ValueTooLargeError, match="per batch") as ei:
        evaluate_batch(
            MemEngine().new_batch(),
            batch(*(put(k(str(i)), b"v" * 300) for i in range(4)), at=ts(5)),
            desc=evaluate_desc(),
            now=ts(9),
            stats=MVCCStats(),
        )
    assert ei.value.index == 3


# ---- range bounds ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ru", "ok"),
    [
        (get(k("c")), True),
        (get(k("lzzz")), True),
        (get(k("b")), False),
        (get(k("m")), False),  # the end key belongs to the next range
        (scan(k("c"), k("m")), True),
        (rscan(k("d"), k("e")), True),
        (scan(k("b"), k("d")), False),
        (scan(k("d"), k("n")), False),
        (put(keys.transaction_key(k("d"), b"\x01" * 16), b"r"), True),  # anchored inside
        (put(keys.transaction_key(k("a"), b"\x01" * 16), b"r"), False),  # anchored outside
        (scan(*keys.range_local_span(k("c"), k("m"))), True),
        (scan(*keys.range_local_span(k("c"), k("n"))), False),
    ],
)
def test_range_key_mismatch(ru: RU, ok: bool) -> None:
    desc = evaluate_desc(k("c"), k("m"))
    ba = batch(get(k("d")), ru, at=ts(5))
    declare_keys(desc, ba)  # the shape is valid either way

    def run() -> api_pb2.BatchResponse:
        return evaluate_batch(MemEngine().new_batch(), ba, desc=desc, now=ts(9), stats=MVCCStats())[
            0
        ]

    if ok:
        assert len(run().responses) == 2
    else:
        with pytest.raises(RangeKeyMismatchError) as ei:
            run()
        assert ei.value.range_desc == desc
        inner = getattr(ru, ru.WhichOneof("value"))
        assert (ei.value.key, ei.value.end_key) == (inner.header.key, inner.header.end_key)
        assert ei.value.index == 1


# ---- limits across the batch -------------------------------------------------------


@pytest.fixture
def filled() -> Env:
    env = Env(MemEngine())
    for c in "abcdefgh":
        env.write(k(c), c.encode(), ts(5))
    return env


def test_max_keys_shared_across_requests(filled: Env) -> None:
    ba = batch(
        scan(k("a"), k("c")),  # a, b: 2 of 5
        get(k("d")),  # 1 more: 3
        rscan(k("e"), k("z")),  # h, g: budget spent, resume
        scan(k("a"), k("z")),  # not evaluated: whole span
        get(k("a")),  # not evaluated: its key
        put(k("p"), b"p"),  # writes are not limited
        delrange(k("a"), k("b")),  # not evaluated
        at=ts(9),
        max_keys=5,
    )
    br, res = filled.run(ba)
    r = [_inner(x) for x in br.responses]
    assert [x.key for x in r[0].rows] == [k("a"), k("b")] and _resume(r[0]) is None
    assert r[1].value.raw_bytes == b"d"
    assert [x.key for x in r[2].rows] == [k("h"), k("g")]
    assert _resume(r[2]) == (k("e"), k("f") + b"\x00")
    assert list(r[3].rows) == [] and _resume(r[3]) == (k("a"), k("z"))
    assert not r[4].HasField("value") and _resume(r[4]) == (k("a"), b"")
    assert filled.value(k("p")) == b"p"
    assert list(r[6].keys) == [] and _resume(r[6]) == (k("a"), k("b"))
    assert filled.value(k("a")) == b"a"  # the delete range did not run
    assert res.num_keys == 5


def test_target_bytes_shared_across_requests(filled: Env) -> None:
    # Each row is 2 + 1 = 3 bytes.
    ba = batch(scan(k("a"), k("c")), scan(k("c"), k("z")), get(k("h")), at=ts(9), target_bytes=8)
    br, _ = filled.run(ba)
    r = [_inner(x) for x in br.responses]
    assert [x.key for x in r[0].rows] == [k("a"), k("b")] and _resume(r[0]) is None
    assert [x.key for x in r[1].rows] == [k("c")]  # 9 >= 8 after it
    assert _resume(r[1]) == (k("d"), k("z"))
    assert _resume(r[2]) == (k("h"), b"") and not r[2].HasField("value")


def test_a_limit_that_exactly_runs_out_stops_later_requests(filled: Env) -> None:
    br, _ = filled.run(batch(scan(k("a"), k("c")), scan(k("c"), k("e")), at=ts(9), max_keys=2))
    r = [_inner(x) for x in br.responses]
    assert len(r[0].rows) == 2 and _resume(r[0]) is None
    assert list(r[1].rows) == [] and _resume(r[1]) == (k("c"), k("e"))


def test_no_limits_no_resume_spans(filled: Env) -> None:
    br, res = filled.run(batch(scan(k("a"), k("z")), rscan(k("a"), k("z")), at=ts(9)))
    assert [len(_inner(x).rows) for x in br.responses] == [8, 8]
    assert all(_resume(_inner(x)) is None for x in br.responses)
    assert res.num_keys == 16


# ---- errors, sequencing, response header -------------------------------------------


def test_error_index_is_the_failing_request(filled: Env) -> None:
    t1 = make_txn(ts(20))
    filled.run(batch(put(k("c"), b"t1"), txn=t1))
    for i in range(4):
        reqs: list[RU] = [put(k(f"p{j}"), b"v") for j in range(4)]
        reqs[i] = put(k("c"), b"x")
        with pytest.raises(WriteIntentError) as ei:
            filled.run(batch(*reqs, at=ts(30)))
        assert ei.value.index == i
    with pytest.raises(CrdbError) as e2:
        filled.run(batch(get(k("a")), scan(k("a"), k("z")), at=ts(30)))
    assert e2.value.index == 1


def test_each_request_runs_at_its_own_sequence(filled: Env) -> None:
    t = make_txn(ts(10))
    br, _ = filled.run(
        batch(
            get(k("a"), seq=0),
            put(k("a"), b"1", seq=1),
            get(k("a"), seq=1),
            put(k("a"), b"2", seq=2),
            get(k("a"), seq=1),  # reads as of sequence 1
            get(k("a"), seq=2),
            txn=t,
        )
    )
    got = [br.responses[i].get.value.raw_bytes for i in (0, 2, 4, 5)]
    assert got == [b"a", b"1", b"1", b"2"]
    assert t.meta.sequence == 0  # the caller's txn is not modified


def test_response_header_and_now(filled: Env) -> None:
    t = make_txn(ts(10))
    ba = batch(get(k("a")), txn=t)
    br, _ = filled.run(ba)
    assert br.header.txn == t
    assert ts_from_proto(br.now) == filled.now
    assert len(br.responses) == 1 and br.responses[0].WhichOneof("value") == "get"


# ---- the declared-span assertion (and its broken variant) --------------------------


def test_undeclared_access_is_caught(monkeypatch: pytest.MonkeyPatch, filled: Env) -> None:
    real = REGISTRY["put"]

    def declares_wrong_key(desc: Any, header: Any, req: Any, spans: SpanSet) -> None:
        spans.add(SpanAccess.READ_WRITE, k("elsewhere"), ts=ts(1))

    def declares_too_high(desc: Any, header: Any, req: Any, spans: SpanSet) -> None:
        spans.add(SpanAccess.READ_WRITE, req.header.key, ts=ts(10**9))

    def declares_read_only(desc: Any, header: Any, req: Any, spans: SpanSet) -> None:
        spans.add(SpanAccess.READ_ONLY, req.header.key, ts=ts(10**9))

    for broken in (declares_wrong_key, declares_too_high, declares_read_only):
        monkeypatch.setitem(REGISTRY, "put", Command("put", broken, real.evaluate, is_write=True))
        with pytest.raises(InternalError, match="undeclared"):
            filled.run(batch(put(k("a"), b"v"), at=ts(9)))
    # The real declaration passes the same check.
    monkeypatch.setitem(REGISTRY, "put", real)
    filled.run(batch(put(k("a"), b"v"), at=ts(9)))

    real_scan = REGISTRY["scan"]

    def declares_half(desc: Any, header: Any, req: Any, spans: SpanSet) -> None:
        spans.add(SpanAccess.READ_ONLY, req.header.key, k("b"), ts=ts(10**9))

    monkeypatch.setitem(
        REGISTRY,
        "scan",
        Command("scan", declares_half, real_scan.evaluate, is_read=True, is_range=True),
    )
    with pytest.raises(InternalError, match="undeclared"):
        filled.run(batch(scan(k("a"), k("z")), at=ts(9)))
    filled.run(batch(scan(k("a"), k("b")), at=ts(9)))  # within the declaration: fine


# ---- stats -------------------------------------------------------------------------


def _random_request(rng: random.Random, seq: int) -> RU:
    def key(i: int) -> bytes:
        return k(f"k{i:02d}")

    i = rng.randrange(16)
    op = rng.randrange(8)
    if op == 0:
        return put(key(i), rng.randbytes(rng.randrange(0, 6)), seq=seq)
    if op == 1:
        return cput(key(i), b"c", rng.choice([None, b"", b"c"]), allow=rng.random() < 0.3, seq=seq)
    if op == 2:
        return inc(key(i), rng.randrange(-3, 4), seq=seq)
    if op == 3:
        return delete(key(i), seq=seq)
    if op == 4:
        return delrange(key(i), key(i + rng.randrange(1, 4)), seq=seq)
    if op == 5:
        return scan(key(i), key(i + rng.randrange(1, 4)), seq=seq)
    if op == 6:
        return get(key(i), seq=seq)
    return put(key(i), b"v%d" % seq, seq=seq)


def _stats_history(env: Env, seed: int, n: int) -> int:
    """Random batches, plain and in two txns (each finished now and then by
    resolving its intents committed or aborted, and replaced); errors are
    allowed and discard the batch. Returns how many batches applied."""
    rng = random.Random(seed)
    clock = 10
    txns = [make_txn(ts(clock)) for _ in range(2)]
    seqs = [0, 0]
    applied = 0
    for _ in range(n):
        clock += rng.randrange(0, 3)
        which = rng.randrange(6)
        if which >= 4:  # finish a txn
            i = rng.randrange(2)
            status = rng.choice([data_pb2.COMMITTED, data_pb2.ABORTED])
            wb = env.engine.new_batch()
            mvcc_resolve_write_intent_range(
                wb, k(""), k("z"), txns[i].meta, status, stats=env.stats
            )
            env.engine.write(wb)
            txns[i], seqs[i] = make_txn(ts(clock)), 0
            continue
        reqs: list[RU] = []
        for _ in range(rng.randrange(1, 4)):
            if which < 2:
                seqs[which] += 1
                reqs.append(_random_request(rng, seqs[which]))
            else:
                reqs.append(_random_request(rng, 0))
        if which < 2:
            if rng.random() < 0.2:  # the txn moves its write timestamp up
                t = txns[which]
                wts = ts_from_proto(t.meta.write_timestamp).add(rng.randrange(1, 5))
                t.meta.write_timestamp.wall_time = wts.wall_time
            ba = batch(*reqs, txn=txns[which], max_keys=rng.choice([0, 0, 2]))
        else:
            # Mostly at the present, sometimes in the past (write too old).
            at = clock if rng.random() < 0.8 else rng.randrange(1, clock + 1)
            ba = batch(*reqs, at=ts(at), max_keys=rng.choice([0, 0, 2]))
        try:
            env.run(ba)
            applied += 1
        except CrdbError:
            pass
    return applied


@pytest.mark.parametrize("seed", range(12))
def test_stats_deltas_match_recomputation(seed: int) -> None:
    env = Env(MemEngine())
    applied = _stats_history(env, seed, 80)
    assert applied > 15  # the history is not all errors
    assert env.stats.counters() == compute_stats(env.engine).counters()
    assert env.stats.key_count > 0


@pytest.mark.slow
def test_stats_soak() -> None:
    for seed in range(1000, 1400):
        env = Env(MemEngine())
        _stats_history(env, seed, 200)
        assert env.stats.counters() == compute_stats(env.engine).counters(), seed


def test_stats_deltas_match_recomputation_rocks(tmp_path: Path) -> None:
    from crdb_py.storage.rocks import RocksEngine

    engine = RocksEngine(str(tmp_path / "db"))
    try:
        env = Env(engine)
        _stats_history(env, 99, 80)
        assert env.stats.counters() == compute_stats(engine).counters()
    finally:
        engine.close()


def test_stats_check_catches_a_lost_delta() -> None:
    """Broken variant: dropping one batch's delta is detected."""
    env = Env(MemEngine())
    _stats_history(env, 3, 40)
    wb = env.engine.new_batch()
    evaluate_batch(
        wb, batch(put(k("new"), b"v"), at=ts(100)), desc=env.desc, now=ts(101), stats=MVCCStats()
    )
    env.engine.write(wb)  # applied, but its delta is thrown away
    assert env.stats.counters() != compute_stats(env.engine).counters()
