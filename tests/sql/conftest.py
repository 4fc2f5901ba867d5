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


class EmbeddedSession:
    """The same interface over a real in-memory single-node store."""

    def __init__(self, backend: object) -> None:
        self.backend = backend
        self.s = Session(backend.db)  # type: ignore[attr-defined]

    def ex(self, sql: str, *params: Any) -> Result:
        return self.backend.run(self.s.execute(sql, list(params)), timeout=60)  # type: ignore[attr-defined]

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        return self.ex(sql, *params).rows


@pytest.fixture(params=["fake", "embedded"])
def any_sess(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A session over the fake KV and over the real embedded store."""
    if request.param == "fake":
        loop = asyncio.new_event_loop()
        try:
            yield SyncSession(FakeKV(), loop)
        finally:
            loop.close()
        return
    from crdb_py.embed import open_backend, release_backend

    b = open_backend(None)
    try:
        yield EmbeddedSession(b)
    finally:
        release_backend(b)
