"""What every executor gets: the statement's transaction view and context."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlglot import exp

from crdb_py.sql import errors as E
from crdb_py.sql import types as T
from crdb_py.sql.catalog import Catalog, TableDesc
from crdb_py.sql.expr import Ctx, Scope, ScopeCol
from crdb_py.sql.kv import WriteBuffer


class _Default:
    """The DEFAULT keyword in a VALUES row of an INSERT."""

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT = _Default()


@dataclass(slots=True)
class Relation:
    """An intermediate result: columns (with table aliases) and rows."""

    scope: Scope
    rows: list[tuple[Any, ...]]


@dataclass(slots=True)
class Result:
    """A statement's outcome, as the session returns it."""

    columns: list[tuple[str, T.SQLType]] = field(default_factory=list)
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    rowcount: int = -1
    tag: str = ""


_R = TypeVar("_R")
YIELD_EVERY = 1024  # rows of Python work between two yields to the event loop


class Canceller:
    """A session's cancel flag, and the executor's yield points.

    The row loops (joins, filters, grouping, projection) run in Python
    without awaiting anything, so without yields a big cross join would
    hold the event loop: no CancelRequest (nor any other connection) would
    be served until it ends. Every `YIELD_EVERY` rows they `tick()`, which
    yields once and raises 57014 if `cancel()` was called meanwhile.
    """

    __slots__ = ("cancelled", "_n")

    def __init__(self) -> None:
        self.cancelled = False
        self._n = 0

    def cancel(self) -> None:
        self.cancelled = True

    def reset(self) -> None:
        self.cancelled = False
        self._n = 0

    def check(self) -> None:
        if self.cancelled:
            self.cancelled = False
            raise E.SQLError("canceling statement due to user request", "57014")

    async def tick(self, rows: int = 1) -> None:
        self._n += rows
        if self._n >= YIELD_EVERY:
            self._n = 0
            await asyncio.sleep(0)
            self.check()

    async def chunks(self, rows: Sequence[_R]) -> AsyncIterator[Sequence[_R]]:
        """`rows` in slices of `YIELD_EVERY`, ticking between them."""
        for i in range(0, len(rows), YIELD_EVERY):
            chunk = rows[i:i + YIELD_EVERY]
            yield chunk
            await self.tick(len(chunk))


@dataclass(slots=True)
class ExecCtx:
    buf: WriteBuffer
    catalog: Catalog
    db_id: int
    db_name: str
    ctx: Ctx
    ctes: dict[str, Relation] = field(default_factory=dict)
    explain: list[str] | None = None  # collects plan lines under EXPLAIN
    on_schema_change: Callable[[], None] = lambda: None
    canceller: Canceller = field(default_factory=Canceller)

    def __post_init__(self) -> None:
        self.ctx.database = self.db_name  # current_database() reads it at run time

    async def resolve_table(self, t: exp.Table) -> TableDesc:
        db_id = await self.db_for(t)
        return await self.catalog.must_table(db_id, t.name)

    async def db_for(self, t: exp.Table) -> int:
        """The database a (possibly qualified) table name lives in."""
        if not isinstance(t, exp.Table):  # token soup can put anything here
            raise E.syntax(f"expected a table name, got {t!r}"[:200])
        qual = t.args.get("catalog") or t.args.get("db")
        name = qual.name if qual is not None else ""
        if t.args.get("catalog") is not None:
            name = t.args["catalog"].name
        if not name or name == "public":
            return self.db_id
        if name.lower() == "information_schema" or (
                t.args.get("db") is not None and t.args["db"].name.lower() == "information_schema"):
            raise E.SQLError(f"information_schema.{t.name} is a virtual table: it can only be "
                             "read", "42501")
        db_id = await self.catalog.database_id(name)
        if db_id is None:
            raise E.undefined_database(name)
        return db_id


def table_scope(desc: TableDesc, alias: str) -> Scope:
    return Scope([ScopeCol(alias, c.name, c.type, c.hidden) for c in desc.columns])
