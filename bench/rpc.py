"""Micro-benchmark of the gRPC transport on loopback.

Measures, between this process (n1) and a server in a child process (n2):

- unary `Batch` round trip, one at a time (latency) and with many callers
  in flight (throughput);
- the same over the multiplexed `BatchStream` (GrpcTransport with
  batch_over_stream=True, the default);
- raft messages: ping-pong round trip over the two long-lived raft streams,
  and one-way throughput when bursts are coalesced per loop turn.

Usage: .venv/bin/python bench/rpc.py [--n 2000] [--seconds 3] [--concurrency 32]
       [--json out.json] [--same-process]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from crdb_py.pb import api_pb2, raft_pb2, services_pb2
from crdb_py.rpc import GrpcTransport, InProcessNetwork, LatencyInjector


class EchoNode:
    """Answers Batch with a tiny response; echoes raft 'pings' back."""

    def __init__(self, node_id: int) -> None:
        self.node_id = node_id
        self.transport: GrpcTransport | None = None
        self.received = 0
        self.pongs: asyncio.Queue[int] | None = None

    async def batch(self, req: api_pb2.BatchRequest) -> api_pb2.BatchResponse:
        resp = api_pb2.BatchResponse()
        resp.responses.add().get.value.raw_bytes = req.requests[0].get.header.key
        return resp

    def handle_raft_messages(self, from_node_id: int, batch: raft_pb2.RaftMessageBatch) -> None:
        self.received += len(batch.requests)
        for r in batch.requests:
            if r.message.type == 1 and self.transport is not None:  # ping -> pong
                pong = raft_pb2.RaftMessageRequest(range_id=r.range_id, from_node_id=self.node_id)
                pong.message.type = 2
                pong.message.index = r.message.index
                self.transport.send_raft_message(from_node_id, pong)
            elif r.message.type == 2 and self.pongs is not None:
                self.pongs.put_nowait(r.message.index)

    async def admin_status(self, req: Any) -> services_pb2.NodeStatusResponse:
        return services_pb2.NodeStatusResponse()

    async def bootstrap(self, req: Any) -> services_pb2.BootstrapResponse:
        return services_pb2.BootstrapResponse()

    async def join(self, req: Any) -> services_pb2.JoinResponse:
        return services_pb2.JoinResponse()


async def serve(client_addr: str) -> None:
    node = EchoNode(2)
    t = GrpcTransport(2, node, "127.0.0.1:0")
    node.transport = t
    await t.start()
    t.set_node_address(1, client_addr)
    print(t.address, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await t.close()


def _req(i: int) -> api_pb2.BatchRequest:
    req = api_pb2.BatchRequest()
    req.header.range_id = 1
    req.requests.add().get.header.key = b"key-%08d" % i
    return req


async def _latency(t: GrpcTransport, n: int) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        await t.send_batch(2, _req(i))
        out.append(time.perf_counter() - t0)
    return out


async def _throughput(t: GrpcTransport, seconds: float, conc: int) -> float:
    done = 0
    end = time.perf_counter() + seconds

    async def worker(w: int) -> None:
        nonlocal done
        i = 0
        while time.perf_counter() < end:
            await t.send_batch(2, _req(w * 1_000_000 + i))
            i += 1
            done += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(conc)))
    return done / (time.perf_counter() - t0)


async def _raft_rtt(t: GrpcTransport, node: EchoNode, n: int) -> list[float]:
    node.pongs = asyncio.Queue()
    out = []
    for i in range(n):
        m = raft_pb2.RaftMessageRequest(range_id=1, from_node_id=1, to_node_id=2)
        m.message.type = 1
        m.message.index = i
        t0 = time.perf_counter()
        t.send_raft_message(2, m)
        while await node.pongs.get() != i:
            pass
        out.append(time.perf_counter() - t0)
    return out


async def _raft_throughput(t: GrpcTransport, node: EchoNode, seconds: float, burst: int) -> float:
    """One-way messages/s: bursts per loop turn, paced by ping-pong every burst."""
    node.pongs = asyncio.Queue()
    sent = 0
    end = time.perf_counter() + seconds
    t0 = time.perf_counter()
    i = 0
    while time.perf_counter() < end:
        for _ in range(burst - 1):
            m = raft_pb2.RaftMessageRequest(range_id=1, from_node_id=1, to_node_id=2)
            m.message.index = i
            m.message.entries.add(term=1, index=i, data=b"x" * 64)
            t.send_raft_message(2, m)
        ping = raft_pb2.RaftMessageRequest(range_id=1, from_node_id=1, to_node_id=2)
        ping.message.type = 1
        ping.message.index = i
        t.send_raft_message(2, ping)
        while await node.pongs.get() != i:
            pass
        sent += burst
        i += 1
    return sent / (time.perf_counter() - t0)


async def _inproc_send_cost(n: int) -> dict[str, float]:
    """µs per send_raft_message + delivery in-process: bare vs idle injector."""
    out: dict[str, float] = {}
    for label, wrap in (("bare", False), ("idle_injector", True)):
        net = InProcessNetwork()
        a, b = EchoNode(1), EchoNode(2)
        ta, tb = net.transport(1, a), net.transport(2, b)
        await ta.start()
        await tb.start()
        t: Any = LatencyInjector(ta) if wrap else ta
        m = raft_pb2.RaftMessageRequest(range_id=1, from_node_id=1, to_node_id=2)
        t0 = time.perf_counter()
        for _ in range(n // 100):
            for _ in range(100):
                t.send_raft_message(2, m)
            await asyncio.sleep(0)
        await asyncio.sleep(0)
        out[f"inproc_raft_send_us_{label}"] = 1e6 * (time.perf_counter() - t0) / n
        assert b.received == n
        await ta.close()
        await tb.close()
    return out


def _ms(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return 1000.0 * xs[min(len(xs) - 1, int(q * len(xs)))]


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    node = EchoNode(1)
    client = GrpcTransport(1, node, "127.0.0.1:0", batch_over_stream=False)
    await client.start()
    assert client.address is not None
    proc = None
    server_t = None
    if args.same_process:
        snode = EchoNode(2)
        server_t = GrpcTransport(2, snode, "127.0.0.1:0")
        snode.transport = server_t
        await server_t.start()
        server_t.set_node_address(1, client.address)
        addr = server_t.address
    else:
        proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--serve", client.address],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert proc.stdout is not None
        addr = proc.stdout.readline().strip()
    assert addr is not None
    client.set_node_address(2, addr)
    streamed = GrpcTransport(1, None, batch_over_stream=True)
    streamed.set_node_address(2, addr)
    res: dict[str, Any] = {"n": args.n, "seconds": args.seconds, "concurrency": args.concurrency,
                           "server": "same process" if args.same_process else "child process"}
    try:
        await _latency(client, 200)
        await _latency(streamed, 200)
        for name, t in (("unary", client), ("stream", streamed)):
            lat = await _latency(t, args.n)
            res[f"batch_{name}_rtt_ms_p50"] = _ms(lat, 0.5)
            res[f"batch_{name}_rtt_ms_p99"] = _ms(lat, 0.99)
            res[f"batch_{name}_rtt_ms_mean"] = 1000 * statistics.fmean(lat)
            res[f"batch_{name}_rps_c{args.concurrency}"] = await _throughput(
                t, args.seconds, args.concurrency
            )
        lat = await _raft_rtt(client, node, args.n)
        res["raft_pingpong_rtt_ms_p50"] = _ms(lat, 0.5)
        res["raft_pingpong_rtt_ms_p99"] = _ms(lat, 0.99)
        res["raft_msgs_per_s_burst100"] = await _raft_throughput(client, node, args.seconds, 100)
        res.update(await _inproc_send_cost(200_000))
        res["raft_batches_sent"] = client.raft_batches_sent
        res["raft_messages_sent"] = client.raft_messages_sent
    finally:
        await streamed.close()
        await client.close()
        if server_t is not None:
            await server_t.close()
        if proc is not None:
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait(timeout=10)
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="sequential round trips per measurement")
    ap.add_argument("--seconds", type=float, default=3.0, help="duration of throughput runs")
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--same-process", action="store_true", help="server on the same loop")
    ap.add_argument("--json", help="write results to this file")
    ap.add_argument("--serve", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        asyncio.run(serve(args.serve))
        return
    res = asyncio.run(bench(args))
    width = max(len(k) for k in res)
    for k, v in res.items():
        print(f"{k:<{width}}  {v:.3f}" if isinstance(v, float) else f"{k:<{width}}  {v}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
