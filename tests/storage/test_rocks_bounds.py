"""Regression: a forward scan's upper bound must stay valid for the whole
iteration even when the caller passed a temporary bytes object (rocksdict
keeps only a pointer to it)."""

from __future__ import annotations

from crdb_py.storage.rocks import RocksEngine


def test_temporary_upper_bound_is_honoured(tmp_path):
    eng = RocksEngine(str(tmp_path / "db"))
    try:
        for p in (b"a", b"b", b"c"):
            for i in range(50):
                eng.put(p + b"%03d" % i, b"v")
        prefix = b"b"
        for _ in range(50):
            it = eng.iter_range(prefix, prefix + b"\xff")  # temporary bound
            junk = [bytes([i]) * 64 for i in range(200)]  # reuse freed memory
            keys = [k for k, _ in it]
            del junk
            assert len(keys) == 50 and all(k.startswith(b"b") for k in keys)
    finally:
        eng.close()
