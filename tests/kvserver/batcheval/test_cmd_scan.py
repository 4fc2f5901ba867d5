from __future__ import annotations

import pytest

from crdb_py.kvserver.evaluate import declare_keys
from crdb_py.kvserver.spanset import DeclaredSpan, SpanAccess, SpanSet, make_span
from crdb_py.util.errors import ReadWithinUncertaintyIntervalError, WriteIntentError
from tests.kvserver.batcheval.helpers import (
    Env,
    batch,
    delete,
    full_desc,
    k,
    make_txn,
    put,
    rscan,
    scan,
    ts,
)


def _fill(env: Env) -> None:
    """a..e at ts 5 (values "a".."e" x2), c deleted at 7, f written at 20."""
    for c in "abcde":
        env.write(k(c), (c * 2).encode(), ts(5))
    env.run(batch(delete(k("c")), at=ts(7)))
    env.write(k("f"), b"ff", ts(20))


def _rows(resp: object) -> list[tuple[bytes, bytes]]:
    return [(r.key, r.value.raw_bytes) for r in resp.rows]  # type: ignore[attr-defined]


def _resume(resp: object) -> tuple[bytes, bytes] | None:
    h = resp.header  # type: ignore[attr-defined]
    return (h.resume_span.key, h.resume_span.end_key) if h.HasField("resume_span") else None


# (reverse, at, max_keys, target_bytes, rows, resume span)
SCANS = [
    (False, 6, 0, 0, "abcde", None),
    (False, 7, 0, 0, "abde", None),
    (False, 30, 0, 0, "abdef", None),
    (False, 4, 0, 0, "", None),
    # Resume spans start at the next key met, even if it turns out deleted.
    (False, 30, 2, 0, "ab", (k("c"), k("z"))),
    (False, 30, 4, 0, "abde", (k("f"), k("z"))),
    (False, 30, 5, 0, "abdef", None),  # exactly exhausted: nothing left
    (False, 30, 0, 5, "ab", (k("c"), k("z"))),  # rows are 2 + 2 bytes: the 2nd reaches 5
    (False, 30, 0, 1, "a", (k("b"), k("z"))),  # at least one row
    (True, 30, 0, 0, "fedba", None),
    (True, 6, 0, 0, "edcba", None),
    (True, 30, 2, 0, "fe", (k(""), k("d") + b"\x00")),
    (True, 30, 3, 0, "fed", (k(""), k("c") + b"\x00")),
    (True, 30, 0, 1, "f", (k(""), k("e") + b"\x00")),
]


@pytest.mark.parametrize(("reverse", "at", "max_keys", "target", "want", "resume"), SCANS)
def test_scan_table(
    any_env: Env,
    reverse: bool,
    at: int,
    max_keys: int,
    target: int,
    want: str,
    resume: tuple[bytes, bytes] | None,
) -> None:
    _fill(any_env)
    req = (rscan if reverse else scan)(k(""), k("z"))
    br, res = any_env.run(batch(req, at=ts(at), max_keys=max_keys, target_bytes=target))
    resp = br.responses[0].reverse_scan if reverse else br.responses[0].scan
    assert _rows(resp) == [(k(c), (c * 2).encode()) for c in want]
    assert _resume(resp) == resume
    assert resp.header.num_keys == len(want) == res.num_keys
    assert resp.header.num_bytes == 4 * len(want) == res.num_bytes


def test_scan_resume_span_continues_where_it_stopped(env: Env) -> None:
    """Following resume spans page through exactly the full result."""
    for i in range(17):
        env.write(k(f"{i:02d}"), b"v", ts(5))
    for req_fn in (scan, rscan):
        span: tuple[bytes, bytes] | None = (k(""), k("z"))
        seen: list[bytes] = []
        while span is not None:
            br, _ = env.run(batch(req_fn(*span), at=ts(9), max_keys=4))
            resp = br.responses[0].scan if req_fn is scan else br.responses[0].reverse_scan
            assert len(resp.rows) <= 4
            seen += [r.key for r in resp.rows]
            span = _resume(resp)
        expect = [k(f"{i:02d}") for i in range(17)]
        assert seen == (expect if req_fn is scan else expect[::-1])


def test_scan_intents(env: Env) -> None:
    _fill(env)
    t1 = make_txn(ts(10))
    env.run(batch(put(k("b"), b"B", seq=1), put(k("d"), b"D", seq=2), txn=t1))
    # Below the intents: invisible.
    br, _ = env.run(batch(scan(k(""), k("z")), at=ts(9)))
    assert _rows(br.responses[0].scan) == [(k(c), (c * 2).encode()) for c in "abde"]
    # At or above: every conflicting intent is reported at once.
    with pytest.raises(WriteIntentError) as ei:
        env.run(batch(scan(k(""), k("z")), at=ts(10)))
    assert [i.key for i in ei.value.intents] == [k("b"), k("d")]
    # The txn itself sees its writes (at its sequence).
    br, _ = env.run(batch(scan(k(""), k("z"), seq=5), txn=t1))
    assert _rows(br.responses[0].scan) == [
        (k("a"), b"aa"),
        (k("b"), b"B"),
        (k("d"), b"D"),
        (k("e"), b"ee"),
    ]
    # Inconsistent: committed values below the intents, intents reported.
    br, res = env.run(batch(rscan(k(""), k("z")), at=ts(15), inconsistent=True))
    assert [r.key for r in br.responses[0].reverse_scan.rows] == [k(c) for c in "edba"]
    assert sorted(i.key for i in res.encountered_intents) == [k("b"), k("d")]


def test_scan_uncertainty(env: Env) -> None:
    _fill(env)
    with pytest.raises(ReadWithinUncertaintyIntervalError):
        env.run(batch(scan(k(""), k("z")), txn=make_txn(ts(15), uncertainty=ts(25))))
    br, _ = env.run(batch(scan(k(""), k("z")), txn=make_txn(ts(15), uncertainty=ts(19))))
    assert len(br.responses[0].scan.rows) == 4


def test_scan_declares_span_read_only() -> None:
    desc = full_desc()
    got = declare_keys(desc, batch(scan(k("a"), k("m")), rscan(k("p"), k("q")), at=ts(4)))
    assert got == SpanSet(
        [
            DeclaredSpan(make_span(k("a"), k("m")), SpanAccess.READ_ONLY, ts(4)),
            DeclaredSpan(make_span(k("p"), k("q")), SpanAccess.READ_ONLY, ts(4)),
        ]
    )
