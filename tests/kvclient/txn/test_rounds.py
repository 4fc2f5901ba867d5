"""Consensus-round accounting (issue M5 item 7) and the commit path taken."""

from __future__ import annotations

import pytest

from crdb_py.kvclient.db import Batch
from crdb_py.kvclient.txn.rounds import CommitPath, batch_rounds
from crdb_py.pb import api_pb2
from tests.kvclient.txn.helpers import make_db, never, run


def _txn_rounds(n_writes: int, splits: list[bytes] | None = None, **cfg: object):
    server, db = make_db(splits, sleep=never, **cfg)

    async def main():
        t = db.txn()
        for i in range(n_writes):
            await t.put(b"k%03d" % i, b"v")
        await t.commit()
        await t.drain()
        return t

    t = run(main())
    for i in range(n_writes):
        assert server.committed_value(b"k%03d" % i) == b"v"
    return t


def test_one_write_parallel_commit_is_one_round() -> None:
    t = _txn_rounds(1)
    assert t.trace.commit_path is CommitPath.PARALLEL
    assert t.trace.rounds == 1


def test_one_write_two_phase_commit_is_two_rounds() -> None:
    t = _txn_rounds(1, parallel_commits=False)
    assert t.trace.commit_path is CommitPath.TWO_PC
    assert t.trace.rounds == 2
    t = _txn_rounds(1, parallel_commits=False, write_pipelining=False)
    assert t.trace.rounds == 2


@pytest.mark.parametrize("n", [1, 3, 10, 30])
def test_with_pipelining_rounds_do_not_grow_with_writes(n: int) -> None:
    assert _txn_rounds(n, [b"k005", b"k020"]).trace.rounds == 1
    assert _txn_rounds(n, [b"k005"], parallel_commits=False).trace.rounds == 2


@pytest.mark.parametrize("n", [1, 3, 10])
def test_without_pipelining_each_write_costs_a_round(n: int) -> None:
    assert _txn_rounds(n, write_pipelining=False).trace.rounds == n + 1
    assert _txn_rounds(n, write_pipelining=False, parallel_commits=False).trace.rounds == n + 1


def _commit_in_batch(splits: list[bytes], keys: list[bytes], **cfg: object):
    server, db = make_db(splits, sleep=never, **cfg)

    async def main():
        t = db.txn()
        b = Batch()
        for k in keys:
            b.put(k, b"x")
        await t.commit_in_batch(b)
        await t.drain()
        return t

    t = run(main())
    assert all(server.committed_value(k) == b"x" for k in keys)
    return server, t


def test_single_range_txn_in_one_batch_is_one_phase() -> None:
    server, t = _commit_in_batch([b"m"], [b"a", b"b"])
    assert t.trace.commit_path is CommitPath.ONE_PC and t.trace.rounds == 1
    assert server.records == {}  # no record written
    server, t = _commit_in_batch([b"m"], [b"a", b"b"], parallel_commits=False)
    assert t.trace.commit_path is CommitPath.ONE_PC and t.trace.rounds == 1


def test_multi_range_final_batch_commits_in_parallel_or_2pc() -> None:
    _, t = _commit_in_batch([b"m"], [b"a", b"z"])
    assert t.trace.commit_path is CommitPath.PARALLEL and t.trace.rounds == 1
    _, t = _commit_in_batch([b"m"], [b"a", b"z"], parallel_commits=False)
    assert t.trace.commit_path is CommitPath.TWO_PC and t.trace.rounds == 2


def test_read_only_txn_costs_no_round_and_sends_no_end_txn() -> None:
    server, db = make_db(sleep=never)

    async def main():
        t = db.txn()
        assert await t.get(b"a") is None
        await t.commit()
        return t

    t = run(main())
    assert t.trace.rounds == 0 and t.trace.commit_path is CommitPath.READ_ONLY
    assert server.batches_of("end_txn") == []


def test_batch_rounds_table() -> None:
    def ba(*kinds: str, async_: bool = False) -> api_pb2.BatchRequest:
        b = api_pb2.BatchRequest()
        b.header.async_consensus = async_
        for k in kinds:
            getattr(b.requests.add(), k).SetInParent()
        return b

    assert batch_rounds(ba("get", "scan")) == 0
    assert batch_rounds(ba("put", "put", async_=True)) == 0
    assert batch_rounds(ba("query_intent", "put", async_=True)) == 1
    assert batch_rounds(ba("put")) == 1
    assert batch_rounds(ba("end_txn")) == 1
    assert batch_rounds(ba("query_intent")) == 1


def test_metrics_aggregate_paths_and_rounds() -> None:
    server, db = make_db([b"m"], sleep=never)

    async def main():
        t = db.txn()
        await t.put(b"a", b"1")
        await t.commit()
        b = Batch().put(b"c", b"2")
        await db.txn().commit_in_batch(b)

    run(main())
    snap = db.metrics.snapshot()
    assert snap["commits"] == 2
    assert snap["commits_parallel"] == 1 and snap["commits_1pc"] == 1
    assert snap["rounds_hist"] == {1: 2}
