"""Latency injection and link faults, as a wrapper around any Transport.

These machines have no netem, so the network's delay is made here, on the
sending side: a message from this node to node B is held for the one-way
latency of link (self→B) before the wrapped transport sees it. An RPC is
delayed both ways — the request by latency(self→B) before it is sent, the
response by latency(B→self) after it arrives — so a round trip costs the sum,
as on a real network. Blocked links drop: a raft message on a blocked link is
discarded (send returns False); a Batch whose request link is blocked fails
with `NodeUnavailableError` (not delivered); a Batch whose *response* link is
blocked was delivered and may have executed, so it fails as an unknown
outcome (`AmbiguousResultError` for writes, see transport.py).

Order. Every link has a FIFO of pending deliveries, each with a due time
`max(now + latency, due time of the previous message on the link)`, and at
most one timer (`loop.call_at`) armed. Delivery pops from the head only, so
nothing overtakes on a link, even when the latency is lowered at run time;
order is never left to the timer heap (which is not stable), and one timer
per link instead of one per message keeps bursts cheap. The timer is armed
for the last message of the head's *send turn*, so a burst sent in one loop
turn is released in one callback and the wrapped transport coalesces it into
one raft batch, as it would without injected latency; no message is ever
released before its own due time.

Zero cost. With no latency and nothing blocked (`LinkFaultTable.idle`) and
nothing still queued, every call goes straight to the wrapped transport.

Control. `set_latency`, `set_link_latency`, `block`, `unblock`, `partition`,
`heal` change the `LinkFaultTable`, which may be shared by all in-process
nodes; over gRPC, `Admin.SetLinkFaults` replaces a node's table remotely
(the wrapped transport's server side applies it to this table). The control
RPC itself (`set_link_faults`) bypasses the faults, so a partition can always
be healed.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TypeVar

from crdb_py.pb import api_pb2, raft_pb2, services_pb2
from crdb_py.rpc.faults import LinkFaultTable
from crdb_py.rpc.transport import Transport, UnreachableCallback, delivery_failure
from crdb_py.util.errors import NodeUnavailableError

R = TypeVar("R")


class _LinkQueue:
    """Pending deliveries on one link, released in order at their due time.

    Entries remember the loop turn they were sent in. The timer is armed for
    the due time of the *last* entry of the head's turn group (and only once
    that turn is over), so messages sent in one turn are released in one
    callback — and coalesced downstream — without any of them arriving
    before its own due time.
    """

    __slots__ = ("_q", "_timer", "_timer_turn", "_arm_pending", "_last_due")

    def __init__(self) -> None:
        self._q: deque[tuple[float, int, Callable[[], None]]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_turn = -1
        self._arm_pending = False
        self._last_due = 0.0

    def __len__(self) -> int:
        return len(self._q)

    def schedule(
        self, loop: asyncio.AbstractEventLoop, turn: int, delay: float, fn: Callable[[], None]
    ) -> None:
        due = max(loop.time() + delay, self._last_due)
        self._last_due = due
        self._q.append((due, turn, fn))
        if self._timer is not None and self._timer_turn == turn:
            self._timer.cancel()  # the group grew: re-arm once the turn is over
            self._timer = None
        if self._timer is None and not self._arm_pending:
            self._arm_pending = True
            loop.call_soon(self._arm, loop)

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        self._arm_pending = False
        if self._timer is None and self._q:
            self._arm_group(loop)

    def _arm_group(self, loop: asyncio.AbstractEventLoop) -> None:
        head_turn = self._q[0][1]
        when = self._q[0][0]
        for due, turn, _ in self._q:
            if turn != head_turn:
                break
            when = due
        self._timer_turn = head_turn
        self._timer = loop.call_at(when, self._fire, loop)

    def _fire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        # asyncio runs a timer once `when <= time() + clock_resolution`.
        now = loop.time() + loop._clock_resolution  # type: ignore[attr-defined]
        q = self._q
        while q and q[0][0] <= now:
            fn = q.popleft()[2]
            fn()
        if q and not self._arm_pending:
            self._arm_group(loop)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._q.clear()


class LatencyInjector:
    """A `Transport` that delays and drops per the `LinkFaultTable`."""

    def __init__(self, inner: Transport, faults: LinkFaultTable | None = None) -> None:
        self.inner = inner
        self.faults = faults if faults is not None else LinkFaultTable()
        self._links: dict[tuple[int, int], _LinkQueue] = {}
        self.raft_messages_blocked = 0
        self._turn_id = 0
        self._turn_armed = False
        # Let Admin.SetLinkFaults arriving at the wrapped transport reach us.
        if hasattr(inner, "link_fault_sink"):
            inner.link_fault_sink = self.faults  # type: ignore[attr-defined]

    @property
    def node_id(self) -> int:
        """The wrapped transport's node id (may be set once the node learns it)."""
        return self.inner.node_id

    @node_id.setter
    def node_id(self, node_id: int) -> None:
        self.inner.node_id = node_id

    @property
    def address(self) -> str | None:
        return getattr(self.inner, "address", None)

    @property
    def on_unreachable(self) -> UnreachableCallback | None:
        return getattr(self.inner, "on_unreachable", None)

    @on_unreachable.setter
    def on_unreachable(self, cb: UnreachableCallback | None) -> None:
        self.inner.on_unreachable = cb  # type: ignore[attr-defined]

    # ---- control ----

    def set_latency(self, ms: float) -> None:
        self.faults.set_latency(ms)

    def set_link_latency(self, src: int, dst: int, ms: float | None) -> None:
        self.faults.set_link_latency(src, dst, ms)

    def block(self, src: int, dst: int) -> None:
        self.faults.block(src, dst)

    def unblock(self, src: int, dst: int) -> None:
        self.faults.unblock(src, dst)

    def partition(self, a: int, b: int) -> None:
        self.faults.partition(a, b)

    def heal(self) -> None:
        self.faults.heal()

    # ---- Transport ----

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        for q in self._links.values():
            q.cancel()
        self._links.clear()
        await self.inner.close()

    def set_node_address(self, node_id: int, address: str) -> None:
        self.inner.set_node_address(node_id, address)

    def _link(self, src: int, dst: int) -> _LinkQueue:
        q = self._links.get((src, dst))
        if q is None:
            q = self._links[(src, dst)] = _LinkQueue()
        return q

    def _turn(self, loop: asyncio.AbstractEventLoop) -> int:
        """An id for the current event-loop turn."""
        if not self._turn_armed:
            self._turn_armed = True
            loop.call_soon(self._end_turn)
        return self._turn_id

    def _end_turn(self) -> None:
        self._turn_id += 1
        self._turn_armed = False

    def _direct(self, dst: int) -> bool:
        """True if a send to dst may bypass the fault machinery."""
        if not self.faults.idle:
            return False
        q = self._links.get((self.node_id, dst))
        return q is None or not q

    def send_raft_message(self, node_id: int, req: raft_pb2.RaftMessageRequest) -> bool:
        if self._direct(node_id):
            return self.inner.send_raft_message(node_id, req)
        src, faults = self.node_id, self.faults
        if faults.is_blocked(src, node_id):
            self.raft_messages_blocked += 1
            return False

        def deliver() -> None:
            if faults.is_blocked(src, node_id):  # cut while in flight
                self.raft_messages_blocked += 1
                return
            self.inner.send_raft_message(node_id, req)

        loop = asyncio.get_running_loop()
        self._link(src, node_id).schedule(
            loop, self._turn(loop), faults.latency(src, node_id), deliver
        )
        return True

    async def send_batch(
        self, node_id: int, req: api_pb2.BatchRequest, timeout: float | None = None
    ) -> api_pb2.BatchResponse:
        if self._direct(node_id):
            return await self.inner.send_batch(node_id, req, timeout)
        return await self._rpc(node_id, lambda t: self.inner.send_batch(node_id, req, t), timeout, req)

    async def admin_status(self, node_id: int) -> services_pb2.NodeStatusResponse:
        if self._direct(node_id):
            return await self.inner.admin_status(node_id)
        return await self._rpc(node_id, lambda _t: self.inner.admin_status(node_id), None)

    async def bootstrap(self, node_id: int) -> services_pb2.BootstrapResponse:
        if self._direct(node_id):
            return await self.inner.bootstrap(node_id)
        return await self._rpc(node_id, lambda _t: self.inner.bootstrap(node_id), None)

    async def join(self, node_id: int, req: services_pb2.JoinRequest) -> services_pb2.JoinResponse:
        if self._direct(node_id):
            return await self.inner.join(node_id, req)
        return await self._rpc(node_id, lambda _t: self.inner.join(node_id, req), None)

    async def set_link_faults(
        self, node_id: int, faults: services_pb2.LinkFaults
    ) -> services_pb2.LinkFaults:
        # Control plane: never delayed or blocked, so a partition can be healed.
        return await self.inner.set_link_faults(node_id, faults)

    async def _rpc(
        self,
        node_id: int,
        call: Callable[[float | None], Awaitable[R]],
        timeout: float | None,
        req: api_pb2.BatchRequest | None = None,
    ) -> R:
        loop = asyncio.get_running_loop()
        src, faults = self.node_id, self.faults
        batch = req if req is not None else api_pb2.BatchRequest()
        if faults.is_blocked(src, node_id):
            raise NodeUnavailableError(
                node_id,
                f"node n{node_id} is unreachable: link n{src}->n{node_id} is blocked "
                "(injected fault; request was not delivered)",
            )
        deadline = None if timeout is None else loop.time() + timeout
        # request leg
        await self._hold(loop, src, node_id, deadline, node_id, batch, sent=False)
        if faults.is_blocked(src, node_id):
            raise NodeUnavailableError(
                node_id,
                f"node n{node_id} is unreachable: link n{src}->n{node_id} was blocked "
                "while the request was in flight (request was not delivered)",
            )
        remaining = None if deadline is None else max(0.0, deadline - loop.time())
        resp = await call(remaining)
        # response leg
        if faults.is_blocked(node_id, src):
            raise delivery_failure(
                node_id, batch, maybe_delivered=True,
                detail=f"response dropped: link n{node_id}->n{src} is blocked (injected fault)",
            )
        await self._hold(loop, node_id, src, deadline, node_id, batch, sent=True)
        if faults.is_blocked(node_id, src):
            raise delivery_failure(
                node_id, batch, maybe_delivered=True,
                detail=f"response dropped: link n{node_id}->n{src} was blocked in flight",
            )
        return resp

    async def _hold(
        self,
        loop: asyncio.AbstractEventLoop,
        src: int,
        dst: int,
        deadline: float | None,
        peer: int,
        req: api_pb2.BatchRequest,
        *,
        sent: bool,
    ) -> None:
        """Wait for this message's turn on link src→dst."""
        delay = self.faults.latency(src, dst)
        q = self._links.get((src, dst))
        if delay <= 0.0 and (q is None or not q):
            return
        fut: asyncio.Future[None] = loop.create_future()

        def release() -> None:
            if not fut.done():
                fut.set_result(None)

        self._link(src, dst).schedule(loop, self._turn(loop), delay, release)
        if deadline is None:
            await fut
            return
        try:
            await asyncio.wait_for(fut, max(0.0, deadline - loop.time()))
        except TimeoutError:
            raise delivery_failure(
                peer, req, maybe_delivered=sent, detail="deadline exceeded in injected latency"
            ) from None
