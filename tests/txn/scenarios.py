"""Transaction scenarios, written once, run on the simulator and on real nodes.

Each scenario drives hand-built transactions (`crdb_py.sim.txnclient`)
against a 3-range cluster reached through an `Env`: the deterministic KV
simulator (tests/sim/test_txn_sim.py) or a real 3-node `LocalCluster`
(tests/txn/test_txn_localcluster.py). Every scenario

- asserts what it is about (who waits, who is aborted, what is visible);
- watches the txn records it creates (`StatusLog`) and checks afterwards
  that a final status (COMMITTED / ABORTED) never changed;
- ends with `quiesce`: where the engines can be inspected, every intent is
  eventually resolved on every replica, without anyone reading them.

Keys: ranges split at `m` and `t`, so `a…`, `n…`, `u…` keys live on three
ranges (with leases spread over the nodes where the env can do that).
Times are the loop's (virtual on the simulator).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass, field
from typing import Any, Protocol

from crdb_py.pb import api_pb2, data_pb2
from crdb_py.sim.txnclient import (
    ScriptedTxn,
    Sender,
    batch,
    intents_of,
    query_txn,
)
from crdb_py.util.errors import (
    CrdbError,
    ReadWithinUncertaintyIntervalError,
    TransactionAbortedError,
    TransactionRetryError,
)
from crdb_py.util.hlc import Timestamp, ts_from_proto

SPLITS = (b"m", b"t")
FINAL = (data_pb2.COMMITTED, data_pb2.ABORTED)
EXPIRY = 5.0  # TXN_LIVENESS_THRESHOLD: 5 x the 1 s heartbeat interval
# A restartable outcome for a deadlock loser: aborted by the breaker, or told
# its write is too old / must retry if the winner's intents went first.
RESTART = ("TransactionAbortedError", "TransactionRetryError", "WriteTooOldError")


class Env(Protocol):
    n: int
    rng: random.Random  # txn ids (seeded on the simulator)

    def sender(self, gateway: int) -> Sender: ...
    def now(self) -> Timestamp: ...
    def engines(self) -> dict[int, Any] | None: ...
    async def settle(self) -> None: ...


def status_name(s: int) -> str:
    return data_pb2.TransactionStatus.Name(s)  # type: ignore[arg-type]


@dataclass
class StatusLog:
    """The record statuses seen per txn, by polling QueryTxn while a
    scenario runs; `check()` says a final status never changed."""

    env: Env
    every: float = 0.1
    seen: dict[bytes, list[int]] = field(default_factory=dict)
    names: dict[bytes, str] = field(default_factory=dict)
    _txns: list[ScriptedTxn] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    def watch(self, *txns: ScriptedTxn) -> None:
        for t in txns:
            self._txns.append(t)
            self.names[t.id] = t.txn.name

    def note(self, txn_id: bytes, status: int) -> None:
        log = self.seen.setdefault(txn_id, [])
        if not log or log[-1] != status:
            log.append(status)

    async def poll_once(self) -> None:
        for t in list(self._txns):
            with contextlib.suppress(CrdbError, TimeoutError):
                rec, exists = await query_txn(self.env.sender(1), t.meta)
                if exists:
                    self.note(t.id, rec.status)

    def start(self) -> None:
        async def loop() -> None:
            while True:
                await self.poll_once()
                await asyncio.sleep(self.every)

        self._task = asyncio.ensure_future(loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        await self.poll_once()

    def final(self, t: ScriptedTxn) -> int | None:
        log = self.seen.get(t.id, [])
        return log[-1] if log else None

    def check(self) -> None:
        for tid, log in self.seen.items():
            finals = [i for i, s in enumerate(log) if s in FINAL]
            if finals:
                first = finals[0]
                assert all(s == log[first] for s in log[first:]), (
                    f"txn {self.names.get(tid)} changed its final status: "
                    f"{[status_name(s) for s in log]}"
                )


async def quiesce(env: Env, timeout: float = 20.0) -> None:
    """Until no intent is left on any engine (every intent eventually
    resolved, on every replica). No-op where engines are out of reach."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        engines = env.engines()
        if engines is None:
            return
        await env.settle()
        left = intents_of(engines)
        if not left:
            return
        if loop.time() > deadline:
            raise AssertionError(f"intents never resolved: {left[:10]}")
        await asyncio.sleep(0.1)


async def expect_error(coro: Any) -> CrdbError:
    try:
        await coro
    except CrdbError as e:
        return e
    raise AssertionError("expected an error")


async def still_waiting(task: asyncio.Future[Any], for_s: float) -> bool:
    """True if `task` has not finished after `for_s` seconds."""
    done, _ = await asyncio.wait({task}, timeout=for_s)
    return not done


async def record_status(env: Env, t: ScriptedTxn) -> int | None:
    rec, exists = await query_txn(env.sender(1), t.meta)
    return rec.status if exists else None


async def get(env: Env, key: bytes, gateway: int = 1) -> bytes | None:
    ru = api_pb2.RequestUnion()
    ru.get.header.key = key
    br = await env.sender(gateway).send(batch(None, ru))
    g = br.responses[0].get
    return g.value.raw_bytes if g.HasField("value") else None


async def put(env: Env, key: bytes, value: bytes, gateway: int = 1) -> None:
    ru = api_pb2.RequestUnion()
    ru.put.header.key, ru.put.value = key, value
    await env.sender(gateway).send(batch(None, ru))


class Scenario:
    """What every scenario shares: the env, a status log, the txns."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.log = StatusLog(env)
        self.txns: list[ScriptedTxn] = []

    def begin(
        self, anchor: bytes, *, gateway: int = 1, priority: int = 1, name: str = "", at: Timestamp | None = None
    ) -> ScriptedTxn:
        t = ScriptedTxn.begin(
            self.env.sender(gateway),
            anchor,
            at or self.env.now(),
            priority=priority,
            name=name,
            txn_id=self.env.rng.randbytes(16),
        )
        self.txns.append(t)
        self.log.watch(t)
        return t

    async def __aenter__(self) -> Scenario:
        self.log.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for t in self.txns:
            await t.stop_heartbeat()
        await self.log.stop()
        if exc[0] is None:
            self.log.check()
            await quiesce(self.env)
            self.log.check()


# ---- 1. conflict: a writer waits for the holder ---------------------------------------------


async def conflict(env: Env, *, holder_commits: bool) -> dict[str, Any]:
    """t1 holds intents on a1 and a2; t2 writes a1: it waits while t1 lives,
    then proceeds, and sees t1's a2 iff t1 committed."""
    async with Scenario(env) as sc:
        t1 = sc.begin(b"a1", gateway=1, name="holder")
        await t1.heartbeat()
        t1.start_heartbeat()
        await t1.put(b"a1", b"t1")
        await t1.put(b"a2", b"t1")
        t2 = sc.begin(b"n2", gateway=2, name="writer")
        await t2.heartbeat()
        t2.start_heartbeat()
        w = asyncio.ensure_future(t2.put(b"a1", b"t2"))
        assert await still_waiting(w, 1.5), "a write must wait for a live conflicting txn"
        if holder_commits:
            assert (await t1.commit()).status == data_pb2.COMMITTED
        else:
            await t1.rollback()
        await asyncio.wait_for(w, 10)
        seen = await t2.get(b"a2")
        own = await t2.get(b"a1")
        assert (await t2.commit()).status == data_pb2.COMMITTED
        await t1.stop_heartbeat()
        await t2.stop_heartbeat()
        assert own == b"t2"
        assert seen == (b"t1" if holder_commits else None), seen
        assert await get(env, b"a1") == b"t2"
        await sc.log.poll_once()
        assert sc.log.final(t1) == (data_pb2.COMMITTED if holder_commits else data_pb2.ABORTED)
    return {"seen": seen}


# ---- 2. read-write: readers below don't block; above wait or push ----------------------------


async def read_write(env: Env, *, interfere: bool) -> dict[str, Any]:
    """t1 read r and holds an intent on w. A read below t1's timestamp does
    not block; an equal-priority read above it waits; a high-priority read
    pushes t1's timestamp. t1's commit at its old timestamp is then refused
    (RETRY_SERIALIZABLE); its refresh succeeds unless someone wrote r inside
    the refresh window (`interfere`), and after a refresh it commits."""
    async with Scenario(env) as sc:
        await put(env, b"w", b"old")
        await put(env, b"r", b"r0")
        await asyncio.sleep(1.0)  # past the servers' clock skew
        before = env.now()  # a snapshot strictly older than t1 (by more than the max offset)
        await asyncio.sleep(1.0)
        t1 = sc.begin(b"w", gateway=1, name="writer")
        await t1.heartbeat()
        t1.start_heartbeat()
        assert await t1.get(b"r") == b"r0"
        await t1.put(b"w", b"new")
        t1_ts = t1.write_ts
        # below: served at once from the older version while t1 is PENDING
        low = sc.begin(b"w-low", gateway=2, name="low-reader", at=before)
        assert await asyncio.wait_for(low.get(b"w"), 1.0) == b"old"
        assert low.read_ts < t1_ts
        if interfere:
            await put(env, b"r", b"r1", gateway=3)  # between t1's read and the push below
        # above, high priority: pushes t1's timestamp and reads past the intent
        hi = sc.begin(b"u-hi", gateway=2, priority=10, name="hi-reader")
        assert await asyncio.wait_for(hi.get(b"w"), 4.0) == b"old"
        assert await record_status(env, t1) == data_pb2.PENDING
        # above the pushed intent, same priority: waits for t1
        eq = sc.begin(b"n-eq", gateway=3, name="eq-reader")
        eq.start_heartbeat()
        eq_get = asyncio.ensure_future(eq.get(b"w"))
        assert await still_waiting(eq_get, 1.0), "an equal-priority read above a live intent waits"
        err = await expect_error(t1.commit(refresh=False))
        assert isinstance(err, TransactionRetryError) and err.reason == "RETRY_SERIALIZABLE", err
        rec = await t1.heartbeat()  # learn the pushed timestamp
        assert ts_from_proto(rec.meta.write_timestamp) > hi.read_ts >= t1_ts
        refreshed = True
        try:
            await t1.refresh()
        except TransactionRetryError as e:
            refreshed = False
            assert e.reason == "RETRY_REFRESH_FAIL", e
            await t1.rollback()
        else:
            assert (await t1.commit()).status == data_pb2.COMMITTED
        await t1.stop_heartbeat()
        try:
            got_eq: bytes | None | str = await asyncio.wait_for(eq_get, 10)
        except ReadWithinUncertaintyIntervalError:
            # t1 was pushed to hi's uncertainty limit, which may lie inside
            # eq's uncertainty interval: eq must restart higher (correct).
            got_eq = "uncertain"
        await eq.commit()
        await hi.commit()
        await low.commit()
        assert refreshed == (not interfere)
        assert got_eq in ((b"new", "uncertain") if refreshed else (b"old",)), got_eq
        assert await get(env, b"w") == (b"new" if refreshed else b"old")
    return {"refreshed": refreshed}


# ---- 3. push by priority -------------------------------------------------------------------------


async def push_abort(env: Env) -> dict[str, Any]:
    """A high-priority writer aborts a live low-priority holder at once
    (PUSH_ABORT); the holder's commit then fails with TransactionAbortedError."""
    loop = asyncio.get_running_loop()
    async with Scenario(env) as sc:
        low = sc.begin(b"n-low", gateway=1, priority=1, name="low")
        await low.heartbeat()
        low.start_heartbeat()
        await low.put(b"n-k", b"low")
        high = sc.begin(b"u-high", gateway=2, priority=10, name="high")
        t0 = loop.time()
        await asyncio.wait_for(high.put(b"n-k", b"high"), 10)
        took = loop.time() - t0
        assert took < EXPIRY - 1, f"the push waited {took:.1f}s: expiry, not priority"
        assert await record_status(env, low) == data_pb2.ABORTED
        err = await expect_error(low.commit())
        assert isinstance(err, TransactionAbortedError), err
        await low.stop_heartbeat()
        await low.rollback()  # the coordinator cleans up what it wrote
        assert (await high.commit()).status == data_pb2.COMMITTED
        assert await get(env, b"n-k") == b"high"
    return {"took": took}


# ---- 4. deadlocks --------------------------------------------------------------------------------


async def deadlock(env: Env, keys: tuple[bytes, ...]) -> dict[str, Any]:
    """txn i holds keys[i] and wants keys[i+1] (a cycle). All heartbeat, all
    equal priority, so only deadlock detection can free them: at least one
    must restart well before the 5 s expiry, the others commit."""
    loop = asyncio.get_running_loop()
    n = len(keys)
    async with Scenario(env) as sc:
        ts = [sc.begin(k, gateway=1 + i % env.n, name=f"d{i}") for i, k in enumerate(keys)]
        for t, k in zip(ts, keys, strict=True):
            await t.heartbeat()
            t.start_heartbeat()
            await t.put(k, t.txn.name.encode())
        t0 = loop.time()
        took: dict[str, float] = {}

        async def cross(i: int) -> str:
            t = ts[i]
            try:
                await t.put(keys[(i + 1) % n], t.txn.name.encode())
                out = status_name((await t.commit()).status)
            except CrdbError as e:
                out = type(e).__name__
                await t.stop_heartbeat()
                with contextlib.suppress(CrdbError):
                    await t.rollback()
            took[t.txn.name] = loop.time() - t0
            await t.stop_heartbeat()
            return out

        outcomes = await asyncio.wait_for(asyncio.gather(*(cross(i) for i in range(n))), 30)
        losers = [o for o in outcomes if o != "COMMITTED"]
        assert losers, outcomes
        assert all(o in RESTART for o in losers), outcomes
        assert "COMMITTED" in outcomes, outcomes
        first = min(took.values())
        assert first < EXPIRY - 0.5, f"deadlock broken only after {first:.1f}s (expiry, not detection)"
        for i, (t, o) in enumerate(zip(ts, outcomes, strict=True)):
            if o == "COMMITTED":
                # a winner's own key and the one it took both hold its value
                assert await get(env, keys[(i + 1) % n]) == t.txn.name.encode()
    return {"outcomes": outcomes, "first": first}


# ---- 5. abandoned txn ----------------------------------------------------------------------------


async def abandoned(env: Env) -> dict[str, Any]:
    """t1 writes on two ranges and its coordinator dies (no more heartbeats).
    A conflicting scan waits until t1 expires (5 s after its last heartbeat),
    then aborts it and cleans both intents; t1 can never commit."""
    loop = asyncio.get_running_loop()
    async with Scenario(env) as sc:
        t1 = sc.begin(b"a-ab", gateway=1, name="abandoned")
        await t1.heartbeat()
        await t1.put(b"a-ab", b"x")
        await t1.put(b"n-ab", b"y")
        await t1.heartbeat()
        last_hb = loop.time()  # the coordinator dies here
        scans = []
        for start, end in ((b"a-ab", b"a-ac"), (b"n-ab", b"n-ac")):  # one batch, two ranges
            ru = api_pb2.RequestUnion()
            ru.scan.header.key, ru.scan.header.end_key = start, end
            scans.append(ru)
        br = await asyncio.wait_for(env.sender(2).send(batch(None, *scans)), 30)
        waited = loop.time() - last_hb
        rows = [(kv.key, kv.value.raw_bytes) for r in br.responses for kv in r.scan.rows]
        assert rows == [], rows
        assert waited >= EXPIRY - 0.6, f"a live txn was aborted early ({waited:.1f}s)"
        assert await record_status(env, t1) == data_pb2.ABORTED
        err = await expect_error(t1.commit())
        assert isinstance(err, TransactionAbortedError), err
    return {"waited": waited}


# ---- 6. parallel commit + recovery ------------------------------------------------------------


async def staging_recovery(env: Env, *, all_landed: bool, tag: bytes = b"") -> dict[str, Any]:
    """A coordinator writes a-pc (proven), sends its last write n-pc and
    EndTxn(STAGING, in-flight n-pc) and dies. (a) n-pc landed: a conflicting
    writer's push finds the STAGING record, recovery finds every write →
    COMMITTED, both values visible. (b) n-pc never arrived: recovery's
    QueryIntent prevents it → ABORTED; the late write, sent afterwards, lands
    above the staging timestamp. `tag` suffixes the keys (to share a cluster)."""
    a_pc, n_pc = b"a-pc" + tag, b"n-pc" + tag
    async with Scenario(env) as sc:
        t = sc.begin(a_pc, gateway=1, name="staging")
        await t.put(a_pc, b"va")
        t.in_flight.clear()  # a-pc is proven
        last = t.put_req(n_pc, b"vn")
        if all_landed:
            # Landed = applied: the coordinator never proved it (no QueryIntent),
            # so it is still in flight for the protocol. (Sent pipelined, a
            # conflicting write may slip past it: see the xfail test
            # test_write_after_a_pipelined_intent_waits_for_its_txn.)
            await t.send(last)
        staged = await t.stage([(n_pc, last.put.header.sequence)])
        assert staged.status == data_pb2.STAGING
        staging_ts = t.write_ts
        assert await record_status(env, t) == data_pb2.STAGING
        # the coordinator is dead; a conflicting writer meets one of its intents
        victim = n_pc if all_landed else a_pc
        await asyncio.wait_for(put(env, victim, b"other", gateway=3), 30)
        status = await record_status(env, t)
        late_ts: Timestamp | None = None
        if all_landed:
            assert status == data_pb2.COMMITTED, status_name(status or 0)
            assert await get(env, a_pc) == b"va"
            assert await get(env, n_pc) == b"other"
        else:
            assert status == data_pb2.ABORTED, status_name(status or 0)
            assert await get(env, a_pc) == b"other"
            # the in-flight write arrives late: never at or below the staging ts
            dead = data_pb2.Transaction()
            dead.CopyFrom(t.txn)
            dead.status = data_pb2.PENDING  # what the coordinator sent before dying
            br = await t.sender.send(batch(dead, last))
            late_ts = ts_from_proto(br.header.txn.meta.write_timestamp)
            assert late_ts > staging_ts
            # its intent belongs to an ABORTED txn: the next reader removes it
            assert await get(env, n_pc) is None
        assert await record_status(env, t) == status
    return {"status": status, "late_above": late_ts is not None}


# ---- 7. asynchronous resolution on other ranges --------------------------------------------------


async def async_resolution(env: Env) -> dict[str, Any]:
    """A txn commits with intents on three ranges; nobody reads them, yet
    every intent is resolved (by the intent resolver) on every replica."""
    async with Scenario(env) as sc:
        t = sc.begin(b"a-ar", gateway=2, name="committer")
        for k in (b"a-ar", b"n-ar", b"u-ar", b"u-ar2"):
            await t.put(k, k)
        assert (await t.commit()).status == data_pb2.COMMITTED
        # leaving the block runs quiesce(): no reads, only the resolver
    for k in (b"a-ar", b"n-ar", b"u-ar", b"u-ar2"):
        assert await get(env, k) == k
    return {}

