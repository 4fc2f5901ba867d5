"""MVCC reads and writes over an engine: versions, tombstones, write intents.

Every logical key has at most one *metadata record* and any number of
*versions* (see `crdb_py.storage.mvcc_key` for the byte layout). A version
is the value written at a timestamp — ``0x01`` + the bytes, or the empty
string for a deletion tombstone. The metadata record is either

* an **inline value** (``0x01`` + bytes): an unversioned value written with a
  zero timestamp and no transaction (txn records, range descriptors); a key
  is either inline or versioned, never both; or
* a **write intent** (``0x02`` + `MVCCMetadata`): the key has a provisional
  value, written by the transaction ``meta.txn`` as the version at
  ``meta.timestamp``. ``meta.txn.sequence`` is the sequence number of that
  write; ``meta.intent_history`` keeps the values the same transaction wrote
  earlier in the same epoch, so the txn can read its own writes as of any
  sequence number (and savepoint rollback can go back to one).

Invariants kept here (and checked loudly where cheap):

* a key with an intent has the provisional version as its newest version:
  nobody else can write above it, the owner rewrites it in place;
* a key never holds both an inline value and versions;
* a write at a timestamp at or below the key's newest committed version is
  refused (`WriteTooOldError`, carrying the timestamp just above it) — it
  writes nothing, the caller moves its timestamp and retries.

Reads (`mvcc_get`, `mvcc_scan`) at timestamp T see, per key, the newest
version at or below T, subject to:

* intents of other transactions at or below T (or within the uncertainty
  window, or at any timestamp for locking reads) conflict: the read raises
  `WriteIntentError` carrying every conflicting intent, or, when
  ``inconsistent=True``, reads below them and reports them;
* the reader's own intent is visible whatever its timestamp, as of the
  reader's sequence number (intent history); an intent from an earlier epoch
  of the reader is ignored;
* a version in ``(T, uncertainty_limit]`` raises
  `ReadWithinUncertaintyIntervalError` (it may precede the read in real
  time); with ``fail_on_more_recent`` (locking reads) any version above T
  raises `WriteTooOldError`.

Resolution, GC and the other maintenance operations live in
`crdb_py.storage.mvcc_intent`. Design notes: docs/design/storage.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from operator import itemgetter

from crdb_py.pb import data_pb2
from crdb_py.storage.batch import OverlayBatch
from crdb_py.storage.engine import Reader, ReadWriter
from crdb_py.storage.mvcc_key import (
    TERMINATOR,
    decode_suffix,
    encode_prefix,
    encode_suffix,
    span_bounds,
)
from crdb_py.storage.stats import META_INLINE, META_INTENT, MVCCStats, apply_head, apply_version
from crdb_py.util.errors import (
    ConditionFailedError,
    InternalError,
    InvalidArgumentError,
    ReadWithinUncertaintyIntervalError,
    WriteIntentError,
    WriteTooOldError,
)
from crdb_py.util.hlc import MAX_TIMESTAMP, Timestamp, ts_from_proto, ts_to_proto
from crdb_py.util.keys import next_key

VALUE_TAG = b"\x01"
TOMBSTONE = b""
_INLINE_TAG = bytes([META_INLINE])
_INTENT_TAG = bytes([META_INTENT])

_EUK = itemgetter(slice(1, -14))  # escaped user key of a version key
_TAIL = itemgetter(slice(-14, None))  # terminator + timestamp of a version key
_VAL = itemgetter(slice(1, None))  # value bytes of a version value

# Per-key read modes of the scanner.
_NORMAL, _DONE, _PROVISIONAL = 0, 1, 2


@dataclass(frozen=True, slots=True)
class GetResult:
    """`value` None = no value; with ``tombstones=True`` a deletion is
    reported as value None with its `timestamp` set."""

    value: bytes | None
    timestamp: Timestamp | None = None
    intent: data_pb2.Intent | None = None  # inconsistent reads: intent read below


@dataclass(slots=True)
class ScanResult:
    kvs: list[tuple[bytes, bytes | None]]
    resume_span: tuple[bytes, bytes] | None = None
    resume_reason: str | None = None  # "max_keys" | "target_bytes"
    intents: list[data_pb2.Intent] = field(default_factory=list)  # inconsistent reads
    _num_bytes: int = -1

    @property
    def num_bytes(self) -> int:
        """Sum of key and value lengths of `kvs` (computed on first use)."""
        if self._num_bytes < 0:
            self._num_bytes = sum(len(k) + (len(v) if v else 0) for k, v in self.kvs)
        return self._num_bytes


# ---- reads -------------------------------------------------------------------------


class _ReadCtx:
    __slots__ = (
        "fail_on_more_recent",
        "inconsistent",
        "intents",
        "inv_read",
        "inv_unc",
        "limit",
        "ts",
        "txn",
    )

    def __init__(
        self,
        ts: Timestamp,
        txn: data_pb2.TxnMeta | None,
        inconsistent: bool,
        uncertainty_limit: Timestamp | None,
        fail_on_more_recent: bool,
    ) -> None:
        if inconsistent and txn is not None:
            raise InvalidArgumentError("inconsistent reads cannot be transactional")
        self.ts = ts
        self.txn = txn
        self.inconsistent = inconsistent
        self.fail_on_more_recent = fail_on_more_recent
        self.inv_read = encode_suffix(ts)
        self.limit = uncertainty_limit
        self.inv_unc = (
            encode_suffix(uncertainty_limit)
            if uncertainty_limit is not None and ts < uncertainty_limit
            else None
        )
        self.intents: list[data_pb2.Intent] = []


_NO_VALUE = object()


def _eval_meta(
    ctx: _ReadCtx, uk: bytes, meta: bytes
) -> tuple[int, bytes | None, object]:
    """Decide how to read a key that has a metadata record.

    Returns (mode, version suffix to skip/expect, value to emit or _NO_VALUE);
    the value is None for a tombstone.
    """
    if meta[0] == META_INLINE:
        return _DONE, None, meta[1:]
    md = data_pb2.MVCCMetadata.FromString(meta[1:])
    isfx = encode_suffix(ts_from_proto(md.timestamp))
    txn = ctx.txn
    if txn is not None and md.txn.id == txn.id:
        if md.txn.epoch < txn.epoch:
            return _NORMAL, isfx, _NO_VALUE  # an earlier epoch's intent is invisible
        if md.txn.epoch > txn.epoch:
            raise InternalError(
                f"read of {uk!r} at epoch {txn.epoch} met its own intent of epoch {md.txn.epoch}"
            )
        if txn.sequence >= md.txn.sequence:
            return _PROVISIONAL, isfx, _NO_VALUE
        best = None
        for sv in md.intent_history:
            if sv.sequence <= txn.sequence and (best is None or sv.sequence > best.sequence):
                best = sv
        if best is None:
            return _NORMAL, isfx, _NO_VALUE  # written after this read's sequence
        return _DONE, None, (None if best.deleted else best.value)
    conflict = (
        ctx.fail_on_more_recent
        or isfx >= ctx.inv_read
        or (ctx.inv_unc is not None and isfx >= ctx.inv_unc)
    )
    if not conflict:
        return _NORMAL, isfx, _NO_VALUE
    ctx.intents.append(data_pb2.Intent(key=uk, txn=md.txn))
    if ctx.inconsistent:
        return _NORMAL, isfx, _NO_VALUE
    return _DONE, None, _NO_VALUE


def _forward_groups_of_reverse(
    it: Iterator[tuple[bytes, bytes]],
) -> Iterator[tuple[bytes, bytes]]:
    """Turn a reverse engine iteration into keys in reverse order whose
    records come in forward order (metadata, then newest to oldest)."""
    buf: list[tuple[bytes, bytes]] = []
    cur = b""
    for kv in it:
        ek = kv[0]
        if not cur or not ek.startswith(cur):
            if buf:
                buf.reverse()
                yield from buf
                buf.clear()
            cur = ek[: ek.find(TERMINATOR, 1) + 2]
        buf.append(kv)
    if buf:
        buf.reverse()
        yield from buf


def mvcc_scan(
    reader: Reader,
    start: bytes,
    end: bytes,
    ts: Timestamp,
    *,
    txn: data_pb2.TxnMeta | None = None,
    reverse: bool = False,
    max_keys: int = 0,
    target_bytes: int = 0,
    inconsistent: bool = False,
    uncertainty_limit: Timestamp | None = None,
    tombstones: bool = False,
    fail_on_more_recent: bool = False,
) -> ScanResult:
    """Read the newest visible value of every key in [start, end) at `ts`.

    Stops after `max_keys` rows or once `target_bytes` (sum of key and value
    lengths; at least one row is returned) are reached, and returns the
    resume span of what is left: forward ``(next key, end)``, reverse
    ``(start, next_key(next key))``.
    """
    ctx = _ReadCtx(ts, txn, inconsistent, uncertainty_limit, fail_on_more_recent)
    inv_read, inv_unc = ctx.inv_read, ctx.inv_unc
    lo, hi = span_bounds(start, end)
    if reverse:
        stream: Iterator[tuple[bytes, bytes]] = _forward_groups_of_reverse(
            reader.iter_range(lo, hi, reverse=True)
        )
    else:
        stream = reader.iter_range(lo, hi)
    kvs: list[tuple[bytes, bytes | None]] = []
    append = kvs.append
    limited = bool(max_keys or target_bytes)
    nbytes = 0  # tracked only when target_bytes is set
    full = False
    reason: str | None = None
    resume_key: bytes | None = None
    prev = b"\xff"  # escaped user key of the previous record; never a real one
    uk = b""
    mode = DONE = _DONE
    NORMAL, PROVISIONAL = _NORMAL, _PROVISIONAL
    skip: bytes | None = None
    # A version key ends in terminator + 12-byte timestamp; a metadata key
    # ends in the terminator, and escaped bytes never contain 00 01, so
    # ek[-14:-12] tells them apart without searching for the terminator.
    # Records are pulled in chunks. A chunk in which every record is the
    # only, visible, live version of a key with no metadata (the common case
    # of a scan over settled data) is decoded wholesale with C-level
    # map/slice operations; any other chunk goes through the per-record
    # state machine below. Both produce the same rows.
    fast = not reverse and not target_bytes
    tail_lo = TERMINATOR + inv_read
    chunk_size = 32
    stop = False
    while not stop:
        n = chunk_size if not max_keys else min(chunk_size, max_keys - len(kvs) + 1)
        chunk = list(islice(stream, n))
        if not chunk:
            break
        if chunk_size < 1024:
            chunk_size *= 2
        if fast and not full:
            eks, vs = zip(*chunk)
            # Every key is a version key at or below the read timestamp iff
            # its last 14 bytes (terminator + suffix) lie in [00 01 inv_read,
            # 00 02): a metadata key's tail never starts with 00 01.
            tails = list(map(_TAIL, eks))
            euks = list(map(_EUK, eks))
            n = len(euks)
            if (
                euks[0] != prev
                and all(vs)
                and min(tails) >= tail_lo
                and max(tails) < b"\x00\x02"
                and len(set(euks)) == n
                and b"\x00" not in b"".join(euks)
                and (not max_keys or len(kvs) + n <= max_keys)
            ):
                kvs.extend(zip(euks, map(_VAL, vs)))
                prev = uk = euks[-1]
                mode = DONE
                if max_keys and len(kvs) >= max_keys:
                    full = True
                    reason = "max_keys"
                continue
        for ek, v in chunk:
            if ek[-14:-12] == b"\x00\x01":
                euk = ek[1:-14]
                sfx = ek[-12:]
                if euk == prev:
                    if mode == DONE:
                        continue
                else:
                    prev = uk = euk
                    if b"\x00" in uk:
                        uk = uk.replace(b"\x00\xff", b"\x00")
                    if full:
                        resume_key = uk
                        stop = True
                        break
                    # Hot path: the newest record of a key without metadata.
                    if sfx >= inv_read:
                        mode = DONE
                        if v:
                            append((uk, v[1:]))
                        elif tombstones:
                            append((uk, None))
                        else:
                            continue
                        if limited:
                            if target_bytes:
                                nbytes += len(uk) + len(v) - (1 if v else 0)
                            if (max_keys and len(kvs) >= max_keys) or (
                                target_bytes and nbytes >= target_bytes
                            ):
                                full = True
                                reason = "max_keys" if max_keys and len(kvs) >= max_keys else "target_bytes"
                        continue
                    mode = NORMAL
                    skip = None
            else:
                euk = ek[1:-2]
                if euk == prev:
                    raise InternalError(f"MVCC metadata record after versions at {ek!r}")
                prev = uk = euk
                if b"\x00" in uk:
                    uk = uk.replace(b"\x00\xff", b"\x00")
                if full:
                    resume_key = uk
                    stop = True
                    break
                mode, skip, val = _eval_meta(ctx, uk, v)
                if val is _NO_VALUE:
                    continue
                mode = DONE
                if val is None and not tombstones:
                    continue
                append((uk, val))  # type: ignore[arg-type]
                if limited:
                    if target_bytes:
                        nbytes += len(uk) + (len(val) if val else 0)  # type: ignore[arg-type]
                    if (max_keys and len(kvs) >= max_keys) or (target_bytes and nbytes >= target_bytes):
                        full = True
                        reason = "max_keys" if max_keys and len(kvs) >= max_keys else "target_bytes"
                continue
            # A version of the current key that still needs a decision.
            if mode == PROVISIONAL:
                if sfx != skip:
                    raise InternalError(f"intent on {uk!r} without its provisional version")
            elif sfx == skip:
                continue
            elif sfx < inv_read:
                if fail_on_more_recent:
                    raise WriteTooOldError(ts, decode_suffix(sfx).next(), uk)
                if inv_unc is not None and sfx >= inv_unc:
                    raise ReadWithinUncertaintyIntervalError(
                        ts, decode_suffix(sfx), uncertainty_limit, uk
                    )
                continue
            mode = DONE
            if v:
                append((uk, v[1:]))
            elif tombstones:
                append((uk, None))
            else:
                continue
            if limited:
                if target_bytes:
                    nbytes += len(uk) + len(v) - (1 if v else 0)
                if (max_keys and len(kvs) >= max_keys) or (target_bytes and nbytes >= target_bytes):
                    full = True
                    reason = "max_keys" if max_keys and len(kvs) >= max_keys else "target_bytes"
    del stream
    if ctx.intents and not inconsistent:
        raise WriteIntentError(ctx.intents)
    resume: tuple[bytes, bytes] | None = None
    if resume_key is not None:
        resume = (start, next_key(resume_key)) if reverse else (resume_key, end)
    else:
        reason = None
    return ScanResult(kvs, resume, reason, ctx.intents, nbytes if target_bytes else -1)


def mvcc_get(
    reader: Reader,
    key: bytes,
    ts: Timestamp,
    *,
    txn: data_pb2.TxnMeta | None = None,
    inconsistent: bool = False,
    uncertainty_limit: Timestamp | None = None,
    tombstones: bool = False,
    fail_on_more_recent: bool = False,
) -> GetResult:
    """The value of `key` visible at `ts` (see `mvcc_scan` for the rules)."""
    prefix = encode_prefix(key)
    plen = len(prefix)
    inv_read = encode_suffix(ts)
    it = reader.iter_range(prefix)
    for ek, v in it:
        if not ek.startswith(prefix):
            return GetResult(None)
        sfx = ek[plen:]
        if not sfx:
            break  # metadata: take the general path
        if sfx >= inv_read:
            # Fast path: newest version is visible and the key has no metadata.
            if v:
                return GetResult(v[1:], decode_suffix(sfx))
            return GetResult(None, decode_suffix(sfx) if tombstones else None)
        break
    else:
        return GetResult(None)
    del it
    res = mvcc_scan(
        reader,
        key,
        next_key(key),
        ts,
        txn=txn,
        inconsistent=inconsistent,
        uncertainty_limit=uncertainty_limit,
        tombstones=True,
        fail_on_more_recent=fail_on_more_recent,
    )
    intent = res.intents[0] if res.intents else None
    if not res.kvs:
        return GetResult(None, None, intent)
    val = res.kvs[0][1]
    if val is None and not tombstones:
        return GetResult(None, None, intent)
    return GetResult(val, _value_timestamp(reader, key, ts, txn, val), intent)


def _value_timestamp(
    reader: Reader, key: bytes, ts: Timestamp, txn: data_pb2.TxnMeta | None, val: bytes | None
) -> Timestamp | None:
    """Timestamp of the version a slow-path get returned (zero for inline)."""
    prefix = encode_prefix(key)
    meta = reader.get(prefix)
    skip: bytes | None = None
    if meta is not None:
        if meta[0] == META_INLINE:
            return Timestamp()
        md = data_pb2.MVCCMetadata.FromString(meta[1:])
        if (
            txn is not None
            and md.txn.id == txn.id
            and md.txn.epoch == txn.epoch
            and (
                txn.sequence >= md.txn.sequence
                or any(sv.sequence <= txn.sequence for sv in md.intent_history)
            )
        ):
            return ts_from_proto(md.timestamp)
        skip = encode_suffix(ts_from_proto(md.timestamp))
    plen = len(prefix)
    for ek, _ in reader.iter_range(prefix + encode_suffix(ts)):
        if not ek.startswith(prefix):
            break
        if ek[plen:] != skip:
            return decode_suffix(ek[plen:])
    return None


# ---- writes ------------------------------------------------------------------------


def _head(rw: Reader, prefix: bytes, n: int) -> tuple[bytes | None, list[tuple[bytes, bytes]]]:
    """(metadata record or None, first versions up to `n` as (suffix, value))."""
    meta: bytes | None = None
    versions: list[tuple[bytes, bytes]] = []
    plen = len(prefix)
    it = rw.iter_range(prefix)
    for ek, v in it:
        if not ek.startswith(prefix):
            break
        if len(ek) == plen:
            meta = v
            continue
        versions.append((ek[plen:], v))
        if len(versions) >= n:
            break
    del it
    return meta, versions


def _intent_conflict(key: bytes, md: data_pb2.MVCCMetadata) -> WriteIntentError:
    return WriteIntentError([data_pb2.Intent(key=key, txn=md.txn)])


def _write_ts(ts: Timestamp, txn: data_pb2.TxnMeta | None) -> Timestamp:
    if txn is not None and txn.HasField("write_timestamp"):
        wts = ts_from_proto(txn.write_timestamp)
        if not wts.is_empty():
            return wts
    return ts


def _put(
    rw: ReadWriter,
    key: bytes,
    ts: Timestamp,
    value: bytes,
    txn: data_pb2.TxnMeta | None,
    stats: MVCCStats | None,
) -> None:
    """Write encoded `value` (VALUE_TAG + bytes, or TOMBSTONE) at `ts`."""
    prefix = encode_prefix(key)
    klen = len(key)
    ts = _write_ts(ts, txn)
    if ts.is_empty():
        if txn is not None:
            raise InvalidArgumentError(f"transactional write of {key!r} needs a timestamp")
        meta, versions = _head(rw, prefix, 1)
        if versions:
            raise InvalidArgumentError(f"key {key!r} has versioned values; cannot write it inline")
        new_meta = (_INLINE_TAG + value[1:]) if value else None
        if new_meta is None:
            rw.delete(prefix)
        else:
            rw.put(prefix, new_meta)
        if stats is not None:
            apply_head(stats, -1, klen, meta, None)
            apply_head(stats, 1, klen, new_meta, None)
        return
    meta, versions = _head(rw, prefix, 1)
    newest = versions[0] if versions else None
    if meta is not None and meta[0] == META_INLINE:
        raise InvalidArgumentError(f"key {key!r} holds an inline value; cannot version it")
    hist: list[data_pb2.SequencedValue] = []
    old_sfx: bytes | None = None
    if meta is not None:
        md = data_pb2.MVCCMetadata.FromString(meta[1:])
        if txn is None or md.txn.id != txn.id:
            raise _intent_conflict(key, md)
        if newest is None or newest[0] != encode_suffix(ts_from_proto(md.timestamp)):
            raise InternalError(f"intent on {key!r} without its provisional version")
        if md.txn.epoch > txn.epoch:
            raise InternalError(
                f"write of {key!r} at epoch {txn.epoch} after its own write at epoch {md.txn.epoch}"
            )
        old_sfx = newest[0]
        ts = ts.forward(ts_from_proto(md.timestamp))
        if md.txn.epoch == txn.epoch:
            if txn.sequence <= md.txn.sequence:
                _check_replay(key, txn.sequence, md, newest[1], value)
                return
            hist = list(md.intent_history)
            hist.append(
                data_pb2.SequencedValue(
                    sequence=md.txn.sequence, value=newest[1][1:], deleted=not newest[1]
                )
            )
    elif newest is not None and newest[0] <= encode_suffix(ts):
        raise WriteTooOldError(ts, decode_suffix(newest[0]).next(), key)
    sfx = encode_suffix(ts)
    new_meta = None
    if txn is not None:
        md = data_pb2.MVCCMetadata(deleted=not value, intent_history=hist)
        md.txn.CopyFrom(txn)
        ts_to_proto(ts, md.txn.write_timestamp)
        ts_to_proto(ts, md.timestamp)
        new_meta = _INTENT_TAG + md.SerializeToString()
        rw.put(prefix, new_meta)
    if old_sfx is not None and old_sfx != sfx:
        rw.delete(prefix + old_sfx)
    rw.put(prefix + sfx, value)
    if stats is not None:
        apply_head(stats, -1, klen, meta, newest[1] if newest else None)
        if old_sfx is not None:
            apply_version(stats, -1, newest[1])  # type: ignore[index]
        apply_version(stats, 1, value)
        apply_head(stats, 1, klen, new_meta, value)


def _check_replay(
    key: bytes, seq: int, md: data_pb2.MVCCMetadata, provisional: bytes, value: bytes
) -> None:
    """A write at a sequence the intent already has: must be an exact replay."""
    if seq == md.txn.sequence:
        if provisional == value:
            return
    else:
        for sv in md.intent_history:
            if sv.sequence == seq:
                old = TOMBSTONE if sv.deleted else VALUE_TAG + sv.value
                if old == value:
                    return
                break
        else:
            raise InternalError(
                f"write of {key!r} at sequence {seq} is missing from the intent history "
                f"(intent is at sequence {md.txn.sequence})"
            )
    raise InternalError(f"write of {key!r} at sequence {seq} replayed with a different value")


def mvcc_put(
    rw: ReadWriter,
    key: bytes,
    ts: Timestamp,
    value: bytes,
    *,
    txn: data_pb2.TxnMeta | None = None,
    stats: MVCCStats | None = None,
) -> None:
    """Write `value` at `ts` (at ``txn.write_timestamp`` when transactional,
    as an intent). A zero timestamp without txn writes an inline value."""
    _put(rw, key, ts, VALUE_TAG + value, txn, stats)


def mvcc_delete(
    rw: ReadWriter,
    key: bytes,
    ts: Timestamp,
    *,
    txn: data_pb2.TxnMeta | None = None,
    stats: MVCCStats | None = None,
) -> bool:
    """Write a tombstone (remove an inline value at a zero timestamp).
    Returns whether a value existed (as the writer sees it)."""
    existed = _latest(rw, key, txn) is not None
    _put(rw, key, ts, TOMBSTONE, txn, stats)
    return existed


def _latest(rw: Reader, key: bytes, txn: data_pb2.TxnMeta | None) -> bytes | None:
    """The newest value as the writer sees it (own intent as of its sequence)."""
    return mvcc_get(rw, key, MAX_TIMESTAMP, txn=txn).value


def mvcc_conditional_put(
    rw: ReadWriter,
    key: bytes,
    ts: Timestamp,
    value: bytes,
    expected: bytes | None,
    *,
    txn: data_pb2.TxnMeta | None = None,
    stats: MVCCStats | None = None,
    allow_if_does_not_exist: bool = False,
) -> None:
    """Put `value` if the newest value equals `expected` (None = must not
    exist); otherwise raise `ConditionFailedError` with the actual value."""
    actual = _latest(rw, key, txn)
    if actual != expected and not (allow_if_does_not_exist and actual is None):
        raise ConditionFailedError(actual)
    _put(rw, key, ts, VALUE_TAG + value, txn, stats)


def encode_int_value(n: int) -> bytes:
    return n.to_bytes(8, "big", signed=True)


def decode_int_value(b: bytes) -> int:
    if len(b) != 8:
        raise InvalidArgumentError(f"value {b!r} is not an 8-byte integer")
    return int.from_bytes(b, "big", signed=True)


def mvcc_increment(
    rw: ReadWriter,
    key: bytes,
    ts: Timestamp,
    inc: int,
    *,
    txn: data_pb2.TxnMeta | None = None,
    stats: MVCCStats | None = None,
) -> int:
    """Add `inc` to the integer at `key` (absent = 0); returns the new value."""
    actual = _latest(rw, key, txn)
    cur = 0 if actual is None else decode_int_value(actual)
    new = cur + inc
    if not -(1 << 63) <= new < (1 << 63):
        raise InvalidArgumentError(f"key {key!r} with value {cur} incremented by {inc} overflows")
    _put(rw, key, ts, VALUE_TAG + encode_int_value(new), txn, stats)
    return new


def mvcc_delete_range(
    rw: ReadWriter,
    start: bytes,
    end: bytes,
    ts: Timestamp,
    *,
    txn: data_pb2.TxnMeta | None = None,
    stats: MVCCStats | None = None,
    max_keys: int = 0,
) -> tuple[list[bytes], tuple[bytes, bytes] | None]:
    """Delete every key with a visible value in [start, end) at `ts`.
    Returns (deleted keys, resume span)."""
    res = mvcc_scan(
        rw, start, end, _write_ts(ts, txn), txn=txn, max_keys=max_keys, fail_on_more_recent=True
    )
    out = [k for k, _ in res.kvs]
    # All or nothing: stage the tombstones so an error on a later key
    # (e.g. write-too-old against a version at exactly `ts`) writes nothing.
    staged = OverlayBatch(rw)
    delta = MVCCStats()
    for k in out:
        _put(staged, k, ts, TOMBSTONE, txn, delta)
    for k, v in staged.mutations():
        if v is None:
            rw.delete(k)
        else:
            rw.put(k, v)
    if stats is not None:
        stats.add(delta)
    return out, res.resume_span
