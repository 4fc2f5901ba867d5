"""KV put latency and throughput on a real 3-node loopback cluster, side by
side with a 3-member etcd cluster in the same run.

What runs. A `LocalCluster` of three crdb-py node processes (RocksDB stores,
synced writes, the defaults) is pre-split into three ranges over the bench
key space, and each range's lease is moved to a different node, so every
node is a leaseholder for a third of the keys and a follower for the rest.
When an ``etcd`` binary is on the PATH (Debian ``etcd-server``), three etcd
members on loopback ports with data directories on the same disk (etcd
fsyncs its WAL on every commit, like our synced Raft log) run beside it.

The workload is the same for both: single-key puts of a 64-byte value to
keys drawn uniformly from ``--keys`` keys, by 1, 16 and 64 concurrent
clients, each client a coroutine issuing one put after another for a fixed
time (after a warm-up that is not counted). Cells of the two systems are
interleaved (crdb c=1, etcd c=1, crdb c=16, ...), so drift in the machine's
load hits both alike; the table reports ratios.

Clients, kept comparable. Both clients are asyncio + grpc.aio in this
process, one channel per server node shared by all coroutines:

* crdb-py: the project's own client stack, `DB.put` over a `DistSender` over
  a client-only `GrpcTransport` (`crdb_py.localcluster.open_kv`), so a put
  goes straight to the key's leaseholder: a non-transactional one-key batch,
  one Raft round;
* etcd: ``etcdserverpb.KV/Put`` called as a generic unary method with a
  hand-encoded ``PutRequest`` (fields 1 key, 2 value) — no generated stubs,
  no clientv3 — over one channel per member, clients assigned round-robin to
  members like clientv3's balancer; a put to a follower is forwarded to the
  leader (one extra hop that crdb-py's leaseholder routing avoids).

Besides latency and throughput each cell records the CPU time per put spent
by the client (this process) and by the servers (the node / member processes,
from ``/proc/<pid>/stat``): on a 2-core machine throughput is CPU-bound, so
"server CPU per put" is the number that explains the ratio.

Profile. With ``--profile`` (default on unless ``--quick``), ``py-spy`` (if
installed: ``pip install py-spy``) samples node 0 during the 64-client cell;
the collapsed stacks are written to ``out/kv-profile.txt`` and summarised
by package (grpc, asyncio, protobuf, raft, MVCC/storage, kvserver, …) and by
top self-time frames in the JSON and on stdout.

Usage: .venv/bin/python bench/kv.py [--quick] [--seconds S] [--clients 1,16,64]
       [--keys N] [--no-etcd] [--profile | --no-profile] [--out DIR]
       (writes DIR/kv.json and DIR/kv.png; default bench/out)

See docs/design/benchmarks.md ("KV benchmark") for results and analysis.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import grpc
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from crdb_py.localcluster import LocalCluster, free_port, open_kv

PREFIX = b"kv/"
VALUE = b"v" * 64
CLK_TCK = os.sysconf("SC_CLK_TCK")

PutFn = Callable[[int, bytes, bytes], Awaitable[None]]


def key_of(i: int) -> bytes:
    return PREFIX + b"%08d" % i


def proc_cpu_seconds(pids: Sequence[int]) -> float:
    """utime + stime of the given processes (their children not included)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total / CLK_TCK


def idle_cpu_pct(pids: Sequence[int], seconds: float) -> float:
    """CPU used by `pids` while nobody sends them anything, in % of one core."""
    c0 = proc_cpu_seconds(pids)
    time.sleep(seconds)
    return round(100 * (proc_cpu_seconds(pids) - c0) / seconds, 1)


# ---- the workload ------------------------------------------------------------------------


@dataclass(slots=True)
class Cell:
    system: str
    clients: int
    seconds: float
    ops: int
    errors: int
    lat_ms: list[float] = field(repr=False)
    client_cpu_s: float
    server_cpu_s: float

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.lat_ms)

        def pct(p: float) -> float:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))], 3) if lat else float("nan")

        n = max(1, self.ops)
        return {
            "system": self.system,
            "clients": self.clients,
            "seconds": round(self.seconds, 3),
            "ops": self.ops,
            "errors": self.errors,
            "ops_per_sec": round(self.ops / self.seconds, 1),
            "p50_ms": pct(0.50),
            "p90_ms": pct(0.90),
            "p99_ms": pct(0.99),
            "client_cpu_us_per_op": round(1e6 * self.client_cpu_s / n, 1),
            "server_cpu_us_per_op": round(1e6 * self.server_cpu_s / n, 1),
        }


async def drive(
    put: PutFn,
    clients: int,
    seconds: float,
    warmup: float,
    keys: int,
    server_pids: Sequence[int],
    system: str,
    seed: int = 1,
) -> Cell:
    """`clients` coroutines put in a loop for `warmup + seconds`; only puts
    that start after the warm-up and finish before the end are counted."""
    rng = random.Random(seed)
    lat: list[float] = []
    errors = 0
    loop_t0 = time.perf_counter()
    t_start = loop_t0 + warmup
    t_end = t_start + seconds
    marks: dict[str, float] = {}

    async def client(i: int) -> None:
        nonlocal errors
        while True:
            t0 = time.perf_counter()
            if t0 >= t_end:
                return
            if t0 >= t_start and "cpu" not in marks:
                marks["cpu"] = 1.0
                marks["client0"] = time.process_time()
                marks["server0"] = proc_cpu_seconds(server_pids)
            try:
                await put(i, key_of(rng.randrange(keys)), VALUE)
            except Exception:
                errors += 1
                await asyncio.sleep(0.01)
                continue
            t1 = time.perf_counter()
            if t0 >= t_start and t1 <= t_end:
                lat.append((t1 - t0) * 1e3)

    await asyncio.gather(*(client(i) for i in range(clients)))
    client_cpu = time.process_time() - marks.get("client0", time.process_time())
    server_cpu = proc_cpu_seconds(server_pids) - marks.get("server0", 0.0)
    return Cell(system, clients, seconds, len(lat), errors, lat, client_cpu, server_cpu)


# ---- crdb-py ------------------------------------------------------------------------------


class CrdbSystem:
    name = "crdb-py"

    def __init__(self, keys: int) -> None:
        self.keys = keys
        self.cluster = LocalCluster(nodes=3)
        self.kv: Any = None
        self.setup: dict[str, Any] = {}

    def start(self) -> None:
        c = self.cluster
        c.start()
        admin = c.kv()
        # Three ranges over the bench key space, one lease per node; the
        # transfers are retried until every node reports a lease.
        bounds = [key_of(self.keys * i // 3) for i in range(3)]
        for b in bounds:
            admin.split(b)
        c.wait_for_replication(timeout=60)
        # The bench client: its own loop thread, DistSender and channels. It
        # is opened after the splits, so its range cache is fresh — an admin
        # transfer routed by a stale, pre-split descriptor would move the
        # lease of the wrong range (the server does not check the key).
        self.kv = open_kv({c.node_id(i): c.address(i) for i in range(3)})
        self.kv.timeout = 600.0
        want = [1, 1, 2]  # sorted lease counts: range 1 (system keys) stays too
        for _attempt in range(15):
            for i, b in enumerate(bounds):
                with contextlib.suppress(Exception):
                    self.kv.run(lambda db, b=b, i=i: db.admin_transfer_lease(b, c.node_id(i)))
            time.sleep(1.0)
            if sorted(s["leases"] for s in c.node_statuses()) == want:
                break
        statuses = c.node_statuses()
        self.setup = {
            "split_keys": [b.decode() for b in bounds],
            "ranges": len(c.ranges()),
            "leases_balanced": sorted(s["leases"] for s in statuses) == want,
            "per_node": [
                {k: s[k] for k in ("node_id", "ranges", "leases", "leaders")} for s in statuses
            ],
        }

    @property
    def pids(self) -> list[int]:
        return [p for p in (self.cluster.pid(i) for i in range(3)) if p is not None]

    def run(self, clients: int, seconds: float, warmup: float) -> Cell:
        async def go(db: Any) -> Cell:
            async def put(_i: int, k: bytes, v: bytes) -> None:
                await db.put(k, v)

            return await drive(put, clients, seconds, warmup, self.keys, self.pids, self.name)

        return self.kv.run(go)

    def run_async(self, coro: Any) -> Any:
        """Run `coro` on the bench client's loop (see EtcdSystem)."""

        async def wrap(_db: Any) -> Any:
            return await coro

        return self.kv.run(wrap)

    def close(self) -> None:
        if self.kv is not None:
            with contextlib.suppress(Exception):
                self.kv.close()
        self.cluster.close()


# ---- etcd ----------------------------------------------------------------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def etcd_put_request(key: bytes, value: bytes) -> bytes:
    """`etcdserverpb.PutRequest{key, value}` in protobuf wire format."""
    return b"\x0a" + _varint(len(key)) + key + b"\x12" + _varint(len(value)) + value


class EtcdSystem:
    """Three etcd members on loopback; every process is killed on close."""

    name = "etcd"

    def __init__(self, keys: int, binary: str, run_async: Callable[[Any], Any]) -> None:
        self.keys = keys
        self.binary = binary
        # Runs a coroutine to completion on the bench client's event loop
        # (the crdb-py client's: one loop for both, and grpc.aio stays on
        # one loop — closing extra loops under it logs "Event loop is closed").
        self.run_async = run_async
        self.dir = tempfile.mkdtemp(prefix="crdb-py-bench-etcd-")
        self.procs: list[subprocess.Popen[bytes]] = []
        self.client_ports = [free_port() for _ in range(3)]
        self.peer_ports = [free_port() for _ in range(3)]
        self.version = ""
        atexit.register(self.close)

    def start(self, timeout: float = 30.0, attempts: int = 3) -> None:
        """Start the three members; a member that exits at start (a port
        taken between `free_port()` and etcd's bind, with other jobs on the
        machine) is retried on fresh ports and data directories."""
        self.version = subprocess.run(
            [self.binary, "--version"], capture_output=True, text=True, check=False
        ).stdout.split("\n")[0]
        for attempt in range(attempts):
            try:
                self._start_once(timeout)
                return
            except RuntimeError:
                if attempt == attempts - 1:
                    raise
                self._stop_members()
                shutil.rmtree(self.dir, ignore_errors=True)
                os.makedirs(self.dir)
                self.client_ports = [free_port() for _ in range(3)]
                self.peer_ports = [free_port() for _ in range(3)]

    def _start_once(self, timeout: float) -> None:
        initial = ",".join(f"m{i}=http://127.0.0.1:{p}" for i, p in enumerate(self.peer_ports))
        pdeath = ["setpriv", "--pdeathsig", "KILL"] if shutil.which("setpriv") else []
        for i in range(3):
            cu = f"http://127.0.0.1:{self.client_ports[i]}"
            pu = f"http://127.0.0.1:{self.peer_ports[i]}"
            cmd = [
                *pdeath, self.binary, "--name", f"m{i}",
                "--data-dir", os.path.join(self.dir, f"m{i}"),
                "--listen-client-urls", cu, "--advertise-client-urls", cu,
                "--listen-peer-urls", pu, "--initial-advertise-peer-urls", pu,
                "--initial-cluster", initial, "--initial-cluster-state", "new",
                "--initial-cluster-token", "crdb-py-bench",
                "--logger", "zap", "--log-level", "error",
            ]  # fmt: skip
            log = open(os.path.join(self.dir, f"m{i}.log"), "ab")
            self.procs.append(
                subprocess.Popen(
                    cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )  # fmt: skip
            log.close()
        self.run_async(self._wait_ready(timeout))

    async def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        async with contextlib.AsyncExitStack() as stack:
            puts = [await stack.enter_async_context(self._channel(i)) for i in range(3)]
            for put in puts:
                while True:
                    for p in self.procs:
                        if p.poll() is not None:
                            raise RuntimeError(
                                f"etcd exited with {p.returncode}: {self._log_tail()}"
                            )
                    try:
                        await put(b"ready", b"1", timeout=2.0)
                        break
                    except grpc.aio.AioRpcError:
                        if time.monotonic() > deadline:
                            raise
                        await asyncio.sleep(0.1)

    @contextlib.asynccontextmanager
    async def _channel(self, i: int):  # type: ignore[no-untyped-def]
        ch = grpc.aio.insecure_channel(f"127.0.0.1:{self.client_ports[i]}")
        call = ch.unary_unary(
            "/etcdserverpb.KV/Put",
            request_serializer=lambda b: b,
            response_deserializer=lambda b: b,
        )

        async def put(k: bytes, v: bytes, timeout: float | None = None) -> None:
            await call(etcd_put_request(k, v), timeout=timeout)

        try:
            yield put
        finally:
            await ch.close()

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs if p.poll() is None]

    def run(self, clients: int, seconds: float, warmup: float) -> Cell:
        async def go() -> Cell:
            async with contextlib.AsyncExitStack() as stack:
                members = [await stack.enter_async_context(self._channel(i)) for i in range(3)]

                async def put(i: int, k: bytes, v: bytes) -> None:
                    await members[i % 3](k, v)

                return await drive(put, clients, seconds, warmup, self.keys, self.pids, self.name)

        return self.run_async(go())

    def _log_tail(self) -> str:
        tails = []
        for i in range(3):
            with contextlib.suppress(OSError), open(os.path.join(self.dir, f"m{i}.log")) as f:
                tails.append(f"m{i}: " + " | ".join(f.read().strip().splitlines()[-2:]))
        return "; ".join(tails)

    def _stop_members(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(5.0)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs = []

    def close(self) -> None:
        self._stop_members()
        shutil.rmtree(self.dir, ignore_errors=True)


# ---- profile -------------------------------------------------------------------------------

CATEGORIES = (  # first match wins, on the frame's file path
    ("grpc", ("grpc/", "grpc_transport", "cygrpc")),
    ("protobuf", ("google/protobuf", "_pb2")),
    ("asyncio", ("asyncio/", "selectors.py")),
    ("raft", ("crdb_py/raft/",)),
    ("storage (MVCC, rocksdict)", ("crdb_py/storage/", "rocksdict")),
    ("kvserver", ("crdb_py/kvserver/",)),
    ("rpc", ("crdb_py/rpc/",)),
    ("server", ("crdb_py/server/",)),
    ("kvclient", ("crdb_py/kvclient/",)),
    ("util", ("crdb_py/util/",)),
    ("logging", ("logging/",)),
)


def start_profile(pid: int, seconds: float, path: str) -> subprocess.Popen[bytes] | None:
    exe = shutil.which("py-spy") or os.path.join(os.path.dirname(sys.executable), "py-spy")
    if not os.path.exists(exe):
        return None
    return subprocess.Popen(
        [exe, "record", "--pid", str(pid), "--duration", str(max(1, int(seconds))),
         "--format", "raw", "--nonblocking", "--rate", "200", "-o", path],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip


def summarize_profile(path: str, top: int = 15) -> dict[str, Any]:
    """Collapsed stacks -> self time by package and top self frames, plus
    inclusive time of a few interesting functions."""
    by_cat: Counter[str] = Counter()
    by_frame: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    with open(path) as f:
        for line in f:
            stack, _, n = line.rstrip("\n").rpartition(" ")
            if not stack or not n.isdigit():
                continue
            count = int(n)
            total += count
            frames = stack.split(";")
            leaf = frames[-1]
            by_frame[leaf] += count
            for name, needles in CATEGORIES:
                if any(s in leaf for s in needles):
                    by_cat[name] += count
                    break
            else:
                by_cat["other"] += count
            seen: set[str] = set()
            for fr in frames:
                fn = fr.split(" (")[0]
                if fn not in seen:
                    seen.add(fn)
                    inclusive[fn] += count
    if not total:
        return {"samples": 0}

    def share(c: Counter[str], k: int) -> list[tuple[str, float]]:
        return [(name, round(100 * v / total, 1)) for name, v in c.most_common(k)]

    return {
        "samples": total,
        "self_by_package_pct": share(by_cat, len(by_cat)),
        "top_self_frames_pct": share(by_frame, top),
        "top_inclusive_pct": share(inclusive, 40),
    }


# ---- output --------------------------------------------------------------------------------


def table(rows: list[dict[str, Any]], etcd_note: str | None) -> str:
    out = [
        "| clients | system | ops/s | p50 ms | p90 ms | p99 ms | client CPU µs/op | server CPU µs/op | errors |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        out.append(
            f"| {r['clients']} | {r['system']} | {r['ops_per_sec']:,.0f} | {r['p50_ms']:.2f} | "
            f"{r['p90_ms']:.2f} | {r['p99_ms']:.2f} | {r['client_cpu_us_per_op']:,.0f} | "
            f"{r['server_cpu_us_per_op']:,.0f} | {r['errors']} |"
        )
    out += ["", "| clients | p50 crdb/etcd | p99 crdb/etcd | throughput crdb/etcd |", "|---:|---:|---:|---:|"]
    for c in sorted({r["clients"] for r in rows}):
        a = next((r for r in rows if r["clients"] == c and r["system"] == "crdb-py"), None)
        b = next((r for r in rows if r["clients"] == c and r["system"] == "etcd"), None)
        if a is None:
            continue
        if b is None:
            out.append(f"| {c} | {etcd_note} | | |")
            continue
        out.append(
            f"| {c} | {a['p50_ms'] / b['p50_ms']:.2f}× | {a['p99_ms'] / b['p99_ms']:.2f}× | "
            f"{a['ops_per_sec'] / max(b['ops_per_sec'], 1e-9):.2f}× |"
        )
    return "\n".join(out)


def plot(rows: list[dict[str, Any]], path: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    systems = sorted({r["system"] for r in rows})
    clients = sorted({r["clients"] for r in rows})
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    width = 0.8 / len(systems)
    for k, s in enumerate(systems):
        sub = {r["clients"]: r for r in rows if r["system"] == s}
        xs = [i + k * width for i in range(len(clients))]
        axes[0].bar(xs, [sub[c]["ops_per_sec"] if c in sub else 0 for c in clients], width, label=s)
        axes[1].bar(xs, [sub[c]["p50_ms"] if c in sub else 0 for c in clients], width, label=f"{s} p50")
        axes[1].scatter(xs, [sub[c]["p99_ms"] if c in sub else 0 for c in clients], marker="_", s=200,
                        color="black")  # fmt: skip
    axes[1].set_yscale("log")
    for ax, title in zip(axes, ("puts / s", "put latency ms, log scale (bar p50, tick p99)")):
        ax.set_xticks([i + width * (len(systems) - 1) / 2 for i in range(len(clients))])
        ax.set_xticklabels([f"{c} clients" for c in clients])
        ax.set_title(title)
        ax.legend()
    fig.suptitle("single-key puts, 3 nodes on loopback")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="KV put benchmark: crdb-py vs etcd, 3 nodes")
    ap.add_argument("--quick", action="store_true", help="short cells (smoke test)")
    ap.add_argument("--seconds", type=float, default=None, help="measured seconds per cell")
    ap.add_argument("--warmup", type=float, default=None, help="unmeasured seconds per cell")
    ap.add_argument("--clients", default="1,16,64")
    ap.add_argument("--keys", type=int, default=10_000)
    ap.add_argument("--no-etcd", action="store_true")
    ap.add_argument("--profile", action=argparse.BooleanOptionalAction, default=None)
    ap.add_argument(
        "--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")
    )
    a = ap.parse_args(argv)
    seconds = a.seconds or (2.0 if a.quick else 10.0)
    warmup = a.warmup if a.warmup is not None else (0.5 if a.quick else 2.0)
    clients = [int(x) for x in a.clients.split(",")]
    profile = (not a.quick) if a.profile is None else a.profile
    os.makedirs(a.out, exist_ok=True)
    console = Console(stderr=True)

    etcd_bin = None if a.no_etcd else shutil.which("etcd")
    etcd_note = "etcd: disabled (--no-etcd)" if a.no_etcd else "etcd: not available"
    systems: list[Any] = []
    rows: list[dict[str, Any]] = []
    prof: dict[str, Any] = {}
    idle: dict[str, float] = {}
    server_pids: dict[str, list[int]] = {}
    try:
        with console.status("starting the crdb-py cluster (3 nodes, 3 ranges) ..."):
            crdb = CrdbSystem(a.keys)
            systems.append(crdb)
            crdb.start()
        if etcd_bin:
            with console.status("starting etcd (3 members) ..."):
                etcd = EtcdSystem(a.keys, etcd_bin, crdb.run_async)
                systems.append(etcd)
                etcd.start()
        with console.status("measuring idle CPU ..."):
            idle = {s.name: idle_cpu_pct(s.pids, 1.0 if a.quick else 3.0) for s in systems}
        server_pids = {s.name: s.pids for s in systems}
        cells = [(c, s) for c in clients for s in systems]
        with Progress(
            TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(), console=console,
        ) as progress:  # fmt: skip
            task = progress.add_task("cells", total=len(cells))
            for c, s in cells:
                progress.update(task, description=f"{s.name}, {c} clients")
                spy = None
                prof_path = os.path.join(a.out, "kv-profile.txt")
                if profile and s is crdb and c == max(clients) and crdb.pids:
                    spy = start_profile(crdb.pids[0], seconds, prof_path)
                    if spy is None:
                        prof = {"error": "py-spy not installed (pip install py-spy)"}
                rows.append(s.run(c, seconds, warmup).summary())
                if spy is not None:
                    _, err = spy.communicate(timeout=60)
                    if spy.returncode == 0 and os.path.exists(prof_path):
                        prof = {"node": 0, "file": prof_path, **summarize_profile(prof_path)}
                    else:
                        prof = {"error": err.decode(errors="replace")[-500:]}
                progress.advance(task)
    finally:
        for s in reversed(systems):
            s.close()

    print(table(rows, etcd_note))
    print("\nidle server CPU (% of one core): " + ", ".join(f"{k} {v}" for k, v in idle.items()))
    if prof.get("samples"):
        print(f"\nprofile of node 0 under {max(clients)} clients ({prof['samples']} samples), self time:")
        for name, pct in prof["self_by_package_pct"]:
            print(f"  {pct:5.1f}%  {name}")
        print("top self frames:")
        for name, pct in prof["top_self_frames_pct"]:
            print(f"  {pct:5.1f}%  {name}")
    elif prof:
        print(f"\nprofile: {prof.get('error')}")
    meta = {
        "python": sys.version.split()[0],
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "quick": a.quick,
        "seconds_per_cell": seconds,
        "warmup": warmup,
        "keys": a.keys,
        "value_bytes": len(VALUE),
        "idle_server_cpu_pct_of_one_core": idle,
        "server_pids": server_pids,  # all stopped by the time kv.json is written
        "crdb_setup": crdb.setup,
        "etcd": etcd.version if etcd_bin else etcd_note,
    }
    with open(os.path.join(a.out, "kv.json"), "w") as f:
        json.dump({"meta": meta, "results": rows, "profile": prof}, f, indent=2)
    if plot(rows, os.path.join(a.out, "kv.png")):
        print(f"wrote {a.out}/kv.json and {a.out}/kv.png")
    else:
        print(f"wrote {a.out}/kv.json (matplotlib not available: no plot)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
