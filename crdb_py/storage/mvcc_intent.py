"""Intent resolution and MVCC maintenance: GC, clearing, split keys.

Resolving an intent applies the outcome of its transaction to it:

* COMMITTED — the provisional value becomes a committed version at the
  transaction's commit timestamp (moved up if the txn was pushed), and the
  metadata record goes away;
* ABORTED — the metadata record and the provisional version are removed;
* PENDING/STAGING with a pushed timestamp — the intent stays but moves up to
  the new timestamp (so readers below it no longer conflict).

An intent from an earlier epoch of a committing transaction was not
rewritten after the restart and is removed as aborted. A resolution naming
an older epoch than the intent's is stale and does nothing. Ignored
sequence-number ranges (savepoint rollbacks) are applied first: the intent
goes back to the newest value written at a sequence that is not ignored, or
disappears if every write is ignored.

GC removes versions no reader above the GC threshold can see: every
version at or below the threshold shadowed by a newer version at or below
it, and the newest such version too when it is a tombstone. Intents and
their provisional versions are never garbage collected (a provisional value
does not shadow anything until it commits). GC is two steps, as in
CockroachDB: `mvcc_find_garbage` names, per key, the timestamp at or below
which every version is garbage (the GC queue sends those in GCRequests);
`mvcc_garbage_collect_keys` removes them, refusing loudly to remove a
provisional value or a live newest version.
"""

from __future__ import annotations

from collections.abc import Iterable

from crdb_py.pb import data_pb2
from crdb_py.storage.engine import Reader, ReadWriter
from crdb_py.storage.mvcc import TOMBSTONE, VALUE_TAG, _head
from crdb_py.storage.mvcc_key import (
    TERMINATOR,
    decode_suffix,
    encode_prefix,
    encode_suffix,
    span_bounds,
)
from crdb_py.storage.stats import (
    META_INTENT,
    MVCCStats,
    apply_head,
    apply_version,
    compute_stats,
)
from crdb_py.util.errors import InternalError
from crdb_py.util.hlc import Timestamp, ts_from_proto, ts_to_proto

COMMITTED = data_pb2.COMMITTED
ABORTED = data_pb2.ABORTED
PENDING = data_pb2.PENDING
STAGING = data_pb2.STAGING

SeqRanges = Iterable[tuple[int, int]]
# prefix + this sorts after every version of the key (suffixes are 12 bytes)
_PAST_VERSIONS = b"\xff" * 13


def mvcc_get_intent(reader: Reader, key: bytes) -> data_pb2.MVCCMetadata | None:
    """The intent on `key`, if any."""
    meta = reader.get(encode_prefix(key))
    if meta is None or meta[0] != META_INTENT:
        return None
    return data_pb2.MVCCMetadata.FromString(meta[1:])


def mvcc_scan_intents(
    reader: Reader, start: bytes, end: bytes, *, max_intents: int = 0
) -> list[tuple[bytes, data_pb2.MVCCMetadata]]:
    """Every intent in [start, end), in key order (at most `max_intents`)."""
    lo, hi = span_bounds(start, end)
    out: list[tuple[bytes, data_pb2.MVCCMetadata]] = []
    it = reader.iter_range(lo, hi)
    for ek, v in it:
        if ek[-2:] != TERMINATOR or v[0] != META_INTENT:
            continue
        i = ek.find(TERMINATOR, 1)
        if i + 2 != len(ek):
            continue  # a version whose timestamp bytes end in 00 01
        out.append((ek[1:i].replace(b"\x00\xff", b"\x00"), data_pb2.MVCCMetadata.FromString(v[1:])))
        if max_intents and len(out) >= max_intents:
            break
    del it
    return out


def _ignored(seq: int, ranges: SeqRanges) -> bool:
    return any(lo <= seq <= hi for lo, hi in ranges)


def mvcc_resolve_write_intent(
    rw: ReadWriter,
    key: bytes,
    txn: data_pb2.TxnMeta,
    status: int,
    *,
    stats: MVCCStats | None = None,
    ignored_seqnums: SeqRanges = (),
) -> bool:
    """Apply `txn`'s `status` to its intent on `key`. Returns whether an
    intent of `txn` was found and changed."""
    prefix = encode_prefix(key)
    meta, versions = _head(rw, prefix, 2)
    if meta is None or meta[0] != META_INTENT:
        return False
    md = data_pb2.MVCCMetadata.FromString(meta[1:])
    if md.txn.id != txn.id:
        return False
    its = ts_from_proto(md.timestamp)
    isfx = encode_suffix(its)
    if not versions or versions[0][0] != isfx:
        raise InternalError(f"intent on {key!r} without its provisional version")
    prov = versions[0][1]
    below = versions[1][1] if len(versions) > 1 else None
    klen = len(key)

    if status == ABORTED or (status == COMMITTED and md.txn.epoch < txn.epoch):
        _remove(rw, prefix, isfx, klen, meta, prov, below, stats)
        return True
    if md.txn.epoch > txn.epoch:
        return False  # a stale resolution from an earlier epoch
    ignored = list(ignored_seqnums)
    new_prov = prov
    hist = list(md.intent_history)
    rolled_back = False
    if ignored and md.txn.epoch == txn.epoch:
        writes = [(sv.sequence, TOMBSTONE if sv.deleted else VALUE_TAG + sv.value) for sv in hist]
        writes.append((md.txn.sequence, prov))
        kept = [(s, v) for s, v in writes if not _ignored(s, ignored)]
        if not kept:
            _remove(rw, prefix, isfx, klen, meta, prov, below, stats)
            return True
        rolled_back = len(kept) != len(writes)
        seq, new_prov = kept[-1]
        hist = [
            data_pb2.SequencedValue(sequence=s, value=v[1:], deleted=not v) for s, v in kept[:-1]
        ]
        md.txn.sequence = seq
    new_ts = ts_from_proto(txn.write_timestamp)
    if status == COMMITTED:
        if new_ts < its:
            raise InternalError(
                f"txn commits at {new_ts} below its intent on {key!r} at {its}"
            )
        nsfx = encode_suffix(new_ts)
        if nsfx != isfx:
            rw.delete(prefix + isfx)
        rw.put(prefix + nsfx, new_prov)
        rw.delete(prefix)
        if stats is not None:
            apply_head(stats, -1, klen, meta, prov)
            apply_version(stats, -1, prov)
            apply_version(stats, 1, new_prov)
            apply_head(stats, 1, klen, None, new_prov)
        return True
    # PENDING / STAGING: push the intent's timestamp forward, apply rollbacks.
    new_ts = new_ts.forward(its)
    if new_ts == its and not rolled_back:
        return False
    nsfx = encode_suffix(new_ts)
    ts_to_proto(new_ts, md.timestamp)
    ts_to_proto(new_ts, md.txn.write_timestamp)
    md.deleted = not new_prov
    del md.intent_history[:]
    md.intent_history.extend(hist)
    new_meta = bytes([META_INTENT]) + md.SerializeToString()
    if nsfx != isfx:
        rw.delete(prefix + isfx)
    rw.put(prefix + nsfx, new_prov)
    rw.put(prefix, new_meta)
    if stats is not None:
        apply_head(stats, -1, klen, meta, prov)
        apply_version(stats, -1, prov)
        apply_version(stats, 1, new_prov)
        apply_head(stats, 1, klen, new_meta, new_prov)
    return True


def _remove(
    rw: ReadWriter,
    prefix: bytes,
    isfx: bytes,
    klen: int,
    meta: bytes,
    prov: bytes,
    below: bytes | None,
    stats: MVCCStats | None,
) -> None:
    rw.delete(prefix + isfx)
    rw.delete(prefix)
    if stats is not None:
        apply_head(stats, -1, klen, meta, prov)
        apply_version(stats, -1, prov)
        apply_head(stats, 1, klen, None, below)


def mvcc_resolve_write_intent_range(
    rw: ReadWriter,
    start: bytes,
    end: bytes,
    txn: data_pb2.TxnMeta,
    status: int,
    *,
    stats: MVCCStats | None = None,
    ignored_seqnums: SeqRanges = (),
    max_keys: int = 0,
) -> tuple[int, tuple[bytes, bytes] | None]:
    """Resolve `txn`'s intents in [start, end). Returns (number resolved,
    resume span when `max_keys` intents were resolved and more may remain)."""
    ignored = list(ignored_seqnums)
    n = 0
    for key, md in mvcc_scan_intents(rw, start, end):
        if md.txn.id != txn.id:
            continue
        if max_keys and n >= max_keys:
            return n, (key, end)
        if mvcc_resolve_write_intent(rw, key, txn, status, stats=stats, ignored_seqnums=ignored):
            n += 1
    return n, None


def mvcc_find_garbage(
    reader: Reader,
    start: bytes,
    end: bytes,
    threshold: Timestamp,
    *,
    max_keys: int = 0,
    max_records: int = 0,
) -> tuple[list[tuple[bytes, Timestamp]], bytes | None]:
    """The garbage of keys in [start, end) at GC threshold `threshold`:
    ``(key, ts)`` per key with garbage, meaning every version of the key at
    or below ``ts`` is garbage (garbage is downward closed).

    A version is garbage when it is at or below the threshold and either
    shadowed by a newer committed version at or below it, or a tombstone
    that is the newest committed version at or below it. So the newest
    version a read above the threshold can see is kept (unless it is a
    deletion). An intent's provisional version is never garbage and shadows
    nothing (it may still abort). Inline values are never garbage.

    Stops after `max_keys` keys with garbage, or after looking at about
    `max_records` engine records (0 = no limit); the second result is then
    the key to resume from, else None.
    """
    lo, hi = span_bounds(start, end)
    inv = encode_suffix(threshold)
    out: list[tuple[bytes, Timestamp]] = []
    cur = b""
    plen = 0
    seen = False  # met a committed version at or below the threshold
    found: bytes | None = None  # suffix of the key's newest garbage version
    skip: bytes | None = None
    records = 0

    def flush() -> None:
        if found is not None:
            uk = cur[1 : plen - 2].replace(b"\x00\xff", b"\x00")
            out.append((uk, decode_suffix(found)))

    for ek, v in reader.iter_range(lo, hi):
        if not cur or not ek.startswith(cur):
            flush()
            records += 1
            i = ek.find(TERMINATOR, 1)
            if (max_keys and len(out) >= max_keys) or (max_records and records > max_records):
                return out, ek[1:i].replace(b"\x00\xff", b"\x00")
            plen = i + 2
            cur = ek[:plen]
            seen, found, skip = False, None, None
            if len(ek) == plen:
                if v[0] == META_INTENT:
                    md = data_pb2.MVCCMetadata.FromString(v[1:])
                    skip = encode_suffix(ts_from_proto(md.timestamp))
                continue
        else:
            records += 1
        if found is not None:
            continue  # everything older is garbage too
        sfx = ek[plen:]
        if sfx == skip or sfx < inv:
            continue  # the provisional value, or above the threshold
        if seen or not v:
            found = sfx
        seen = True
    flush()
    return out, None


def mvcc_garbage_collect_keys(
    rw: ReadWriter,
    gc_keys: Iterable[tuple[bytes, Timestamp]],
    *,
    stats: MVCCStats | None = None,
) -> int:
    """Remove every version at or below ``ts`` of each ``(key, ts)``.
    Returns the number of versions removed; stats are kept exact.

    Refuses loudly (`InternalError`, nothing written for that key) to remove
    an intent's provisional version, or the newest committed version of a
    key when it is not a tombstone: that is live data, and a GC request
    asking for it is a bug. Repeating a request is harmless.
    """
    n = 0
    for key, gts in gc_keys:
        prefix = encode_prefix(key)
        plen = len(prefix)
        gsfx = encode_suffix(gts)
        meta: bytes | None = None
        newer: list[bytes] = []  # suffixes of the versions kept
        doomed: list[tuple[bytes, bytes]] = []
        for ek, v in rw.iter_range(prefix, prefix + _PAST_VERSIONS):
            if len(ek) == plen:
                meta = v
            elif ek[plen:] < gsfx:
                newer.append(ek[plen:])
            else:
                doomed.append((ek, v))
        if not doomed or (meta is not None and meta[0] != META_INTENT):
            continue
        if meta is not None:
            md = data_pb2.MVCCMetadata.FromString(meta[1:])
            isfx = encode_suffix(ts_from_proto(md.timestamp))
            if isfx >= gsfx:
                raise InternalError(
                    f"GC of {key!r} at or below {gts} would remove the provisional value of an "
                    f"intent at {ts_from_proto(md.timestamp)}"
                )
            newer.remove(isfx)
        if not newer and doomed[0][1]:
            raise InternalError(f"GC of {key!r} at or below {gts} would remove its newest, live value")
        for ek, _ in doomed:
            rw.delete(ek)
        n += len(doomed)
        if stats is not None:
            for _, v in doomed:
                apply_version(stats, -1, v)
            if not newer and meta is None:
                apply_head(stats, -1, len(key), None, TOMBSTONE)  # the key is gone
    return n


def mvcc_garbage_collect(
    rw: ReadWriter,
    start: bytes,
    end: bytes,
    threshold: Timestamp,
    *,
    stats: MVCCStats | None = None,
) -> int:
    """Remove versions in [start, end) that no read above `threshold` can
    see (`mvcc_find_garbage`). Returns the number of versions removed."""
    found, _ = mvcc_find_garbage(rw, start, end, threshold)
    return mvcc_garbage_collect_keys(rw, found, stats=stats)


def mvcc_clear_range(
    rw: ReadWriter, start: bytes, end: bytes, *, stats: MVCCStats | None = None
) -> int:
    """Remove every MVCC record (intents included) of keys in [start, end).
    Returns the number of engine records removed."""
    if stats is not None:
        stats.subtract(compute_stats(rw, start, end))
    lo, hi = span_bounds(start, end)
    doomed = [ek for ek, _ in rw.iter_range(lo, hi)]
    for ek in doomed:
        rw.delete(ek)
    return len(doomed)


def mvcc_find_split_key(
    reader: Reader, start: bytes, end: bytes, target_size: int, *, min_key: bytes = b""
) -> bytes | None:
    """The first key K in (start, end) such that the MVCC data of keys in
    [start, K) is at least `target_size` bytes (key + value bytes of every
    record), or None if the span holds less. K is never `start` nor below
    `min_key`, so both halves of a split are non-empty."""
    lo, hi = span_bounds(start, end)
    total = 0
    cur = b""
    for ek, v in reader.iter_range(lo, hi):
        if not cur or not ek.startswith(cur):
            i = ek.find(TERMINATOR, 1)
            cur = ek[: i + 2]
            if total >= target_size:
                uk = ek[1:i].replace(b"\x00\xff", b"\x00")
                if uk > start and uk >= min_key:
                    return uk
        total += len(ek) + len(v)
    return None
