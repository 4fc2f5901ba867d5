"""SHOW RANGES FROM TABLE t, and ALTER TABLE t SPLIT AT VALUES (...).

Range descriptors come from the meta records (``\\x02<end key>`` ->
RangeDescriptor, see crdb_py/util/keys.py), read through the statement's
transaction like any other key. The leaseholder is asked of the range:
the lease record is range-id-local and not addressable through KV, so for
each descriptor we send a QueryIntent of its start key (for a made-up txn at
timestamp 1: a lease-requiring read that never blocks on intents and whose
timestamp-cache bump at ts 1 fences nothing) through the gateway's sender.
Only the leaseholder serves it; the DistSender follows NotLeaseHolder hints
and records whoever answered in its range cache, which we then read (NULL
only if the range could not be reached). SPLIT AT encodes each row of values as a primary-key
prefix of the table and sends an AdminSplit there (outside the txn).
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlglot
from sqlglot import exp

from crdb_py.kvclient.db import Batch
from crdb_py.pb import api_pb2, data_pb2
from crdb_py.sql import errors as E
from crdb_py.sql import rowenc
from crdb_py.sql import types as T
from crdb_py.sql.catalog import TableDesc
from crdb_py.sql.planner import pretty_key
from crdb_py.sql.runtime import ExecCtx, Result
from crdb_py.util import keys
from crdb_py.util.errors import CrdbError

_S, _I = T.T_STRING, T.T_INT


async def descriptors(txn: Any, start: bytes, end: bytes) -> list[Any]:
    """Range descriptors overlapping [start, end), in key order (`txn`: a KV txn)."""
    rows = await txn.scan(keys.meta_key(keys.next_key(start)), keys.META_MAX)
    out = []
    for _, v in rows:
        d = data_pb2.RangeDescriptor()
        d.ParseFromString(v)
        if d.start_key >= end:
            break
        out.append(d)
    return out


def _leaseholder(store: Any, d: Any) -> int | None:
    s, seen = store, 0
    while s is not None and seen < 6:  # unwrap sender layers to the range cache
        rc = getattr(s, "range_cache", None)
        if rc is not None:
            e = rc.get_cached(d.start_key)
            if e is not None and e.leaseholder is not None and e.range_id == d.range_id:
                return int(e.leaseholder.node_id)
            return None
        s = getattr(s, "sender", None) or getattr(s, "wrapped", None)
        seen += 1
    return None


async def _probe_lease(store: Any, d: Any) -> None:
    """Route a lease-requiring read to `d`'s range so the DistSender learns
    (and caches) its current leaseholder; failures leave the cache as is."""
    ru = api_pb2.RequestUnion()
    qi = ru.query_intent
    qi.header.key = d.start_key
    qi.txn.id = uuid.uuid4().bytes
    qi.txn.key = d.start_key
    qi.txn.write_timestamp.wall_time = 1
    try:
        await store.run(Batch().add(ru))
    except CrdbError:
        pass


def _pretty(desc: TableDesc, key: bytes) -> str:
    if key <= b"":
        return "/Min"
    if key >= keys.META_MAX and not key.startswith(b"\x04"):
        return "/Max" if key in (b"\xff" * len(key),) else repr(key)
    for idx in desc.all_indexes:
        if key.startswith(rowenc.index_prefix(desc.id, idx.id)):
            return pretty_key(desc, idx, key)
    if len(key) >= 5 and key[:1] == b"\x04":
        tid = int.from_bytes(key[1:5], "big")
        return f"/Table/{tid}" + ("" if len(key) == 5 else f"/raw:{key[5:].hex()}")
    return repr(key)


async def show_ranges(x: ExecCtx, store: Any, table: str) -> Result:
    desc = await x.catalog.must_table(x.db_id, table)
    p = rowenc.table_prefix(desc.id)
    rows = []
    for d in await descriptors(x.buf.txn, p, rowenc.prefix_end(p)):
        await _probe_lease(store, d)
        rows.append((_pretty(desc, d.start_key), _pretty(desc, d.end_key), d.range_id,
                     _leaseholder(store, d), "{" + ",".join(str(r.node_id) for r in d.replicas) + "}"))
    cols = [("start_key", _S), ("end_key", _S), ("range_id", _I), ("lease_holder", _I),
            ("replicas", _S)]
    return Result(cols, rows, len(rows))


def _literal(e: exp.Expression) -> Any:
    if isinstance(e, exp.Neg):
        return -_literal(e.this)
    if isinstance(e, exp.Literal):
        if e.is_string:
            return e.this
        return int(e.this) if e.this.lstrip("-").isdigit() else float(e.this)
    if isinstance(e, exp.Null):
        return None
    raise E.unsupported(f"SPLIT AT value {e.sql()}")


async def split_at(x: ExecCtx, store: Any, table: str, values: str) -> Result:
    desc = await x.catalog.must_table(x.db_id, table)
    try:
        ast = sqlglot.parse_one(f"SELECT * FROM (VALUES {values}) AS v", dialect="postgres")
    except sqlglot.errors.ParseError as ex:
        raise E.syntax(f"SPLIT AT VALUES {values}: {ex}") from ex
    vals = ast.find(exp.Values)
    assert vals is not None
    pk_types = desc.pk_types()
    rows = []
    for tup in vals.expressions:
        items = tup.expressions if isinstance(tup, exp.Tuple) else [tup]
        if len(items) > len(pk_types):
            raise E.SQLError("too many columns in SPLIT AT data", "42601")
        datums = [T.assign(_literal(e), t) for e, t in zip(items, pk_types)]
        key = rowenc.encode_key(rowenc.index_prefix(desc.id, desc.primary.id), datums,
                                pk_types[:len(datums)])
        await store.admin_split(key)
        rows.append((key.hex(), pretty_key(desc, desc.primary, key)))
    return Result([("key", _S), ("pretty", _S)], rows, len(rows), "SPLIT")


async def ranges_touched(txn: Any, spans: list[tuple[bytes, bytes]]) -> int:
    """How many distinct ranges the spans overlap."""
    ids: set[int] = set()
    for start, end in spans:
        ids.update(d.range_id for d in await descriptors(txn, start, end))
    return len(ids)
