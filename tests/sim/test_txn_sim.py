"""Transaction scenarios on the deterministic KV simulator.

Conflict, wait, push, deadlock, abandoned-txn, parallel-commit recovery and
asynchronous resolution (tests/txn/scenarios.py) on a 3-node `KVSim` with
three ranges whose leases sit on different nodes, on virtual time, with
seeded raft-message faults and clock skew. Each scenario runs over a few
seeds by default and many under `-m slow`; a failing seed reproduces with
`vloop.run(<scenario>, seed=<seed>)`. After each one: no intent is left on
any engine once the system is quiet, and no final record status changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from crdb_py.pb import api_pb2, data_pb2
from crdb_py.sim import vloop
from crdb_py.sim.kvsim import KVSim, NetFaults, retry
from crdb_py.sim.txnclient import (
    ScriptedTxn,
    Sender,
    batch,
    intents_of,
    new_txn,
    push_req,
    query_txn,
)
from crdb_py.util.hlc import Timestamp
from tests.txn import scenarios as sc

# Raft messages are dropped / duplicated / delayed; RPC responses are never
# lost (a scripted txn has no retry logic for ambiguous results).
FAULTS = NetFaults(drop=0.01, duplicate=0.01, raft_delay_max=0.005, rpc_delay_max=0.002)
SKEW = 100_000_000  # ±100 ms per node (max offset 500 ms)
FAST_SEEDS = [1, 202]
SLOW_SEEDS = list(range(300, 316))


@pytest.fixture(autouse=True)
def _quiet_logs():
    logging.disable(logging.ERROR)
    yield
    logging.disable(logging.NOTSET)


class SimEnv:
    """`scenarios.Env` over a KVSim."""

    def __init__(self, sim: KVSim) -> None:
        self.sim = sim
        self.n = sim.n
        self.rng = sim.loop.fork_rng("txn-ids")

    def sender(self, gateway: int) -> Sender:
        return self.sim.db(gateway).sender

    def now(self) -> Timestamp:
        return self.sim.clocks[1].now()

    def engines(self) -> dict[int, Any]:
        return {i: n.engine for i, n in self.sim.cluster.nodes.items()}

    async def settle(self) -> None:
        await asyncio.sleep(0)


async def three_ranges(loop: vloop.VirtualEventLoop) -> KVSim:
    sim = KVSim(loop, 3, faults=FAULTS, max_skew_nanos=SKEW)
    await sim.start()
    for at in sc.SPLITS:
        await retry(lambda at=at: sim.db().admin_split(at))
    await sim.cluster.wait_replicated()
    # spread the leases: a… on whoever has it, n… on n2, u… on n3
    for key, target in ((b"n", 2), (b"u", 3)):
        for _ in range(50):
            if sim.leaseholder(key) == target:
                break
            try:
                await asyncio.wait_for(sim.cluster.db().admin_transfer_lease(key, target), 5)
            except Exception:
                pass
            await asyncio.sleep(0.2)
    return sim


async def lease_churn(sim: KVSim, stop: asyncio.Event) -> int:
    """Move a random range's lease to another node now and then every
    0.1-0.6 s; returns how many transfers succeeded."""
    rng = sim.loop.fork_rng("churn")
    moved = 0
    while not stop.is_set():
        key = rng.choice([b"a", b"n", b"u"])
        others = [i for i in sim.live() if i != sim.leaseholder(key)]
        try:
            await asyncio.wait_for(sim.cluster.db().admin_transfer_lease(key, rng.choice(others)), 5)
            moved += 1
        except Exception:
            pass
        await asyncio.sleep(rng.uniform(0.1, 0.6))
    return moved


def run_on_sim(
    scenario: Callable[..., Awaitable[dict[str, Any]]],
    seed: int,
    *,
    churn: bool = False,
    **kwargs: Any,
) -> dict[str, Any]:
    async def main(loop: vloop.VirtualEventLoop) -> dict[str, Any]:
        sim = await three_ranges(loop)
        stop = asyncio.Event()
        mover = asyncio.ensure_future(lease_churn(sim, stop)) if churn else None
        moved = 0
        try:
            out = await scenario(SimEnv(sim), **kwargs)
            out["leases"] = [sim.leaseholder(k) for k in (b"a", b"n", b"u")]
        finally:
            stop.set()
            if mover is not None:
                moved = await mover
            await sim.close()
        out["moved"] = moved
        return out

    return vloop.run(main, seed=seed, max_time=300.0)


SCENARIOS: list[tuple[str, Callable[..., Awaitable[dict[str, Any]]], dict[str, Any]]] = [
    ("conflict-commit", sc.conflict, {"holder_commits": True}),
    ("conflict-abort", sc.conflict, {"holder_commits": False}),
    ("read-write-refresh", sc.read_write, {"interfere": False}),
    ("read-write-refresh-fails", sc.read_write, {"interfere": True}),
    ("push-abort", sc.push_abort, {}),
    ("deadlock-2", sc.deadlock, {"keys": (b"a-d2", b"n-d2")}),
    ("deadlock-3", sc.deadlock, {"keys": (b"a-d3", b"n-d3", b"u-d3")}),
    ("abandoned", sc.abandoned, {}),
    ("staging-all-landed", sc.staging_recovery, {"all_landed": True}),
    ("staging-write-missing", sc.staging_recovery, {"all_landed": False}),
    ("async-resolution", sc.async_resolution, {}),
]
IDS = [s[0] for s in SCENARIOS]


@pytest.mark.parametrize("seed", FAST_SEEDS)
@pytest.mark.parametrize(("name", "scenario", "kwargs"), SCENARIOS, ids=IDS)
def test_txn_scenario(name, scenario, kwargs, seed):
    out = run_on_sim(scenario, seed, **kwargs)
    assert len(set(out["leases"])) == 3, f"leases not spread: {out['leases']}"


@pytest.mark.slow
@pytest.mark.parametrize("seed", SLOW_SEEDS)
@pytest.mark.parametrize(("name", "scenario", "kwargs"), SCENARIOS, ids=IDS)
def test_txn_scenario_many_seeds(name, scenario, kwargs, seed):
    run_on_sim(scenario, seed, **kwargs)


CHURN = [s for s in SCENARIOS if not s[0].startswith("deadlock")]


@pytest.mark.parametrize(("name", "scenario", "kwargs"), CHURN, ids=[s[0] for s in CHURN])
def test_txn_scenario_under_lease_transfers(name, scenario, kwargs):
    out = run_on_sim(scenario, 1, churn=True, **kwargs)
    assert out["moved"] >= 1, "no lease moved: the churn did nothing"


@pytest.mark.slow
@pytest.mark.parametrize("seed", SLOW_SEEDS)
@pytest.mark.parametrize(("name", "scenario", "kwargs"), SCENARIOS, ids=IDS)
def test_txn_scenario_under_lease_transfers_many_seeds(name, scenario, kwargs, seed):
    run_on_sim(scenario, seed, churn=True, **kwargs)


def test_same_seed_same_outcome():
    a = run_on_sim(sc.deadlock, 202, keys=(b"a-d3", b"n-d3", b"u-d3"))
    b = run_on_sim(sc.deadlock, 202, keys=(b"a-d3", b"n-d3", b"u-d3"))
    assert a["outcomes"] == b["outcomes"] and a["first"] == b["first"]


# ---- regressions: bugs the scenarios found (fixed in replica.py, e5ce0fe) -------------------


async def rollback_after_push_abort(loop: vloop.VirtualEventLoop) -> list[tuple[int, bytes]]:
    """A txn with its record on range a… and its only intent on range n… is
    aborted by a high-priority push (no conflict touched the intent); its
    coordinator then rolls back, naming the intent. Nobody reads n-rb: the
    intent resolver must still resolve it. Returns what is left."""
    sim = await three_ranges(loop)
    env = SimEnv(sim)
    try:
        t = ScriptedTxn.begin(env.sender(1), b"a-rb", env.now(), txn_id=env.rng.randbytes(16))
        await t.heartbeat()
        await t.put(b"n-rb", b"x")
        pusher = new_txn(b"u-p", env.now(), priority=10, txn_id=env.rng.randbytes(16))
        await env.sender(2).send(batch(None, push_req(t.meta, api_pb2.PUSH_ABORT, pusher=pusher)))
        rec, _ = await query_txn(env.sender(1), t.meta)
        assert rec.status == data_pb2.ABORTED
        await t.rollback()
        with contextlib.suppress(TimeoutError):
            await sim.wait_for(lambda: not intents_of(env.engines()), timeout=10)
        return intents_of(env.engines())
    finally:
        await sim.close()


def test_rollback_of_push_aborted_txn_resolves_its_intents_on_other_ranges():
    assert vloop.run(rollback_after_push_abort, seed=1, max_time=120.0) == []


# ---- the checks can fail: broken variants ---------------------------------------------------------


def test_broken_variant_without_deadlock_detection_is_caught(monkeypatch):
    """With edge chasing switched off, a cycle of heartbeating txns is never
    broken: the deadlock scenario must fail (it times out)."""
    from crdb_py.kvserver.concurrency import txn_wait_queue

    init = txn_wait_queue.TxnWaitQueue.__init__

    def no_detection(self, *a, **kw):
        init(self, *a, **kw)
        self.detect_deadlocks = False

    monkeypatch.setattr(txn_wait_queue.TxnWaitQueue, "__init__", no_detection)
    with pytest.raises((AssertionError, TimeoutError)):
        run_on_sim(sc.deadlock, 202, keys=(b"a-d2", b"n-d2"))


def test_broken_variant_without_prevention_is_caught(monkeypatch):
    """If QueryIntent's timestamp-cache bump is dropped, the dead
    coordinator's late in-flight write lands at the staging timestamp of a
    txn recovery declared ABORTED: the scenario must catch it."""
    from crdb_py.kvserver.replica import Replica

    monkeypatch.setattr(Replica, "_apply_tscache_bumps", lambda self, bumps: None)
    with pytest.raises(AssertionError):
        run_on_sim(sc.staging_recovery, 202, all_landed=False)


def test_status_log_catches_a_changed_final_status():
    log = sc.StatusLog(env=None)  # type: ignore[arg-type]
    for s in (data_pb2.PENDING, data_pb2.STAGING, data_pb2.COMMITTED):
        log.note(b"t", s)
    log.check()
    log.note(b"t", data_pb2.ABORTED)
    with pytest.raises(AssertionError, match="changed its final status"):
        log.check()


async def pipelined_write_then_conflict(loop: vloop.VirtualEventLoop) -> tuple[bool, list[Any]]:
    """A live, heartbeating txn writes n-pw with async consensus (a pipelined
    write: the reply comes at proposal) and a non-transactional put to n-pw
    follows at once from another gateway. The put must wait for the txn (its
    intent is there, or about to be). Returns (waited, n-pw's intents)."""
    sim = await three_ranges(loop)
    env = SimEnv(sim)
    try:
        t = ScriptedTxn.begin(env.sender(1), b"n-pw", env.now(), txn_id=env.rng.randbytes(16))
        await t.heartbeat()
        t.start_heartbeat()
        await t.send(t.put_req(b"n-pw", b"txn"), async_consensus=True)
        other = asyncio.ensure_future(sc.put(env, b"n-pw", b"other", gateway=3))
        waited = await sc.still_waiting(other, 1.0)
        left = intents_of(env.engines(), [t.id])
        await t.stop_heartbeat()
        with contextlib.suppress(Exception):
            await t.rollback()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(other, 10)
        return waited, left
    finally:
        await sim.close()


def test_write_after_a_pipelined_intent_waits_for_its_txn():
    waited, left = vloop.run(pipelined_write_then_conflict, seed=1, max_time=120.0)
    assert left, "the pipelined intent was never written"
    assert waited, "a write went through a live txn's pipelined intent"
