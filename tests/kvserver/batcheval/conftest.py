from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from crdb_py.storage import MemEngine
from crdb_py.storage.rocks import RocksEngine
from tests.kvserver.batcheval.helpers import Env


@pytest.fixture
def env() -> Iterator[Env]:
    """An evaluation environment on an in-memory engine."""
    e = MemEngine()
    yield Env(e)
    e.close()


@pytest.fixture(params=["mem", "rocks"])
def any_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Env]:
    """The same, once per engine implementation."""
    e: MemEngine | RocksEngine = (
        MemEngine() if request.param == "mem" else RocksEngine(str(tmp_path / "db"))
    )
    yield Env(e)
    e.close()
