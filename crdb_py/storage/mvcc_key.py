"""MVCC key encoding: logical keys and timestamps -> engine keys.

An engine key that starts with ``0x01`` is an MVCC key (``0x00`` starts the
raw, unversioned range-ID-local keys of `crdb_py.util.keys`). Layout::

    metadata (intent or inline value):
        +------+----------------------+-----------+
        | 0x01 | esc(user key)        | 0x00 0x01 |
        +------+----------------------+-----------+
    version at timestamp (wall, logical):
        +------+----------------------+-----------+-------------------+---------------------+
        | 0x01 | esc(user key)        | 0x00 0x01 | ~wall (8 bytes BE) | ~logical (4 bytes BE)|
        +------+----------------------+-----------+-------------------+---------------------+

``esc`` replaces every ``0x00`` by ``0x00 0xff``; ``0x00 0x01`` terminates it
and, because escaped data never contains ``0x00`` followed by anything but
``0xff``, the first ``0x00 0x01`` in an engine key always is the terminator.
``~x`` is the bitwise complement (``2**64-1-wall``, ``2**32-1-logical``).

Order, which everything above relies on:

* user keys sort bytewise: if ``a < b`` every engine key of ``a`` sorts
  before every engine key of ``b`` (the terminator ``0x00 0x01`` is smaller
  than any continuation ``0x00 0xff`` or ``0x01..0xff``);
* for one user key the metadata record sorts first (it is a strict prefix of
  the versions), then versions newest first (complemented timestamps).

Because the suffix is complemented, "version at or below read timestamp T"
is the byte comparison ``suffix >= encode_suffix(T)``: the scan hot path
compares bytes and never builds a Timestamp.
"""

from __future__ import annotations

from crdb_py.util.hlc import Timestamp

MVCC_PREFIX = b"\x01"
MVCC_PREFIX_END = b"\x02"
TERMINATOR = b"\x00\x01"
SUFFIX_LEN = 12
VERSION_KEY_OVERHEAD = SUFFIX_LEN  # key bytes a version adds (stats)

_WALL_MAX = (1 << 64) - 1
_LOGICAL_MAX = (1 << 32) - 1


def encode_suffix(ts: Timestamp) -> bytes:
    return (_WALL_MAX - ts.wall_time).to_bytes(8, "big") + (_LOGICAL_MAX - ts.logical).to_bytes(
        4, "big"
    )


def decode_suffix(suffix: bytes) -> Timestamp:
    if len(suffix) != SUFFIX_LEN:
        raise ValueError(f"malformed MVCC timestamp suffix {suffix!r}")
    return Timestamp(
        _WALL_MAX - int.from_bytes(suffix[:8], "big"),
        _LOGICAL_MAX - int.from_bytes(suffix[8:], "big"),
    )


def encode_prefix(key: bytes) -> bytes:
    """Engine prefix shared by all records of `key`; also its metadata key."""
    if b"\x00" in key:
        key = key.replace(b"\x00", b"\x00\xff")
    return MVCC_PREFIX + key + TERMINATOR


encode_meta_key = encode_prefix


def encode_key(key: bytes, ts: Timestamp) -> bytes:
    """The engine key of `key` at `ts` (the metadata key when `ts` is zero)."""
    if ts.wall_time == 0 and ts.logical == 0:
        return encode_prefix(key)
    return encode_prefix(key) + encode_suffix(ts)


def seek_key(key: bytes) -> bytes:
    """The smallest engine key of any record of a user key >= `key`."""
    return encode_prefix(key)


def span_bounds(start: bytes, end: bytes | None) -> tuple[bytes, bytes]:
    """Engine bounds [lo, hi) covering all records of user keys in [start, end)."""
    lo = encode_prefix(start)
    hi = MVCC_PREFIX_END if end is None else encode_prefix(end)
    return lo, hi


def split_engine_key(ek: bytes) -> tuple[bytes, bytes]:
    """(user key, suffix) of an MVCC engine key; the suffix is b"" for metadata."""
    i = ek.find(TERMINATOR, 1)
    if i < 0 or ek[:1] != MVCC_PREFIX:
        raise ValueError(f"not an MVCC engine key: {ek!r}")
    uk = ek[1:i]
    if b"\x00" in uk:
        uk = uk.replace(b"\x00\xff", b"\x00")
    return uk, ek[i + 2 :]


def decode_key(ek: bytes) -> tuple[bytes, Timestamp]:
    """(user key, timestamp) of an MVCC engine key; zero timestamp for metadata."""
    uk, suffix = split_engine_key(ek)
    if not suffix:
        return uk, Timestamp()
    return uk, decode_suffix(suffix)
