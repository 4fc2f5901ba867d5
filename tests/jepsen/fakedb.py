"""An in-memory stand-in for `SyncDB` so workloads can be tested without a cluster.

`FakeDB.run_txn(fn)` runs `fn` under one global lock (serial, hence
serializable) on a private copy of the data, installed on return; commit
timestamps come from a counter. Single operations (`get`, `put`, ...) take
the lock each on their own and yield the GIL, so `NonTransactionalDB` over
it interleaves for real.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable
from typing import Any

from crdb_py.util.errors import ConditionFailedError
from crdb_py.util.hlc import Timestamp


class _Ops:
    def __init__(self, data: dict[bytes, bytes]) -> None:
        self.data = data

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        self.data[key] = value

    def cput(self, key: bytes, value: bytes, expected: bytes | None) -> None:
        if self.data.get(key) != expected:
            raise ConditionFailedError(self.data.get(key))
        self.data[key] = value

    def scan(self, lo: bytes, hi: bytes, max_rows: int = 0) -> list[tuple[bytes, bytes]]:
        keys = sorted(self.data)
        rows = [(k, self.data[k]) for k in keys[bisect.bisect_left(keys, lo):bisect.bisect_left(keys, hi)]]
        return rows[:max_rows] if max_rows else rows

    def reverse_scan(self, lo: bytes, hi: bytes, max_rows: int = 0) -> list[tuple[bytes, bytes]]:
        rows = self.scan(lo, hi)[::-1]
        return rows[:max_rows] if max_rows else rows


class _Txn(_Ops):
    def __init__(self, data: dict[bytes, bytes], ts: Timestamp) -> None:
        super().__init__(dict(data))
        self.txn = self
        self.commit_timestamp = ts

    def commit(self) -> None:
        pass


class FakeDB:
    def __init__(self, step: float = 0.0) -> None:
        self.data: dict[bytes, bytes] = {}
        self.lock = threading.Lock()
        self.clock = 0
        self.step = step  # seconds slept inside each single operation

    def run_txn(self, fn: Callable[[Any], Any], **_: Any) -> Any:
        with self.lock:
            self.clock += 1
            t = _Txn(self.data, Timestamp(self.clock, 0))
            out = fn(t)
            self.data = t.data
            return out

    def _one(self, name: str, *args: Any) -> Any:
        time.sleep(self.step)
        with self.lock:
            return getattr(_Ops(self.data), name)(*args)

    def get(self, key: bytes) -> bytes | None:
        return self._one("get", key)

    def put(self, key: bytes, value: bytes) -> None:
        self._one("put", key, value)
        time.sleep(self.step)

    def cput(self, key: bytes, value: bytes, expected: bytes | None) -> None:
        self._one("cput", key, value, expected)

    def scan(self, lo: bytes, hi: bytes, max_rows: int = 0) -> list[tuple[bytes, bytes]]:
        return self._one("scan", lo, hi, max_rows)

    def reverse_scan(self, lo: bytes, hi: bytes, max_rows: int = 0) -> list[tuple[bytes, bytes]]:
        return self._one("reverse_scan", lo, hi, max_rows)
