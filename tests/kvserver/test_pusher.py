"""KVTxnPusher: pushes, resolves and queries through the KV client; a push
that meets a STAGING pushee turns into recovery (and a retry if moot)."""

from __future__ import annotations

import asyncio

import pytest

from crdb_py.kvserver.batcheval import txn_record as tr
from crdb_py.kvserver.intentresolver import IntentResolver
from crdb_py.kvserver.pusher import KVTxnPusher
from crdb_py.kvserver.txnrecovery import TxnRecoveryManager
from crdb_py.pb import api_pb2, data_pb2
from crdb_py.storage import mvcc_get_intent
from crdb_py.util.errors import (
    CrdbError,
    IndeterminateCommitError,
    TransactionPushError,
)
from crdb_py.util.errwire import error_to_proto
from crdb_py.util.hlc import Timestamp, ts_from_proto
from tests.kvserver.batcheval.helpers import batch, k, make_txn, put, ts
from tests.kvserver.batcheval.txn_helpers import SECOND
from tests.kvserver.test_txnrecovery import EvalKV, record_status, stage

LATER = Timestamp(10 + 6 * SECOND)  # the staging txns below are expired by then


class WireKV(EvalKV):
    """Like EvalKV, but errors come back in `BatchResponse.error`, as from a
    raw transport: the pusher must decode them itself."""

    async def send(self, ba: api_pb2.BatchRequest) -> api_pb2.BatchResponse:
        try:
            return await super().send(ba)
        except CrdbError as e:
            br = api_pb2.BatchResponse()
            error_to_proto(e, br.error)
            return br


def make_pusher(kv: EvalKV) -> tuple[KVTxnPusher, TxnRecoveryManager, IntentResolver]:
    ir = IntentResolver(kv)
    rm = TxnRecoveryManager(kv, ir)
    return KVTxnPusher(kv, ir, rm), rm, ir


def pusher_txn(priority: int) -> data_pb2.Transaction:
    p = make_txn(LATER, anchor=k("p"))
    p.meta.priority = priority
    return p


def test_push_abort_of_a_pending_txn_sends_one_push_to_the_anchor() -> None:
    async def main() -> None:
        kv = EvalKV()
        kv.env.now = LATER
        t = make_txn(LATER, anchor=k("a"))
        t.meta.priority = 1
        kv.run(batch(put(k("a"), b"va", seq=1), txn=t))
        kv.sent.clear()
        p, _, _ = make_pusher(kv)
        out = await p.push_txn(pusher_txn(5), t.meta, api_pb2.PUSH_ABORT, LATER)
        assert out.status == data_pb2.ABORTED and out.meta.id == t.meta.id
        assert record_status(kv, t) == data_pb2.ABORTED
        [ba] = kv.sent
        req = ba.requests[0].push_txn
        assert req.header.key == k("a") and req.push_type == api_pb2.PUSH_ABORT
        assert req.pusher_txn.meta.priority == 5 and req.pushee_txn == t.meta
        assert ts_from_proto(req.push_to) == LATER and not req.force

    asyncio.run(main())


def test_push_timestamp_returns_the_pushed_txn() -> None:
    async def main() -> None:
        kv = EvalKV()
        kv.env.now = LATER
        t = make_txn(LATER, anchor=k("a"))
        p, _, _ = make_pusher(kv)
        to = Timestamp(LATER.wall_time + 5)
        out = await p.push_txn(None, t.meta, api_pb2.PUSH_TIMESTAMP, to, force=True)
        assert out.status == data_pb2.PENDING and ts_from_proto(out.meta.write_timestamp) >= to
        assert kv.sent[0].requests[0].push_txn.force

    asyncio.run(main())


def test_a_failed_push_raises_transaction_push_error() -> None:
    async def main() -> None:
        kv = EvalKV()
        kv.env.now = LATER
        t = make_txn(LATER, anchor=k("a"))
        t.meta.priority = 9
        p, _, _ = make_pusher(kv)
        with pytest.raises(TransactionPushError):
            await p.push_txn(pusher_txn(1), t.meta, api_pb2.PUSH_ABORT, LATER)

    asyncio.run(main())


@pytest.mark.parametrize("kv_cls", [EvalKV, WireKV])
def test_pushing_an_implicitly_committed_staging_txn_recovers_it_as_committed(kv_cls) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        kv = kv_cls()
        t, _ = stage(kv, written=["b"], in_flight=["b"])
        kv.env.now = LATER
        p, rm, ir = make_pusher(kv)
        out = await p.push_txn(pusher_txn(5), t.meta, api_pb2.PUSH_ABORT, LATER)
        assert out.status == data_pb2.COMMITTED and record_status(kv, t) == data_pb2.COMMITTED
        assert [x[0] for x in kv.kinds()[:3]] == ["push_txn", "query_txn", "recover_txn"]
        assert p.recoveries == 1 and rm.committed == 1
        await ir.drain()
        assert mvcc_get_intent(kv.env.engine, k("b")) is None and kv.env.value(k("b")) == b"vb"

    asyncio.run(main())


def test_pushing_a_staging_txn_with_a_missing_write_aborts_it() -> None:
    async def main() -> None:
        kv = EvalKV()
        t, _ = stage(kv, written=[], in_flight=["b"])
        kv.env.now = LATER
        p, _, ir = make_pusher(kv)
        out = await p.push_txn(pusher_txn(5), t.meta, api_pb2.PUSH_TIMESTAMP, LATER)
        assert out.status == data_pb2.ABORTED and record_status(kv, t) == data_pb2.ABORTED
        assert k("b") in kv.queried_keys()
        await ir.drain()
        assert kv.env.value(k("a")) is None

    asyncio.run(main())


class ScriptedRecovery:
    def __init__(self, answer: data_pb2.Transaction) -> None:
        self.answer = answer
        self.calls: list[data_pb2.Transaction] = []

    async def recover(self, staging: data_pb2.Transaction) -> data_pb2.Transaction:
        self.calls.append(staging)
        return self.answer


class ScriptedPushKV:
    """Answers pushes from a script: an exception to raise, or a txn to return."""

    def __init__(self, script: list[BaseException | data_pb2.Transaction]) -> None:
        self.script = script
        self.sent: list[api_pb2.BatchRequest] = []

    async def send(self, ba: api_pb2.BatchRequest) -> api_pb2.BatchResponse:
        self.sent.append(ba)
        step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        br = api_pb2.BatchResponse()
        br.responses.add().push_txn.pushee_txn.CopyFrom(step)
        return br


def test_moot_recovery_makes_the_push_retry() -> None:
    async def main() -> None:
        t = make_txn(ts(10), anchor=k("a"))
        staging = data_pb2.Transaction()
        staging.CopyFrom(t)
        staging.status = data_pb2.STAGING
        live = data_pb2.Transaction()
        live.CopyFrom(t)  # the coordinator went back to PENDING
        pushed = data_pb2.Transaction()
        pushed.CopyFrom(t)
        pushed.meta.write_timestamp.wall_time = 50
        kv = ScriptedPushKV([IndeterminateCommitError(staging), pushed])
        rec = ScriptedRecovery(live)
        p = KVTxnPusher(kv, IntentResolver(kv), rec)  # type: ignore[arg-type]
        out = await p.push_txn(None, t.meta, api_pb2.PUSH_TIMESTAMP, ts(50))
        assert out.meta.write_timestamp.wall_time == 50
        assert len(kv.sent) == 2 and [c.status for c in rec.calls] == [data_pb2.STAGING]
        # a final answer from recovery is returned without pushing again
        aborted = data_pb2.Transaction()
        aborted.CopyFrom(t)
        aborted.status = data_pb2.ABORTED
        kv2 = ScriptedPushKV([IndeterminateCommitError(staging)])
        p2 = KVTxnPusher(kv2, IntentResolver(kv2), ScriptedRecovery(aborted))  # type: ignore[arg-type]
        assert (await p2.push_txn(None, t.meta, api_pb2.PUSH_ABORT, ts(50))).status == tr.ABORTED
        assert len(kv2.sent) == 1

    asyncio.run(main())


def test_resolve_intent_and_query_txn() -> None:
    async def main() -> None:
        kv = EvalKV()
        t = make_txn(ts(10), anchor=k("a"))
        kv.run(batch(put(k("a"), b"va", seq=1), txn=t))
        p, _, _ = make_pusher(kv)
        rec, waiting = await p.query_txn(t.meta)
        assert rec.status == data_pb2.PENDING and rec.meta.id == t.meta.id and waiting == []
        assert kv.sent[-1].requests[0].query_txn.header.key == k("a")
        up = data_pb2.LockUpdate(status=data_pb2.COMMITTED)
        up.span.key = k("a")
        up.txn.CopyFrom(t.meta)
        await p.resolve_intent(up)
        assert mvcc_get_intent(kv.env.engine, k("a")) is None and kv.env.value(k("a")) == b"va"

    asyncio.run(main())


def test_query_txn_returns_waiting_txns() -> None:
    async def main() -> None:
        class QKV:
            async def send(self, ba: api_pb2.BatchRequest) -> api_pb2.BatchResponse:
                br = api_pb2.BatchResponse()
                q = br.responses.add().query_txn
                q.queried_txn.meta.CopyFrom(ba.requests[0].query_txn.txn)
                q.waiting_txns.extend([b"x" * 16, b"y" * 16])
                return br

        kv = QKV()
        p = KVTxnPusher(kv, IntentResolver(kv), TxnRecoveryManager(kv))
        m = data_pb2.TxnMeta(id=b"t" * 16, key=k("a"))
        rec, waiting = await p.query_txn(m)
        assert rec.meta.id == m.id and waiting == [b"x" * 16, b"y" * 16]

    asyncio.run(main())
