"""The blocking facade: `SyncDB` / `SyncTxn` over the asyncio core.

The async `DB` lives on an event loop (a node's, `LocalCluster`'s
background loop, or a `LoopThread` of its own). `SyncDB` submits each
operation to that loop with `run_coroutine_threadsafe` and blocks the
calling thread for the result; `SyncDB.run_txn(fn)` runs the retry loop in
the calling thread and hands `fn` a `SyncTxn`, whose operations are
submitted the same way. Never call these from the loop's own thread (it
would wait for itself): that raises `RuntimeError`.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from crdb_py.kvclient.db import DB, Batch, Result, Row
from crdb_py.kvclient.txn.rounds import TxnTrace
from crdb_py.kvclient.txn.txn import Txn
from crdb_py.util import errors

T = TypeVar("T")


class LoopThread:
    """An event loop running in a daemon thread (for a sync-only program)."""

    def __init__(self, name: str = "crdb-py-kv") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        if not self.loop.is_running():
            self.loop.close()


class _OnLoop:
    def __init__(self, loop: asyncio.AbstractEventLoop, timeout: float | None) -> None:
        self._loop = loop
        self.timeout = timeout

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            coro.close()
            raise RuntimeError("SyncDB/SyncTxn called from its own event loop; use the async API")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(self.timeout)


class SyncTxn(_OnLoop):
    """Blocking view of a `Txn`."""

    def __init__(self, txn: Txn, loop: asyncio.AbstractEventLoop, timeout: float | None) -> None:
        super().__init__(loop, timeout)
        self.txn = txn

    @property
    def trace(self) -> TxnTrace:
        return self.txn.trace

    @property
    def finished(self) -> bool:
        return self.txn.finished

    def get(self, key: bytes) -> bytes | None:
        return self._call(self.txn.get(key))

    def put(self, key: bytes, value: bytes) -> None:
        self._call(self.txn.put(key, value))

    def cput(self, key: bytes, value: bytes, expected: bytes | None) -> None:
        self._call(self.txn.cput(key, value, expected))

    def inc(self, key: bytes, delta: int = 1) -> int:
        return self._call(self.txn.inc(key, delta))

    def delete(self, key: bytes) -> bool:
        return self._call(self.txn.delete(key))

    def delete_range(self, start: bytes, end: bytes) -> list[bytes]:
        return self._call(self.txn.delete_range(start, end, return_keys=True))

    def scan(self, start: bytes, end: bytes, max_rows: int = 0) -> list[Row]:
        return self._call(self.txn.scan(start, end, max_rows=max_rows))

    def reverse_scan(self, start: bytes, end: bytes, max_rows: int = 0) -> list[Row]:
        return self._call(self.txn.reverse_scan(start, end, max_rows=max_rows))

    def run(self, b: Batch) -> list[Result]:
        return self._call(self.txn.run(b))

    def commit(self) -> None:
        self._call(self.txn.commit())

    def commit_in_batch(self, b: Batch) -> list[Result]:
        return self._call(self.txn.commit_in_batch(b))

    def rollback(self) -> None:
        self._call(self.txn.rollback())


class SyncDB(_OnLoop):
    """Blocking view of a `DB` whose loop runs in another thread."""

    def __init__(
        self, db: DB, loop: asyncio.AbstractEventLoop, *, timeout: float | None = 60.0
    ) -> None:
        super().__init__(loop, timeout)
        self.db = db
        self._rng = random.Random()

    def get(self, key: bytes) -> bytes | None:
        return self._call(self.db.get(key))

    def put(self, key: bytes, value: bytes) -> None:
        self._call(self.db.put(key, value))

    def cput(self, key: bytes, value: bytes, expected: bytes | None) -> None:
        self._call(self.db.cput(key, value, expected))

    def inc(self, key: bytes, delta: int = 1) -> int:
        return self._call(self.db.inc(key, delta))

    def delete(self, key: bytes) -> bool:
        return self._call(self.db.delete(key))

    def delete_range(self, start: bytes, end: bytes, *, return_keys: bool = False) -> list[bytes]:
        return self._call(self.db.delete_range(start, end, return_keys=return_keys))

    def scan(self, start: bytes, end: bytes, max_rows: int = 0) -> list[Row]:
        return self._call(self.db.scan(start, end, max_rows=max_rows))

    def reverse_scan(self, start: bytes, end: bytes, max_rows: int = 0) -> list[Row]:
        return self._call(self.db.reverse_scan(start, end, max_rows=max_rows))

    def txn(self, name: str = "", *, priority: int = 0) -> SyncTxn:
        return SyncTxn(self.db.txn(name, priority=priority), self._loop, self.timeout)

    def run_txn(
        self,
        fn: Callable[[SyncTxn], T],
        *,
        max_retries: int = 50,
        name: str = "",
        backoff_base: float = 0.002,
        backoff_max: float = 0.5,
    ) -> T:
        """`DB.run_txn` for a synchronous `fn(SyncTxn)`."""
        txn = self.txn(name)
        attempt = 0
        while True:
            try:
                result = fn(txn)
                if not txn.finished:
                    txn.commit()
                return result
            except errors.CrdbError as e:
                if not type(e).retryable or attempt >= max_retries:
                    txn.rollback()
                    raise
                attempt += 1
                if txn.finished:
                    txn.rollback()
                    txn = self.txn(name)
                delay = min(backoff_max, backoff_base * (2 ** min(attempt, 16)))
                time.sleep(delay * (0.5 + self._rng.random() / 2))
            except BaseException:
                txn.rollback()
                raise
