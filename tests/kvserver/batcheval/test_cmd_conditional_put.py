from __future__ import annotations

import pytest

from crdb_py.util.errors import ConditionFailedError, WriteIntentError
from tests.kvserver.batcheval.helpers import Env, batch, cput, delete, get, k, make_txn, put, ts

# (existing value or None, expected (None = must be absent), allow_if_does_not_exist,
#  failure's actual value or "ok")
CASES = [
    (None, None, False, "ok"),
    (None, b"x", False, None),
    (None, b"x", True, "ok"),
    (b"x", b"x", False, "ok"),
    (b"x", b"x", True, "ok"),
    (b"x", b"y", False, b"x"),
    (b"x", b"y", True, b"x"),
    (b"x", None, False, b"x"),
    (b"", None, False, b""),  # an empty value exists
    (b"", b"", False, "ok"),
]


@pytest.mark.parametrize(("existing", "exp", "allow", "outcome"), CASES)
def test_cput_table(
    any_env: Env, existing: bytes | None, exp: bytes | None, allow: bool, outcome: object
) -> None:
    if existing is not None:
        any_env.write(k("a"), existing, ts(5))
    req = cput(k("a"), b"new", exp, allow=allow)
    if outcome == "ok":
        any_env.run(batch(req, at=ts(9)))
        assert any_env.value(k("a")) == b"new"
    else:
        with pytest.raises(ConditionFailedError) as ei:
            any_env.run(batch(put(k("b"), b"b"), req, at=ts(9)))
        assert ei.value.actual_value == outcome
        assert ei.value.index == 1
        assert any_env.value(k("a")) == existing


def test_cput_compares_against_newest_value(env: Env) -> None:
    """A value committed above the write timestamp fails the condition (the
    writer cannot be allowed to ignore it)."""
    env.write(k("a"), b"old", ts(5))
    env.write(k("a"), b"newer", ts(20))
    with pytest.raises(ConditionFailedError) as ei:
        env.run(batch(cput(k("a"), b"v", b"old"), at=ts(10)))
    assert ei.value.actual_value == b"newer"


def test_cput_deleted_counts_as_absent(env: Env) -> None:
    env.write(k("a"), b"old", ts(5))
    env.run(batch(delete(k("a")), at=ts(6)))
    env.run(batch(cput(k("a"), b"v", None), at=ts(7)))
    assert env.value(k("a")) == b"v"


def test_cput_in_txn_sees_own_writes_and_blocks_on_others(env: Env) -> None:
    t1 = make_txn(ts(10))
    env.run(batch(put(k("a"), b"mine", seq=1), cput(k("a"), b"again", b"mine", seq=2), txn=t1))
    env.run(batch(cput(k("a"), b"3rd", b"again", seq=3), txn=t1))
    assert env.one(get(k("a"), seq=3), txn=t1).value.raw_bytes == b"3rd"
    with pytest.raises(ConditionFailedError) as ei:
        env.run(batch(cput(k("a"), b"4th", b"mine", seq=4), txn=t1))
    assert ei.value.actual_value == b"3rd"
    with pytest.raises(WriteIntentError):
        env.run(batch(cput(k("a"), b"x", None), at=ts(30)))
