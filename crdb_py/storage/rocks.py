"""The RocksDB engine (rocksdict), the default for real stores.

This is the only module that imports rocksdict. Quirks of rocksdict 0.3.29
that shape it (measured, see ARCHITECTURE.md):

* snapshot iteration returns live data, so nothing here hands out snapshots;
* ``set_iterate_lower_bound`` is ignored on forward iteration, so every
  iterator seeks explicitly (``items(from_key=...)``) and bounds are checked
  in Python;
* reopening a path in the same process fails while an iterator is alive, so
  iterators are plain generators that die with their consumer;
* RocksDB's WriteBatch is not readable, so batches are `OverlayBatch`es that
  are turned into a rocksdict WriteBatch only when written.

A store directory held by another process (RocksDB's LOCK file) raises a
`StorageError` that says so.

Syncing the WAL without the GIL. rocksdict holds the GIL for the whole of
``Rdict.write`` — a synced write stops every Python thread for the fsync
(measured: a spinner thread advances ~15 % as fast during a synced write as
during an ``os.fsync`` of the same data; see docs/design/replication.md). So
the store's background log writer does not ask RocksDB to sync: it writes
unsynced (the WAL record reaches the OS before ``write`` returns — RocksDB
flushes its WAL buffer on every write unless ``manual_wal_flush``) and then
calls `sync_wal`, which ``fdatasync``s RocksDB's live WAL file(s) itself
through plain file descriptors — ``os.fdatasync`` releases the GIL. This is
Pebble's split of a WAL append from its sync (its LogWriter's flush loop),
done from outside. `sync_wal` covers every write that returned before it was
called; it is meant for one thread at a time (the store's log writer).
"""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Iterator

from rocksdict import Options, Rdict, ReadOptions, WriteBatch, WriteOptions

from crdb_py.storage.batch import OverlayBatch, decode_repr
from crdb_py.util.errors import StorageError

ROCKSDICT_VERSION = importlib.metadata.version("rocksdict")


class RocksEngine:
    """`crdb_py.storage.engine.Engine` backed by rocksdict in raw-bytes mode."""

    __slots__ = ("_db", "_path", "_sync_opts", "_wal_fds", "_wal_floor")

    def __init__(self, path: str) -> None:
        self._path = str(path)
        opts = Options(raw_mode=True)
        opts.create_if_missing(True)
        try:
            self._db: Rdict | None = Rdict(self._path, opts)
        except Exception as e:  # rocksdict raises plain Exception subclasses
            msg = str(e)
            if "lock" in msg.lower():
                raise StorageError(
                    f"store directory {self._path} is in use by another process "
                    f"(RocksDB LOCK held); stop that process or pick another directory"
                ) from e
            raise StorageError(f"cannot open store at {self._path}: {msg}") from e
        self._sync_opts = WriteOptions()
        self._sync_opts.sync = True
        self._wal_fds: dict[int, int] = {}  # WAL file number -> O_RDONLY fd
        self._wal_floor = 0  # WAL files below this number take no more writes

    @property
    def path(self) -> str:
        return self._path

    def _live(self) -> Rdict:
        db = self._db
        if db is None:
            raise StorageError(f"engine at {self._path} is closed")
        return db

    def get(self, key: bytes) -> bytes | None:
        return self._live().get(key)

    def iter_range(
        self, lower: bytes, upper: bytes | None = None, *, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        db = self._live()
        if not reverse:
            if upper is None:
                return db.items(from_key=lower)
            # The upper bound is honoured on forward iteration and saves a
            # Python-level check per entry; never set the lower bound (it is
            # ignored going forward and corrupts backward iteration).
            ro = ReadOptions()
            ro.set_iterate_upper_bound(upper)
            # rocksdict keeps only a pointer to the bound: the generator pins
            # `ro` and `upper` for as long as the iterator lives.
            return _pinned(db.items(from_key=lower, read_opt=ro), ro, upper)
        it = db.items(backwards=True) if upper is None else db.items(backwards=True, from_key=upper)
        return _bounded_rev(it, lower, upper)

    def put(self, key: bytes, value: bytes) -> None:
        self._live().put(key, value)

    def delete(self, key: bytes) -> None:
        self._live().delete(key)

    def delete_range(self, lower: bytes, upper: bytes) -> None:
        self._live().delete_range(lower, upper)

    def new_batch(self) -> OverlayBatch:
        return OverlayBatch(self)

    def write(self, batch: OverlayBatch, *, sync: bool = False) -> None:
        self._write(batch.mutations(), sync)

    def apply_batch_repr(self, data: bytes, *, sync: bool = False) -> None:
        self._write(decode_repr(data), sync)

    def _write(self, muts: Iterator[tuple[bytes, bytes | None]], sync: bool) -> None:
        db = self._live()
        wb = WriteBatch(raw_mode=True)
        n = 0
        for k, v in muts:
            n += 1
            if v is None:
                wb.delete(k)
            else:
                wb.put(k, v)
        if n == 0 and not sync:
            return
        if sync:
            db.write(wb, self._sync_opts)
        else:
            db.write(wb)

    def sync_wal(self) -> None:
        """Make every write that returned before this call durable, without
        holding the GIL while the disk works: fdatasync each live WAL file
        (``NNNNNN.log`` in the store directory) from the newest one synced
        last time on, and fsync the directory when a new WAL file appeared
        (its directory entry must be durable too). A WAL file that vanished
        meanwhile was obsoleted by a memtable flush, which RocksDB syncs
        itself. Raises `OSError` when the disk fails: the caller must treat
        that as fatal (the pages may be dropped; a retry can falsely succeed)."""
        self._live()
        nums = []
        for name in os.listdir(self._path):
            if name.endswith(".log") and name[:-4].isdigit():
                n = int(name[:-4])
                if n >= self._wal_floor:
                    nums.append((n, name))
        nums.sort()
        opened = False
        for n, name in nums:
            fd = self._wal_fds.get(n)
            if fd is None:
                try:
                    fd = os.open(os.path.join(self._path, name), os.O_RDONLY)
                except FileNotFoundError:
                    continue
                self._wal_fds[n] = fd
                opened = True
            os.fdatasync(fd)
        if opened:
            dfd = os.open(self._path, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        if nums:
            self._wal_floor = nums[-1][0]
            for n in [n for n in self._wal_fds if n < self._wal_floor]:
                os.close(self._wal_fds.pop(n))

    def flush(self) -> None:
        self._live().flush()

    def close(self) -> None:
        db, self._db = self._db, None
        for fd in self._wal_fds.values():
            os.close(fd)
        self._wal_fds.clear()
        if db is not None:
            db.close()


def _pinned(
    it: Iterator[tuple[bytes, bytes]], ro: ReadOptions, upper: bytes
) -> Iterator[tuple[bytes, bytes]]:
    yield from it
    del it, ro, upper


def _bounded_rev(
    it: Iterator[tuple[bytes, bytes]], lower: bytes, upper: bytes | None
) -> Iterator[tuple[bytes, bytes]]:
    for kv in it:
        k = kv[0]
        if upper is not None and k >= upper:
            continue  # items(backwards, from_key=upper) starts *at* upper
        if k < lower:
            return
        yield kv
