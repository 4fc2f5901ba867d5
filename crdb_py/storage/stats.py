"""MVCC statistics, maintained incrementally and recomputable from scratch.

Definitions (per logical key K with ``n = len(K)``; a *version* is a
record at a timestamp, its *value length* ``vlen`` the length of its encoded
value, 0 for a tombstone; the *head* of K is its metadata record, if any,
and its newest version):

* ``key_count``/``key_bytes``: every key with any record counts once, with
  ``n + 1`` key bytes (its metadata key); every version adds 12 key bytes
  (its timestamp).
* ``val_count``/``val_bytes``: every version counts once with ``vlen``; a
  metadata record adds its encoded length to ``val_bytes``; an inline value
  also counts one value.
* ``live_count``/``live_bytes``: K is live when its inline value exists or
  its newest version (the provisional value when K has an intent) is not a
  tombstone; live bytes are ``n + 1`` plus the metadata length, plus
  ``12 + vlen`` of the newest version when versioned.
* ``intent_count``/``intent_bytes``: one per intent, ``12 + vlen`` of its
  provisional version.

So the stats of a key are the sum of one term per version and one term for
its head: a mutation changes stats by (head after - head before) plus the
terms of the versions it adds or removes — no operation has to look at more
than the few records it already read. `compute_stats` recomputes from
scratch with the same definitions; tests compare the two.
``gc_bytes_age`` is not maintained (always 0).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from crdb_py.pb import data_pb2
from crdb_py.storage.engine import Reader
from crdb_py.storage.mvcc_key import SUFFIX_LEN, TERMINATOR, span_bounds
from crdb_py.util import keys

# First byte of a metadata record's value.
META_INLINE = 1
META_INTENT = 2


@dataclass(slots=True)
class MVCCStats:
    live_bytes: int = 0
    live_count: int = 0
    key_bytes: int = 0
    key_count: int = 0
    val_bytes: int = 0
    val_count: int = 0
    intent_count: int = 0
    intent_bytes: int = 0
    gc_bytes_age: int = 0
    last_update_nanos: int = 0

    def add(self, o: MVCCStats) -> None:
        for f in _COUNTERS:
            setattr(self, f, getattr(self, f) + getattr(o, f))

    def subtract(self, o: MVCCStats) -> None:
        for f in _COUNTERS:
            setattr(self, f, getattr(self, f) - getattr(o, f))

    def copy(self) -> MVCCStats:
        return MVCCStats(*(getattr(self, f.name) for f in fields(self)))

    def counters(self) -> dict[str, int]:
        return {f: getattr(self, f) for f in _COUNTERS}

    def to_proto(self) -> data_pb2.MVCCStats:
        return data_pb2.MVCCStats(**{f.name: getattr(self, f.name) for f in fields(self)})

    @classmethod
    def from_proto(cls, p: data_pb2.MVCCStats) -> MVCCStats:
        return cls(**{f.name: getattr(p, f.name) for f in fields(cls)})


_COUNTERS = tuple(f.name for f in fields(MVCCStats) if f.name != "last_update_nanos")


def apply_head(
    ms: MVCCStats,
    sign: int,
    klen: int,
    meta: bytes | None,
    newest: bytes | None,
) -> None:
    """Add (sign=+1) or remove (-1) the head term of a key.

    `meta` is the encoded metadata record (or None), `newest` the encoded
    value of the newest version (b"" for a tombstone, None if no version).
    """
    if meta is None and newest is None:
        return
    ms.key_count += sign
    ms.key_bytes += sign * (klen + 1)
    mlen = 0
    if meta is not None:
        mlen = len(meta)
        ms.val_bytes += sign * mlen
        if meta[0] == META_INLINE:
            ms.val_count += sign
            ms.live_count += sign
            ms.live_bytes += sign * (klen + 1 + mlen)
            return
    if newest:  # a live value (not a tombstone, not absent)
        ms.live_count += sign
        ms.live_bytes += sign * (klen + 1 + mlen + SUFFIX_LEN + len(newest))
    if meta is not None:  # an intent
        ms.intent_count += sign
        ms.intent_bytes += sign * (SUFFIX_LEN + len(newest or b""))


def apply_version(ms: MVCCStats, sign: int, value: bytes) -> None:
    ms.key_bytes += sign * SUFFIX_LEN
    ms.val_count += sign
    ms.val_bytes += sign * len(value)


def compute_stats(
    reader: Reader, start: bytes = keys.KEY_MIN, end: bytes | None = None
) -> MVCCStats:
    """Stats of all MVCC data of logical keys in [start, end), from scratch."""
    ms = MVCCStats()
    lo, hi = span_bounds(start, end)
    cur = b""
    klen = 0
    meta: bytes | None = None
    newest: bytes | None = None
    for ek, v in reader.iter_range(lo, hi):
        if not cur or not ek.startswith(cur):
            if cur:
                apply_head(ms, 1, klen, meta, newest)
            i = ek.find(TERMINATOR, 1)
            cur = ek[: i + 2]
            klen = len(ek[1:i].replace(b"\x00\xff", b"\x00"))
            meta = newest = None
            if len(ek) == i + 2:
                meta = v
                continue
        if len(ek) == len(cur):
            raise ValueError(f"metadata record after versions at {ek!r}")
        if newest is None:
            newest = v
        apply_version(ms, 1, v)
    if cur:
        apply_head(ms, 1, klen, meta, newest)
    return ms
