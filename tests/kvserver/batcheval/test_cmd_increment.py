from __future__ import annotations

import pytest

from crdb_py.storage import decode_int_value
from crdb_py.util.errors import InvalidArgumentError, WriteIntentError
from tests.kvserver.batcheval.helpers import Env, batch, inc, k, make_txn, put, ts


def test_increment_from_absent_and_accumulating(any_env: Env) -> None:
    br, _ = any_env.run(batch(inc(k("n"), 5), inc(k("m"), 1), at=ts(5)))
    assert [r.increment.new_value for r in br.responses] == [5, 1]
    br, _ = any_env.run(batch(inc(k("n"), -7), at=ts(6)))
    assert br.responses[0].increment.new_value == -2
    br, _ = any_env.run(batch(inc(k("n"), 10), at=ts(7)))
    assert br.responses[0].increment.new_value == 8
    assert decode_int_value(any_env.value(k("n")) or b"") == 8


@pytest.mark.parametrize(
    ("existing", "by"),
    [
        (b"abc", 1),  # not an integer
        (b"", 1),  # an empty value is not an integer
        ((2**63 - 1).to_bytes(8, "big"), 1),  # overflow
        ((2**63).to_bytes(8, "big"), -1),  # underflow: that is -2**63
    ],
)
def test_increment_errors(env: Env, existing: bytes, by: int) -> None:
    env.write(k("n"), existing, ts(5))
    with pytest.raises(InvalidArgumentError) as ei:
        env.run(batch(put(k("other"), b"x"), inc(k("n"), by), at=ts(6)))
    assert ei.value.index == 1
    assert env.value(k("n")) == existing


def test_increment_in_txn(env: Env) -> None:
    t1 = make_txn(ts(10))
    br, _ = env.run(batch(inc(k("n"), 2, seq=1), inc(k("n"), 3, seq=2), txn=t1))
    assert [r.increment.new_value for r in br.responses] == [2, 5]
    with pytest.raises(WriteIntentError):
        env.run(batch(inc(k("n"), 1), at=ts(20)))
