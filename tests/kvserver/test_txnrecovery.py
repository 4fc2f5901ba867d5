"""Transaction recovery against one range that evaluates the requests for
real (batcheval over a MemEngine, with a timestamp cache that applies the
QueryIntent preventions to later writes)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from crdb_py.kvserver.batcheval import txn_record as tr
from crdb_py.kvserver.intentresolver import IntentResolver
from crdb_py.kvserver.tscache import TimestampCache
from crdb_py.kvserver.txnrecovery import TxnRecoveryManager
from crdb_py.pb import api_pb2, data_pb2
from crdb_py.storage import MemEngine, mvcc_get_intent
from crdb_py.util.errors import (
    CrdbError,
    NodeUnavailableError,
    TransactionAbortedError,
    TransactionStatusError,
)
from crdb_py.util.hlc import Timestamp, ts_to_proto
from tests.kvserver.batcheval.helpers import Env, batch, k, make_txn, put, ts
from tests.kvserver.batcheval.txn_helpers import bumped, end_txn, span
from tests.kvserver.batcheval.txn_helpers import resolve as resolve_req


class EvalKV:
    """A KV sender over one range: evaluates each batch with batcheval,
    records every batch, applies QueryIntent's timestamp-cache bumps to
    later transactional writes, and can hold batches at a gate or fail them."""

    def __init__(self, env: Env | None = None) -> None:
        self.env = env or Env(MemEngine())
        self.tsc = TimestampCache(Timestamp(1))
        self.sent: list[api_pb2.BatchRequest] = []
        self.resolve_intents: list[data_pb2.LockUpdate] = []
        self.gate: asyncio.Event | None = None
        self.fail: Callable[[api_pb2.BatchRequest], BaseException | None] = lambda ba: None

    async def send(self, ba: api_pb2.BatchRequest) -> api_pb2.BatchResponse:
        copy = api_pb2.BatchRequest()
        copy.CopyFrom(ba)
        self.sent.append(copy)
        if self.gate is not None:
            await self.gate.wait()
        else:
            await asyncio.sleep(0)
        err = self.fail(copy)
        if err is not None:
            raise err
        return self.run(copy)

    def run(self, ba: api_pb2.BatchRequest) -> api_pb2.BatchResponse:
        """Evaluate now (also used to play the coordinator's own writes)."""
        if ba.header.txn.meta.id:
            for ru in ba.requests:
                if ru.WhichOneof("value") == "put":
                    wts = Timestamp(
                        ba.header.txn.meta.write_timestamp.wall_time,
                        ba.header.txn.meta.write_timestamp.logical,
                    )
                    pushed = self.tsc.push_write_ts(
                        ru.put.header.key, None, wts, ba.header.txn.meta.id
                    )
                    if pushed > wts:
                        ts_to_proto(pushed, ba.header.txn.meta.write_timestamp)
        elif not ba.header.HasField("timestamp"):
            ts_to_proto(self.env.now, ba.header.timestamp)
        try:
            br, res = self.env.run(ba)
        except CrdbError as e:
            self._bump(getattr(e, "tscache_bumps", []))
            raise
        self._bump(res.tscache_bumps)
        self.resolve_intents.extend(res.resolve_intents)
        return br

    def _bump(self, bumps: list[tuple[bytes, bytes, Timestamp]]) -> None:
        for key, end, at in bumps:
            self.tsc.add(key, end or None, at, None)

    def kinds(self) -> list[list[str]]:
        return [[str(ru.WhichOneof("value")) for ru in ba.requests] for ba in self.sent]

    def queried_keys(self) -> list[bytes]:
        return [
            ru.query_intent.header.key
            for ba in self.sent
            for ru in ba.requests
            if ru.WhichOneof("value") == "query_intent"
        ]


# ---- scenarios ------------------------------------------------------------------------------


def stage(
    kv: EvalKV, *, written: list[str], in_flight: list[str], anchor: str = "a"
) -> tuple[data_pb2.Transaction, data_pb2.Transaction]:
    """A txn that wrote `anchor` (proven), wrote the `written` subset of its
    `in_flight` writes, and staged; returns (coordinator's txn, staging record)."""
    t = make_txn(ts(10), anchor=k(anchor))
    kv.run(batch(put(k(anchor), b"v" + anchor.encode(), seq=1), txn=t))
    seqs = {name: i + 2 for i, name in enumerate(in_flight)}
    for name in written:
        kv.run(batch(put(k(name), b"v" + name.encode(), seq=seqs[name]), txn=t))
    kv.run(
        batch(
            end_txn(t, locks=[span(k(anchor))], in_flight=[(k(n), seqs[n]) for n in in_flight]),
            txn=t,
        )
    )
    rec = tr.read_record(kv.env.engine, t.meta)
    assert rec is not None and rec.status == data_pb2.STAGING
    kv.sent.clear()
    return t, tr.record_to_txn(rec)


def record_status(kv: EvalKV, t: data_pb2.Transaction) -> int | None:
    rec = tr.read_record(kv.env.engine, t.meta)
    return None if rec is None else rec.status


def managers(kv: EvalKV, **kw: int) -> tuple[TxnRecoveryManager, IntentResolver]:
    ir = IntentResolver(kv)
    return TxnRecoveryManager(kv, ir, **kw), ir


# ---- outcomes -------------------------------------------------------------------------------


def test_all_in_flight_writes_found_commits() -> None:
    async def main() -> None:
        kv = EvalKV()
        t, staging = stage(kv, written=["b", "c"], in_flight=["b", "c"])
        rm, ir = managers(kv)
        out = await rm.recover(staging)
        assert out.status == data_pb2.COMMITTED
        assert record_status(kv, t) == data_pb2.COMMITTED
        assert kv.kinds()[:2] == [
            ["query_txn", "query_intent", "query_intent"],
            ["recover_txn"],
        ]
        assert kv.sent[1].requests[0].recover_txn.implicitly_committed
        await ir.drain()
        for key in (k("a"), k("b"), k("c")):
            assert mvcc_get_intent(kv.env.engine, key) is None
        assert [kv.env.value(k(n)) for n in "abc"] == [b"va", b"vb", b"vc"]
        assert (rm.committed, rm.aborted) == (1, 0)

    asyncio.run(main())


def test_missing_write_is_prevented_and_the_txn_aborted() -> None:
    async def main() -> None:
        kv = EvalKV()
        t, staging = stage(kv, written=["b"], in_flight=["b", "c"])
        rm, ir = managers(kv)
        out = await rm.recover(staging)
        assert out.status == data_pb2.ABORTED and record_status(kv, t) == data_pb2.ABORTED
        assert k("c") in kv.queried_keys()  # the QueryIntent that prevents it was sent
        assert not kv.sent[-1].requests[0].recover_txn.implicitly_committed
        await ir.drain()
        assert [kv.env.value(k(n)) for n in "abc"] == [None, None, None]
        # Prevention: the late in-flight write cannot land at the staging timestamp ...
        late = batch(put(k("c"), b"vc", seq=3), txn=t)
        kv.run(late)
        md = mvcc_get_intent(kv.env.engine, k("c"))
        assert md is not None and Timestamp(md.timestamp.wall_time, md.timestamp.logical) > ts(10)
        # ... and the coordinator's explicit commit learns it was aborted.
        with pytest.raises(TransactionAbortedError):
            kv.run(batch(end_txn(bumped(t, ts(10)), locks=[span(k("a")), span(k("c"))]), txn=t))

    asyncio.run(main())


def test_probing_stops_at_the_first_batch_with_a_missing_write() -> None:
    async def main() -> None:
        kv = EvalKV()
        names = ["b", "c", "d", "e", "f", "g"]
        t, staging = stage(kv, written=["b", "c", "e", "f", "g"], in_flight=names)
        rm, _ = managers(kv, batch_size=2)
        out = await rm.recover(staging)
        assert out.status == data_pb2.ABORTED
        assert kv.queried_keys() == [k("b"), k("c"), k("d"), k("e")]  # f, g never queried
        # QueryTxn leads every probe batch; then RecoverTxn, then the resolution
        assert [x[0] for x in kv.kinds()] == [
            "query_txn",
            "query_txn",
            "recover_txn",
            "resolve_intent",
        ]
        assert [len(x) for x in kv.kinds()] == [3, 3, 1, 7]

    asyncio.run(main())


def test_record_already_final_is_a_no_op() -> None:
    async def main() -> None:
        kv = EvalKV()
        t, staging = stage(kv, written=["b"], in_flight=["b"])
        # the coordinator makes the commit explicit before the recoverer gets there
        kv.run(batch(end_txn(t, locks=[span(k("a")), span(k("b"))]), txn=t))
        kv.sent.clear()
        rm, _ = managers(kv)
        out = await rm.recover(staging)
        assert out.status == data_pb2.COMMITTED
        assert "recover_txn" not in sum(kv.kinds(), [])
        assert rm.moot == 1
        # a caller holding a final txn sends nothing at all
        kv.sent.clear()
        assert (await rm.recover(out)).status == data_pb2.COMMITTED and kv.sent == []

    asyncio.run(main())


def test_restaged_record_is_returned_without_deciding() -> None:
    async def main() -> None:
        kv = EvalKV()
        t, staging = stage(kv, written=[], in_flight=["b"])
        # the coordinator is alive: it refreshed to ts 20 and staged again
        t2 = bumped(t, ts(20), ts(20))
        kv.run(batch(put(k("b"), b"vb", seq=2), txn=t2))
        kv.run(batch(end_txn(t2, locks=[span(k("a"))], in_flight=[(k("b"), 2)]), txn=t2))
        kv.sent.clear()
        rm, _ = managers(kv)
        out = await rm.recover(staging)
        assert out.status == data_pb2.STAGING and out.meta.write_timestamp.wall_time == 20
        assert "recover_txn" not in sum(kv.kinds(), [])
        assert record_status(kv, t) == data_pb2.STAGING

    asyncio.run(main())


def test_missing_record_is_recovered_as_aborted() -> None:
    async def main() -> None:
        kv = EvalKV()
        t = make_txn(ts(10), anchor=k("a"))
        kv.run(batch(put(k("a"), b"va", seq=1), txn=t))
        ghost = data_pb2.Transaction(status=data_pb2.STAGING)
        ghost.CopyFrom(t)
        ghost.status = data_pb2.STAGING
        ghost.in_flight_writes.add(key=k("a"), sequence=1)
        rm, ir = managers(kv)
        out = await rm.recover(ghost)
        assert out.status == data_pb2.ABORTED and record_status(kv, t) == data_pb2.ABORTED
        await ir.drain()
        assert mvcc_get_intent(kv.env.engine, k("a")) is None and kv.env.value(k("a")) is None

    asyncio.run(main())


# ---- concurrency ----------------------------------------------------------------------------


def test_concurrent_recoveries_of_one_txn_are_deduplicated() -> None:
    async def main() -> None:
        kv = EvalKV()
        _, staging = stage(kv, written=["b"], in_flight=["b"])
        kv.gate = asyncio.Event()
        rm, _ = managers(kv)
        tasks = [asyncio.ensure_future(rm.recover(staging)) for _ in range(5)]
        for _ in range(5):
            await asyncio.sleep(0)
        kv.gate.set()
        outs = await asyncio.gather(*tasks)
        assert {o.status for o in outs} == {data_pb2.COMMITTED}
        assert kv.kinds()[:2] == [["query_txn", "query_intent"], ["recover_txn"]]
        assert all(ks[0] == "resolve_intent" for ks in kv.kinds()[2:])
        assert rm.attempts == 1
        outs[0].status = data_pb2.ABORTED  # callers get their own copies
        assert outs[1].status == data_pb2.COMMITTED

    asyncio.run(main())


def test_two_managers_racing_agree() -> None:
    async def main() -> None:
        kv = EvalKV()
        t, staging = stage(kv, written=[], in_flight=["b"])
        rm1, _ = managers(kv)
        rm2, _ = managers(kv)
        a, b = await asyncio.gather(rm1.recover(staging), rm2.recover(staging))
        assert a.status == b.status == data_pb2.ABORTED
        assert record_status(kv, t) == data_pb2.ABORTED

    asyncio.run(main())


def test_error_reaches_every_waiter_and_a_later_recovery_retries() -> None:
    async def main() -> None:
        kv = EvalKV()
        t, staging = stage(kv, written=["b"], in_flight=["b"])
        kv.fail = lambda ba: NodeUnavailableError(2)
        rm, _ = managers(kv)
        results = await asyncio.gather(
            rm.recover(staging), rm.recover(staging), return_exceptions=True
        )
        assert all(isinstance(r, NodeUnavailableError) for r in results)
        kv.fail = lambda ba: None
        assert (await rm.recover(staging)).status == data_pb2.COMMITTED
        assert record_status(kv, t) == data_pb2.COMMITTED

    asyncio.run(main())


# ---- parallel commits under every interleaving with recoverers -----------------------------
#
# MODEL-CHECKS.md, "Parallel commits": the coordinator's steps — stage the
# record (C_stage) and write the last key (C_write), sent in parallel; if the
# write was pushed above the staging timestamp (a QueryIntent prevented it),
# re-stage at the new timestamp (C_restage); acknowledge the client as soon
# as the staged attempt has all its writes at or below its timestamp; then
# make the commit explicit (C_commit) — interleaved in every order with two
# rounds of recovery (R1_*, then R2_* — a pusher that pushes again after a
# moot recovery), each a probe (QueryTxn + QueryIntent) and a decision
# (RecoverTxn), and with a coordinator crash after any prefix of its steps.
# Checked: AckImpliesCommit, a final status never changes, and every run in
# which a recoverer started ends final or implicitly committed and explicitly
# committed by the next push (liveness). The broken variant (QueryIntent's
# prevention switched off) must be caught.


class SteppedKV(EvalKV):
    """EvalKV whose batches wait, per port, until the test driver lets them through."""

    def __init__(self, prevent: bool) -> None:
        super().__init__()
        self.prevent = prevent

    def _bump(self, bumps: list[tuple[bytes, bytes, Timestamp]]) -> None:
        if self.prevent:
            super()._bump(bumps)


class Port:
    """One recoverer's connection to a SteppedKV: its batches queue here."""

    def __init__(self, kv: SteppedKV) -> None:
        self.kv = kv
        self.queue: list[tuple[api_pb2.BatchRequest, asyncio.Future[api_pb2.BatchResponse]]] = []

    async def send(self, ba: api_pb2.BatchRequest) -> api_pb2.BatchResponse:
        fut: asyncio.Future[api_pb2.BatchResponse] = asyncio.get_running_loop().create_future()
        copy = api_pb2.BatchRequest()
        copy.CopyFrom(ba)
        self.queue.append((copy, fut))
        return await fut

    def step(self) -> bool:
        if not self.queue:
            return False
        ba, fut = self.queue.pop(0)
        try:
            fut.set_result(self.kv.run(ba))
        except CrdbError as e:
            fut.set_exception(e)
        return True


COORD = ("C_stage", "C_write", "C_restage", "C_commit")
RECOV = ("R1_probe", "R1_decide", "R2_probe", "R2_decide")


def _schedules() -> list[tuple[str, ...]]:
    import itertools

    out = []
    for perm in itertools.permutations(COORD + RECOV):
        pos = {e: i for i, e in enumerate(perm)}
        if pos["C_restage"] < max(pos["C_stage"], pos["C_write"]):
            continue
        if pos["C_commit"] < pos["C_restage"]:
            continue
        if pos["R1_probe"] < pos["C_stage"] or pos["R1_decide"] < pos["R1_probe"]:
            continue
        if pos["R2_probe"] < pos["R1_decide"] or pos["R2_decide"] < pos["R2_probe"]:
            continue
        out.append(perm)
    return out


def ts_from_pb(p: data_pb2.Timestamp) -> Timestamp:
    return Timestamp(p.wall_time, p.logical)


async def _play(schedule: tuple[str, ...], crash_after: int, prevent: bool) -> list[str]:
    kv = SteppedKV(prevent)
    t = make_txn(ts(10), anchor=k("a"))
    kv.run(batch(put(k("a"), b"va", seq=1), txn=t))  # proven earlier
    ports = {"R1": Port(kv), "R2": Port(kv)}
    tasks: dict[str, asyncio.Task[data_pb2.Transaction] | None] = {"R1": None, "R2": None}
    staged_at: Timestamp | None = None  # the coordinator's current staging attempt
    landed_at: Timestamp | None = None  # where its last write landed
    acked = False
    seen_final: int | None = None
    problems: list[str] = []

    async def settle() -> None:
        for _ in range(5):
            await asyncio.sleep(0)

    def check_final() -> None:
        nonlocal seen_final
        st = record_status(kv, t)
        if seen_final is not None and st != seen_final:
            problems.append(f"final status changed {seen_final} -> {st}")
        if st in (data_pb2.COMMITTED, data_pb2.ABORTED):
            seen_final = st

    def stage_at(at: Timestamp) -> None:
        nonlocal staged_at
        try:
            kv.run(
                batch(
                    end_txn(bumped(t, at, at), locks=[span(k("a"))], in_flight=[(k("b"), 2)]),
                    txn=bumped(t, at, at),
                )
            )
            staged_at = at
        except (TransactionAbortedError, TransactionStatusError):
            staged_at = None  # the coordinator learns its txn was decided: no ack

    coord_steps = 0
    for ev in schedule:
        if ev.startswith("C"):
            if coord_steps >= crash_after:
                continue  # the coordinator crashed
            coord_steps += 1
            if ev == "C_stage":
                stage_at(ts(10))
            elif ev == "C_write":
                br = kv.run(batch(put(k("b"), b"vb", seq=2), txn=t))
                landed_at = ts_from_pb(br.header.txn.meta.write_timestamp)
            elif ev == "C_restage" and staged_at is not None and landed_at is not None:
                if landed_at > staged_at:
                    stage_at(landed_at)  # (a refresh of its reads would go here)
            elif ev == "C_commit" and acked:
                assert staged_at is not None
                try:
                    kv.run(
                        batch(
                            end_txn(
                                bumped(t, staged_at, staged_at),
                                locks=[span(k("a")), span(k("b"))],
                            ),
                            txn=bumped(t, staged_at, staged_at),
                        )
                    )
                except TransactionStatusError:
                    pass  # a recoverer made it explicit first: fine
                except TransactionAbortedError:
                    problems.append("acknowledged, then the explicit commit found it aborted")
            if (
                not acked
                and staged_at is not None
                and landed_at is not None
                and landed_at <= staged_at
            ):
                acked = True  # every write of the staged attempt succeeded at or below it
        else:
            r, what = ev.split("_")
            if what == "probe":
                # a pusher meets the intent of a, finds the record STAGING and recovers it
                rec = tr.read_record(kv.env.engine, t.meta)
                if rec is None or rec.status != data_pb2.STAGING:
                    continue  # a plain push would handle it; not modelled here
                tasks[r] = asyncio.ensure_future(
                    TxnRecoveryManager(ports[r]).recover(tr.record_to_txn(rec))  # type: ignore[arg-type]
                )
            await settle()
            ports[r].step()
            await settle()
        check_final()
    # the recoverers run to completion
    for r, task in tasks.items():
        while task is not None and not task.done():
            await settle()
            ports[r].step()
        if task is not None and task.exception() is not None:
            problems.append(f"recovery {r} failed: {task.exception()!r}")  # e.g. InternalError
        check_final()
    st = record_status(kv, t)
    if acked and st != data_pb2.COMMITTED:
        # still STAGING is fine only if implicitly committed; a pusher would finish it
        if st == data_pb2.STAGING:
            rec = tr.read_record(kv.env.engine, t.meta)
            assert rec is not None
            out = await TxnRecoveryManager(kv).recover(tr.record_to_txn(rec))
            st = out.status
        if st != data_pb2.COMMITTED:
            problems.append(f"acknowledged but the record is {tr.status_name(st or 0)}")
    started = any(task is not None for task in tasks.values())
    if started and st == data_pb2.PENDING:
        problems.append("a recovered txn went back to PENDING")
    return [f"{' '.join(schedule)} crash_after={crash_after}: {p}" for p in problems]


def _explore(prevent: bool) -> list[str]:
    async def main() -> list[str]:
        out: list[str] = []
        for sched in _schedules():
            for crash_after in range(1, len(COORD) + 1):
                out.extend(await _play(sched, crash_after, prevent))
        return out

    return asyncio.run(main())


def test_ack_implies_commit_under_every_interleaving() -> None:
    scheds = _schedules()
    assert (
        "C_stage",
        "R1_probe",
        "C_write",
        "C_restage",
        "R1_decide",
        "C_commit",
        "R2_probe",
        "R2_decide",
    ) in scheds
    assert _explore(prevent=True) == []


def test_broken_variant_without_prevention_is_caught() -> None:
    problems = _explore(prevent=False)
    assert any("acknowledged but the record is ABORTED" in p for p in problems), problems[:5]


# ---- end to end on the in-process cluster -----------------------------------------------------


def _dead_staging_txn(
    now: Timestamp, *, write_last: bool
) -> tuple[data_pb2.Transaction, list[api_pb2.BatchRequest]]:
    """Batches a coordinator sent before dying: its anchor write, maybe its
    last (in-flight) write on another range, and EndTxn(STAGING)."""
    t = make_txn(now, anchor=b"a-anchor")
    ts_to_proto(Timestamp(now.wall_time - 10 * 1_000_000_000), t.meta.min_timestamp)  # long dead
    t.meta.priority = 1
    out = [batch(put(b"a-anchor", b"va", seq=1), txn=t)]
    if write_last:
        out.append(batch(put(b"n-last", b"vn", seq=2), txn=t))
    out.append(batch(end_txn(t, locks=[span(b"a-anchor")], in_flight=[(b"n-last", 2)]), txn=t))
    return t, out


async def _cluster_recovery(
    write_last: bool, nodes: int
) -> tuple[int, bytes | None, bytes | None, int]:
    from crdb_py.sim.kvcluster import InProcessKVCluster

    c = InProcessKVCluster(nodes, replication_factor=nodes)
    await c.start()
    try:
        db = c.db()
        _, right = await db.admin_split(b"m")  # the record's range and the last write's differ
        if nodes > 1:
            await c.wait_replicated()
            # ... and their leaseholders too. (A fresh client: admin requests are not
            # checked against the range's bounds, so a stale range cache would move
            # the left range's lease instead.)
            await c.db().admin_transfer_lease(b"n-last", 2)
            for _ in range(200):
                if c.leaseholder(right.range_id) == 2:
                    break
                await asyncio.sleep(0.02)
            assert c.leaseholder(right.range_id) == 2
        ds = db.sender
        now = c.nodes[1].store.clock.now()
        t, batches = _dead_staging_txn(now, write_last=write_last)
        for ba in batches:
            await ds.send(ba)
        q = api_pb2.BatchRequest()
        q.requests.add().query_txn.header.key = t.meta.key
        q.requests[0].query_txn.txn.CopyFrom(t.meta)
        assert (await ds.send(q)).responses[0].query_txn.queried_txn.status == data_pb2.STAGING
        # A conflicting writer meets the intent on n-last (or, if it was never
        # written, on a-anchor): it pushes, the push finds STAGING, recovery decides.
        await db.put(b"a-anchor" if not write_last else b"n-last", b"other")
        status = (await ds.send(q)).responses[0].query_txn.queried_txn.status
        for node in c.nodes.values():
            await node.store.intent_resolver.drain()
        # every intent is eventually resolved, on every replica, before anyone reads
        for _ in range(200):
            left = [
                (i, key)
                for i, node in c.nodes.items()
                for key in (b"a-anchor", b"n-last")
                if (md := mvcc_get_intent(node.engine, key)) is not None and md.txn.id == t.meta.id
            ]
            if not left:
                break
            await asyncio.sleep(0.02)
        assert not left, left
        if not write_last:
            # Prevention, on the real cluster: the dead coordinator's in-flight write
            # arrives late; it cannot land at (or below) the staging timestamp.
            br = await ds.send(batch(put(b"n-last", b"vn", seq=2), txn=t))
            assert ts_from_pb(br.header.txn.meta.write_timestamp) > ts_from_pb(
                t.meta.write_timestamp
            )
            md = mvcc_get_intent(c.nodes[2 if nodes > 1 else 1].engine, b"n-last")
            assert md is not None and ts_from_pb(md.timestamp) > ts_from_pb(t.meta.write_timestamp)
            await ds.send(batch(resolve_req(b"n-last", t.meta, data_pb2.ABORTED)))
        per_node = {i: node.store.kv_pusher().recoveries for i, node in c.nodes.items()}
        if nodes > 1 and write_last:
            assert per_node[2] == 1  # the writer's leaseholder pushed and recovered
        recoveries = sum(per_node.values())
        return status, await db.get(b"a-anchor"), await db.get(b"n-last"), recoveries
    finally:
        await c.close()


@pytest.mark.parametrize("nodes", [1, 3])
def test_cluster_dead_coordinator_implicitly_committed_is_recovered_committed(nodes: int) -> None:
    status, a, n, recoveries = asyncio.run(
        asyncio.wait_for(_cluster_recovery(write_last=True, nodes=nodes), 60)
    )
    assert status == data_pb2.COMMITTED and recoveries == 1
    assert a == b"va"  # the txn's other write became visible
    assert n == b"other"  # the conflicting write went in after it


@pytest.mark.parametrize("nodes", [1, 3])
def test_cluster_dead_coordinator_with_a_missing_write_is_recovered_aborted(nodes: int) -> None:
    status, a, n, recoveries = asyncio.run(
        asyncio.wait_for(_cluster_recovery(write_last=False, nodes=nodes), 60)
    )
    assert status == data_pb2.ABORTED and recoveries == 1
    assert a == b"other" and n is None
