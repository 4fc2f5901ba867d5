"""crdb_py.rpc: how nodes reach each other.

One `Transport` protocol (transport.py), two implementations — gRPC
(grpc_transport.py, the only module family that imports grpc) and in-process
(inprocess.py) — and the `LatencyInjector` wrapper (latency.py) that adds
per-link one-way latency and one-way blocks from a `LinkFaultTable`
(faults.py). See docs/design/transport.md.
"""

from __future__ import annotations

from crdb_py.rpc.faults import LinkFaultTable
from crdb_py.rpc.grpc_transport import GrpcTransport
from crdb_py.rpc.inprocess import InProcessNetwork, InProcessTransport
from crdb_py.rpc.latency import LatencyInjector
from crdb_py.rpc.transport import NodeHandler, Transport

__all__ = [
    "GrpcTransport",
    "InProcessNetwork",
    "InProcessTransport",
    "LatencyInjector",
    "LinkFaultTable",
    "NodeHandler",
    "Transport",
]
