"""`LocalCluster`: a real multi-node crdb-py cluster on loopback.

Each node is its own OS process (``python -m crdb_py.cli.main start``) with
its own store directory under the cluster directory and a free loopback
port; its output goes to ``<dir>/n<i>.log``. The cluster is a context
manager that never leaks: `close()` (also run on exceptions and at
interpreter exit) terminates every node process and removes the directory
unless ``keep=True``. Node processes spawned from the main thread also ask
for ``PR_SET_PDEATHSIG`` so they die with the test process even if it is
killed (``CRDB_PY_DIE_WITH_PARENT``, honoured by `crdb-py start`).

    with LocalCluster(nodes=3) as c:
        kv = c.kv()
        kv.put(b"k", b"v")
        c.kill(0)                 # SIGKILL
        c.restart(0)              # same store directory, same port
        c.partition(1, 2); c.heal(); c.set_latency(5.0)

Node indices are 0-based; node ``i`` gets node id ``i + 1`` in practice
(nodes are started and admitted in order) — use `node_id(i)` to be sure.

Faults (partitions, latency) are injected by each node's transport from its
link-fault table, which the cluster replaces as a whole over
`Admin.SetLinkFaults` on every change and after every restart.

The KV client returned by `kv()` runs an async `DB` (over a DistSender over
a client-only gRPC transport) on a background event-loop thread and exposes
blocking methods, so tests and benchmarks can use it from plain code —
including transactions: `kv().txn()` and `kv().run_txn(fn)` (a `SyncDB`).

Transaction settings. `LocalCluster(parallel_commits=..., write_pipelining=...)`
stores the two cluster settings in KV once the cluster is up (when they
differ from the defaults); `set_setting(name, value)` changes one at run
time. `kv()`'s client applies a change at once and also follows changes made
elsewhere (SQL ``SET CLUSTER SETTING``) through a settings refresher
(crdb_py/kvclient/txn/cluster_settings.py). `time_until_store_dead=s`
stores ``server.time_until_store_dead`` (read by the stores' replicate
queues: replicas of a node down that long are replaced; 300 s by default).

Failpoints in node processes. `node_env={i: {...}}` adds environment
variables to node `i`'s process, e.g. ``{"CRDB_PY_FAILPOINTS":
"kvserver.store.before_sync=kill*1"}`` (crdb_py/util/failpoints.py);
`restart(i, env=...)` replaces them for that node from then on.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from crdb_py.kvclient.txn.settings import PARALLEL_COMMITS_ENABLED, WRITE_PIPELINING_ENABLED
from crdb_py.kvclient.txn.sync import SyncDB
from crdb_py.pb import data_pb2, services_pb2

T = TypeVar("T")

DIE_WITH_PARENT_ENV = "CRDB_PY_DIE_WITH_PARENT"

_LIVE_CLUSTERS: weakref.WeakSet[LocalCluster] = weakref.WeakSet()


def _close_all_at_exit() -> None:
    for c in list(_LIVE_CLUSTERS):
        with contextlib.suppress(Exception):
            c.close()


atexit.register(_close_all_at_exit)


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (bind to 0, read, release)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class ClusterError(RuntimeError):
    """The cluster could not be started or did not reach the expected state."""


@dataclass
class _NodeProc:
    index: int
    port: int
    store_dir: str
    log_path: str
    proc: subprocess.Popen[bytes] | None = None
    node_id: int = 0
    restarts: int = 0
    sql_port: int = 0  # PostgreSQL wire port (--sql-addr); 0 = none

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def sql_address(self) -> str:
        return f"127.0.0.1:{self.sql_port}" if self.sql_port else ""

    def ready_file(self, base: str) -> str:
        return os.path.join(base, f"n{self.index}.ready")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class _Faults:
    latency_ms: float = 0.0
    blocked: set[tuple[int, int]] = field(default_factory=set)  # (from_index, to_index)


class LocalCluster:
    """A cluster of real node processes on loopback (see module docstring)."""

    def __init__(
        self,
        nodes: int = 3,
        latency_ms: float = 0.0,
        base_dir: str | None = None,
        sync: bool = True,
        *,
        keep: bool = False,
        replication_factor: int = 3,
        raft_tick_interval: float = 0.1,
        lease_duration: float = 3.0,
        range_max_bytes: int = 64 << 20,
        liveness_timeout: float = 2.0,
        start_timeout: float = 60.0,
        wait_replicated: bool = True,
        log_level: str = "INFO",
        extra_args: Sequence[str] = (),
        python: str = sys.executable,
        sql: bool = True,
        parallel_commits: bool = True,
        write_pipelining: bool = True,
        node_env: dict[int, dict[str, str]] | None = None,
        time_until_store_dead: float | None = None,
    ) -> None:
        if nodes < 1:
            raise ValueError("a cluster needs at least one node")
        self.num_nodes = nodes
        self.keep = keep
        self.sync = sync
        self.replication_factor = replication_factor
        self.start_timeout = start_timeout
        self.wait_replicated = wait_replicated
        self._node_args = [
            "--raft-tick-interval", str(raft_tick_interval),
            "--lease-duration", str(lease_duration),
            "--range-max-bytes", str(range_max_bytes),
            "--replication-factor", str(replication_factor),
            "--liveness-timeout", str(liveness_timeout),
            "--log-level", log_level,
            *(() if sync else ("--no-sync",)),
            *extra_args,
        ]
        self._python = python
        self._sql = sql
        self._initial_settings = {
            PARALLEL_COMMITS_ENABLED: parallel_commits,
            WRITE_PIPELINING_ENABLED: write_pipelining,
        }
        self._time_until_store_dead = time_until_store_dead
        self._node_env: dict[int, dict[str, str]] = {
            i: dict(e) for i, e in (node_env or {}).items()
        }
        self._own_dir = base_dir is None
        self.dir = base_dir or tempfile.mkdtemp(prefix="crdb-py-cluster-")
        os.makedirs(self.dir, exist_ok=True)
        self._nodes = [self._new_node(i) for i in range(nodes)]
        self._faults = _Faults(latency_ms=latency_ms)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._admin: Any = None
        self._kv: SyncKV | None = None
        self._closed = False
        self._started = False
        _LIVE_CLUSTERS.add(self)

    def _new_node(self, i: int) -> _NodeProc:
        return _NodeProc(
            index=i,
            port=free_port(),
            store_dir=os.path.join(self.dir, f"n{i}"),
            log_path=os.path.join(self.dir, f"n{i}.log"),
            sql_port=free_port() if self._sql else 0,
        )

    # ---- context manager -------------------------------------------------------------

    def __enter__(self) -> LocalCluster:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- properties ----------------------------------------------------------------------

    @property
    def addresses(self) -> list[str]:
        return [n.address for n in self._nodes]

    def address(self, i: int) -> str:
        return self._nodes[i].address

    @property
    def sql_addresses(self) -> list[str]:
        """Each node's PostgreSQL wire address (empty strings if `sql=False`)."""
        return [n.sql_address for n in self._nodes]

    def sql_url(self, i: int = 0, user: str = "root", database: str = "defaultdb") -> str:
        """A libpq URL for node `i` (psql, psycopg, `crdb-py sql --url`)."""
        n = self._nodes[i]
        if not n.sql_port:
            raise ClusterError("this cluster was started with sql=False")
        return f"postgresql://{user}@{n.sql_address}/{database}?sslmode=disable"

    def node_id(self, i: int) -> int:
        return self._nodes[i].node_id

    def index_of(self, node_id: int) -> int:
        for n in self._nodes:
            if n.node_id == node_id:
                return n.index
        raise KeyError(f"no node with id {node_id}")

    def is_running(self, i: int) -> bool:
        return self._nodes[i].alive()

    def pid(self, i: int) -> int | None:
        p = self._nodes[i].proc
        return p.pid if p is not None and p.poll() is None else None

    def wait_ready(self, i: int, timeout: float | None = None) -> None:
        """Until node `i` (spawned by `restart(i, wait=False)`) is ready;
        ClusterError if it exits first."""
        deadline = time.monotonic() + (timeout or self.start_timeout)
        self._wait_ready(self._nodes[i], deadline)
        self._run(self._push_faults_until([self._nodes[i]], deadline))

    def exit_code(self, i: int) -> int | None:
        """Node `i`'s exit status (137: killed at a failpoint); None while it runs."""
        p = self._nodes[i].proc
        return None if p is None else p.poll()

    def log_path(self, i: int) -> str:
        return self._nodes[i].log_path

    # ---- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Start every node, init the cluster on node 0, wait until all nodes
        joined and (if `wait_replicated`) range 1 is fully replicated."""
        if self._started:
            return
        self._started = True
        self._start_loop()
        join = ",".join(self.addresses)
        for n in self._nodes:
            self._spawn(n, join)
        deadline = time.monotonic() + self.start_timeout
        self._run(self._init_when_listening(deadline))
        for n in self._nodes:
            self._wait_ready(n, deadline)
        self._run(self._push_faults())
        self._run(self._wait_members(deadline))
        if self.wait_replicated:
            self.wait_for_replication(timeout=max(1.0, deadline - time.monotonic()))
        for name, value in self._initial_settings.items():
            if value is not True:  # the default needs no write
                self.set_setting(name, value)
        if self._time_until_store_dead is not None:
            self.set_time_until_store_dead(self._time_until_store_dead)

    def set_time_until_store_dead(self, seconds: float) -> None:
        """Cluster setting ``server.time_until_store_dead`` (seconds), read by
        every store within a few seconds (crdb_py/kvserver/store.py)."""
        from crdb_py.kvserver.store import TIME_UNTIL_STORE_DEAD_KEY

        self._run(self.kv().db.put(TIME_UNTIL_STORE_DEAD_KEY, repr(float(seconds)).encode()))

    def set_setting(self, name: str, value: Any) -> None:
        """Set cluster setting `name` (e.g. ``kv.transaction.parallel_commits_enabled``)
        for the whole cluster; `kv()` applies it at once, other clients that
        watch the settings within about a second."""
        from crdb_py.kvclient.txn.cluster_settings import set_cluster_setting

        kv = self.kv()
        self._run(set_cluster_setting(kv.db, name, value))

    def get_setting(self, name: str) -> Any:
        """The stored value of cluster setting `name` (its default if never set)."""
        from crdb_py.kvclient.txn.cluster_settings import get_cluster_setting

        return self._run(get_cluster_setting(self.kv().db, name))

    def _spawn(self, n: _NodeProc, join: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(n.ready_file(self.dir))
        cmd = [
            self._python, "-m", "crdb_py.cli.main", "start",
            "--store", n.store_dir,
            "--listen-addr", n.address,
            "--join", join,
            "--join-timeout", str(self.start_timeout),
            "--ready-file", n.ready_file(self.dir),
            *(("--sql-addr", n.sql_address) if n.sql_port else ()),
            *self._node_args,
        ]
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        env.update(self._node_env.get(n.index, {}))
        if threading.current_thread() is threading.main_thread():
            # The node sets PR_SET_PDEATHSIG itself (see cli.main): no
            # preexec_fn, which is unsafe to run in a child forked from a
            # process with live gRPC threads.
            env[DIE_WITH_PARENT_ENV] = str(os.getpid())
        with open(n.log_path, "ab") as log:
            log.write(f"---- start #{n.restarts}: {' '.join(cmd)}\n".encode())
            log.flush()
            n.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )

    async def _init_when_listening(self, deadline: float) -> None:
        n0 = self._nodes[0]
        last: BaseException | None = None
        while time.monotonic() < deadline:
            self._check_alive(n0)
            try:
                await self._admin_client().bootstrap(n0.address, timeout=10.0)
                return
            except Exception as exc:
                from crdb_py.util.errors import NodeUnavailableError

                if not isinstance(exc, NodeUnavailableError | TimeoutError):
                    raise ClusterError(f"init on node 0 failed: {exc}{self._log_tail(n0)}") from exc
                last = exc
            await asyncio.sleep(0.05)
        raise ClusterError(f"node 0 never answered init: {last}{self._log_tail(n0)}")

    def _wait_ready(self, n: _NodeProc, deadline: float) -> None:
        path = n.ready_file(self.dir)
        while True:
            self._check_alive(n)
            try:
                with open(path) as f:
                    info = json.load(f)
                n.node_id = int(info["node_id"])
                return
            except (FileNotFoundError, json.JSONDecodeError, KeyError):
                pass
            if time.monotonic() > deadline:
                raise ClusterError(f"node {n.index} not ready in time{self._log_tail(n)}")
            time.sleep(0.02)

    def _check_alive(self, n: _NodeProc) -> None:
        if n.proc is not None and n.proc.poll() is not None:
            raise ClusterError(
                f"node {n.index} exited with code {n.proc.returncode}{self._log_tail(n)}"
            )

    def _log_tail(self, n: _NodeProc, lines: int = 25) -> str:
        try:
            with open(n.log_path, errors="replace") as f:
                tail = f.readlines()[-lines:]
        except OSError:
            return ""
        return f"\n--- last lines of {n.log_path}:\n" + "".join(tail)

    async def _wait_members(self, deadline: float) -> None:
        """Until node 0 knows every running node's descriptor."""
        want = {n.node_id for n in self._nodes if n.alive()}
        while True:
            try:
                st = await self._admin_client().status(self._nodes[0].address, timeout=2.0)
                have = {s.desc.node_id for s in st.nodes}
                if want <= have:
                    return
            except Exception:
                pass
            if time.monotonic() > deadline:
                raise ClusterError(f"node 0 did not learn about all nodes (want {sorted(want)})")
            await asyncio.sleep(0.05)

    def wait_for_replication(self, timeout: float = 30.0) -> None:
        """Until every range has min(running nodes, replication factor)
        *voting* replicas (per its descriptor in meta — a learner still
        catching up does not count), every store holds its replicas, and
        every running node answers status."""
        want = min(self.replication_factor, sum(1 for n in self._nodes if n.alive()))
        deadline = time.monotonic() + timeout
        last = ""
        while True:
            try:
                statuses = self.node_statuses()
                descs = self._run(self._meta_ranges(), timeout=5.0)
                voters = [
                    sum(1 for r in d.replicas if r.type == data_pb2.VOTER_FULL) for d in descs
                ]
                on_stores = sum(s["ranges"] for s in statuses if s["running"])
                if (
                    descs
                    and all(v >= want and v == len(d.replicas) for v, d in zip(voters, descs))
                    and on_stores >= sum(voters)
                    and all(s["live"] for s in statuses if s["running"])
                ):
                    return
                last = f"voters per range {voters}; statuses {statuses}"
            except Exception as exc:
                last = str(exc)
            if time.monotonic() > deadline:
                raise ClusterError(f"cluster not replicated within {timeout}s: {last}")
            time.sleep(0.1)

    async def _meta_ranges(self) -> list[data_pb2.RangeDescriptor]:
        from crdb_py.util import keys

        if self._kv is None:
            self._kv = await _make_sync_kv(self)
        rows = await asyncio.wait_for(self._kv.db.scan(keys.META_PREFIX, keys.META_MAX), 5.0)
        return [data_pb2.RangeDescriptor.FromString(v) for _, v in rows]

    def node_statuses(self) -> list[dict[str, Any]]:
        """Per node: its own view (ranges, leases, leaders) and liveness as
        seen from any running node."""
        out = []
        for n in self._nodes:
            row: dict[str, Any] = {
                "index": n.index, "node_id": n.node_id, "address": n.address,
                "running": n.alive(), "live": False, "ranges": 0, "leases": 0, "leaders": 0,
            }
            if n.alive():
                try:
                    resp = self._run(self._admin_client().status(n.address, timeout=2.0))
                except Exception:
                    resp = None
                if resp is not None:
                    for st in resp.nodes:
                        if st.desc.node_id == n.node_id:
                            row["live"] = True
                            row["ranges"] = sum(s.range_count for s in st.stores)
                            row["leases"] = sum(s.lease_count for s in st.stores)
                            row["leaders"] = sum(s.leader_count for s in st.stores)
            out.append(row)
        return out

    def status(self, i: int = 0, timeout: float = 5.0) -> services_pb2.NodeStatusResponse:
        """`Admin.Status` of node `i`: its view of the whole cluster."""
        return self._run(self._admin_client().status(self.address(i), timeout=timeout))

    def kill(self, i: int) -> None:
        """SIGKILL node `i` (no clean shutdown) and reap it."""
        n = self._nodes[i]
        if n.proc is not None and n.proc.poll() is None:
            n.proc.kill()
            n.proc.wait()

    def stop(self, i: int, timeout: float = 10.0) -> None:
        """SIGTERM node `i` and wait for a clean exit (SIGKILL after `timeout`)."""
        n = self._nodes[i]
        if n.proc is not None and n.proc.poll() is None:
            n.proc.terminate()
            try:
                n.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                n.proc.kill()
                n.proc.wait()

    def restart(
        self,
        i: int,
        timeout: float | None = None,
        *,
        env: dict[str, str] | None = None,
        wait: bool = True,
    ) -> None:
        """(Stop and) start node `i` again on the same store and port; wait
        until it is ready and has its link-fault table back. `env`, if
        given, replaces the node's extra environment (see `node_env`).
        `wait=False` returns once the process is spawned (a node armed to
        die at a failpoint may never become ready)."""
        n = self._nodes[i]
        self.stop(i)
        if env is not None:
            self._node_env[i] = dict(env)
        n.restarts += 1
        self._spawn(n, ",".join(self.addresses))
        if not wait:
            return
        deadline = time.monotonic() + (timeout or self.start_timeout)
        self._wait_ready(n, deadline)
        self._run(self._push_faults_until([n], deadline))

    def add_node(self, timeout: float | None = None) -> int:
        """Start one more node that joins the running cluster; returns its
        index once it is ready and node 0 knows it."""
        if not self._started or self._closed:
            raise ClusterError("add_node needs a started, open cluster")
        n = self._new_node(len(self._nodes))
        self._nodes.append(n)
        self.num_nodes = len(self._nodes)
        deadline = time.monotonic() + (timeout or self.start_timeout)
        self._spawn(n, ",".join(m.address for m in self._nodes if m.alive() or m is n))
        self._wait_ready(n, deadline)
        self._run(self._push_faults())
        self._run(self._wait_members(deadline))
        return n.index

    def close(self) -> None:
        """Terminate every node and clean up (idempotent)."""
        if self._closed:
            return
        self._closed = True
        _LIVE_CLUSTERS.discard(self)
        for n in self._nodes:
            if n.proc is not None and n.proc.poll() is None:
                n.proc.terminate()
        deadline = time.monotonic() + 5.0
        for n in self._nodes:
            if n.proc is None:
                continue
            try:
                n.proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                n.proc.kill()
                n.proc.wait()
        if self._loop is not None:
            with contextlib.suppress(Exception):
                if self._kv is not None:
                    self._run(self._kv._aclose(), timeout=5.0)
                if self._admin is not None:
                    self._run(self._admin.close(), timeout=5.0)
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._thread is not None:
                self._thread.join(5.0)
            if not self._loop.is_running():
                self._loop.close()
        if self._own_dir and not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    # ---- faults ----------------------------------------------------------------------------

    def partition(self, a: int, b: int, *, one_way: bool = False) -> None:
        """Cut the link between nodes `a` and `b` (both directions, or only
        a→b with `one_way=True`)."""
        self._faults.blocked.add((a, b))
        if not one_way:
            self._faults.blocked.add((b, a))
        self._run(self._push_faults())

    def isolate(self, i: int) -> None:
        """Partition node `i` from every other node."""
        for j in range(self.num_nodes):
            if j != i:
                self._faults.blocked.update({(i, j), (j, i)})
        self._run(self._push_faults())

    def heal(self) -> None:
        """Remove every partition (latency stays)."""
        self._faults.blocked.clear()
        self._run(self._push_faults())

    def set_latency(self, ms: float) -> None:
        """One-way delay of every node-to-node link."""
        self._faults.latency_ms = float(ms)
        self._run(self._push_faults())

    def _fault_table(self) -> services_pb2.LinkFaults:
        t = services_pb2.LinkFaults(default_latency_ms=self._faults.latency_ms)
        for a, b in sorted(self._faults.blocked):
            t.blocked.add(from_node_id=self._nodes[a].node_id, to_node_id=self._nodes[b].node_id)
        return t

    async def _push_faults_until(self, nodes: Sequence[_NodeProc], deadline: float) -> None:
        """`_push_faults`, retried: the admin channel to a node that was just
        killed may still be in gRPC's reconnect backoff when it is back."""
        while True:
            try:
                return await self._push_faults(nodes)
            except Exception:
                if time.monotonic() > deadline:
                    raise
            await asyncio.sleep(0.1)

    async def _push_faults(self, nodes: Sequence[_NodeProc] | None = None) -> None:
        table = self._fault_table()
        targets = [n for n in (nodes or self._nodes) if n.alive()]
        await asyncio.gather(
            *(self._admin_client().set_link_faults(n.address, table) for n in targets)
        )

    def connect(self) -> Any:
        """A PEP 249 connection to the cluster: SQL runs in this process over
        the KV API of the cluster's nodes (`crdb_py.connect("host:port,...")`)."""
        import crdb_py

        # `connect("a,b,c")` takes the i-th address as node i+1; node ids
        # follow join order, not index order.
        by_id = sorted((self.node_id(i), a) for i, a in enumerate(self.addresses))
        return crdb_py.connect(",".join(a for _, a in by_id))

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{sum(n.alive() for n in self._nodes)} running"
        return f"LocalCluster({self.num_nodes} nodes, {state}, dir={self.dir})"

    # ---- KV client ------------------------------------------------------------------------

    def kv(self) -> SyncKV:
        """A blocking KV client (shared; closed with the cluster)."""
        if self._kv is None:
            self._kv = self._run(_make_sync_kv(self))
        return self._kv

    def ranges(self) -> list[data_pb2.RangeDescriptor]:
        """Every range's descriptor, in key order (a scan of meta)."""
        return self._run(self._meta_ranges())

    def leaseholder(self, key: bytes, timeout: float = 10.0) -> int:
        """Index of the node holding the lease of the range containing `key`
        (asks every running replica with a Get; the one that serves it)."""
        return self._run(self._leaseholder(key, timeout), timeout=timeout + 5)

    async def _leaseholder(self, key: bytes, timeout: float) -> int:
        from crdb_py.pb import api_pb2

        if self._kv is None:
            self._kv = await _make_sync_kv(self)
        transport = self._kv._transport
        deadline = time.monotonic() + timeout
        while True:
            for d in await self._meta_ranges():
                if d.start_key <= key < d.end_key:
                    desc = d
                    break
            else:
                raise ClusterError(f"no range holds {key!r}")
            for r in desc.replicas:
                try:
                    i = self.index_of(r.node_id)
                except KeyError:
                    continue
                if not self._nodes[i].alive():
                    continue
                ba = api_pb2.BatchRequest()
                ba.header.range_id = desc.range_id
                ba.requests.add().get.header.key = key
                try:
                    br = await transport.send_batch(r.node_id, ba, timeout=2.0)
                except Exception:
                    continue
                if not br.error.kind:
                    return i
            if time.monotonic() > deadline:
                raise ClusterError(f"no leaseholder for {key!r} within {timeout}s")
            await asyncio.sleep(0.1)

    def wait_for(self, cond: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
        """Poll `cond` until true; ClusterError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise ClusterError(f"timed out after {timeout}s waiting for {what or cond}")
            time.sleep(0.05)

    # ---- background loop ------------------------------------------------------------------

    def _start_loop(self) -> None:
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()

        self._thread = threading.Thread(target=run, name="crdb-py-localcluster", daemon=True)
        self._thread.start()
        ready.wait()
        self._loop = loop

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float | None = 60.0) -> T:
        if self._loop is None:
            raise ClusterError("cluster is not started")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _admin_client(self) -> Any:
        if self._admin is None:
            from crdb_py.server.admin import AdminClient

            self._admin = AdminClient()
        return self._admin


# ---- the blocking KV client ---------------------------------------------------------------


class _ClientNodeSender:
    """NodeSender for an external client: node ids -> addresses from status."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport

    async def send_to_node(self, node_id: int, ba: Any) -> Any:
        return await self.transport.send_batch(node_id, ba)


class _StaticNodes:
    """FirstRangeProvider over a fixed set of nodes (see synthetic_first_range)."""

    def __init__(self, nodes: dict[int, str]) -> None:
        self.nodes = nodes

    async def first_range(self) -> data_pb2.RangeDescriptor:
        from crdb_py.server.node import synthetic_first_range

        return synthetic_first_range(
            [data_pb2.NodeDescriptor(node_id=i, address=a) for i, a in self.nodes.items()]
        )


async def _make_sync_kv(cluster: LocalCluster) -> SyncKV:
    from crdb_py.kvclient.txn.cluster_settings import watch_cluster_settings

    assert cluster._loop is not None
    kv = await _open_kv(
        {n.node_id: n.address for n in cluster._nodes if n.node_id}, cluster._loop
    )
    kv._refresher = watch_cluster_settings(kv.db)
    return kv


async def _open_kv(nodes: dict[int, str], loop: asyncio.AbstractEventLoop) -> SyncKV:
    from crdb_py.kvclient.db import DB
    from crdb_py.kvclient.dist_sender import DistSender
    from crdb_py.rpc.grpc_transport import GrpcTransport

    transport = GrpcTransport(0, None, None)
    for node_id, address in nodes.items():
        transport.set_node_address(node_id, address)
    ds = DistSender(_ClientNodeSender(transport), _StaticNodes(nodes))
    return SyncKV(DB(ds), loop, transport)


def open_kv(nodes: dict[int, str]) -> SyncKV:
    """A blocking KV client for a running cluster, given node id -> address
    of its nodes (any subset holding range 1's replicas). Call `close()`."""
    loop = asyncio.new_event_loop()
    t = threading.Thread(target=loop.run_forever, name="crdb-py-kv", daemon=True)
    t.start()
    kv = asyncio.run_coroutine_threadsafe(_open_kv(dict(nodes), loop), loop).result(30)
    kv._own_thread = t
    return kv


class SyncKV(SyncDB):
    """Blocking facade over the async KV `DB` (runs on the cluster's loop):
    every `SyncDB` operation and transaction (`txn()`, `run_txn(fn)`), plus
    splits, lease transfers and `run(coro_fn)`."""

    def __init__(self, db: Any, loop: asyncio.AbstractEventLoop, transport: Any = None) -> None:
        super().__init__(db, loop, timeout=30.0)
        self._transport = transport
        self._own_thread: threading.Thread | None = None
        self._refresher: Any = None

    def split(self, key: bytes) -> Any:
        """Split the range holding `key` at it; returns (left, right) descriptors."""
        return self._call(self.db.admin_split(key))

    def transfer_lease(self, key: bytes, target_node_id: int) -> None:
        """Move the lease of the range holding `key` to `target_node_id`."""
        self._call(self.db.admin_transfer_lease(key, target_node_id))

    def run(self, coro_fn: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
        """Run `coro_fn(db)` on the cluster's loop (for anything not wrapped)."""
        return self._call(coro_fn(self.db))

    async def _aclose(self) -> None:
        if self._refresher is not None:
            await self._refresher.stop()
            self._refresher = None
        if self._transport is not None:
            await self._transport.close()
            self._transport = None

    def close(self) -> None:
        """Close a client made by `open_kv` (LocalCluster closes its own)."""
        if self._own_thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._aclose(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._own_thread.join(5)
        self._loop.close()
        self._own_thread = None
