"""Bank on the deterministic simulator, under the four commit settings.

Six accounts on two ranges start at 100 each. Clients move random amounts
between random accounts with `run_txn` (read both, refuse an overdraft,
write both), each on a random live gateway; readers read every account in
one transaction; a nemesis crashes / restarts a node and moves leases; the
network drops, duplicates and delays messages. Every read must see the
total 600 and no negative balance, and after the faults stop the final
total is 600 and transfers did commit.

A failing seed reproduces with `vloop.run(scenario(parallel, pipelining), seed=S)`.
The broken variant (transfers as two non-transactional writes) shows the
readers catch a torn transfer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

import pytest

from crdb_py.kvclient.db import DB
from crdb_py.kvclient.txn.settings import TxnSettings
from crdb_py.sim import vloop
from crdb_py.sim.kvsim import KVSim, NetFaults, nemesis, retry

FAULTS = NetFaults(drop=0.01, duplicate=0.01, raft_delay_max=0.01, rpc_delay_max=0.005)
SKEW = 100_000_000  # ±100 ms per node (max offset 500 ms)
ACCOUNTS = [b"bank/a0", b"bank/a1", b"bank/a2", b"bank/b3", b"bank/b4", b"bank/b5"]
SPLIT = b"bank/b"
TOTAL = 100 * len(ACCOUNTS)
SETTINGS = [(p, w) for p in (True, False) for w in (True, False)]
FAST_SEEDS = [2]  # its nemesis crashes a node and moves leases
# Seed 207 once livelocked: a waiting push, satisfied by what the txn wait
# queue had learned from another push, failed again on re-evaluation and
# spun at one instant of virtual time (fixed: the queue forwards the push's
# pushee meta, and a repeatedly failing push backs off).
REGRESSION_SEEDS = [207]
SLOW_SEEDS = list(range(200, 210))


@pytest.fixture(autouse=True)
def _quiet_logs():
    logging.disable(logging.ERROR)  # nemeses make servers log expected failures
    yield
    logging.disable(logging.NOTSET)


@dataclass
class Outcome:
    reads: list[tuple[float, int, tuple[int, ...]]] = field(default_factory=list)  # (t, total, balances)
    committed: int = 0
    failed: int = 0
    final: tuple[int, ...] = ()
    faults: list[tuple[float, str]] = field(default_factory=list)

    def violations(self) -> list[str]:
        bad = [
            f"t={t:.3f} total {tot} balances {bal}"
            for t, tot, bal in self.reads
            if tot != TOTAL or min(bal) < 0
        ]
        if sum(self.final) != TOTAL or min(self.final, default=0) < 0:
            bad.append(f"final balances {self.final}")
        return bad


class _Gateways:
    """A transactional DB per live gateway, rebuilt when the node restarts."""

    def __init__(self, sim: KVSim, settings: TxnSettings) -> None:
        self.sim = sim
        self.settings = settings
        self._dbs: dict[int, tuple[DB, DB]] = {}

    def db(self, g: int) -> DB:
        base = self.sim.db(g)
        got = self._dbs.get(g)
        if got is None or got[0] is not base:
            txn_db = DB(
                base.sender,
                clock=self.sim.clocks[g],
                settings=self.settings,
                gateway_node_id=g,
                rng=self.sim.loop.fork_rng(f"txn-db-{g}-{len(self._dbs)}"),
            )
            got = self._dbs[g] = (base, txn_db)
        return got[1]


async def _read_all(t) -> tuple[int, ...]:
    rows = dict(await t.scan(b"bank/", b"bank0"))
    return tuple(int(rows[k]) for k in ACCOUNTS)


def scenario(parallel: bool, pipelining: bool, *, broken: bool = False, duration: float = 6.0):
    async def run(loop: vloop.VirtualEventLoop) -> Outcome:
        sim = KVSim(loop, 3, faults=FAULTS, max_skew_nanos=SKEW)
        await sim.start()
        out = Outcome()
        try:
            plain = sim.db()
            await retry(lambda: plain.admin_split(SPLIT))
            for k in ACCOUNTS:
                await retry(lambda k=k: plain.put(k, b"100"))
            gw = _Gateways(sim, TxnSettings(parallel_commits=parallel, write_pipelining=pipelining))
            stop = asyncio.Event()
            rng = loop.fork_rng("bank")

            async def transfer(t, src: bytes, dst: bytes, amount: int) -> None:
                s = int(await t.get(src))
                d = int(await t.get(dst))
                if s < amount:
                    return
                await t.put(src, b"%d" % (s - amount))
                await t.put(dst, b"%d" % (d + amount))

            async def torn(db: DB, src: bytes, dst: bytes, amount: int) -> None:
                s = int(await db.get(src))
                await db.put(src, b"%d" % (s - amount))
                await asyncio.sleep(0.01)
                d = int(await db.get(dst))
                await db.put(dst, b"%d" % (d + amount))

            async def client(c: int) -> None:
                crng = loop.fork_rng(f"client-{c}")
                while not stop.is_set():
                    src, dst = crng.sample(ACCOUNTS, 2)
                    amount = crng.randint(1, 30)
                    live = sim.live()
                    db = gw.db(crng.choice(live))
                    try:
                        if broken:
                            await asyncio.wait_for(torn(db, src, dst, amount), 10)
                        else:
                            await asyncio.wait_for(
                                db.run_txn(
                                    lambda t, s=src, d=dst, a=amount: transfer(t, s, d, a),
                                    max_retries=20,
                                ),
                                10,
                            )
                        out.committed += 1
                    except Exception:
                        out.failed += 1
                        await asyncio.sleep(0.05)

            async def reader(r: int) -> None:
                rrng = loop.fork_rng(f"reader-{r}")
                while not stop.is_set():
                    db = gw.db(rrng.choice(sim.live()))
                    with contextlib.suppress(Exception):
                        bal = await asyncio.wait_for(db.run_txn(_read_all, max_retries=20), 10)
                        out.reads.append((loop.time(), sum(bal), bal))
                    await asyncio.sleep(rrng.uniform(0.05, 0.2))

            async def nemesis_run() -> None:
                out.faults = await nemesis(
                    sim, rng, stop, keys=[ACCOUNTS[0], ACCOUNTS[3]], interval=(0.3, 0.8)
                )

            async def timer() -> None:
                await asyncio.sleep(duration)
                stop.set()

            await asyncio.gather(
                timer(), nemesis_run(), *(client(c) for c in range(4)), *(reader(r) for r in range(2))
            )
            out.final = await retry(lambda: gw.db(sim.live()[0]).run_txn(_read_all), attempts=100)
            return out
        finally:
            await sim.close()

    return run


def _check(parallel: bool, pipelining: bool, seed: int) -> Outcome:
    out = vloop.run(scenario(parallel, pipelining), seed=seed, max_time=600.0)
    assert out.violations() == [], (out.violations()[:5], out.faults)
    assert out.committed > 0 and len(out.reads) > 0, out
    return out


@pytest.mark.parametrize("seed", FAST_SEEDS)
@pytest.mark.parametrize("parallel,pipelining", SETTINGS)
def test_bank_total_is_conserved_under_nemesis(parallel: bool, pipelining: bool, seed: int) -> None:
    out = _check(parallel, pipelining, seed)
    assert any("crash" in f for _, f in out.faults), out.faults
    assert any("transfer" in f for _, f in out.faults), out.faults


@pytest.mark.parametrize("seed", REGRESSION_SEEDS)
def test_bank_regression_seeds(seed: int) -> None:
    _check(True, True, seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", SLOW_SEEDS)
@pytest.mark.parametrize("parallel,pipelining", SETTINGS)
def test_bank_many_seeds(parallel: bool, pipelining: bool, seed: int) -> None:
    _check(parallel, pipelining, seed)


def test_checker_catches_torn_transfers() -> None:
    out = vloop.run(scenario(True, True, broken=True), seed=1, max_time=600.0)
    assert out.violations(), "non-transactional transfers went unnoticed"
