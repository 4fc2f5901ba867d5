from __future__ import annotations

import pytest

from crdb_py.kvserver.evaluate import declare_keys
from crdb_py.kvserver.spanset import DeclaredSpan, SpanAccess, SpanSet, make_span
from crdb_py.util.errors import WriteIntentError, WriteTooOldError
from tests.kvserver.batcheval.helpers import (
    Env,
    batch,
    delete,
    delrange,
    full_desc,
    k,
    make_txn,
    put,
    scan,
    ts,
)


def _fill(env: Env) -> None:
    for c in "abcdef":
        env.write(k(c), c.encode(), ts(5))
    env.run(batch(delete(k("c")), at=ts(6)))


def _live(env: Env, at: int = 100) -> str:
    br, _ = env.run(batch(scan(k(""), k("z")), at=ts(at)))
    return "".join(r.key[1:].decode() for r in br.responses[0].scan.rows)


@pytest.mark.parametrize(
    ("start", "end", "max_keys", "deleted", "resume", "left"),
    [
        ("", "z", 0, "abdef", None, ""),
        ("b", "e", 0, "bd", None, "aef"),
        ("a", "z", 2, "ab", ("c", "z"), "def"),  # resumes at the next key met (deleted c)
        ("a", "z", 3, "abd", ("e", "z"), "ef"),
        ("a", "z", 5, "abdef", None, ""),
        ("x", "z", 0, "", None, "abdef"),
    ],
)
def test_delete_range_table(
    any_env: Env,
    start: str,
    end: str,
    max_keys: int,
    deleted: str,
    resume: tuple[str, str] | None,
    left: str,
) -> None:
    _fill(any_env)
    br, res = any_env.run(batch(delrange(k(start), k(end)), at=ts(10), max_keys=max_keys))
    r = br.responses[0].delete_range
    assert list(r.keys) == [k(c) for c in deleted]
    assert r.header.num_keys == len(deleted) == res.num_keys
    if resume is None:
        assert not r.header.HasField("resume_span")
    else:
        assert (r.header.resume_span.key, r.header.resume_span.end_key) == (
            k(resume[0]),
            k(resume[1]),
        )
    assert _live(any_env) == left
    assert _live(any_env, at=9) == "abdef"  # history is kept


def test_delete_range_return_keys_off(env: Env) -> None:
    _fill(env)
    br, _ = env.run(batch(delrange(k("a"), k("z"), return_keys=False), at=ts(10)))
    r = br.responses[0].delete_range
    assert list(r.keys) == [] and r.header.num_keys == 5
    assert _live(env) == ""


def test_delete_range_conflicts(env: Env) -> None:
    _fill(env)
    env.write(k("e"), b"e2", ts(20))
    # A value newer than the deletion: it must not be silently left behind.
    with pytest.raises(WriteTooOldError) as ei:
        env.run(batch(delrange(k("a"), k("z")), at=ts(10)))
    assert ei.value.actual_timestamp == ts(20).next()
    assert _live(env) == "abdef"
    # Another txn's intent, even above the deletion's timestamp.
    t1 = make_txn(ts(50))
    env.run(batch(put(k("b"), b"t1"), txn=t1))
    with pytest.raises(WriteIntentError) as ei2:
        env.run(batch(delrange(k("a"), k("z")), at=ts(30)))
    assert [i.key for i in ei2.value.intents] == [k("b")]


def test_delete_range_in_txn(env: Env) -> None:
    _fill(env)
    t1 = make_txn(ts(10))
    br, _ = env.run(batch(delrange(k("a"), k("e"), seq=1), txn=t1))
    assert list(br.responses[0].delete_range.keys) == [k("a"), k("b"), k("d")]
    # The txn sees its deletions; others are blocked by the intents.
    br, _ = env.run(batch(scan(k(""), k("z"), seq=2), txn=t1))
    assert [r.key for r in br.responses[0].scan.rows] == [k("e"), k("f")]
    with pytest.raises(WriteIntentError):
        env.run(batch(scan(k(""), k("z")), at=ts(11)))


def test_delete_range_declares_span_read_write() -> None:
    assert declare_keys(full_desc(), batch(delrange(k("a"), k("m")), at=ts(4))) == SpanSet(
        [DeclaredSpan(make_span(k("a"), k("m")), SpanAccess.READ_WRITE, ts(4))]
    )
