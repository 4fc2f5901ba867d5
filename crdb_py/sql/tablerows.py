"""Table rows <-> KV pairs for one table descriptor (see rowenc for bytes).

A row is a tuple of datums in the order of `TableDesc.columns` (hidden
columns included). `RowCodec` precomputes, per descriptor, the positions
and types the encoders need; codecs are cached by (table id, version).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crdb_py.sql import rowenc
from crdb_py.sql import types as T
from crdb_py.sql.catalog import Index, TableDesc


@dataclass(slots=True)
class RowCodec:
    desc: TableDesc
    pos: dict[int, int]  # column id -> row position
    pk_pos: list[int]
    pk_types: list[T.SQLType]
    value_cols: list[tuple[int, int, T.SQLType]]  # (column id, position, type)
    prefix: bytes

    @staticmethod
    def of(desc: TableDesc) -> RowCodec:
        c = _codecs.get((desc.id, desc.version))
        if c is None or c.desc is not desc:
            pos = {col.id: i for i, col in enumerate(desc.columns)}
            pk = set(desc.primary.column_ids)
            c = RowCodec(
                desc, pos, [pos[i] for i in desc.primary.column_ids], desc.pk_types(),
                [(col.id, pos[col.id], col.type) for col in desc.columns if col.id not in pk],
                rowenc.index_prefix(desc.id, desc.primary.id),
            )
            _codecs[(desc.id, desc.version)] = c
        return c

    # -- primary index -----------------------------------------------------------------
    def pk_vals(self, row: tuple[Any, ...]) -> list[Any]:
        return [row[i] for i in self.pk_pos]

    def primary_key(self, row: tuple[Any, ...]) -> bytes:
        return rowenc.encode_key(self.prefix, self.pk_vals(row), self.pk_types)

    def pk_key_from_vals(self, vals: list[Any]) -> bytes:
        return rowenc.encode_key(self.prefix, vals, self.pk_types)

    def primary_value(self, row: tuple[Any, ...]) -> bytes:
        return rowenc.pack({cid: rowenc.to_wire(row[p]) for cid, p, _ in self.value_cols
                            if row[p] is not None})

    def decode(self, key: bytes, value: bytes) -> tuple[Any, ...]:
        row: list[Any] = [None] * len(self.desc.columns)
        for p, v in zip(self.pk_pos, rowenc.decode_key(key, len(self.prefix), self.pk_types)):
            row[p] = v
        vals = rowenc.unpack(value)
        for cid, p, t in self.value_cols:
            w = vals.get(cid)
            if w is not None:
                row[p] = rowenc.from_wire(w, t)
        return tuple(row)

    # -- secondary indexes ---------------------------------------------------------------
    def index_types(self, idx: Index) -> list[T.SQLType]:
        return [self.desc.col_by_id(c).type for c in idx.column_ids]

    def index_entry(self, idx: Index, row: tuple[Any, ...]) -> tuple[bytes, bytes, bool]:
        """(key, value, checks_uniqueness) of `row`'s entry in secondary `idx`."""
        vals = [row[self.pos[c]] for c in idx.column_ids]
        p = rowenc.index_prefix(self.desc.id, idx.id)
        k = rowenc.encode_key(p, vals, self.index_types(idx))
        pk = self.pk_vals(row)
        if idx.unique and all(v is not None for v in vals):
            return k, rowenc.pack([rowenc.to_wire(v) for v in pk]), True
        return rowenc.encode_key(k, pk, self.pk_types), rowenc.pack([]), False

    def pk_from_index(self, idx: Index, key: bytes, value: bytes) -> list[Any]:
        """The PK datums an index entry points at."""
        wire = rowenc.unpack(value)
        if wire:
            return [rowenc.from_wire(w, t) for w, t in zip(wire, self.pk_types)]
        types = self.index_types(idx) + self.pk_types
        vals = rowenc.decode_key(key, len(rowenc.index_prefix(self.desc.id, idx.id)), types)
        return vals[len(idx.column_ids):]


_codecs: dict[tuple[int, int], RowCodec] = {}
