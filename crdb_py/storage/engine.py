"""The storage engine seam.

An `Engine` is an ordered byte-string key-value store. Everything above it
(MVCC, the raft log, range-local state) is encoded into its keys, so the
engine itself knows nothing about timestamps or transactions.

Two implementations must pass the same test suite:
  * `RocksEngine` (crdb_py/storage/rocks.py) — rocksdict, the default;
  * `MemEngine` (crdb_py/storage/mem.py) — a SortedDict, for fast
    deterministic tests and the simulator.

A `WriteBatch` buffers puts and deletes and is *readable*: reads through a
batch see the engine overlaid with the batch's own pending writes (that is
what command evaluation needs: a batch of requests reads its own writes).
`write(batch, sync=True)` applies it atomically; `sync` means durable on disk
before returning. `batch.repr()` serializes the pending mutations so a
proposer-evaluated command can be replicated as data and applied on other
replicas with `engine.apply_batch_repr(...)`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable


@runtime_checkable
class Reader(Protocol):
    def get(self, key: bytes) -> bytes | None: ...

    def iter_range(
        self, lower: bytes, upper: bytes | None = None, *, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        """Yield (key, value) for lower <= key < upper (upper None = no bound),
        ascending, or descending when `reverse`."""
        ...


@runtime_checkable
class Writer(Protocol):
    def put(self, key: bytes, value: bytes) -> None: ...

    def delete(self, key: bytes) -> None: ...


class ReadWriter(Reader, Writer, Protocol):
    pass


class WriteBatch(ReadWriter, Protocol):
    def count(self) -> int:
        """Number of pending mutations."""
        ...

    def repr(self) -> bytes:
        """Serialized pending mutations (see `Engine.apply_batch_repr`)."""
        ...

    def clear(self) -> None: ...


class Engine(ReadWriter, Protocol):
    def new_batch(self) -> WriteBatch: ...

    def write(self, batch: WriteBatch, *, sync: bool = False) -> None:
        """Apply every mutation of `batch` atomically."""
        ...

    def apply_batch_repr(self, data: bytes, *, sync: bool = False) -> None:
        """Apply a serialized batch produced by `WriteBatch.repr()`."""
        ...

    def flush(self) -> None: ...

    def close(self) -> None: ...
