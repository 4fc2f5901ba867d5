"""An in-memory, serializable, single-process transactional KV for SQL tests.

Optimistic concurrency: a txn reads a snapshot (the committed version at
its start), records the keys and spans it read, and at commit fails with
TransactionRetryError (40001) if any txn that committed after its start
wrote into that read set. Commit applies the writes atomically; rollback
discards them. Writes sent before commit (`put`) are buffered in the txn.
"""

from __future__ import annotations

import bisect
from types import SimpleNamespace
from typing import Any

from crdb_py.util import errors


class FakeBatch:
    def __init__(self) -> None:
        self.ops: list[tuple[bytes, bytes | None]] = []
        self.gets: list[bytes] = []
        self.conditions: list[tuple[bytes, bytes | None]] = []  # (key, expected value)

    def get(self, key: bytes) -> FakeBatch:
        self.gets.append(key)
        return self

    def put(self, key: bytes, value: bytes) -> FakeBatch:
        self.ops.append((key, value))
        return self

    def delete(self, key: bytes) -> FakeBatch:
        self.ops.append((key, None))
        return self

    def cput(self, key: bytes, value: bytes, expected: bytes | None) -> FakeBatch:
        self.ops.append((key, value))
        self.conditions.append((key, expected))
        return self


class FakeKV:
    """Holds versions: key -> list of (commit seq, value | None)."""

    def __init__(self) -> None:
        self.versions: dict[bytes, list[tuple[int, bytes | None]]] = {}
        self.keys: list[bytes] = []  # sorted, every key ever written
        self.seq = 0
        self.log: list[tuple[int, set[bytes]]] = []  # (commit seq, written keys)
        self.commits = 0
        self.fail_next_commits = 0  # inject retryable commit failures

    def txn(self, name: str = "") -> FakeTxn:
        return FakeTxn(self)

    def read(self, key: bytes, at: int) -> bytes | None:
        for s, v in reversed(self.versions.get(key, [])):
            if s <= at:
                return v
        return None

    def apply(self, start: int, reads: list[tuple[bytes, bytes]], writes: dict[bytes, Any]) -> None:
        if self.fail_next_commits > 0:
            self.fail_next_commits -= 1
            raise errors.TransactionRetryError("injected")
        for s, written in self.log:
            if s <= start:
                continue
            for k in written:
                for lo, hi in reads:
                    if lo <= k < hi:
                        raise errors.TransactionRetryError("RETRY_SERIALIZABLE")
        self.seq += 1
        for k, v in writes.items():
            if k not in self.versions:
                bisect.insort(self.keys, k)
            self.versions.setdefault(k, []).append((self.seq, v))
        self.log.append((self.seq, set(writes)))
        self.commits += 1


class FakeTxn:
    def __init__(self, kv: FakeKV) -> None:
        self.kv = kv
        self.start = kv.seq
        self.reads: list[tuple[bytes, bytes]] = []
        self.writes: dict[bytes, bytes | None] = {}
        self.finished = False
        self.ops = 0

    def _check(self) -> None:
        if self.finished:
            raise errors.TransactionStatusError("txn finished", reason="done")

    async def get(self, key: bytes) -> bytes | None:
        self._check()
        self.ops += 1
        self.reads.append((key, key + b"\x00"))
        if key in self.writes:
            return self.writes[key]
        return self.kv.read(key, self.start)

    async def scan(self, start: bytes, end: bytes, *, max_rows: int = 0) -> list[tuple[bytes, bytes]]:
        self._check()
        self.ops += 1
        self.reads.append((start, end))
        lo = bisect.bisect_left(self.kv.keys, start)
        hi = bisect.bisect_left(self.kv.keys, end)
        out = {}
        for k in self.kv.keys[lo:hi]:
            v = self.kv.read(k, self.start)
            if v is not None:
                out[k] = v
        for k, v in self.writes.items():
            if start <= k < end:
                if v is None:
                    out.pop(k, None)
                else:
                    out[k] = v
        rows = sorted(out.items())
        return rows[:max_rows] if max_rows else rows

    async def reverse_scan(self, start: bytes, end: bytes, *, max_rows: int = 0) -> list[tuple[bytes, bytes]]:
        rows = (await self.scan(start, end))[::-1]
        return rows[:max_rows] if max_rows else rows

    async def put(self, key: bytes, value: bytes) -> None:
        self._check()
        self.writes[key] = value

    async def inc(self, key: bytes, delta: int = 1) -> int:
        self._check()
        cur = self.writes.get(key, self.kv.read(key, self.start))
        n = (int(cur.decode()) if cur else 0) + delta
        self.writes[key] = str(n).encode()
        self.reads.append((key, key + b"\x00"))
        return n

    def new_batch(self) -> FakeBatch:
        return FakeBatch()

    async def run(self, b: FakeBatch) -> list[Any]:
        if b.ops:
            raise NotImplementedError("the SQL layer only batches reads before commit")
        return [SimpleNamespace(value=await self.get(k)) for k in b.gets]

    async def commit_in_batch(self, b: FakeBatch) -> None:
        self._check()
        for k, expected in b.conditions:  # evaluated against the latest version
            actual = self.kv.read(k, self.kv.seq)
            if actual != expected:
                self.finished = True
                raise errors.ConditionFailedError(actual)
        for k, v in b.ops:
            self.writes[k] = v
        await self.commit()

    async def commit(self) -> None:
        if self.finished:
            return
        self.finished = True
        self.kv.apply(self.start, self.reads, self.writes)

    async def rollback(self) -> None:
        self.finished = True
