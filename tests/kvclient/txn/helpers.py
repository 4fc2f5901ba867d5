"""Shared test helpers: a DB over the mock server with a manual clock."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from crdb_py.kvclient.db import DB
from crdb_py.kvclient.txn.settings import TxnSettings
from crdb_py.util.hlc import HLC, ManualClock
from tests.kvclient.txn.mock_server import MockServer

T = TypeVar("T")


class MockLocator:
    def __init__(self, server: MockServer) -> None:
        self.server = server

    async def single_range(self, keys: list[bytes]) -> bool | None:
        return len({self.server.range_of(k) for k in keys}) == 1


async def never(_: float) -> None:
    """A sleep that never returns (heartbeat loops stay quiet)."""
    await asyncio.Event().wait()


async def no_sleep(_: float) -> None:
    await asyncio.sleep(0)


def make_db(
    splits: list[bytes] | None = None,
    *,
    locator: bool = True,
    sleep: Any = None,
    **config: Any,
) -> tuple[MockServer, DB]:
    config.setdefault("heartbeat_interval", 3600.0)
    server = MockServer(splits)
    clock = HLC(ManualClock(1_000_000_000_000))
    db = DB(
        server,
        clock=clock,
        settings=TxnSettings(**config),
        locator=MockLocator(server) if locator else None,
        sleep=no_sleep if sleep in (None, never) else sleep,
    )
    return server, db


def run(coro: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
    return asyncio.run(asyncio.wait_for(coro, timeout))
