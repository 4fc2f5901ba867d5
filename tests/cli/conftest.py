from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cli.procs import child_pids


@pytest.fixture(autouse=True)
def no_leaked_processes() -> Iterator[None]:
    before = child_pids()
    yield
    leaked = child_pids() - before
    assert not leaked, f"test leaked child processes {sorted(leaked)}"
