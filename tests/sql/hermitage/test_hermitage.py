"""Hermitage isolation tests over the embedded store and a 3-node cluster.

Each script runs with two or three concurrent SQL sessions; every anomaly
must be prevented (a statement blocks, or a txn aborts with 40001, and no
statement ever returns a wrong answer). To show the scripts can fail, the
same scripts run over a deliberately broken store whose reads bypass the
transaction (each read is its own txn: no snapshot, no read tracking, so no
refresh can catch a conflict) — and the anomalies appear.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from crdb_py.sql.session import Session
from tests.sql.hermitage.runner import Outcome, Runner
from tests.sql.hermitage.scripts import CAUGHT_WHEN_BROKEN, SCRIPTS, SETUP

_dbs = itertools.count(1)


class _BrokenTxn:
    """Writes and commit go to the real txn; reads go to a fresh txn each."""

    def __init__(self, db: Any, txn: Any) -> None:
        self._db, self._txn = db, txn

    def __getattr__(self, name: str) -> Any:
        return getattr(self._txn, name)

    async def _fresh(self, fn: Any) -> Any:
        t = self._db.txn("broken-read")
        try:
            return await fn(t)
        finally:
            await t.commit()

    async def get(self, key: bytes) -> bytes | None:
        return await self._fresh(lambda t: t.get(key))

    async def scan(self, start: bytes, end: bytes, *, max_rows: int = 0) -> list[Any]:
        return await self._fresh(lambda t: t.scan(start, end, max_rows=max_rows))

    async def run(self, b: Any) -> list[Any]:
        return await self._fresh(lambda t: t.run(b))


class _BrokenStore:
    def __init__(self, db: Any) -> None:
        self._db = db

    def txn(self, name: str = "", **kw: Any) -> Any:
        return _BrokenTxn(self._db, self._db.txn(name, **kw))


def _run(backend: Any, name: str, *, broken: bool = False) -> Outcome:
    db_name = f"h{next(_dbs)}"
    store = _BrokenStore(backend.db) if broken else backend.db

    def make() -> Session:
        s = Session(store)
        s.database = db_name
        return s

    boot = Session(backend.db)
    backend.run(boot.execute(f"CREATE DATABASE {db_name}"), timeout=60)
    backend.run(boot.close(), timeout=60)
    return Runner(backend.loop.loop, make).run(SETUP + SCRIPTS[name])


@pytest.fixture(scope="module")
def backend() -> Iterator[Any]:
    from crdb_py.embed import open_backend, release_backend

    b = open_backend(None)
    try:
        yield b
    finally:
        release_backend(b)


@pytest.mark.parametrize("name", list(SCRIPTS))
def test_anomaly_prevented(backend: Any, name: str) -> None:
    out = _run(backend, name)
    assert out.ok, f"{name}: {out.violations} (blocked: {out.blocked})"


@pytest.mark.parametrize("name", CAUGHT_WHEN_BROKEN)
def test_anomaly_appears_without_isolation(backend: Any, name: str) -> None:
    out = _run(backend, name, broken=True)
    assert not out.ok, f"{name}: the broken store should show the anomaly"


def test_hermitage_on_local_cluster() -> None:
    from crdb_py.localcluster import LocalCluster

    with LocalCluster(3) as c:
        conn = c.connect()
        try:
            b = conn._backend
            bad = {n: _run(b, n).violations for n in SCRIPTS}
            assert not any(bad.values()), bad
        finally:
            conn.close()
