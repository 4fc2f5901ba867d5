"""The span refresher: refresh reads instead of restarting."""

from __future__ import annotations

import pytest

from crdb_py.kvclient import batch as kb
from crdb_py.kvclient.db import Batch
from crdb_py.kvclient.txn.span_refresher import SpanRefresher
from crdb_py.util import errors
from tests.kvclient.txn.helpers import make_db, never, run


def kinds(ba) -> list[str]:
    return [kb.kind(r) for r in ba.requests]


def test_pushed_commit_refreshes_reads_and_commits_without_restart() -> None:
    server, db = make_db(sleep=never)

    async def main():
        t = db.txn()
        assert await t.get(b"r") is None
        assert await t.scan(b"s", b"t") == []
        server.bump_tscache(b"w", t.read_timestamp.add(100))
        await t.put(b"w", b"1")  # pushed by the timestamp cache
        assert t.commit_timestamp > t.read_timestamp
        await t.commit()
        return t

    t = run(main())
    assert t.committed and t.epoch == 0 and t.trace.refreshes == 1
    refresh = [b for b in server.log if "refresh" in kinds(b) or "refresh_range" in kinds(b)]
    assert len(refresh) == 1 and sorted(kinds(refresh[0])) == ["refresh", "refresh_range"]
    assert server.committed_value(b"w") == b"1"


def test_failed_refresh_restarts_and_run_txn_succeeds_at_new_epoch() -> None:
    server, db = make_db(sleep=never)
    epochs = []

    async def fn(txn):
        epochs.append(txn.epoch)
        v = await txn.get(b"r")
        if txn.epoch == 0:
            server.write_committed(b"r", b"new", txn.read_timestamp.add(5))
            server.bump_tscache(b"w", txn.read_timestamp.add(100))
        await txn.put(b"w", v or b"none")

    run(db.run_txn(fn))
    assert epochs == [0, 1]
    assert server.committed_value(b"w") == b"new"
    assert db.metrics.snapshot()["refresh_failures"] == 1


def test_write_too_old_is_refreshed_and_resent() -> None:
    server, db = make_db(sleep=never, write_pipelining=False)

    async def main():
        t = db.txn()
        assert await t.get(b"r") is None
        server.write_committed(b"w", b"old", t.read_timestamp.add(50))
        await t.put(b"w", b"mine")
        await t.commit()
        return t

    t = run(main())
    assert t.epoch == 0 and t.trace.refreshes == 1
    assert server.committed_value(b"w") == b"mine"


def test_uncertain_read_is_refreshed_past_the_value() -> None:
    server, db = make_db(sleep=never)

    async def main():
        t = db.txn()
        server.write_committed(b"u", b"future", t.read_timestamp.add(1000))
        assert await t.get(b"u") == b"future"  # retried above the uncertain value
        return t

    t = run(main())
    assert t.epoch == 0 and t.trace.refreshes == 1


def test_refresh_without_reads_just_moves_the_timestamp() -> None:
    server, db = make_db(sleep=never)

    async def main():
        t = db.txn()
        server.bump_tscache(b"w", t.read_timestamp.add(100))
        await t.commit_in_batch(Batch().put(b"w", b"1"))
        return t

    t = run(main())
    assert t.committed
    assert not [b for b in server.log if "refresh" in kinds(b)]


def test_retry_timestamp_rules() -> None:
    from crdb_py.kvclient.txn.interceptor import TxnState
    from crdb_py.kvclient.txn.settings import TxnConfig
    from crdb_py.pb import api_pb2, data_pb2
    from crdb_py.util.hlc import HLC, ManualClock, Timestamp

    txn = data_pb2.Transaction()
    txn.meta.write_timestamp.wall_time = 10
    txn.read_timestamp.wall_time = 10
    sr = SpanRefresher(TxnState(txn, config=TxnConfig(), clock=HLC(ManualClock()), raw=None))  # type: ignore[arg-type]
    ba = api_pb2.BatchRequest()
    ba.header.txn.CopyFrom(txn)
    assert sr.retry_timestamp(errors.WriteTooOldError(Timestamp(10), Timestamp(20)), ba) == Timestamp(20)
    e = errors.ReadWithinUncertaintyIntervalError(Timestamp(10), Timestamp(15), Timestamp(99))
    assert sr.retry_timestamp(e, ba) == Timestamp(15, 1)
    pushed = data_pb2.Transaction()
    pushed.meta.write_timestamp.wall_time = 30
    assert sr.retry_timestamp(errors.TransactionRetryError("RETRY_SERIALIZABLE", txn=pushed), ba) == Timestamp(30)
    assert sr.retry_timestamp(errors.TransactionRetryError("RETRY_ASYNC_WRITE_FAILURE", txn=pushed), ba) is None
    assert sr.retry_timestamp(errors.RefreshFailedError(b"k", Timestamp(12)), ba) is None
    assert sr.retry_timestamp(errors.ConditionFailedError(None), ba) is None


@pytest.mark.parametrize("pipelining", [True, False])
def test_refresh_failure_surfaces_as_retryable(pipelining: bool) -> None:
    server, db = make_db(sleep=never, write_pipelining=pipelining)

    async def main():
        t = db.txn()
        await t.get(b"r")
        server.write_committed(b"r", b"x", t.read_timestamp.add(5))
        server.bump_tscache(b"w", t.read_timestamp.add(100))
        await t.put(b"w", b"1")
        with pytest.raises(errors.RefreshFailedError) as ei:
            await t.commit()
        assert ei.value.retryable and ei.value.sqlstate == "40001"
        assert t.epoch == 1 and not t.finished

    run(main())
