"""Fixtures for SQL tests: sessions over the in-memory fake KV."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from crdb_py.sql import types as T
from crdb_py.sql.runtime import Result
from crdb_py.sql.session import Session
from tests.sql.fake_kv import FakeKV


class SyncSession:
    """A blocking wrapper over `Session` for tests."""

    def __init__(self, kv: FakeKV, loop: asyncio.AbstractEventLoop) -> None:
        self.kv = kv
        self.loop = loop
        self.s = Session(kv)

    def ex(self, sql: str, *params: Any) -> Result:
        return self.loop.run_until_complete(self.s.execute(sql, list(params)))

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        return self.ex(sql, *params).rows

    def other(self) -> SyncSession:
        return SyncSession(self.kv, self.loop)


@pytest.fixture
def sess() -> Iterator[SyncSession]:
    loop = asyncio.new_event_loop()
    try:
        yield SyncSession(FakeKV(), loop)
    finally:
        loop.close()


def fmt(v: Any) -> str:
    return "NULL" if v is None else T.to_text(v)
