"""The key space: constants and helpers shared by every layer.

There are two spaces of keys. *Logical* keys are what the KV API sees; the
MVCC layer versions them (engine keys starting ``0x01``). *Raw* keys are
unversioned range-ID-local state written straight into the engine (engine
keys starting ``0x00``). The two never interleave.

Logical key space (sorted bytewise)::

    b""                                  KEY_MIN
    b"\\x01k" + esc(anchor) + suffix       range-local keys: live next to `anchor`
                                         suffix b"txn-" + 16-byte id -> txn record
                                         suffix b"rdsc"              -> range descriptor
    b"\\x02" + range_end_key               meta addressing record -> RangeDescriptor
    b"\\x03" ... b"\\x04"                   system keys
    b"\\x04" ... b"\\xff\\xff"               user keys (USER_KEY_MIN <= k < KEY_MAX)

`esc` is the order-preserving bytes encoding (``0x00`` -> ``0x00 0xff``,
terminated by ``0x00 0x01``), so range-local keys sort by anchor first and
the keys anchored in ``[start, end)`` form one contiguous span
(`range_local_span`). A range-local key is *addressed* (routed to a range)
by its anchor: `addr`.

Meta lookup (single level, CockroachDB's meta2 layout): the range holding K
is described by the first meta entry with key > ``b"\\x02" + K``, i.e. scan
from ``meta_key(next_key(addr(K)))`` up to `META_MAX`, limit one.

Raw range-ID-local keys (never versioned, never routed)::

    b"\\x00i" + range_id(8 bytes big endian)          range_id_prefix
        + b"rftl" + index(8 bytes big endian)       raft log entry
        + b"rfth"                                    raft hard state
        + b"rftt"                                    raft truncated state
        + b"rask"                                    range applied state
        + b"rll-"                                    range lease
        + b"abc-" + txn_id(16 bytes)                 abort span entry (replicated)
        + b"lgc-"                                    MVCC GC threshold (replicated)
        + b"tst-"                                    txn span GC threshold (replicated)

Pure functions, standard library only: kvclient (which may import only util
and pb) uses this module for range addressing.
"""

from __future__ import annotations

# ---- logical key space ---------------------------------------------------------

KEY_MIN = b""
KEY_MAX = b"\xff\xff"

LOCAL_PREFIX = b"\x01"
LOCAL_RANGE_PREFIX = b"\x01k"
LOCAL_MAX = b"\x02"

META_PREFIX = b"\x02"
META_MAX = b"\x03"

SYSTEM_PREFIX = b"\x03"
SYSTEM_MAX = b"\x04"

USER_KEY_MIN = b"\x04"

TXN_SUFFIX = b"txn-"
RANGE_DESCRIPTOR_SUFFIX = b"rdsc"

# ---- raw (unversioned) range-ID-local key space ------------------------------------

RAW_PREFIX = b"\x00"
RANGE_ID_PREFIX = b"\x00i"
RAFT_LOG_SUFFIX = b"rftl"
RAFT_HARD_STATE_SUFFIX = b"rfth"
RAFT_TRUNCATED_STATE_SUFFIX = b"rftt"
RANGE_APPLIED_STATE_SUFFIX = b"rask"
RANGE_LEASE_SUFFIX = b"rll-"
ABORT_SPAN_SUFFIX = b"abc-"
RANGE_GC_THRESHOLD_SUFFIX = b"lgc-"
RANGE_TXN_SPAN_GC_THRESHOLD_SUFFIX = b"tst-"

_ESC = b"\x00\xff"
_TERM = b"\x00\x01"


def encode_bytes_ascending(b: bytes) -> bytes:
    """Order-preserving, self-delimiting encoding of arbitrary bytes.

    >>> encode_bytes_ascending(b"a\\x00b")
    b'a\\x00\\xffb\\x00\\x01'
    """
    return b.replace(b"\x00", _ESC) + _TERM


def decode_bytes_ascending(buf: bytes, pos: int = 0) -> tuple[bytes, int]:
    """Decode an `encode_bytes_ascending` value at `buf[pos:]`.

    Returns (decoded, position just past the terminator).
    """
    out = bytearray()
    while True:
        i = buf.find(b"\x00", pos)
        if i < 0 or i + 1 >= len(buf):
            raise ValueError(f"malformed escaped bytes in {buf!r}")
        out += buf[pos:i]
        marker = buf[i + 1]
        if marker == 0x01:
            return bytes(out), i + 2
        if marker != 0xFF:
            raise ValueError(f"malformed escape 0x00 0x{marker:02x} in {buf!r}")
        out.append(0)
        pos = i + 2


def next_key(k: bytes) -> bytes:
    """The smallest key greater than `k`."""
    return k + b"\x00"


def prefix_end(k: bytes) -> bytes:
    """The smallest key greater than every key with prefix `k`.

    ``prefix_end(b"")`` is `KEY_MAX`; a key of only ``0xff`` bytes has no
    prefix end and is returned unchanged (as CockroachDB's ``PrefixEnd``).
    """
    if not k:
        return KEY_MAX
    b = bytearray(k)
    for i in range(len(b) - 1, -1, -1):
        if b[i] != 0xFF:
            b[i] += 1
            return bytes(b[: i + 1])
    return k


# ---- range-local keys ---------------------------------------------------------


def make_range_local_key(anchor: bytes, suffix: bytes, detail: bytes = b"") -> bytes:
    return LOCAL_RANGE_PREFIX + encode_bytes_ascending(anchor) + suffix + detail


def decode_range_local_key(key: bytes) -> tuple[bytes, bytes, bytes]:
    """Split a range-local key into (anchor, suffix, detail)."""
    if not key.startswith(LOCAL_RANGE_PREFIX):
        raise ValueError(f"{key!r} is not a range-local key")
    anchor, pos = decode_bytes_ascending(key, len(LOCAL_RANGE_PREFIX))
    return anchor, key[pos : pos + 4], key[pos + 4 :]


def transaction_key(anchor: bytes, txn_id: bytes) -> bytes:
    """The key of a transaction record: next to the txn's anchor key."""
    return make_range_local_key(anchor, TXN_SUFFIX, txn_id)


def range_descriptor_key(start_key: bytes) -> bytes:
    """The key of the authoritative range descriptor of the range at `start_key`."""
    return make_range_local_key(start_key, RANGE_DESCRIPTOR_SUFFIX)


def is_local(key: bytes) -> bool:
    return key.startswith(LOCAL_PREFIX)


def range_local_span(start: bytes, end: bytes) -> tuple[bytes, bytes]:
    """[lo, hi) holding exactly the range-local keys anchored in [start, end)."""
    return (
        LOCAL_RANGE_PREFIX + encode_bytes_ascending(start),
        LOCAL_RANGE_PREFIX + encode_bytes_ascending(end),
    )


def addr(key: bytes) -> bytes:
    """The addressing key: the anchor of a range-local key, else the key itself.

    Raises ValueError for local keys that are not range-local (they are not
    addressable).
    """
    if key.startswith(LOCAL_PREFIX):
        if key.startswith(LOCAL_RANGE_PREFIX):
            return decode_bytes_ascending(key, len(LOCAL_RANGE_PREFIX))[0]
        raise ValueError(f"local key {key!r} is not addressable")
    return key


# ---- meta addressing -------------------------------------------------------------


def meta_key(end_key: bytes) -> bytes:
    """Key of the meta record of the range whose end key is `end_key`."""
    return META_PREFIX + end_key


def meta_lookup_start(key: bytes) -> bytes:
    """Scan meta from here (to `META_MAX`, limit 1) to find the range holding `key`."""
    return meta_key(next_key(addr(key)))


def is_meta(key: bytes) -> bool:
    return META_PREFIX <= key < META_MAX


def is_user_key(key: bytes) -> bool:
    return USER_KEY_MIN <= key < KEY_MAX


# ---- raw range-ID-local keys ---------------------------------------------------


def range_id_prefix(range_id: int) -> bytes:
    """Prefix of every raw key of one range (delete it to drop a replica)."""
    return RANGE_ID_PREFIX + range_id.to_bytes(8, "big")


def raft_log_prefix(range_id: int) -> bytes:
    return range_id_prefix(range_id) + RAFT_LOG_SUFFIX


def raft_log_key(range_id: int, index: int) -> bytes:
    return range_id_prefix(range_id) + RAFT_LOG_SUFFIX + index.to_bytes(8, "big")


def raft_hard_state_key(range_id: int) -> bytes:
    return range_id_prefix(range_id) + RAFT_HARD_STATE_SUFFIX


def raft_truncated_state_key(range_id: int) -> bytes:
    return range_id_prefix(range_id) + RAFT_TRUNCATED_STATE_SUFFIX


def range_applied_state_key(range_id: int) -> bytes:
    return range_id_prefix(range_id) + RANGE_APPLIED_STATE_SUFFIX


def range_lease_key(range_id: int) -> bytes:
    return range_id_prefix(range_id) + RANGE_LEASE_SUFFIX


def abort_span_prefix(range_id: int) -> bytes:
    """Prefix of every abort span entry of a range (`abort_span_key`)."""
    return range_id_prefix(range_id) + ABORT_SPAN_SUFFIX


def abort_span_key(range_id: int, txn_id: bytes) -> bytes:
    """The abort span entry of txn `txn_id` on range `range_id`."""
    return abort_span_prefix(range_id) + txn_id


def range_gc_threshold_key(range_id: int) -> bytes:
    """The range's MVCC GC threshold: reads at or below it are refused."""
    return range_id_prefix(range_id) + RANGE_GC_THRESHOLD_SUFFIX


def range_txn_span_gc_threshold_key(range_id: int) -> bytes:
    """The range's txn span GC threshold: no txn record may be created for a
    txn that started at or below it (its record may have been removed)."""
    return range_id_prefix(range_id) + RANGE_TXN_SPAN_GC_THRESHOLD_SUFFIX
