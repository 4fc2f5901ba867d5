"""The committer: 1PC, parallel commits (STAGING), 2PC, elision, explicit commit."""

from __future__ import annotations

import pytest

from crdb_py.kvclient import batch as kb
from crdb_py.kvclient.db import Batch
from crdb_py.kvclient.txn.committer import Committer
from crdb_py.kvclient.txn.rounds import CommitPath
from crdb_py.pb import data_pb2
from crdb_py.util import errors
from tests.kvclient.txn.helpers import make_db, never, run


def kinds(ba) -> list[str]:
    return [kb.kind(r) for r in ba.requests]


def test_parallel_commit_stages_then_commits_explicitly() -> None:
    server, db = make_db([b"m"], sleep=never)

    async def main():
        t = db.txn()
        await t.put(b"a", b"1")
        await t.commit_in_batch(Batch().put(b"z", b"2"))
        assert t.committed and t.trace.commit_path is CommitPath.PARALLEL
        staging = server.batches_of("end_txn")[0]
        et = staging.requests[-1].end_txn
        assert [(w.key, w.sequence) for w in et.in_flight_writes] == [(b"a", 1), (b"z", 2)]
        assert kinds(staging) == ["query_intent", "put", "end_txn"]
        await t.drain()
        return t

    t = run(main())
    explicit = server.batches_of("end_txn")[1]
    assert kinds(explicit) == ["end_txn"]
    et = explicit.requests[0].end_txn
    assert et.commit and not et.in_flight_writes
    assert {s.key for s in et.lock_spans} == {b"a", b"z"}
    assert server.records[t.id].status == data_pb2.COMMITTED
    assert server.committed_value(b"a") == b"1" and server.committed_value(b"z") == b"2"
    assert not server.intents


def test_two_phase_sends_the_end_txn_alone_after_the_proofs() -> None:
    server, db = make_db([b"m"], sleep=never, parallel_commits=False)

    async def main():
        t = db.txn()
        await t.put(b"a", b"1")
        await t.commit_in_batch(Batch().put(b"z", b"2"))
        return t

    t = run(main())
    assert [kinds(b) for b in server.log] == [["put"], ["query_intent", "put"], ["end_txn"]]
    assert not server.log[1].header.async_consensus
    et = server.log[2].requests[0].end_txn
    assert not et.in_flight_writes and {s.key for s in et.lock_spans} == {b"a", b"z"}
    assert t.trace.commit_path is CommitPath.TWO_PC
    assert server.records[t.id].status == data_pb2.COMMITTED


def test_parallel_commit_not_used_with_ranged_write_or_read_in_final_batch() -> None:
    for final in (Batch().delete_range(b"c", b"d"), Batch().get(b"q").put(b"z", b"1")):
        server, db = make_db([b"m"], sleep=never)

        async def main(final=final, db=db):
            t = db.txn()
            await t.put(b"a", b"1")
            await t.commit_in_batch(final)
            return t

        t = run(main())
        assert t.trace.commit_path is CommitPath.TWO_PC
        assert all(not b.requests[-1].end_txn.in_flight_writes for b in server.batches_of("end_txn"))


def test_one_phase_falls_back_when_the_range_answer_was_wrong() -> None:
    # No locator: the committer tries 1PC; the batch spans two ranges, the
    # server refuses require_1pc, and the txn commits in parallel instead.
    server, db = make_db([b"m"], locator=False, sleep=never)

    async def main():
        t = db.txn()
        await t.commit_in_batch(Batch().put(b"a", b"1").put(b"z", b"2"))
        await t.drain()
        return t

    t = run(main())
    assert t.committed and t.trace.commit_path is CommitPath.PARALLEL
    assert server.log[0].requests[-1].end_txn.require_1pc
    assert server.committed_value(b"a") == b"1" and server.committed_value(b"z") == b"2"


def test_pushed_write_never_yields_a_false_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    """AckImpliesCommit: a parallel commit whose write was pushed is not
    committed; with the check broken, the client would be told "committed"
    although recovery aborts the txn — the test shows that is caught."""

    def scenario() -> tuple[bool, int]:
        server, db = make_db([b"m"], sleep=never)

        async def main() -> bool:
            t = db.txn()
            assert await t.get(b"r") is None  # a read the refresh must validate
            await t.put(b"a", b"1")
            # Another txn writes r after our read, and a reader pushes z.
            server.write_committed(b"r", b"other", t.read_timestamp.add(5))
            server.bump_tscache(b"z", t.read_timestamp.add(10))
            try:
                await t.commit_in_batch(Batch().put(b"z", b"1"))
            except errors.TransactionRetryError:
                return False
            finally:
                t.coord.close()
            return t.committed

        acked = run(main())
        txn_id = next(iter(server.records))
        return acked, server.recover(txn_id)

    acked, status = scenario()
    assert not acked
    assert status == data_pb2.ABORTED
    # Broken variant: ignore the push.
    monkeypatch.setattr(Committer, "implicitly_committed", lambda self, txn, ts: True)
    acked, status = scenario()
    assert acked and status == data_pb2.ABORTED  # the violation the check prevents


def test_pushed_parallel_commit_refreshes_and_commits_without_parallel() -> None:
    server, db = make_db([b"m"], sleep=never)

    async def main():
        t = db.txn()
        assert await t.get(b"r") is None
        await t.put(b"a", b"1")
        server.bump_tscache(b"z", t.read_timestamp.add(10))
        await t.commit_in_batch(Batch().put(b"z", b"1"))
        await t.drain()
        return t

    t = run(main())
    assert t.committed and t.epoch == 0
    assert t.trace.staging_pushed == 1 and t.trace.refreshes == 1
    assert t.trace.commit_path is CommitPath.TWO_PC
    ets = server.batches_of("end_txn")
    assert ets[0].requests[-1].end_txn.in_flight_writes  # the parallel attempt
    assert all(not b.requests[-1].end_txn.in_flight_writes for b in ets[1:])
    assert server.records[t.id].status == data_pb2.COMMITTED
    assert server.committed_value(b"z") == b"1" and not server.intents


def test_rollback_resolves_every_write() -> None:
    server, db = make_db([b"m"], sleep=never)

    async def main():
        t = db.txn()
        await t.put(b"a", b"1")
        await t.put(b"z", b"1")
        await t.delete_range(b"c", b"d")
        await t.rollback()
        return t

    t = run(main())
    assert t.trace.commit_path is CommitPath.ROLLBACK
    et = server.batches_of("end_txn")[0].requests[0].end_txn
    assert not et.commit
    assert {(s.key, s.end_key) for s in et.lock_spans} == {(b"a", b""), (b"z", b""), (b"c", b"d")}
    assert not server.intents and server.records[t.id].status == data_pb2.ABORTED


def test_finished_txn_refuses_more_work() -> None:
    _, db = make_db(sleep=never)

    async def main():
        t = db.txn()
        await t.put(b"a", b"1")
        await t.commit()
        await t.commit()  # idempotent
        with pytest.raises(errors.TransactionStatusError):
            await t.put(b"b", b"1")

    run(main())
