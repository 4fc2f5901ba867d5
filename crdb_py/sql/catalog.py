"""The catalog: database and table descriptors stored in KV.

Layout (system key space, read and written inside the statement's
transaction, so DDL is transactional like any other write)::

    \\x03sql/desc/<id: 4 BE>                 -> version (4 BE) | msgpack(descriptor)
    \\x03sql/ns/<parent id: 4 BE><name utf-8> -> msgpack(id)     (databases: parent 0)
    \\x03sql/descid                          -> counter (Increment) for new ids

Ids start at 100 (below is reserved). Each change of a table descriptor
bumps its `version`; decoded descriptors are cached process-wide by their
stored bytes, so a statement pays one point read per table it names and
no decoding. Rejected for now: CockroachDB's descriptor leases (which
avoid the read); they need a lease protocol and a schema-change job.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field, replace
from typing import Any

from crdb_py.sql import errors as E
from crdb_py.sql import rowenc
from crdb_py.sql import types as T
from crdb_py.sql.kv import WriteBuffer

DESC_PREFIX = b"\x03sql/desc/"
NS_PREFIX = b"\x03sql/ns/"
ID_KEY = b"\x03sql/descid"
FIRST_ID = 100
DEFAULT_DB = "defaultdb"
PRIMARY_INDEX_ID = 1
ROWID = "rowid"


@dataclass(frozen=True, slots=True)
class Column:
    id: int
    name: str
    type: T.SQLType
    nullable: bool = True
    default: str | None = None  # SQL text of the DEFAULT expression
    hidden: bool = False


@dataclass(frozen=True, slots=True)
class Index:
    id: int
    name: str
    column_ids: tuple[int, ...]
    unique: bool = False


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    expr: str  # SQL text


@dataclass(frozen=True, slots=True)
class TableDesc:
    id: int
    parent_id: int
    name: str
    columns: tuple[Column, ...]
    primary: Index
    indexes: tuple[Index, ...] = ()
    checks: tuple[Check, ...] = ()
    next_column_id: int = 1
    next_index_id: int = 2
    version: int = 1
    _by_name: dict[str, Column] = field(init=False, default_factory=dict, compare=False, repr=False)
    _by_id: dict[int, Column] = field(init=False, default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for c in self.columns:
            self._by_name[c.name] = c
            self._by_id[c.id] = c

    def column(self, name: str) -> Column:
        c = self._by_name.get(name)
        if c is None:
            raise E.undefined_column(name)
        return c

    def has_column(self, name: str) -> bool:
        return name in self._by_name

    def col_by_id(self, cid: int) -> Column:
        return self._by_id[cid]

    @property
    def visible_columns(self) -> list[Column]:
        return [c for c in self.columns if not c.hidden]

    @property
    def all_indexes(self) -> list[Index]:
        return [self.primary, *self.indexes]

    def index(self, name: str) -> Index | None:
        return next((i for i in self.all_indexes if i.name == name), None)

    def pk_types(self) -> list[T.SQLType]:
        return [self._by_id[c].type for c in self.primary.column_ids]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "parent": self.parent_id, "name": self.name,
            "cols": [[c.id, c.name, c.type.family, c.type.width, c.nullable, c.default, c.hidden]
                     for c in self.columns],
            "pk": _idx_dict(self.primary), "idx": [_idx_dict(i) for i in self.indexes],
            "checks": [[c.name, c.expr] for c in self.checks],
            "ncol": self.next_column_id, "nidx": self.next_index_id, "v": self.version,
        }

    @staticmethod
    def from_dict(d: dict[str, Any]) -> TableDesc:
        return TableDesc(
            id=d["id"], parent_id=d["parent"], name=d["name"],
            columns=tuple(Column(c[0], c[1], T.SQLType(c[2], c[3]), c[4], c[5], c[6])
                          for c in d["cols"]),
            primary=_idx(d["pk"]), indexes=tuple(_idx(i) for i in d["idx"]),
            checks=tuple(Check(c[0], c[1]) for c in d["checks"]),
            next_column_id=d["ncol"], next_index_id=d["nidx"], version=d["v"],
        )


def _idx_dict(i: Index) -> list[Any]:
    return [i.id, i.name, list(i.column_ids), i.unique]


def _idx(x: list[Any]) -> Index:
    return Index(x[0], x[1], tuple(x[2]), x[3])


def desc_key(id_: int) -> bytes:
    return DESC_PREFIX + struct.pack(">I", id_)


def ns_key(parent: int, name: str) -> bytes:
    return NS_PREFIX + struct.pack(">I", parent) + name.encode()


# Keyed by the stored bytes (version included): ids repeat across databases
# of one process (two in-memory connections), the bytes do not collide.
_decoded: dict[bytes, TableDesc] = {}


class Catalog:
    """Catalog access inside one transaction (through its WriteBuffer)."""

    def __init__(self, buf: WriteBuffer, ids: dict[tuple[int, str], int] | None = None) -> None:
        self.buf = buf
        self._tables: dict[tuple[int, str], TableDesc | None] = {}
        # (parent id, name) -> table id, shared across a session's statements.
        # Only a hint: the descriptor read by id must still carry that parent
        # and name, else the namespace is read again. It saves a point read
        # per table per statement without ever trusting a stale entry.
        self._ids = ids if ids is not None else {}
        self.keys_read: list[bytes] = []  # namespace and descriptor keys, in order

    async def _get(self, key: bytes) -> bytes | None:
        self.keys_read.append(key)
        return await self.buf.get(key)

    async def new_id(self) -> int:
        return FIRST_ID + await self.buf.inc(ID_KEY, 1)

    # -- databases ---------------------------------------------------------------------
    async def database_id(self, name: str) -> int | None:
        raw = await self._get(ns_key(0, name))
        return None if raw is None else rowenc.unpack(raw)

    async def create_database(self, name: str) -> int:
        id_ = await self.new_id()
        self.buf.put(ns_key(0, name), rowenc.pack(id_))
        return id_

    async def drop_database(self, db_id: int, name: str, cascade: bool) -> None:
        tables = await self.list_tables(db_id)
        if tables and not cascade:
            raise E.SQLError(
                f'database "{name}" is not empty and CASCADE was not specified', "2BP01"
            )
        for t in tables:
            await self.drop_table(t)
        self.buf.delete(ns_key(0, name))

    async def list_databases(self) -> list[str]:
        rows = await self.buf.scan(ns_key(0, ""), ns_key(1, ""))
        return [k[len(NS_PREFIX) + 4 :].decode() for k, _ in rows]

    # -- tables ---------------------------------------------------------------------------
    async def list_tables(self, db_id: int) -> list[TableDesc]:
        rows = await self.buf.scan(ns_key(db_id, ""), ns_key(db_id + 1, ""))
        out = []
        for k, _ in rows:
            t = await self.table(db_id, k[len(NS_PREFIX) + 4 :].decode())
            if t is not None:
                out.append(t)
        return out

    async def table(self, db_id: int, name: str) -> TableDesc | None:
        key = (db_id, name)
        if key in self._tables:
            return self._tables[key]
        hint = self._ids.get(key)
        if hint is not None:
            d = await self.table_by_id(hint, missing_ok=True)
            if d is not None and d.parent_id == db_id and d.name == name:
                self._tables[key] = d
                return d
            del self._ids[key]
        raw = await self._get(ns_key(db_id, name))
        desc = None
        if raw is not None:
            desc = await self.table_by_id(rowenc.unpack(raw))
            self._ids[key] = desc.id
        self._tables[key] = desc
        return desc

    async def table_by_id(self, id_: int, *, missing_ok: bool = False) -> TableDesc | None:
        raw = await self._get(desc_key(id_))
        if raw is None:
            if missing_ok:
                return None
            raise E.SQLError(f"descriptor {id_} not found", "XX000")
        d = _decoded.get(raw)
        if d is None:
            d = TableDesc.from_dict(rowenc.unpack(raw[4:]))
            if len(_decoded) > 4096:
                _decoded.clear()
            _decoded[raw] = d
        return d

    async def must_table(self, db_id: int, name: str) -> TableDesc:
        t = await self.table(db_id, name)
        if t is None:
            raise E.undefined_table(name)
        return t

    def write_table(self, t: TableDesc, *, new: bool = False) -> TableDesc:
        if not new:
            t = replace(t, version=t.version + 1)
        self.buf.put(desc_key(t.id), struct.pack(">I", t.version) + rowenc.pack(t.to_dict()))
        self.buf.put(ns_key(t.parent_id, t.name), rowenc.pack(t.id))
        self._tables[(t.parent_id, t.name)] = t
        return t

    async def drop_table(self, t: TableDesc) -> None:
        """Remove the descriptor, the name and every row of the table."""
        self.buf.delete(ns_key(t.parent_id, t.name))
        self.buf.delete(desc_key(t.id))
        self._tables[(t.parent_id, t.name)] = None
        await clear_span(self.buf, rowenc.table_prefix(t.id))

    def rename_table(self, t: TableDesc, new_name: str) -> TableDesc:
        """Move the namespace entry to `new_name` and bump the descriptor."""
        self.buf.delete(ns_key(t.parent_id, t.name))
        self._tables[(t.parent_id, t.name)] = None
        self._ids.pop((t.parent_id, t.name), None)
        return self.write_table(replace(t, name=new_name))


async def clear_span(buf: WriteBuffer, prefix: bytes) -> int:
    """Delete every key under `prefix` (through the buffer); returns the count."""
    rows = await buf.scan(prefix, rowenc.prefix_end(prefix))
    for k, _ in rows:
        buf.delete(k)
    return len(rows)
