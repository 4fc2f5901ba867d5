"""Test doubles for the Node's seams: a store and a cluster-wide KV DB."""

from __future__ import annotations

from typing import Any

from crdb_py.pb import api_pb2, raft_pb2
from crdb_py.util.errors import ConditionFailedError
from crdb_py.util.keys import range_applied_state_key

FAKE_RANGE_KEY = range_applied_state_key(1)


class FakeStore:
    """Stands in for kvserver.Store: records what the Node asks of it."""

    def __init__(self, node: Any, ident: Any) -> None:
        self.node = node
        self.ident = ident
        self.started = False
        self.stopped = False
        self.raft_batches: list[tuple[int, raft_pb2.RaftMessageBatch]] = []
        self.batches: list[api_pb2.BatchRequest] = []

    @staticmethod
    def bootstrap(engine: Any, node_id: int, store_id: int) -> None:
        engine.put(FAKE_RANGE_KEY, f"{node_id}/{store_id}".encode())

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def batch(self, req: api_pb2.BatchRequest) -> api_pb2.BatchResponse:
        self.batches.append(req)
        return api_pb2.BatchResponse()

    def handle_raft_messages(self, from_node_id: int, batch: raft_pb2.RaftMessageBatch) -> None:
        self.raft_batches.append((from_node_id, batch))

    def first_range(self) -> None:
        return None

    def status(self) -> dict[str, int]:
        has = self.node.engine is not None and self.node.engine.get(FAKE_RANGE_KEY) is not None
        return {"range_count": int(has), "lease_count": int(has), "leader_count": int(has)}


class FakeDB:
    """A cluster-wide dict with the async DB methods the Node uses.
    `fail` > 0 makes that many calls raise (an unavailable cluster)."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.fail = 0
        self.calls: list[str] = []

    def _maybe_fail(self, name: str) -> None:
        self.calls.append(name)
        if self.fail > 0:
            self.fail -= 1
            from crdb_py.util.errors import NodeUnavailableError

            raise NodeUnavailableError(1, "injected: cluster unavailable")

    async def get(self, key: bytes) -> bytes | None:
        self._maybe_fail("get")
        return self.data.get(key)

    async def put(self, key: bytes, value: bytes) -> None:
        self._maybe_fail("put")
        self.data[key] = value

    async def cput(self, key: bytes, value: bytes, expected: bytes | None) -> None:
        self._maybe_fail("cput")
        if self.data.get(key) != expected:
            raise ConditionFailedError(self.data.get(key))
        self.data[key] = value

    async def inc(self, key: bytes, delta: int) -> int:
        self._maybe_fail("inc")
        n = int(self.data.get(key, b"0")) + delta
        self.data[key] = str(n).encode()
        return n

    async def scan(self, start: bytes, end: bytes, max_rows: int = 0) -> list[tuple[bytes, bytes]]:
        self._maybe_fail("scan")
        return sorted((k, v) for k, v in self.data.items() if start <= k < end)
