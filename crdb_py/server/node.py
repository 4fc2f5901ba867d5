"""The Node: the composition root of one crdb-py server process.

A node owns one engine (one store), one HLC, one transport and — once it
belongs to a cluster — one `Store`. It is the transport's `NodeHandler`:
batches go to the store, raft message batches to the store's replicas, and
the admin service (status, bootstrap, join) is answered here.

Lifecycle::

    open engine ──► read store identity ──► bind transport (listen address)
                         │
          identity? ─yes─┴─► start store ──► publish own descriptor ──► serve
                │no
                ▼
       wait for whichever comes first:
         * Admin.Bootstrap (`crdb-py init`): become n1/s1, `Store.bootstrap`
           writes range 1, node-id generator := 1, descriptor of n1;
         * a successful Admin.Join to one of the --join addresses: the
           contacted node allocates the next node id (KV Increment on
           `NODE_ID_GEN_KEY`) and records our descriptor; we persist the
           identity and start an empty store (replicas arrive by
           up-replication, as raft snapshots).

Invariants:

* The identity is written exactly once, durably, *before* the store starts;
  a restart reuses it and never joins again.
* A node id is never handed out twice: ids come from a KV counter and the
  descriptor is written with a conditional put that requires the key to be
  absent (an id that somehow collides is skipped, never reused). The
  bootstrap node's own descriptor and counter are written before it answers
  any Join (`_serving_joins`).
* Every start re-publishes the node's descriptor, so addresses in KV follow
  a node that restarted on another port.

A join address that answers "not initialized" counts as an answer: the node
keeps waiting (like CockroachDB, which waits for `init`). Only when *no*
address answered at all for `join_timeout` seconds does start-up fail with
`JoinTimeoutError`. Design notes: docs/design/server.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from crdb_py import __version__
from crdb_py.pb import api_pb2, data_pb2, raft_pb2, services_pb2
from crdb_py.server.admin import AdminClient
from crdb_py.server.ident import (
    StoreIdent,
    has_range_data,
    load_peers,
    read_ident,
    save_peer,
    write_ident,
)
from crdb_py.server.registry import (
    NODE_DESC_PREFIX,
    NODE_ID_GEN_KEY,
    NodeRegistry,
    node_descriptor_key,
)
from crdb_py.storage.engine import Engine
from crdb_py.util import keys
from crdb_py.util.errors import (
    AmbiguousResultError,
    ClusterAlreadyInitializedError,
    ConditionFailedError,
    CrdbError,
    InternalError,
    InvalidArgumentError,
    JoinTimeoutError,
    NodeNotInitializedError,
    NodeUnavailableError,
    StorageError,
)
from crdb_py.util.hlc import HLC, system_clock_nanos

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """What `crdb-py start` is told on its command line."""

    store: str = "mem"  # a directory, or "mem" for an in-memory engine
    listen_addr: str = "127.0.0.1:26257"  # port 0 = pick a free one
    advertise_addr: str = ""  # what other nodes dial; default: the bound listen address
    join: tuple[str, ...] = ()
    join_timeout: float = 30.0
    raft_tick_interval: float = 0.1
    sync_writes: bool = True
    lease_duration: float = 3.0
    range_max_bytes: int = 64 << 20
    replication_factor: int = 3
    probe_interval: float = 0.5  # liveness probes, see registry.py
    liveness_timeout: float = 2.0
    max_offset_ms: float = 500.0
    clock_offset_ms: float = 0.0  # testing: skew of this node's physical clock (jepsen nemesis)
    store_knobs: dict[str, Any] = field(default_factory=dict)  # extra StoreConfig fields
    sql_addr: str = ""  # HOST:PORT of the PostgreSQL wire server (port 0 = any); "" = none
    sql_auth: str = "loopback-trust"  # pgwire: "trust" | "scram" | "loopback-trust"
    sql_cert: str = ""  # PEM certificate chain for TLS on the SQL port ("" = no TLS)
    sql_key: str = ""  # its private key
    sql_require_tls: bool = False  # refuse clear-text SQL clients


# Factories: the seams tests replace (a fake store, an in-process transport).
EngineFactory = Callable[[str], Engine]
TransportFactory = Callable[["Node"], Any]  # -> started-able Transport (the LatencyInjector)
StoreFactory = Callable[["Node", StoreIdent], Any]


def skewed_clock(offset_nanos: int) -> Callable[[], int]:
    """The system clock shifted by `offset_nanos` (0: the system clock itself)."""
    if not offset_nanos:
        return system_clock_nanos
    return lambda: system_clock_nanos() + offset_nanos


def open_engine(store: str) -> Engine:
    """`MemEngine` for "mem", else a `RocksEngine` at the path (StorageError
    with a clear message when another process holds it)."""
    if store == "mem":
        from crdb_py.storage.mem import MemEngine

        return MemEngine()
    from crdb_py.storage.rocks import RocksEngine

    return RocksEngine(store)


def grpc_transport(node: Node) -> Any:
    """The production transport: gRPC wrapped in a latency/fault injector."""
    from crdb_py.rpc.grpc_transport import GrpcTransport
    from crdb_py.rpc.latency import LatencyInjector

    inner = GrpcTransport(node.node_id, node, node.config.listen_addr)
    return LatencyInjector(inner)


def real_store(node: Node, ident: StoreIdent) -> Any:
    from crdb_py.kvserver.store import Store, StoreConfig

    c = node.config
    cfg = StoreConfig(
        node_id=ident.node_id,
        store_id=ident.store_id,
        raft_tick_interval=c.raft_tick_interval,
        sync_writes=c.sync_writes,
        lease_duration=c.lease_duration,
        range_max_bytes=c.range_max_bytes,
        replication_factor=c.replication_factor,
        **c.store_knobs,
    )
    return Store(
        node.engine, cfg, node.transport, node.clock, node.registry,
        kv=getattr(node.db, "sender", None),
    )


def real_store_bootstrap(engine: Engine, node_id: int, store_id: int) -> None:
    from crdb_py.kvserver.store import Store

    Store.bootstrap(engine, node_id, store_id)


class Node:
    """One server process's worth of crdb-py (see module docstring)."""

    def __init__(
        self,
        config: NodeConfig,
        *,
        engine_factory: EngineFactory = open_engine,
        transport_factory: TransportFactory = grpc_transport,
        store_factory: StoreFactory = real_store,
        store_bootstrap: Callable[[Engine, int, int], None] = real_store_bootstrap,
        db_factory: Callable[[Node], Any] | None = None,
    ) -> None:
        self.config = config
        self._engine_factory = engine_factory
        self._transport_factory = transport_factory
        self._store_factory = store_factory
        self._store_bootstrap = store_bootstrap
        self._db_factory = db_factory or kv_db
        self.clock = HLC(
            skewed_clock(int(config.clock_offset_ms * 1e6)),
            max_offset_nanos=int(config.max_offset_ms * 1e6),
        )
        self.engine: Engine | None = None
        self.transport: Any = None
        self.store: Any = None
        self.db: Any = None
        self.sql_server: Any = None  # crdb_py.pgwire.server.PGServer when config.sql_addr
        self.registry: NodeRegistry | None = None
        self.ident: StoreIdent | None = None
        self.started_at_nanos = 0
        self._init_lock = asyncio.Lock()
        self._initialized = asyncio.Event()
        self._serving_joins = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._join_error: BaseException | None = None
        self._stopped = False

    # ---- identity ----------------------------------------------------------------

    @property
    def node_id(self) -> int:
        return self.ident.node_id if self.ident is not None else 0

    @property
    def address(self) -> str:
        """The address other nodes reach this node at: `advertise_addr` if
        set, else the listen address (with the real port once bound)."""
        if self.config.advertise_addr:
            return self.config.advertise_addr
        t = self.transport
        for obj in (t, getattr(t, "inner", None)):
            a = getattr(obj, "address", None) if obj is not None else None
            if isinstance(a, str) and a:
                return a
        return self.config.listen_addr

    @property
    def initialized(self) -> bool:
        return self._initialized.is_set()

    def descriptor(self) -> data_pb2.NodeDescriptor:
        return data_pb2.NodeDescriptor(node_id=self.node_id, address=self.address)

    # ---- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Open the engine and bind the listen address; start the store if the
        node has an identity, else begin joining (see `wait_initialized`).
        Raises StorageError (store in use) or the transport's error for a
        taken port; nothing is left open on failure."""
        self.started_at_nanos = time.time_ns()
        try:
            self.engine = self._engine_factory(self.config.store)
            self.ident = read_ident(self.engine)
            if self.ident is None and has_range_data(self.engine):
                raise StorageError(
                    f"store {self.config.store} holds range data but no store identity; "
                    f"it was not initialized by crdb-py (or is damaged): use an empty directory"
                )
            self.transport = self._transport_factory(self)
            await self.transport.start()
            if self.config.sql_addr:
                await self._start_sql_server()
        except BaseException:
            await self._close_resources()
            raise
        if self.ident is not None:
            await self._start_store()
            self._spawn(self._publish_descriptor(), "publish-desc")
        else:
            joins = [a for a in self.config.join if a and a != self.address]
            if joins:
                self._spawn(self._join_loop(joins), "join")

    async def wait_initialized(self, timeout: float | None = None) -> None:
        """Until the node belongs to a cluster and its store runs. Raises
        `JoinTimeoutError` if joining failed."""
        waiter = asyncio.ensure_future(self._initialized.wait())
        try:
            deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
            while not self._initialized.is_set():
                if self._join_error is not None:
                    raise self._join_error
                left = None if deadline is None else deadline - asyncio.get_running_loop().time()
                if left is not None and left <= 0:
                    raise TimeoutError("node did not become initialized in time")
                await asyncio.wait({waiter}, timeout=min(0.1, left) if left is not None else 0.1)
        finally:
            waiter.cancel()

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self.registry is not None:
            self.registry.stopped = True
        await cancel_all(list(self._tasks))
        self._tasks.clear()
        await self._close_resources()

    async def _start_sql_server(self) -> None:
        """The PostgreSQL wire server; sessions are refused (57P03) until the
        node has joined a cluster and its KV client exists."""
        from crdb_py.pgwire.server import PGServer, make_tls_context
        from crdb_py.pgwire.sql_adapter import SQLAdapterBackend

        cfg = self.config
        tls = make_tls_context(cfg.sql_cert, cfg.sql_key) if cfg.sql_cert else None
        host, _, port = cfg.sql_addr.rpartition(":")
        self.sql_server = PGServer(SQLAdapterBackend(lambda: self.db), host or "127.0.0.1",
                                   int(port), auth=cfg.sql_auth,  # type: ignore[arg-type]
                                   tls=tls, require_tls=cfg.sql_require_tls)
        await self.sql_server.start()

    @property
    def sql_address(self) -> str:
        """HOST:PORT of the SQL (pgwire) server once started, else ""."""
        if self.sql_server is None:
            return ""
        h, p = self.sql_server.address
        return f"{h}:{p}"

    async def _close_resources(self) -> None:
        if self.sql_server is not None:
            try:
                await self.sql_server.close()
            except Exception:
                log.exception("n%d: error closing the SQL server", self.node_id)
            self.sql_server = None
        if self.store is not None:
            try:
                await self.store.stop()
            except Exception:
                log.exception("n%d: error stopping store", self.node_id)
            self.store = None
        if self.transport is not None:
            try:
                await self.transport.close()
            except Exception:
                log.exception("n%d: error closing transport", self.node_id)
            self.transport = None
        if self.engine is not None:
            try:
                self.engine.close()
            except Exception:
                log.exception("n%d: error closing engine", self.node_id)
            self.engine = None

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        task.set_name(f"n{self.node_id}-{name}")
        self._tasks.append(task)
        task.add_done_callback(self._forget_task)
        return task

    def _forget_task(self, task: asyncio.Task[Any]) -> None:
        with contextlib.suppress(ValueError):
            self._tasks.remove(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("n%d: task %s failed: %s", self.node_id, task.get_name(), task.exception())

    def _set_transport_node_id(self, node_id: int) -> None:
        t = self.transport
        while t is not None:
            t.node_id = node_id
            t = getattr(t, "inner", None)

    async def _start_store(self) -> None:
        """Identity known: registry, store, KV client, background loops."""
        assert self.ident is not None and self.engine is not None
        self._set_transport_node_id(self.ident.node_id)
        self.registry = NodeRegistry(
            self.transport,
            self.descriptor(),
            probe_interval=self.config.probe_interval,
            probe_timeout=max(0.5, self.config.probe_interval * 2),
            liveness_timeout=self.config.liveness_timeout,
        )
        for raw in load_peers(self.engine):
            self.registry.add(data_pb2.NodeDescriptor.FromString(raw))
        engine = self.engine
        self.registry.on_learn = lambda d: save_peer(engine, d.node_id, d.SerializeToString())
        if self.config.join:
            self._spawn(self._learn_from_join_addresses(), "learn-peers")
        # The KV client exists before the store: the store sends its own
        # cluster-wide writes (meta updates, range ids) through it.
        self.db = self._db_factory(self)
        self.store = self._store_factory(self, self.ident)
        await self.store.start()
        self.registry.fetch_descriptor = self._fetch_descriptor
        self.registry.scan_descriptors = self._scan_descriptors
        self._spawn(self.registry.run(), "liveness")
        self._initialized.set()

    async def _learn_from_join_addresses(self) -> None:
        """Ask the --join addresses who is in the cluster (their Admin.Status)
        until one answers: how a fully restarted cluster finds itself."""
        admin = AdminClient()
        delay = 0.1
        try:
            for _ in range(60):
                for addr in self.config.join:
                    if addr == self.address:
                        continue
                    try:
                        resp = await admin.status(addr, timeout=2.0)
                    except Exception as exc:  # down or not ready: try the others
                        log.debug("peer discovery via %s: %s", addr, exc)
                        continue
                    assert self.registry is not None
                    for st in resp.nodes:
                        if st.desc.node_id > 0:
                            self.registry.add(st.desc)
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
        finally:
            await admin.close()

    # ---- bootstrap ----------------------------------------------------------------------

    async def bootstrap(self, req: services_pb2.BootstrapRequest) -> services_pb2.BootstrapResponse:
        """Admin.Bootstrap: make this node n1 of a new cluster."""
        async with self._init_lock:
            if self.ident is not None:
                raise ClusterAlreadyInitializedError()
            assert self.engine is not None
            ident = StoreIdent(cluster_id=str(uuid.uuid4()), node_id=1, store_id=1)
            self._store_bootstrap(self.engine, ident.node_id, ident.store_id)
            write_ident(self.engine, ident)
            self.ident = ident
            await self._start_store()
        log.info("n1: bootstrapped cluster %s", ident.cluster_id)
        self._spawn(self._publish_descriptor(bootstrap=True), "publish-desc")
        return services_pb2.BootstrapResponse(cluster_id=ident.cluster_id)

    async def _publish_descriptor(self, *, bootstrap: bool = False) -> None:
        """Write our descriptor (and, at bootstrap, claim id 1 from the
        generator); retry until it sticks. Joins are served only after."""
        delay = 0.05
        while True:
            try:
                if bootstrap:
                    got = await self.db.get(NODE_ID_GEN_KEY)
                    if got is None:
                        n = await self.db.inc(NODE_ID_GEN_KEY, 1)
                        if n != 1:
                            raise InternalError(f"node id generator at {n} right after bootstrap")
                await self.db.put(node_descriptor_key(self.node_id), self.descriptor().SerializeToString())
                break
            except (InternalError, asyncio.CancelledError):
                raise
            except Exception as exc:  # unavailable for now (no quorum yet): retry
                log.info("n%d: publishing node descriptor: %s (retrying)", self.node_id, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
        self._serving_joins.set()

    # ---- join ------------------------------------------------------------------------------

    async def join(self, req: services_pb2.JoinRequest) -> services_pb2.JoinResponse:
        """Admin.Join (on a member): admit a new node, allocating its id."""
        if self.ident is None or self.db is None:
            raise NodeNotInitializedError()
        if not req.desc.address:
            raise InvalidArgumentError("join request carries no address")
        try:
            await asyncio.wait_for(self._serving_joins.wait(), 5.0)
        except TimeoutError:
            raise NodeNotInitializedError(
                f"n{self.node_id} cannot admit nodes yet (its descriptor is not written); retry"
            ) from None
        while True:
            node_id = int(await self.db.inc(NODE_ID_GEN_KEY, 1))
            desc = data_pb2.NodeDescriptor()
            desc.CopyFrom(req.desc)
            desc.node_id = node_id
            try:
                await self.db.cput(node_descriptor_key(node_id), desc.SerializeToString(), None)
                break
            except ConditionFailedError:
                log.warning("n%d: node id %d already taken; allocating another", self.node_id, node_id)
        assert self.registry is not None
        self.registry.add(desc)
        log.info("n%d: admitted n%d at %s", self.node_id, node_id, desc.address)
        resp = services_pb2.JoinResponse(node_id=node_id, cluster_id=self.ident.cluster_id)
        resp.nodes.extend(self.registry.descriptors())
        return resp

    async def _join_loop(self, addresses: list[str]) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.join_timeout
        answered = False
        delay = 0.1
        admin = AdminClient()
        req = services_pb2.JoinRequest(desc=data_pb2.NodeDescriptor(address=self.address))
        try:
            while self.ident is None:
                for addr in addresses:
                    if self.ident is not None:
                        return
                    try:
                        resp = await admin.join(addr, req, timeout=10.0)
                    except NodeNotInitializedError:
                        answered = True
                        continue
                    except (NodeUnavailableError, AmbiguousResultError, TimeoutError, OSError) as exc:
                        log.debug("join via %s: %s", addr, exc)
                        continue
                    except CrdbError as exc:
                        answered = True
                        log.warning("join via %s refused: %s", addr, exc)
                        continue
                    await self._adopt_join(resp)
                    return
                if not answered and loop.time() >= deadline:
                    raise JoinTimeoutError(addresses, self.config.join_timeout)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._join_error = exc
        finally:
            await admin.close()

    async def _adopt_join(self, resp: services_pb2.JoinResponse) -> None:
        async with self._init_lock:
            if self.ident is not None:  # bootstrapped meanwhile: ignore
                return
            assert self.engine is not None
            ident = StoreIdent(resp.cluster_id, resp.node_id, resp.node_id)
            write_ident(self.engine, ident)
            self.ident = ident
            self._set_transport_node_id(ident.node_id)
            await self._start_store()
            assert self.registry is not None
            for d in resp.nodes:
                self.registry.add(d)
        log.info("joined cluster %s as n%d", ident.cluster_id, ident.node_id)
        self._serving_joins.set()  # our descriptor was written by the admitting node

    # ---- NodeHandler ----------------------------------------------------------------------

    async def batch(self, req: api_pb2.BatchRequest) -> api_pb2.BatchResponse:
        if self.store is None:
            from crdb_py.util.errwire import error_to_proto

            resp = api_pb2.BatchResponse()
            error_to_proto(NodeNotInitializedError(), resp.error)
            return resp
        return await self.store.batch(req)

    def handle_raft_messages(self, from_node_id: int, batch: raft_pb2.RaftMessageBatch) -> None:
        if self.store is None:
            return  # not a member yet: raft retransmits
        reg = self.registry
        if (
            reg is not None
            and from_node_id > 0
            and reg.address(from_node_id) is None
            and not reg.lookup_in_flight(from_node_id)
        ):
            self._spawn(reg.lookup_node(from_node_id), f"lookup-n{from_node_id}")
        self.store.handle_raft_messages(from_node_id, batch)

    async def admin_status(
        self, req: services_pb2.NodeStatusRequest
    ) -> services_pb2.NodeStatusResponse:
        own = self.own_status()
        if self.registry is None:
            resp = services_pb2.NodeStatusResponse()
            resp.nodes.add().CopyFrom(own)
            return resp
        return self.registry.cluster_status(own)

    def own_status(self) -> services_pb2.NodeStatus:
        st = services_pb2.NodeStatus(
            desc=self.descriptor(),
            live=True,
            started_at_nanos=self.started_at_nanos,
            build=f"crdb-py {__version__}",
        )
        if self.store is not None and self.ident is not None:
            s = self.store.status()
            st.stores.add(
                store_id=self.ident.store_id,
                range_count=int(s.get("range_count", 0)),
                lease_count=int(s.get("lease_count", 0)),
                leader_count=int(s.get("leader_count", 0)),
            )
        return st

    # ---- KV plumbing ------------------------------------------------------------------

    async def send_to_node(self, node_id: int, ba: api_pb2.BatchRequest) -> api_pb2.BatchResponse:
        """The DistSender's NodeSender: local store directly, others by RPC."""
        if node_id == self.node_id and self.store is not None:
            return await self.store.batch(ba)
        reg = self.registry
        if reg is not None and reg.address(node_id) is None:
            # Never look up inline: the lookup itself is a KV read (recursion).
            if not reg.lookup_in_flight(node_id):
                self._spawn(reg.lookup_node(node_id), f"lookup-n{node_id}")
            raise NodeUnavailableError(node_id, f"node n{node_id}: address not known yet")
        return await self.transport.send_batch(node_id, ba)

    def first_range(self) -> data_pb2.RangeDescriptor:
        """Range 1's descriptor if the local store has it, else a guess
        listing every known node (DistSender follows NotLeaseHolder hints and
        range-key-mismatch descriptors from there)."""
        if self.store is not None:
            d = self.store.first_range()
            if d is not None:
                return d
        return synthetic_first_range(self.registry.descriptors() if self.registry else [])

    async def _fetch_descriptor(self, node_id: int) -> data_pb2.NodeDescriptor | None:
        data = await self.db.get(node_descriptor_key(node_id))
        return None if data is None else data_pb2.NodeDescriptor.FromString(data)

    async def _scan_descriptors(self) -> list[data_pb2.NodeDescriptor]:
        rows = await self.db.scan(NODE_DESC_PREFIX, keys.prefix_end(NODE_DESC_PREFIX))
        return [data_pb2.NodeDescriptor.FromString(v) for _, v in rows]


async def cancel_all(tasks: list[asyncio.Task[Any]], patience: float = 5.0) -> None:
    """Cancel `tasks` and wait for them. Re-cancels: in Python 3.11
    `asyncio.wait_for` can swallow a cancellation that races with its inner
    future completing, leaving the task running."""
    pending = {t for t in tasks if not t.done()}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    while pending and loop.time() < deadline:
        for t in pending:
            t.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.1)
    for t in tasks:
        if t.done() and not t.cancelled():
            t.exception()  # retrieved: no "never retrieved" noise
    if pending:
        log.warning("tasks did not stop: %s", [t.get_name() for t in pending])


def synthetic_first_range(
    nodes: list[data_pb2.NodeDescriptor],
) -> data_pb2.RangeDescriptor:
    """A stand-in descriptor of range 1 naming every known node as a replica
    (store id = node id). Used by nodes without a local replica of range 1
    and by external clients; wrong guesses are corrected by the errors the
    nodes answer with (RangeNotFound → next replica, NotLeaseHolder → hint)."""
    d = data_pb2.RangeDescriptor(range_id=1, start_key=keys.KEY_MIN, end_key=keys.META_MAX)
    for i, n in enumerate(sorted(nodes, key=lambda n: n.node_id)):
        d.replicas.add(node_id=n.node_id, store_id=n.node_id, replica_id=i + 1)
    return d


def kv_db(node: Node) -> Any:
    """A non-transactional KV `DB` over a DistSender gatewayed at `node`."""
    from crdb_py.kvclient.db import DB
    from crdb_py.kvclient.dist_sender import DistSender

    ds = DistSender(node, _FirstRange(node), gateway_node_id=node.node_id)
    return DB(ds)


class _FirstRange:
    def __init__(self, node: Node) -> None:
        self._node = node

    async def first_range(self) -> data_pb2.RangeDescriptor:
        return self._node.first_range()
