"""The engine contract, run against both engines (and their batches)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crdb_py.storage import Engine, MemEngine
from crdb_py.storage.rocks import RocksEngine
from crdb_py.util.errors import StorageError
from tests.storage.conftest import wipe


def _fill(e: Engine) -> None:
    for k in (b"a", b"b", b"c", b"d", b"e"):
        e.put(k, k.upper())


def test_point_ops(engine: Engine) -> None:
    assert engine.get(b"x") is None
    engine.put(b"x", b"1")
    assert engine.get(b"x") == b"1"
    engine.put(b"x", b"2")
    assert engine.get(b"x") == b"2"
    engine.delete(b"x")
    assert engine.get(b"x") is None
    engine.delete(b"never-there")
    engine.put(b"empty", b"")
    assert engine.get(b"empty") == b""


def test_iter_range_bounds(engine: Engine) -> None:
    _fill(engine)
    assert [k for k, _ in engine.iter_range(b"b", b"d")] == [b"b", b"c"]
    assert [k for k, _ in engine.iter_range(b"b")] == [b"b", b"c", b"d", b"e"]
    assert [k for k, _ in engine.iter_range(b"b", b"d", reverse=True)] == [b"c", b"b"]
    assert [k for k, _ in engine.iter_range(b"", None, reverse=True)] == [
        b"e", b"d", b"c", b"b", b"a"]
    assert [k for k, _ in engine.iter_range(b"bb", b"dd", reverse=True)] == [b"d", b"c"]
    assert list(engine.iter_range(b"c", b"c")) == []
    assert dict(engine.iter_range(b"a", b"b")) == {b"a": b"A"}


def test_batch_is_readable_and_atomic(engine: Engine) -> None:
    _fill(engine)
    b = engine.new_batch()
    b.put(b"bb", b"new")
    b.delete(b"c")
    b.put(b"a", b"A2")
    assert b.count() == 3
    assert b.get(b"c") is None and b.get(b"a") == b"A2" and b.get(b"d") == b"D"
    assert list(b.iter_range(b"a", b"e")) == [(b"a", b"A2"), (b"b", b"B"), (b"bb", b"new"), (b"d", b"D")]
    assert [k for k, _ in b.iter_range(b"a", b"e", reverse=True)] == [b"d", b"bb", b"b", b"a"]
    # The engine does not see the batch until it is written.
    assert engine.get(b"c") == b"C" and engine.get(b"bb") is None
    engine.write(b, sync=True)
    assert engine.get(b"c") is None and engine.get(b"bb") == b"new" and engine.get(b"a") == b"A2"


def test_batch_repr_replicates(engine: Engine) -> None:
    b = engine.new_batch()
    b.put(b"k1", b"v1")
    b.put(b"k2", b"v2")
    b.delete(b"k1")
    b.put(b"k3", b"")
    other = MemEngine()
    other.put(b"k1", b"old")
    other.apply_batch_repr(b.repr(), sync=True)
    assert list(other.iter_range(b"")) == [(b"k2", b"v2"), (b"k3", b"")]
    engine.apply_batch_repr(b.repr())
    assert list(engine.iter_range(b"")) == [(b"k2", b"v2"), (b"k3", b"")]
    b.clear()
    assert b.count() == 0 and b.repr() == MemEngine().new_batch().repr()


def test_write_while_iterating(engine: Engine) -> None:
    _fill(engine)
    seen = []
    for k, _ in engine.iter_range(b"a", b"z"):
        seen.append(k)
        if len(k) == 1:  # writes may or may not be seen; never loop forever
            engine.delete(k)
            engine.put(k + b"-", b"x")
    # Every original key was visited exactly once, in order.
    assert [k for k in seen if len(k) == 1] == [b"a", b"b", b"c", b"d", b"e"]


def test_closed_engine_raises(engine: Engine) -> None:
    engine.close()
    with pytest.raises(StorageError):
        list(engine.iter_range(b""))


def test_rocks_persists_across_reopen(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    e = RocksEngine(path)
    b = e.new_batch()
    b.put(b"a", b"1")
    e.write(b, sync=True)
    it = e.iter_range(b"")
    next(it)
    del it
    e.close()
    e2 = RocksEngine(path)
    assert e2.get(b"a") == b"1"
    e2.close()


def test_rocks_lock_held_by_other_process(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    e = RocksEngine(path)
    try:
        code = (
            "from crdb_py.storage.rocks import RocksEngine\n"
            "from crdb_py.util.errors import StorageError\n"
            f"try:\n    RocksEngine({path!r})\nexcept StorageError as e:\n    print('STORAGE', e)\n"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert "STORAGE" in out.stdout and "in use by another process" in out.stdout, out
    finally:
        e.close()


_ops = st.lists(
    st.tuples(
        st.sampled_from(["put", "del", "bput", "bdel", "flush"]),
        st.binary(min_size=0, max_size=3),
        st.binary(max_size=4),
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=_ops, lo=st.binary(max_size=2), hi=st.binary(max_size=3))
def test_engine_and_batch_match_dict_model(
    shared_rocks: RocksEngine, ops: list, lo: bytes, hi: bytes
) -> None:
    engines: list[Engine] = [MemEngine(), wipe(shared_rocks)]
    for e in engines:
        model: dict[bytes, bytes] = {}
        pending: dict[bytes, bytes | None] = {}
        b = e.new_batch()
        for op, k, v in ops:
            if op == "put":
                e.put(k, v)
                model[k] = v
            elif op == "del":
                e.delete(k)
                model.pop(k, None)
            elif op == "bput":
                b.put(k, v)
                pending[k] = v
            elif op == "bdel":
                b.delete(k)
                pending[k] = None
            else:
                e.write(b)
                b = e.new_batch()
                for pk, pv in pending.items():
                    if pv is None:
                        model.pop(pk, None)
                    else:
                        model[pk] = pv
                pending = {}
            view = dict(model)
            for pk, pv in pending.items():
                if pv is None:
                    view.pop(pk, None)
                else:
                    view[pk] = pv
            want = sorted((kk, vv) for kk, vv in view.items() if lo <= kk < hi)
            assert list(b.iter_range(lo, hi)) == want
            assert list(b.iter_range(lo, hi, reverse=True)) == want[::-1]
            assert b.get(k) == view.get(k)
        assert list(e.iter_range(b"")) == sorted(model.items())
