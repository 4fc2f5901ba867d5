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
        over = pend.irange(lower, upper, inclusive=(True, False), reverse=reverse)
        return _merge(base, over, pend, reverse)

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


def _merge(
    base: Iterator[tuple[bytes, bytes]],
    over: Iterator[bytes],
    pend: SortedDict,
    reverse: bool,
) -> Iterator[tuple[bytes, bytes]]:
    """Merge engine entries with pending mutations; pending wins on ties."""
    # Materialize the overlay keys first: callers may write to the batch while
    # they iterate, and SortedDict iterators do not tolerate mutation.
    okeys = list(over)
    oi, on = 0, len(okeys)
    for bk, bv in base:
        while oi < on:
            ok = okeys[oi]
            if (ok > bk) if reverse else (ok < bk):
                ov = pend.get(ok)
                oi += 1
                if ov is not None:
                    yield ok, ov
                continue
            break
        if oi < on and okeys[oi] == bk:
            ov = pend.get(bk)
            oi += 1
            if ov is not None:
                yield bk, ov
            continue
        yield bk, bv
    while oi < on:
        ok = okeys[oi]
        ov = pend.get(ok)
        oi += 1
        if ov is not None:
            yield ok, ov
