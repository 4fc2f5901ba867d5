from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from crdb_py.storage import MemEngine
from crdb_py.storage.rocks import RocksEngine


@pytest.fixture(params=["mem", "rocks"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MemEngine | RocksEngine]:
    """Each test using it runs once per engine implementation."""
    e: MemEngine | RocksEngine = MemEngine() if request.param == "mem" else RocksEngine(str(tmp_path / "db"))
    yield e
    e.close()


@pytest.fixture(scope="session")
def shared_rocks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RocksEngine]:
    """One RocksDB for property tests (opening one per example is slow);
    tests must wipe it first with `wipe`."""
    e = RocksEngine(str(tmp_path_factory.mktemp("shared") / "db"))
    yield e
    e.close()


def wipe(e: RocksEngine) -> RocksEngine:
    e.delete_range(b"", b"\xff" * 8)
    return e
