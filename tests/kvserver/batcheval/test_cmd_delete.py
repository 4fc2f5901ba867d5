from __future__ import annotations

import pytest

from crdb_py.storage import mvcc_get_intent
from crdb_py.util.errors import WriteIntentError, WriteTooOldError
from tests.kvserver.batcheval.helpers import Env, batch, delete, k, make_txn, put, ts


def test_delete_found_key(any_env: Env) -> None:
    any_env.write(k("a"), b"v", ts(5))
    br, _ = any_env.run(batch(delete(k("a")), delete(k("zz")), at=ts(6)))
    assert [r.delete.found_key for r in br.responses] == [True, False]
    assert any_env.value(k("a")) is None
    assert any_env.value(k("a"), ts(5)) == b"v"
    # Deleting again finds nothing.
    br, _ = any_env.run(batch(delete(k("a")), at=ts(7)))
    assert br.responses[0].delete.found_key is False


def test_delete_errors(env: Env) -> None:
    env.write(k("a"), b"v", ts(10))
    with pytest.raises(WriteTooOldError):
        env.run(batch(delete(k("a")), at=ts(9)))
    t1 = make_txn(ts(20))
    env.run(batch(put(k("b"), b"t1"), txn=t1))
    with pytest.raises(WriteIntentError):
        env.run(batch(delete(k("b")), at=ts(30)))


def test_txn_delete_of_absent_key_leaves_an_intent(env: Env) -> None:
    t1 = make_txn(ts(20))
    br, _ = env.run(batch(delete(k("a")), txn=t1))
    assert br.responses[0].delete.found_key is False
    md = mvcc_get_intent(env.engine, k("a"))
    assert md is not None and md.deleted and md.txn.id == t1.meta.id
