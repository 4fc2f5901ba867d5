"""The store's raft-log writer: where a scheduler turn's log batch becomes durable.

Why this exists. A store appends the raft entries and hard states of every
replica that became ready in one scheduler turn into one engine batch, and
must not let a vote, an append acknowledgement or an apply depend on that
batch before it is durable. Done on the event loop, the synced write stalls
the whole node for the fsync (≈1–1.5 ms on these machines under load): no RPC
is read, no request evaluated, no other range's Ready processed meanwhile.
M3's profile showed 40–74 % of a node's loop inside that one call.

Two writers behind one seam (`LogWriter`):

* `InlineLogWriter` — writes the batch synced, on the caller's thread, and
  calls back at once. The scheduler then behaves exactly as it always has;
  the deterministic simulator (virtual-time loop, `MemEngine`) uses it, so
  the same seed still gives the same history.
* `BackgroundLogWriter` — for a `RocksEngine` on a real loop. `write` puts
  the batch into the engine *unsynced* on the loop (cheap: a memtable insert
  and a ``write(2)`` of the WAL record), and `sync(done)` queues `done`. One
  thread takes everything queued, ``fdatasync``s the WAL (`RocksEngine.
  sync_wal`, which releases the GIL — rocksdict's own synced write does
  not), and hands the callbacks back to the loop in order. Requests queued
  while a sync runs ride the next one: group commit, so under load one
  fsync covers many replicas' turns.

The contract the store relies on (Raft's "persist, then send"):

1. every `write` that returned before `sync(done)` is durable when `done`
   runs (the thread snapshots the queue after the write, and the WAL is
   append-only);
2. `done` callbacks run on the loop, in `sync` order;
3. a failed sync is fatal: `on_fatal(exc)` runs on the loop and no callback
   queued at or after the failure ever runs. After an fsync error the
   kernel may have dropped the dirty pages, so retrying could report
   success for data that is gone — CockroachDB (and PostgreSQL since
   "fsyncgate") crash instead, and so do we.

The failpoint ``kvserver.store.before_sync`` fires before every sync: on the
caller's thread inline, on the writer thread in the background (a ``pause``
there parks only the sync — the loop keeps serving, which is what the tests
use to see that nothing durable-dependent leaves early).

Rejected: ``loop.run_in_executor`` per turn (one future and one executor
hop per turn, and no natural group commit); doing the sync through
rocksdict from a thread (it holds the GIL across the fsync, so the loop
would stall just the same — measured, see docs/design/replication.md).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

from crdb_py.util import failpoints

log = logging.getLogger(__name__)

BEFORE_SYNC = "kvserver.store.before_sync"

Done = Callable[[], None]


class LogWriter(Protocol):
    """Makes a store's raft-log batches durable (see the module docstring)."""

    #: True when `sync` completes later, on another thread's say-so.
    background: bool

    def write(self, batch: Any, *, sync: bool) -> None:
        """Write `batch` to the engine; inline and `sync`: durably."""
        ...

    def sync(self, done: Done) -> None:
        """Call `done` on the loop once every earlier `write` is durable."""
        ...

    def close(self) -> None:
        """Stop; queued callbacks are dropped. Blocks for a running sync."""
        ...


class InlineLogWriter:
    """Synchronous: the write (synced if asked) happens in the call."""

    background = False

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def write(self, batch: Any, *, sync: bool) -> None:
        if failpoints._armed:  # raft log / hard state built, not yet durable
            failpoints.hit_sync(BEFORE_SYNC)
        self.engine.write(batch, sync=sync)

    def sync(self, done: Done) -> None:
        done()

    def close(self) -> None:
        pass


class BackgroundLogWriter:
    """Unsynced writes on the loop; fsyncs, grouped, on one thread."""

    background = True

    def __init__(
        self,
        engine: Any,
        loop: asyncio.AbstractEventLoop,
        on_fatal: Callable[[BaseException], None],
        *,
        name: str = "raft-log-sync",
    ) -> None:
        if not callable(getattr(engine, "sync_wal", None)):
            raise TypeError(f"{type(engine).__name__} cannot sync its WAL apart from writes")
        self.engine = engine
        self.loop = loop
        self.on_fatal = on_fatal
        self._cv = threading.Condition(threading.Lock())
        self._queue: list[Done] = []
        self._closed = False
        self._failed: BaseException | None = None
        # Introspection for tests and metrics (written by the thread only).
        self.syncs = 0
        self.synced_requests = 0
        self.max_group = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def write(self, batch: Any, *, sync: bool) -> None:
        # Never synced here: durability is `sync`'s job (on the thread).
        if self._failed is not None:
            raise self._failed
        self.engine.write(batch, sync=False)

    def sync(self, done: Done) -> None:
        with self._cv:
            if self._failed is not None:
                raise self._failed
            if self._closed:
                return
            self._queue.append(done)
            if len(self._queue) == 1:
                self._cv.notify()

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._queue.clear()
            self._cv.notify()
        if self._thread is not threading.current_thread():
            self._thread.join()

    # ---- the sync thread --------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._queue and not self._closed:
                    self._cv.wait()
                if self._closed:
                    return
                group, self._queue = self._queue, []
            try:
                if failpoints._armed:
                    failpoints.hit_sync(BEFORE_SYNC)
                self.engine.sync_wal()
            except BaseException as e:  # any failure to sync is fatal
                with self._cv:
                    self._failed = e
                    self._queue.clear()
                self._post(self._fail, e)
                return
            self.syncs += 1
            self.synced_requests += len(group)
            self.max_group = max(self.max_group, len(group))
            self._post(self._complete, group)

    def _post(self, fn: Callable[..., None], arg: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(fn, arg)
        except RuntimeError:  # the loop is closed: nobody is left to tell
            log.debug("log writer: loop closed, dropping a completion")

    # ---- back on the loop -------------------------------------------------------

    def _complete(self, group: list[Done]) -> None:
        for done in group:
            if self._closed:
                return
            done()

    def _fail(self, e: BaseException) -> None:
        if not self._closed:
            self.on_fatal(e)


def new_log_writer(
    kind: str,
    engine: Any,
    loop: asyncio.AbstractEventLoop,
    on_fatal: Callable[[BaseException], None],
    *,
    sync_writes: bool,
) -> LogWriter:
    """The writer for `kind` ("inline", "background" or "auto"). "auto" picks
    the background writer only where it helps and cannot disturb a
    simulation: synced writes, an engine that can sync its WAL on its own
    (`RocksEngine`) and a real asyncio loop."""
    if kind == "inline":
        return InlineLogWriter(engine)
    if kind == "background":
        return BackgroundLogWriter(engine, loop, on_fatal)
    if kind != "auto":
        raise ValueError(f"unknown log writer {kind!r}: want inline, background or auto")
    real_loop = isinstance(loop, asyncio.BaseEventLoop) and type(loop).__module__.startswith(
        ("asyncio", "uvloop")
    )
    if sync_writes and callable(getattr(engine, "sync_wal", None)) and real_loop:
        return BackgroundLogWriter(engine, loop, on_fatal)
    return InlineLogWriter(engine)
