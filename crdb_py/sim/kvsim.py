"""Deterministic simulation of the KV layer: real Stores on virtual time.

What it is. `KVSim` runs an `InProcessKVCluster` — real `Store`s and
`Replica`s on `MemEngine`s, real `DistSender`/`DB` clients — on the
virtual-time event loop (`crdb_py/sim/vloop.py`), with every source of
nondeterminism that matters either seeded or shown not to matter:

- **time**: every node's HLC reads the loop's virtual time plus a per-node
  skew drawn from the seed (bounded by the max offset); raft ticks, lease
  expirations, proposal timeouts and DistSender backoffs all run on it;
- **randomness**: DistSender replica order and backoff jitter come from
  `loop.fork_rng("dist")`; faults from `loop.fork_rng("net")`; the nemesis
  and workloads take their own forks. Raft election jitter is seeded per
  (node, range) by the replica already;
- **command ids** (`os.urandom(8)` in the replica) are *not* seeded: they
  are opaque keys of an insertion-ordered dict and travel as bytes inside
  raft entries, so they never influence an ordering decision. The
  same-seed test (tests/sim/test_kvsim.py) compares whole histories and
  loop traces across runs while the ids differ, which is the evidence;
- **the network**: `SimTransport` wraps each node's in-process transport
  and, from the seeded rng, drops, duplicates and delays (reordering) raft
  messages and delays RPC legs; partitions are one-way link blocks in a
  shared `LinkFaultTable` (`partition`, `isolate`, `heal`). A blocked
  request leg fails with `NodeUnavailableError` (not delivered); a blocked
  or dropped response leg fails as an unknown outcome
  (`AmbiguousResultError` for writes), as over a real network.

Crashes. `crash(i)` stops node i's store and closes its transport, keeping
its engine (as a process kill keeps its disk); `restart(i)` builds a new
Store on the same engine, which reloads its replicas and replays the raft
log's unapplied tail. MemEngine writes are all "durable", so this models a
crash after the last synced write. A crashed node never answers a request it
was serving (the in-process handler turns such answers into a dropped
connection: `AmbiguousResultError` for writes, a retry elsewhere for reads),
so no stale in-memory state of the dead incarnation leaks to clients.

Reproducing. A failing seed is a bug report: `vloop.run(scenario, seed=S)`
replays it. Within one process the same seed gives the same history and
trace (tested). Across processes it held for every `PYTHONHASHSEED` tried,
but code that iterates sets of str/bytes or identity-hashed objects could
break that; pin `PYTHONHASHSEED` when replaying if in doubt.

Histories. `RegisterClient` performs read / write / CAS (`cput`) operations
through `DB` and records them in a `crdb_py.jepsen.linearizability.History`:
success → `ok`, `ConditionFailedError` → `ok` with output
`CasFailed(actual)`, errors that prove the request never executed
(`NodeUnavailableError`) → `fail`, and everything else —
`AmbiguousResultError`, client timeouts, unexpected errors — → `info`,
never `fail`. A failed CAS records the value the server saw
(`CasFailed(actual)`), which makes it as strong an observation as a read.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from crdb_py.jepsen.linearizability import CasFailed, History
from crdb_py.kvclient.db import DB
from crdb_py.pb import api_pb2, raft_pb2, services_pb2
from crdb_py.rpc.faults import LinkFaultTable
from crdb_py.rpc.transport import delivery_failure
from crdb_py.sim.kvcluster import InProcessKVCluster
from crdb_py.sim.vloop import VirtualEventLoop
from crdb_py.util import keys as ukeys
from crdb_py.util.errors import (
    AmbiguousResultError,
    ConditionFailedError,
    NodeUnavailableError,
)
from crdb_py.util.hlc import DEFAULT_MAX_OFFSET_NANOS, HLC

__all__ = ["KVSim", "NetFaults", "RegisterClient", "SimNetwork", "SimTransport"]

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class NetFaults:
    """Seeded message-level faults. Probabilities per raft message; delays
    are uniform in [0, max] seconds per raft message and per RPC leg."""

    drop: float = 0.0
    duplicate: float = 0.0
    raft_delay_max: float = 0.0
    rpc_delay_max: float = 0.0
    rpc_response_drop: float = 0.0  # a response lost: the caller sees an unknown outcome

    @property
    def idle(self) -> bool:
        return not (
            self.drop
            or self.duplicate
            or self.raft_delay_max
            or self.rpc_delay_max
            or self.rpc_response_drop
        )


class SimNetwork:
    """The simulated network: seeded faults plus a table of blocked links."""

    def __init__(self, rng: random.Random, faults: NetFaults | None = None) -> None:
        self.rng = rng
        self.faults = faults or NetFaults()
        self.links = LinkFaultTable()
        self.raft_dropped = 0
        self.raft_duplicated = 0

    def wrap(self, node_id: int, inner: Any) -> SimTransport:
        return SimTransport(self, inner)

    def _delay(self, src: int, dst: int, max_s: float) -> float:
        d = self.links.latency(src, dst)
        if max_s > 0:
            d += self.rng.uniform(0.0, max_s)
        return d


class SimTransport:
    """A `Transport` wrapper applying the `SimNetwork`'s faults."""

    def __init__(self, net: SimNetwork, inner: Any) -> None:
        self.net = net
        self.inner = inner
        self.node_id: int = inner.node_id

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()

    def set_node_address(self, node_id: int, address: str) -> None:
        self.inner.set_node_address(node_id, address)

    # ---- raft: drop / duplicate / delay (may reorder) ----

    def send_raft_message(self, node_id: int, req: raft_pb2.RaftMessageRequest) -> bool:
        net, src = self.net, self.node_id
        if net.links.is_blocked(src, node_id):
            return False
        f = net.faults
        if f.idle and net.links.idle:
            return self.inner.send_raft_message(node_id, req)
        if f.drop and net.rng.random() < f.drop:
            net.raft_dropped += 1
            return True  # lost on the wire: the sender cannot know
        copies = 1
        if f.duplicate and net.rng.random() < f.duplicate:
            copies = 2
            net.raft_duplicated += 1
        loop = asyncio.get_running_loop()
        for _ in range(copies):
            d = net._delay(src, node_id, f.raft_delay_max)
            if d <= 0:
                self.inner.send_raft_message(node_id, req)
            else:
                loop.call_later(d, self._deliver_late, node_id, req)
        return True

    def _deliver_late(self, node_id: int, req: raft_pb2.RaftMessageRequest) -> None:
        if not self.net.links.is_blocked(self.node_id, node_id):
            self.inner.send_raft_message(node_id, req)

    # ---- RPCs: delayed legs, blocked links, lost responses ----

    async def send_batch(
        self, node_id: int, req: api_pb2.BatchRequest, timeout: float | None = None
    ) -> api_pb2.BatchResponse:
        net, src, f = self.net, self.node_id, self.net.faults
        if f.idle and net.links.idle:
            return await self.inner.send_batch(node_id, req, timeout)
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        if net.links.is_blocked(src, node_id):
            raise NodeUnavailableError(
                node_id,
                f"node n{node_id} is unreachable: link n{src}->n{node_id} is "
                "partitioned (simulated; request was not delivered)",
            )
        await asyncio.sleep(net._delay(src, node_id, f.rpc_delay_max))
        if net.links.is_blocked(src, node_id):
            raise NodeUnavailableError(
                node_id,
                f"node n{node_id} is unreachable: link n{src}->n{node_id} was "
                "partitioned in flight (simulated; request was not delivered)",
            )
        remaining = None if deadline is None else max(0.0, deadline - loop.time())
        resp = await self.inner.send_batch(node_id, req, remaining)
        lost = f.rpc_response_drop and net.rng.random() < f.rpc_response_drop
        await asyncio.sleep(net._delay(node_id, src, f.rpc_delay_max))
        if lost or net.links.is_blocked(node_id, src):
            raise delivery_failure(
                node_id, req, maybe_delivered=True, detail="response lost (simulated network fault)"
            )
        if deadline is not None and loop.time() > deadline:
            raise delivery_failure(
                node_id, req, maybe_delivered=True, detail="deadline exceeded (simulated delay)"
            )
        return resp

    async def admin_status(self, node_id: int) -> services_pb2.NodeStatusResponse:
        return await self.inner.admin_status(node_id)

    async def bootstrap(self, node_id: int) -> services_pb2.BootstrapResponse:
        return await self.inner.bootstrap(node_id)

    async def join(self, node_id: int, req: services_pb2.JoinRequest) -> services_pb2.JoinResponse:
        return await self.inner.join(node_id, req)

    async def set_link_faults(
        self, node_id: int, faults: services_pb2.LinkFaults
    ) -> services_pb2.LinkFaults:
        return await self.inner.set_link_faults(node_id, faults)


class KVSim:
    """An in-process KV cluster on the virtual loop with seeded faults.

    Create it inside `vloop.run(...)`::

        async def scenario(loop):
            sim = KVSim(loop, 3, faults=NetFaults(drop=0.01))
            await sim.start()
            try:
                db = sim.db()
                await db.put(b"k", b"v")
                await sim.crash(1); await sim.restart(1)
            finally:
                await sim.close()

        vloop.run(scenario, seed=42)
    """

    def __init__(
        self,
        loop: VirtualEventLoop,
        n: int = 3,
        *,
        faults: NetFaults | None = None,
        max_skew_nanos: int = 0,
        max_offset_nanos: int = DEFAULT_MAX_OFFSET_NANOS,
        **cluster_kwargs: Any,
    ) -> None:
        if max_skew_nanos * 2 > max_offset_nanos:
            raise ValueError("per-node skews must stay within the max offset")
        self.loop = loop
        self.net = SimNetwork(loop.fork_rng("net"), faults)
        skew_rng = loop.fork_rng("skew")
        self.skews = {i: skew_rng.randint(-max_skew_nanos, max_skew_nanos) for i in range(1, n + 1)}
        self.clocks = {
            i: HLC(loop.physical_clock(self.skews[i]), max_offset_nanos) for i in range(1, n + 1)
        }
        self.cluster = InProcessKVCluster(
            n,
            hlc_factory=self._hlc,
            rng=loop.fork_rng("dist"),
            wrap_transport=self.net.wrap,
            **cluster_kwargs,
        )
        self._dbs: dict[int, DB] = {}

    def _hlc(self, node_id: int) -> HLC:
        # A restarted node keeps its HLC object: a real node's clock does not
        # go back on restart (CockroachDB waits out the max offset instead).
        return self.clocks[node_id]

    @property
    def n(self) -> int:
        return self.cluster.n

    async def start(self) -> None:
        await self.cluster.start()
        await self.cluster.wait_replicated()

    async def close(self) -> None:
        await self.cluster.close()

    # ---- nodes ----

    def live(self) -> list[int]:
        return self.cluster.live_node_ids()

    def db(self, gateway: int | None = None) -> DB:
        """A DB client whose gateway is `gateway` (default: the first live node).
        Cached per gateway; a DB bound to a crashed node fails until restart."""
        g = gateway if gateway is not None else self.live()[0]
        if g not in self._dbs:
            self._dbs[g] = self.cluster.db(g)
        return self._dbs[g]

    async def crash(self, i: int) -> None:
        await self.cluster.stop_node(i)
        self._dbs.pop(i, None)
        self.loop.record("crash", i)

    async def restart(self, i: int) -> None:
        await self.cluster.start_node(i)
        self.loop.record("restart", i)

    # ---- network ----

    def partition(self, a: int, b: int) -> None:
        self.net.links.partition(a, b)
        self.loop.record("partition", a, b)

    def isolate(self, i: int, direction: str = "both") -> None:
        """Cut node i off: "both" ways, only its "out"going links (it hears
        everyone, nobody hears it) or only its "in"coming ones."""
        if direction not in ("both", "out", "in"):
            raise ValueError(f"direction must be both, out or in, not {direction!r}")
        for o in range(1, self.n + 1):
            if o == i:
                continue
            if direction in ("both", "out"):
                self.net.links.block(i, o)
            if direction in ("both", "in"):
                self.net.links.block(o, i)
        self.loop.record("isolate", i, direction)

    def heal(self) -> None:
        self.net.links.heal()
        self.loop.record("heal")

    # ---- ranges and leases ----

    def range_of(self, key: bytes) -> int | None:
        """The id of the range holding `key`, from any live replica's descriptor."""
        a = ukeys.addr(key)
        best = None
        for i in self.live():
            for r in self.cluster.nodes[i].store.replicas.values():
                d = r.desc
                if (
                    d is not None
                    and not r.destroyed
                    and d.start_key <= a < d.end_key
                    and (best is None or d.generation > best.generation)
                ):
                    best = d
        return best.range_id if best is not None else None

    def leaseholder(self, key: bytes) -> int | None:
        rid = self.range_of(key)
        return self.cluster.leaseholder(rid) if rid is not None else None

    async def wait_for(
        self, cond: Callable[[], bool], timeout: float = 30.0, step: float = 0.05
    ) -> None:
        deadline = self.loop.time() + timeout
        while not cond():
            if self.loop.time() > deadline:
                raise TimeoutError("condition not reached in simulated time")
            await asyncio.sleep(step)


async def retry(fn: Callable[[], Awaitable[R]], *, attempts: int = 50, backoff: float = 0.2) -> R:
    """Retry an idempotent operation through transient errors (setup / checks)."""
    for i in range(attempts):
        try:
            return await fn()
        except (NodeUnavailableError, AmbiguousResultError, TimeoutError):
            if i == attempts - 1:
                raise
            await asyncio.sleep(backoff)
    raise AssertionError("unreachable")


class RegisterClient:
    """A Jepsen-style register client: one process id, one op at a time."""

    def __init__(
        self, sim: KVSim, history: History, process: int, *, op_timeout: float = 15.0
    ) -> None:
        self.sim = sim
        self.history = history
        self.process = process
        self.op_timeout = op_timeout

    def _gateway(self, rng: random.Random) -> DB | None:
        live = self.sim.live()
        return self.sim.db(rng.choice(live)) if live else None

    async def _do(
        self, f: str, key: bytes, value: Any, fn: Callable[[DB], Awaitable[Any]], rng: random.Random
    ) -> None:
        h, p = self.history, self.process
        h.invoke(p, f, key, value)  # type: ignore[arg-type]
        db = self._gateway(rng)
        if db is None:
            h.fail(p)
            return
        try:
            out = await asyncio.wait_for(fn(db), self.op_timeout)
        except ConditionFailedError as e:
            h.ok(p, CasFailed(e.actual_value))
        except NodeUnavailableError:
            h.fail(p)  # certainly not delivered
        except asyncio.CancelledError:
            h.info(p)
            raise
        except Exception:
            h.info(p)  # ambiguous / timed out / unknown: may have happened
        else:
            h.ok(p, out)

    async def read(self, key: bytes, rng: random.Random) -> None:
        await self._do("read", key, None, lambda db: db.get(key), rng)

    async def write(self, key: bytes, value: bytes, rng: random.Random) -> None:
        await self._do("write", key, value, lambda db: db.put(key, value), rng)

    async def cas(self, key: bytes, expected: bytes | None, new: bytes, rng: random.Random) -> None:
        async def op(db: DB) -> bool:
            await db.cput(key, new, expected)
            return True

        await self._do("cas", key, (expected, new), op, rng)


async def register_workload(
    sim: KVSim,
    history: History,
    *,
    keys: list[bytes],
    clients: int,
    ops_per_client: int,
    rng: random.Random,
    think_max: float = 0.05,
) -> None:
    """`clients` processes doing random reads / writes / CASes on `keys`.
    Written values are unique (`p<process>-<n>`), so a read names its write."""

    async def client(p: int) -> None:
        c = RegisterClient(sim, history, p)
        crng = random.Random(rng.getrandbits(64))
        last_seen: dict[bytes, bytes | None] = {}
        for n in range(ops_per_client):
            await asyncio.sleep(crng.uniform(0, think_max))
            key = crng.choice(keys)
            val = f"p{p}-{n}".encode()
            r = crng.random()
            if r < 0.45:
                await c.read(key, crng)
                ev = history.events[-1]
                if ev.type == "ok" and ev.process == p:
                    last_seen[key] = ev.value
            elif r < 0.75:
                await c.write(key, val, crng)
            else:
                await c.cas(key, last_seen.get(key), val, crng)

    await asyncio.gather(*(client(p) for p in range(clients)))


async def nemesis(
    sim: KVSim,
    rng: random.Random,
    stop: asyncio.Event,
    *,
    keys: list[bytes],
    crash: bool = True,
    transfer: bool = True,
    partition: bool = False,
    interval: tuple[float, float] = (0.3, 1.2),
) -> list[tuple[float, str]]:
    """Until `stop` is set: move leases, crash / restart, isolate (both ways
    or one way) / heal.
    At most one node is faulty at a time (crashes and isolations pick the
    same victim until it is restarted and healed), so a 3-node cluster keeps
    a quorum. Returns what it did as (virtual time, action)."""
    done: list[tuple[float, str]] = []
    down = False
    cut = False
    victim: int | None = None
    loop = sim.loop
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), rng.uniform(*interval))
        if stop.is_set():
            break
        choices = []
        if transfer:
            choices.append("transfer")
        if crash:
            choices.append("restart" if down else "crash")
        if partition:
            choices.append("heal" if cut else "isolate")
        act = rng.choice(choices)
        if victim is None and act in ("crash", "isolate"):
            victim = rng.choice(sim.live())
        if act == "transfer":
            key = rng.choice(keys)
            live = sim.live()
            target = rng.choice(live)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    sim.db(rng.choice(live)).admin_transfer_lease(key, target), 5
                )
                done.append((loop.time(), f"transfer {key!r} -> n{target}"))
        elif act == "crash":
            assert victim is not None
            await sim.crash(victim)
            down = True
            done.append((loop.time(), f"crash n{victim}"))
        elif act == "restart":
            assert victim is not None
            await sim.restart(victim)
            down = False
            done.append((loop.time(), f"restart n{victim}"))
        elif act == "isolate":
            assert victim is not None
            direction = rng.choice(("both", "both", "out", "in"))
            sim.isolate(victim, direction)
            cut = True
            done.append((loop.time(), f"isolate n{victim} ({direction})"))
        elif act == "heal":
            sim.heal()
            cut = False
            done.append((loop.time(), "heal"))
        if not down and not cut:
            victim = None
    if cut:
        sim.heal()
    if down:
        assert victim is not None
        await sim.restart(victim)
        done.append((loop.time(), f"restart n{victim}"))
    return done
