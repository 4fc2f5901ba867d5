"""crdb_py.util.failpoints: pause, error, kill, counts, the env var."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest

from crdb_py.kvclient.db import Batch
from crdb_py.kvclient.txn.committer import FP_BEFORE_ACK, FP_BEFORE_EXPLICIT_COMMIT
from crdb_py.pb import data_pb2
from crdb_py.util import failpoints
from tests.kvclient.txn.helpers import make_db, never, run


@pytest.fixture(autouse=True)
def _reset() -> None:
    failpoints.reset()
    yield
    failpoints.reset()


def test_unarmed_points_only_count() -> None:
    run(failpoints.hit("x"))
    failpoints.hit_sync("x")
    assert failpoints.hits("x") == 2


def test_error_action_and_count_limit() -> None:
    failpoints.enable("x", "error(boom)*1")
    with pytest.raises(failpoints.FailpointError, match="boom"):
        run(failpoints.hit("x"))
    run(failpoints.hit("x"))  # used up
    failpoints.enable("y", "error")
    with pytest.raises(failpoints.FailpointError):
        failpoints.hit_sync("y")
    failpoints.disable("y")
    failpoints.hit_sync("y")
    with pytest.raises(ValueError):
        failpoints.enable("z", "explode")


def test_pause_until_released() -> None:
    failpoints.enable("p", "pause")

    async def main() -> list[str]:
        order: list[str] = []

        async def worker() -> None:
            await failpoints.hit("p")
            order.append("passed")

        task = asyncio.ensure_future(worker())
        assert await failpoints.wait_reached("p", timeout=5)
        await asyncio.sleep(0.01)
        order.append("released")
        failpoints.release("p")
        await task
        return order

    assert run(main()) == ["released", "passed"]


def test_env_var_parsing() -> None:
    failpoints.load_env("a=pause; b=error(x)*2 ;c=sleep(0)")
    with pytest.raises(failpoints.FailpointError):
        failpoints.hit_sync("b")
    run(failpoints.hit("c"))
    with pytest.raises(ValueError):
        failpoints.load_env("nonsense")


def test_kill_from_env_in_a_child_process() -> None:
    code = "from crdb_py.util import failpoints; failpoints.hit_sync('die'); print('alive')"
    env = dict(os.environ, CRDB_PY_FAILPOINTS="die=kill")
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=60)
    assert p.returncode == 137 and b"alive" not in p.stdout
    env = dict(os.environ, CRDB_PY_FAILPOINTS="")
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=60)
    assert p.returncode == 0 and b"alive" in p.stdout


def test_coordinator_points_before_ack_and_explicit_commit() -> None:
    """A coordinator stopped between STAGING and the ack leaves a STAGING
    record; recovery commits it since every write landed."""
    server, db = make_db([b"m"], sleep=never)
    failpoints.enable(FP_BEFORE_ACK, "error(crash)")

    async def main():
        t = db.txn()
        await t.put(b"a", b"1")
        with pytest.raises(failpoints.FailpointError):
            await t.commit_in_batch(Batch().put(b"z", b"1"))
        t.coord.close()
        return t

    t = run(main())


    assert server.records[t.id].status == data_pb2.STAGING
    assert server.recover(t.id) == data_pb2.COMMITTED
    assert server.committed_value(b"a") == b"1" and server.committed_value(b"z") == b"1"

    failpoints.reset()
    server, db = make_db([b"m"], sleep=never)
    failpoints.enable(FP_BEFORE_EXPLICIT_COMMIT, "pause")

    async def main2():
        t = db.txn()
        await t.put(b"a", b"1")
        await t.commit()
        assert t.committed  # acked before the explicit commit
        assert server.records[t.id].status == data_pb2.STAGING
        assert await failpoints.wait_reached(FP_BEFORE_EXPLICIT_COMMIT)
        failpoints.release(FP_BEFORE_EXPLICIT_COMMIT)
        await t.drain()
        assert server.records[t.id].status == data_pb2.COMMITTED

    run(main2())
