"""The KV seam of the SQL layer, and the per-transaction write buffer.

`KVTxn` mirrors the async method names of `crdb_py.kvclient.txn.Txn` (so a
real `Txn` satisfies it) and `KVStore` is what opens transactions (a
`crdb_py.kvclient.db.DB`). Tests run against an in-memory fake
(tests/sql/fake_kv.py).

Write buffering. SQL never sends a write to KV before COMMIT: every put and
delete of a transaction goes into a `WriteBuffer`, a sorted overlay that
reads consult first (read-your-writes), and COMMIT sends the whole buffer
with the EndTxn in one batch (`commit_in_batch`), so a transaction costs one
round of consensus when parallel commits are on. The buffer makes two
things cheap and exact:

* statement atomicity: each statement runs under an implicit savepoint (a
  copy of the buffer's undo position); a failed statement is undone by
  rolling the buffer back, and no partial write ever reached KV;
* SAVEPOINT / ROLLBACK TO: the same mechanism, named.

Conflicts are still found: reads go to KV at the txn's read timestamp and
the coordinator refreshes them when the commit timestamp moves, so a write
by another txn into anything this txn read aborts it with 40001.
Rejected: sending writes eagerly and relying on KV savepoints (ignored
sequence numbers) — the KV Txn does not expose them yet. Cost: a large
transaction holds its writes in memory until COMMIT.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from sortedcontainers import SortedDict

Row = tuple[bytes, bytes]


class KVBatch(Protocol):
    def get(self, key: bytes) -> Any: ...
    def put(self, key: bytes, value: bytes) -> Any: ...
    def cput(self, key: bytes, value: bytes, expected: bytes | None) -> Any: ...
    def delete(self, key: bytes) -> Any: ...


class KVTxn(Protocol):
    """The subset of `kvclient.txn.Txn` the SQL layer uses."""

    async def get(self, key: bytes) -> bytes | None: ...
    async def scan(self, start: bytes, end: bytes, *, max_rows: int = 0) -> list[Row]: ...
    async def reverse_scan(self, start: bytes, end: bytes, *, max_rows: int = 0) -> list[Row]: ...
    async def put(self, key: bytes, value: bytes) -> None: ...
    async def inc(self, key: bytes, delta: int = 1) -> int: ...
    def new_batch(self) -> Any: ...
    async def run(self, b: Any) -> list[Any]: ...  # results with `.value` for gets
    async def commit_in_batch(self, b: Any) -> Any: ...
    async def commit(self) -> None: ...
    async def rollback(self) -> None: ...


class KVStore(Protocol):
    """Opens transactions (a `kvclient.db.DB`)."""

    def txn(self, name: str = "") -> Any: ...


_TOMB = None


class WriteBuffer:
    """The buffered writes of one SQL transaction over its `KVTxn`."""

    def __init__(self, txn: KVTxn) -> None:
        self.txn = txn
        self.writes: SortedDict = SortedDict()  # key -> value | None (delete)
        self._undo: list[tuple[bytes, Any, bool, bool]] = []  # (key, old, had_old, new_flag)
        # Keys whose first write in this txn was a row or unique-index entry
        # that must not exist yet: sent as ConditionalPut(expect absent), so
        # the uniqueness check is done by the write, not by a read before it
        # (`defer_unique`, implicit txns only: the error then surfaces at the
        # commit of the statement's own txn).
        self.expect_absent: set[bytes] = set()
        self.defer_unique = False
        self.kv_reads = 0
        self.spans: list[tuple[bytes, bytes]] | None = None  # KV spans read (EXPLAIN ANALYZE)
        # Values read ahead in one batch (`prefetch`). A second read of a key
        # in the same txn returns the same value (or the txn fails its
        # refresh), so serving it from here is exact; own writes still win.
        self._prefetched: dict[bytes, bytes | None] = {}

    # -- savepoints -------------------------------------------------------------------
    def savepoint(self) -> int:
        return len(self._undo)

    def rollback_to(self, sp: int) -> None:
        while len(self._undo) > sp:
            key, old, had, flagged = self._undo.pop()
            if flagged:
                self.expect_absent.discard(key)
            if had:
                self.writes[key] = old
            else:
                del self.writes[key]

    # -- writes -------------------------------------------------------------------------
    def _set(self, key: bytes, value: bytes | None, absent: bool = False) -> None:
        had = key in self.writes
        flag = absent and not had and key not in self.expect_absent
        self._undo.append((key, self.writes.get(key), had, flag))
        self.writes[key] = value
        if flag:
            self.expect_absent.add(key)

    def put(self, key: bytes, value: bytes) -> None:
        self._set(key, value)

    def put_new(self, key: bytes, value: bytes) -> None:
        """A put that requires `key` to be absent in KV (see `expect_absent`);
        a key this txn already wrote is a plain put."""
        self._set(key, value, absent=True)

    def delete(self, key: bytes) -> None:
        self._set(key, _TOMB)

    # -- reads --------------------------------------------------------------------------
    async def get(self, key: bytes) -> bytes | None:
        if key in self.writes:
            return self.writes[key]
        if key in self._prefetched:
            return self._prefetched[key]
        self.kv_reads += 1
        if self.spans is not None:
            self.spans.append((key, key + b"\x00"))
        return await self.txn.get(key)

    async def get_many(self, keys: list[bytes]) -> list[bytes | None]:
        """Point reads of several keys in one KV batch (one round trip)."""
        out: list[bytes | None] = [None] * len(keys)
        remote = []
        for i, k in enumerate(keys):
            if k in self.writes:
                out[i] = self.writes[k]
            else:
                remote.append(i)
        if len(remote) == 1:
            out[remote[0]] = await self.get(keys[remote[0]])
        elif remote:
            self.kv_reads += 1
            b = self.txn.new_batch()
            for i in remote:
                b.get(keys[i])
                if self.spans is not None:
                    self.spans.append((keys[i], keys[i] + b"\x00"))
            for i, res in zip(remote, await self.txn.run(b)):
                out[i] = res.value
        return out

    async def prefetch(self, keys: list[bytes]) -> None:
        """Read `keys` in one batch now; later `get`s of them are served locally
        (a cached plan's catalog reads: one round trip instead of one each)."""
        todo = [k for k in keys if k not in self.writes and k not in self._prefetched]
        if todo:
            for k, v in zip(todo, await self.get_many(todo)):
                self._prefetched[k] = v

    async def scan(self, start: bytes, end: bytes, *, reverse: bool = False) -> list[Row]:
        """Rows in [start, end) merged with the buffer (ascending unless `reverse`)."""
        self.kv_reads += 1
        if self.spans is not None:
            self.spans.append((start, end))
        rows = await self.txn.scan(start, end)
        overlay = list(self.writes.irange(start, end, inclusive=(True, False)))
        if overlay:
            merged = dict(rows)
            for k in overlay:
                v = self.writes[k]
                if v is None:
                    merged.pop(k, None)
                else:
                    merged[k] = v
            rows = sorted(merged.items())
        return rows[::-1] if reverse else rows

    async def inc(self, key: bytes, delta: int = 1) -> int:
        """Increments go straight to KV (id allocation; gaps are fine)."""
        return await self.txn.inc(key, delta)

    # -- commit -------------------------------------------------------------------------
    def pending(self) -> Iterable[tuple[bytes, bytes | None]]:
        return self.writes.items()

    async def commit(self) -> None:
        if not self.writes:
            await self.txn.commit()
            return
        b = self.txn.new_batch()
        for k, v in self.writes.items():
            if k in self.expect_absent:
                if v is not None:  # (inserted, then deleted again: nothing to send)
                    b.cput(k, v, None)
            elif v is None:
                b.delete(k)
            else:
                b.put(k, v)
        await self.txn.commit_in_batch(b)
