"""An in-memory engine (a SortedDict) for fast, deterministic tests."""

from __future__ import annotations

from collections.abc import Iterator

from sortedcontainers import SortedDict

from crdb_py.storage.batch import OverlayBatch, decode_repr
from crdb_py.util.errors import StorageError


class MemEngine:
    """`crdb_py.storage.engine.Engine` backed by a SortedDict.

    Iteration materializes the keys of the requested range lazily in chunks,
    so writing to the engine while iterating it is safe (the iterator may or
    may not see the new writes, as with RocksDB).
    """

    __slots__ = ("_closed", "_data")

    def __init__(self) -> None:
        self._data: SortedDict = SortedDict()
        self._closed = False

    def get(self, key: bytes) -> bytes | None:
        return self._data.get(key)

    def iter_range(
        self, lower: bytes, upper: bytes | None = None, *, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        self._check_open()
        return self._iter(lower, upper, reverse)

    def _iter(
        self, lower: bytes, upper: bytes | None, reverse: bool
    ) -> Iterator[tuple[bytes, bytes]]:
        data = self._data
        keys = data.keys()
        if not reverse:
            i = data.bisect_left(lower)
            while True:
                # Re-locate after each chunk so concurrent mutation is harmless.
                chunk = keys[i : i + 64]
                if not chunk:
                    return
                for k in chunk:
                    if upper is not None and k >= upper:
                        return
                    v = data.get(k)
                    if v is not None:
                        yield k, v
                i = data.bisect_right(chunk[-1])
        else:
            j = len(data) if upper is None else data.bisect_left(upper)
            while True:
                chunk = keys[max(j - 64, 0) : j]
                if not chunk:
                    return
                for k in reversed(chunk):
                    if k < lower:
                        return
                    v = data.get(k)
                    if v is not None:
                        yield k, v
                j = data.bisect_left(chunk[0])

    def put(self, key: bytes, value: bytes) -> None:
        self._data[key] = value

    def delete(self, key: bytes) -> None:
        self._data.pop(key, None)

    def delete_range(self, lower: bytes, upper: bytes) -> None:
        for k in list(self._data.irange(lower, upper, inclusive=(True, False))):
            del self._data[k]

    def new_batch(self) -> OverlayBatch:
        return OverlayBatch(self)

    def write(self, batch: OverlayBatch, *, sync: bool = False) -> None:
        self._check_open()
        self._apply(batch.mutations())

    def apply_batch_repr(self, data: bytes, *, sync: bool = False) -> None:
        self._check_open()
        self._apply(decode_repr(data))

    def _apply(self, muts: Iterator[tuple[bytes, bytes | None]]) -> None:
        d = self._data
        for k, v in muts:
            if v is None:
                d.pop(k, None)
            else:
                d[k] = v

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("engine is closed")

    def __len__(self) -> int:
        return len(self._data)
