"""Cluster settings in KV: set on one gateway, followed by every gateway."""

from __future__ import annotations

import asyncio
import time

import pytest

from crdb_py.kvclient.db import DB
from crdb_py.kvclient.txn import cluster_settings as cs
from crdb_py.kvclient.txn.rounds import CommitPath
from crdb_py.kvclient.txn.settings import (
    MAX_INFLIGHT_BYTES,
    PARALLEL_COMMITS_ENABLED,
    WRITE_PIPELINING_ENABLED,
)
from crdb_py.sim.kvcluster import InProcessKVCluster


def test_encoding_and_validation() -> None:
    assert cs.setting_key(PARALLEL_COMMITS_ENABLED) == b"\x03settings/" + PARALLEL_COMMITS_ENABLED.encode()
    assert cs.encode_value(PARALLEL_COMMITS_ENABLED, "off") == b"false"
    assert cs.encode_value(WRITE_PIPELINING_ENABLED, True) == b"true"
    assert cs.encode_value(MAX_INFLIGHT_BYTES, 4096) == b"4096"
    assert cs.decode_value(MAX_INFLIGHT_BYTES, b"4096") == 4096
    assert cs.decode_value(PARALLEL_COMMITS_ENABLED, b"false") is False
    with pytest.raises(KeyError):
        cs.encode_value("kv.no.such.setting", True)
    with pytest.raises(ValueError):
        cs.encode_value(PARALLEL_COMMITS_ENABLED, "maybe")
    assert cs.PREFIX < cs.setting_key("kv.z") < cs.PREFIX_END


def test_same_keys_and_encoding_as_sql() -> None:
    sql_cs = pytest.importorskip("crdb_py.sql.cluster_settings")
    for name in (PARALLEL_COMMITS_ENABLED, WRITE_PIPELINING_ENABLED):
        assert sql_cs.setting_key(name) == cs.setting_key(name)
    assert sql_cs.parse_bool(cs.encode_value(PARALLEL_COMMITS_ENABLED, False).decode()) is False


async def _commit_path(db: DB) -> CommitPath:
    t = db.txn()
    await t.put(b"sa", b"1")
    await t.put(b"sb", b"2")
    await t.commit()
    return t.trace.commit_path


def test_a_change_on_one_gateway_reaches_the_others() -> None:
    async def main() -> None:
        c = InProcessKVCluster(3)
        await c.start()
        try:
            await c.wait_replicated()
            db1, db2, db3 = c.db(1), c.db(2), c.db(3)  # db3: no refresher
            r2 = cs.watch_cluster_settings(db2, interval=0.05)
            assert await cs.get_cluster_setting(db1, PARALLEL_COMMITS_ENABLED) is True
            assert await _commit_path(db2) is CommitPath.PARALLEL

            await cs.set_cluster_setting(db1, PARALLEL_COMMITS_ENABLED, "false")
            assert db1.settings.get(PARALLEL_COMMITS_ENABLED) is False  # at once
            assert await cs.get_cluster_setting(db3, PARALLEL_COMMITS_ENABLED) is False
            start = time.monotonic()
            while db2.settings.get(PARALLEL_COMMITS_ENABLED):
                assert time.monotonic() - start < 5, "the refresher never applied the change"
                await asyncio.sleep(0.02)
            assert await _commit_path(db2) is CommitPath.TWO_PC
            assert await _commit_path(db1) is CommitPath.TWO_PC
            # A gateway that does not watch keeps its own value.
            assert db3.settings.get(PARALLEL_COMMITS_ENABLED) is True
            assert await _commit_path(db3) is CommitPath.PARALLEL

            await cs.set_cluster_setting(db3, MAX_INFLIGHT_BYTES, 1234)
            assert await cs.load_cluster_settings(db1) == {
                PARALLEL_COMMITS_ENABLED: False,
                MAX_INFLIGHT_BYTES: 1234,
            }
            await r2.refresh()
            assert db2.settings.snapshot().max_inflight_bytes == 1234
            assert r2.refreshes >= 2
            await r2.stop()
        finally:
            await c.close()

    asyncio.run(asyncio.wait_for(main(), 60))
