"""A readable write batch: pending mutations overlaid on an engine.

RocksDB's WriteBatch cannot be read, and command evaluation must read its
own writes, so every engine hands out this overlay: a SortedDict of pending
mutations (key -> value, or None for a deletion) that reads merge with the
underlying engine. The last mutation of a key wins, so the batch is exactly
its final state per key and `repr()` is that state, serialized with msgpack
as a flat list ``[k0, v0, k1, v1, ...]`` (``v`` nil = delete).

Reads never take a snapshot of the engine (rocksdict snapshot iteration is
broken; see ARCHITECTURE.md): the caller holds latches that keep the keys it
reads stable while the batch is built.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import msgpack
from sortedcontainers import SortedDict

_MISSING = object()


class _BaseReader(Protocol):
    def get(self, key: bytes) -> bytes | None: ...

    def iter_range(
        self, lower: bytes, upper: bytes | None = None, *, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]: ...


def encode_repr(mutations: SortedDict) -> bytes:
    flat: list[bytes | None] = []
    for k, v in mutations.items():
        flat.append(k)
        flat.append(v)
    return msgpack.packb(flat, use_bin_type=True)


def decode_repr(data: bytes) -> Iterator[tuple[bytes, bytes | None]]:
    flat = msgpack.unpackb(data, raw=True) if data else []
    if len(flat) % 2:
        raise ValueError("malformed batch repr: odd number of items")
    for i in range(0, len(flat), 2):
        yield flat[i], flat[i + 1]


class OverlayBatch:
    """A WriteBatch over `base` (see `crdb_py.storage.engine.WriteBatch`)."""

    __slots__ = ("_base", "_pending")

    def __init__(self, base: _BaseReader) -> None:
        self._base = base
        self._pending: SortedDict = SortedDict()

    # ---- Writer ----
    def put(self, key: bytes, value: bytes) -> None:
        self._pending[key] = value

    def delete(self, key: bytes) -> None:
        self._pending[key] = None

    # ---- Reader ----
    def get(self, key: bytes) -> bytes | None:
        v = self._pending.get(key, _MISSING)
        if v is _MISSING:
            return self._base.get(key)
        return v  # type: ignore[return-value]

    def iter_range(
        self, lower: bytes, upper: bytes | None = None, *, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        base = self._base.iter_range(lower, upper, reverse=reverse)
        pend = self._pending
        if not pend:
            return base
        return _merge(base, _overlay_keys(pend, lower, upper, reverse), pend, reverse)

    # ---- WriteBatch ----
    def count(self) -> int:
        return len(self._pending)

    def empty(self) -> bool:
        return not self._pending

    def mutations(self) -> Iterator[tuple[bytes, bytes | None]]:
        return iter(self._pending.items())

    def repr(self) -> bytes:
        return encode_repr(self._pending)

    def clear(self) -> None:
        self._pending.clear()


def _overlay_keys(
    pend: SortedDict, lower: bytes, upper: bytes | None, reverse: bool
) -> Iterator[bytes]:
    """Pending keys in [lower, upper), fetched lazily in small chunks and
    re-located by bisection between chunks: O(log n) to start however large
    the batch, and safe when the caller writes to the batch meanwhile."""
    keys = pend.keys()
    n = 8
    if not reverse:
        i = pend.bisect_left(lower)
        while True:
            chunk = keys[i : i + n]
            if not chunk:
                return
            for k in chunk:
                if upper is not None and k >= upper:
                    return
                yield k
            i = pend.bisect_right(chunk[-1])
            n = min(n * 2, 256)
    else:
        j = len(pend) if upper is None else pend.bisect_left(upper)
        while True:
            chunk = keys[max(j - n, 0) : j]
            if not chunk:
                return
            for k in reversed(chunk):
                if k < lower:
                    return
                yield k
            j = pend.bisect_left(chunk[0])
            n = min(n * 2, 256)


def _merge(
    base: Iterator[tuple[bytes, bytes]],
    over: Iterator[bytes],
    pend: SortedDict,
    reverse: bool,
) -> Iterator[tuple[bytes, bytes]]:
    """Merge engine entries with pending mutations; pending wins on ties."""
    _end = object()
    ok = next(over, _end)
    for bk, bv in base:
        while ok is not _end and ((ok > bk) if reverse else (ok < bk)):  # type: ignore[operator]
            ov = pend.get(ok)
            if ov is not None:
                yield ok, ov  # type: ignore[misc]
            ok = next(over, _end)
        if ok is not _end and ok == bk:
            ov = pend.get(bk)
            ok = next(over, _end)
            if ov is not None:
                yield bk, ov
            continue
        yield bk, bv
    while ok is not _end:
        ov = pend.get(ok)
        if ov is not None:
            yield ok, ov  # type: ignore[misc]
        ok = next(over, _end)
