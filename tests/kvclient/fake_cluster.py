"""An in-memory stand-in for a cluster, seen through the NodeSender protocol.

One sorted map holds all data (replication is not what these tests are
about); meta records (``meta_key(end_key) -> RangeDescriptor``) live in the
same map, so the client's meta lookups are real scans. Each range has a
descriptor, replicas on some nodes and a leaseholder. A node answers like a
leaseholder would: RangeNotFound if it has no replica, NotLeaseHolder (with a
hint unless told otherwise) if it does not hold the lease, RangeKeyMismatch
(with its descriptor) if a key is outside the range; otherwise it evaluates
the requests in order, applying `max_span_request_keys` / `target_bytes` the
way CockroachDB does (once exhausted, later requests get resume spans).

Faults: `down` nodes raise NodeUnavailableError; `ambiguous` nodes apply a
batch then raise AmbiguousResultError; `hook(node_id, ba)` may return a
response or raise to script any other answer. Every call is logged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from sortedcontainers import SortedDict

from crdb_py.kvclient import batch as kb
from crdb_py.pb import api_pb2, data_pb2
from crdb_py.util import errors, keys
from crdb_py.util.errwire import error_to_proto


@dataclass
class Call:
    node_id: int
    range_id: int
    reqs: list[tuple[str, bytes, bytes]]
    max_keys: int
    target_bytes: int


@dataclass
class FakeRange:
    desc: data_pb2.RangeDescriptor
    leaseholder: int


@dataclass
class FakeCluster:
    nodes: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 5])
    data: SortedDict = field(default_factory=SortedDict)
    ranges: dict[int, FakeRange] = field(default_factory=dict)
    down: set[int] = field(default_factory=set)
    ambiguous: set[int] = field(default_factory=set)
    no_hint: bool = False
    hook: Callable[[int, api_pb2.BatchRequest], api_pb2.BatchResponse | None] | None = None
    calls: list[Call] = field(default_factory=list)
    inflight: int = 0
    max_inflight: int = 0
    next_range_id: int = 1
    now: int = 1_000

    # ---- setup ----------------------------------------------------------------

    @classmethod
    def with_splits(
        cls, splits: list[bytes], replicas: int = 3, nodes: list[int] | None = None
    ) -> FakeCluster:
        """Ranges [KEY_MIN, s0), [s0, s1), ..., [sN, KEY_MAX); range i has
        replicas on `replicas` consecutive nodes starting at node i % n, the
        first of them leaseholder."""
        c = cls(nodes=nodes or [1, 2, 3, 4, 5])
        bounds = [keys.KEY_MIN, *splits, keys.KEY_MAX]
        for i in range(len(bounds) - 1):
            c.add_range(bounds[i], bounds[i + 1], replicas, start_node_index=i)
        return c

    def add_range(
        self, start: bytes, end: bytes, replicas: int = 3, start_node_index: int = 0
    ) -> FakeRange:
        d = data_pb2.RangeDescriptor(range_id=self.next_range_id, start_key=start, end_key=end)
        self.next_range_id += 1
        n = len(self.nodes)
        for j in range(replicas):
            node = self.nodes[(start_node_index + j) % n]
            d.replicas.add(node_id=node, store_id=node, replica_id=j + 1)
        d.next_replica_id = replicas + 1
        r = FakeRange(d, d.replicas[0].node_id)
        self.ranges[d.range_id] = r
        self._write_meta(d)
        return r

    def _write_meta(self, d: data_pb2.RangeDescriptor) -> None:
        self.data[keys.meta_key(d.end_key)] = d.SerializeToString()

    def first_range(self) -> data_pb2.RangeDescriptor:
        return self.range_for(keys.KEY_MIN).desc

    def range_for(self, key: bytes) -> FakeRange:
        for r in self.ranges.values():
            if r.desc.start_key <= key < r.desc.end_key:
                return r
        raise KeyError(key)

    def split(self, key: bytes) -> tuple[data_pb2.RangeDescriptor, data_pb2.RangeDescriptor]:
        """Split the range holding `key` at `key`, behind the client's back."""
        r = self.range_for(key)
        left = r.desc
        right = data_pb2.RangeDescriptor()
        right.CopyFrom(left)
        right.range_id = self.next_range_id
        self.next_range_id += 1
        right.start_key = key
        right.generation = left.generation + 1
        left.end_key = key
        left.generation += 1
        self.ranges[right.range_id] = FakeRange(right, r.leaseholder)
        self._write_meta(left)
        self._write_meta(right)
        return left, right

    def set_leaseholder(self, range_id: int, node_id: int) -> None:
        self.ranges[range_id].leaseholder = node_id

    # ---- NodeSender -------------------------------------------------------------

    async def send_to_node(self, node_id: int, ba: api_pb2.BatchRequest) -> api_pb2.BatchResponse:
        self.calls.append(
            Call(
                node_id,
                ba.header.range_id,
                [(kb.kind(r), *kb.request_span(r)) for r in ba.requests],
                ba.header.max_span_request_keys,
                ba.header.target_bytes,
            )
        )
        self.inflight += 1
        self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            await asyncio.sleep(0)
            if node_id in self.down:
                raise errors.NodeUnavailableError(node_id)
            if self.hook is not None:
                br = self.hook(node_id, ba)
                if br is not None:
                    return br
            br = self._serve(node_id, ba)
            if node_id in self.ambiguous:
                raise errors.AmbiguousResultError(f"n{node_id}: connection lost after send")
            return br
        finally:
            self.inflight -= 1

    def user_calls(self) -> list[Call]:
        """Calls other than meta lookups."""
        return [c for c in self.calls if not (c.reqs and keys.is_meta(c.reqs[0][1]))]

    # ---- evaluation ----------------------------------------------------------------

    def _serve(self, node_id: int, ba: api_pb2.BatchRequest) -> api_pb2.BatchResponse:
        br = api_pb2.BatchResponse()
        self.now += 1
        br.now.wall_time = self.now
        r = self.ranges.get(ba.header.range_id)
        if r is None or all(rep.node_id != node_id for rep in r.desc.replicas):
            return _err(br, errors.RangeNotFoundError(ba.header.range_id))
        if r.leaseholder != node_id:
            lh = None
            if not self.no_hint:
                lh = next(rep for rep in r.desc.replicas if rep.node_id == r.leaseholder)
            return _err(br, errors.NotLeaseHolderError(r.desc.range_id, leaseholder=lh))
        for req in ba.requests:
            s, e = kb.addr_span(req)
            if s < r.desc.start_key or e > r.desc.end_key:
                return _err(br, errors.RangeKeyMismatchError(s, e, range_desc=r.desc))
        max_keys = ba.header.max_span_request_keys or -1
        max_bytes = ba.header.target_bytes or -1
        br.header.timestamp.wall_time = self.now
        for i, req in enumerate(ba.requests):
            try:
                resp = self._eval(req, max_keys, max_bytes)
            except errors.CrdbError as exc:
                return _err(br, exc, index=i)
            h = kb.inner(resp).header
            if max_keys > 0:
                max_keys = max(0, max_keys - h.num_keys)
            if max_bytes > 0:
                max_bytes = max(0, max_bytes - h.num_bytes)
            br.responses.append(resp)
        return br

    def _eval(self, req: api_pb2.RequestUnion, max_keys: int, max_bytes: int) -> api_pb2.ResponseUnion:
        k = kb.kind(req)
        m = kb.inner(req)
        key, end = m.header.key, m.header.end_key
        out = kb.empty_response_for(req)
        o = kb.inner(out)
        exhausted = max_keys == 0 or max_bytes == 0
        if k == "get":
            if exhausted:
                kb.set_resume_span(out, key)
            elif key in self.data:
                o.value.raw_bytes = self.data[key]
                o.header.num_keys = 1
                o.header.num_bytes = len(key) + len(self.data[key])
        elif k in ("scan", "reverse_scan"):
            ks = list(self.data.irange(key, end, inclusive=(True, False), reverse=k == "reverse_scan"))
            if exhausted:
                kb.set_resume_span(out, key, end)
                ks = []
            n = nbytes = 0
            for i, kk in enumerate(ks):
                if exhausted or (max_keys > 0 and n >= max_keys) or (max_bytes > 0 and nbytes >= max_bytes):
                    if k == "scan":
                        kb.set_resume_span(out, kk, end)
                    else:
                        kb.set_resume_span(out, key, keys.next_key(ks[i]))
                    break
                o.rows.add(key=kk).value.raw_bytes = self.data[kk]
                n += 1
                nbytes += len(kk) + len(self.data[kk])
            o.header.num_keys, o.header.num_bytes = n, nbytes
        elif k == "put":
            self.data[key] = m.value
        elif k == "conditional_put":
            cur = self.data.get(key)
            exp = m.exp_value if m.exp_exists else None
            if cur != exp and not (cur is None and m.allow_if_does_not_exist):
                raise errors.ConditionFailedError(cur)
            self.data[key] = m.value
        elif k == "increment":
            v = int(self.data.get(key, b"0")) + m.increment
            self.data[key] = str(v).encode()
            o.new_value = v
        elif k == "delete":
            o.found_key = self.data.pop(key, None) is not None
        elif k == "delete_range":
            ks = list(self.data.irange(key, end, inclusive=(True, False)))
            if max_keys > 0 and len(ks) > max_keys:
                kb.set_resume_span(out, ks[max_keys], end)
                ks = ks[:max_keys]
            elif exhausted and ks:
                kb.set_resume_span(out, key, end)
                ks = []
            for kk in ks:
                del self.data[kk]
            if m.return_keys:
                o.keys.extend(ks)
            o.header.num_keys = len(ks)
        elif k == "admin_split":
            left, right = self.split(m.split_key)
            o.left.CopyFrom(left)
            o.right.CopyFrom(right)
        elif k == "admin_transfer_lease":
            self.set_leaseholder(self.range_for(key).desc.range_id, m.target_node_id)
        else:
            raise errors.InternalError(f"fake cluster: unsupported request {k}")
        return out


def _err(br: api_pb2.BatchResponse, exc: BaseException, index: int = -1) -> api_pb2.BatchResponse:
    error_to_proto(exc, br.error, index=index)
    return br
