"""The link-fault table: injected one-way latency and one-way blocks.

A *link* is an ordered pair of nodes (from, to). Every message on a link is
delayed by the link's one-way latency (an override for that pair, else the
default) and dropped while the link is blocked. Faults are one-way: blocking
n1→n2 leaves n2→n1 working, which is how asymmetric partitions are built;
`partition(a, b)` blocks both directions.

The table is plain mutable state with no I/O. The `LatencyInjector` consults
it on every send, so changes take effect at once (for messages sent from then
on; messages already in flight keep their delivery time, but are dropped if
their link is blocked by the time they are due). One table may be shared by
the injectors of all nodes in a process (the simulator, in-process tests); in
a multi-process cluster each node holds its own copy, replaced as a whole by
`Admin.SetLinkFaults`.

`idle` is kept up to date on every change so the injector's fast path — no
latency, nothing blocked — costs one attribute read.
"""

from __future__ import annotations

from crdb_py.pb import services_pb2

Link = tuple[int, int]


class LinkFaultTable:
    """Default one-way latency, per-link overrides, blocked links."""

    __slots__ = ("_default_s", "_link_s", "_blocked", "idle", "version")

    def __init__(self, default_latency_ms: float = 0.0) -> None:
        self._default_s = 0.0
        self._link_s: dict[Link, float] = {}
        self._blocked: set[Link] = set()
        self.idle = True
        self.version = 0  # bumped on every change (lets callers notice updates)
        self.set_latency(default_latency_ms)

    # ---- queries ----

    def latency(self, src: int, dst: int) -> float:
        """One-way delay of src→dst in seconds."""
        return self._link_s.get((src, dst), self._default_s)

    def is_blocked(self, src: int, dst: int) -> bool:
        return (src, dst) in self._blocked

    @property
    def default_latency_ms(self) -> float:
        return self._default_s * 1000.0

    def link_latencies_ms(self) -> dict[Link, float]:
        return {k: v * 1000.0 for k, v in self._link_s.items()}

    def blocked_links(self) -> frozenset[Link]:
        return frozenset(self._blocked)

    # ---- changes ----

    def set_latency(self, ms: float) -> None:
        """Default one-way latency of every link without an override."""
        self._default_s = _check_ms(ms) / 1000.0
        self._changed()

    def set_link_latency(self, src: int, dst: int, ms: float | None) -> None:
        """One-way latency of src→dst; None removes the override."""
        if ms is None:
            self._link_s.pop((src, dst), None)
        else:
            self._link_s[(src, dst)] = _check_ms(ms) / 1000.0
        self._changed()

    def block(self, src: int, dst: int) -> None:
        """Drop everything sent on src→dst (one way)."""
        self._blocked.add((src, dst))
        self._changed()

    def unblock(self, src: int, dst: int) -> None:
        self._blocked.discard((src, dst))
        self._changed()

    def partition(self, a: int, b: int) -> None:
        """Block both directions between a and b."""
        self._blocked.update({(a, b), (b, a)})
        self._changed()

    def isolate(self, node: int, others: list[int]) -> None:
        """Cut `node` off from every node in `others`, both ways."""
        for o in others:
            if o != node:
                self._blocked.update({(node, o), (o, node)})
        self._changed()

    def heal(self) -> None:
        """Remove every block (latencies stay)."""
        self._blocked.clear()
        self._changed()

    def reset(self) -> None:
        """No latency, nothing blocked."""
        self._default_s = 0.0
        self._link_s.clear()
        self._blocked.clear()
        self._changed()

    def _changed(self) -> None:
        self.version += 1
        self.idle = (
            self._default_s == 0.0
            and not self._blocked
            and not any(v > 0.0 for v in self._link_s.values())
        )

    # ---- wire form (Admin.SetLinkFaults) ----

    def to_proto(self) -> services_pb2.LinkFaults:
        p = services_pb2.LinkFaults(default_latency_ms=self.default_latency_ms)
        for (src, dst), s in sorted(self._link_s.items()):
            p.link_latencies.add(from_node_id=src, to_node_id=dst, latency_ms=s * 1000.0)
        for src, dst in sorted(self._blocked):
            p.blocked.add(from_node_id=src, to_node_id=dst)
        return p

    def apply_proto(self, p: services_pb2.LinkFaults) -> None:
        """Replace the whole table by `p` (validated before anything changes)."""
        default_s = _check_ms(p.default_latency_ms) / 1000.0
        link_s = {
            (ll.from_node_id, ll.to_node_id): _check_ms(ll.latency_ms) / 1000.0
            for ll in p.link_latencies
        }
        self._default_s = default_s
        self._link_s = link_s
        self._blocked = {(b.from_node_id, b.to_node_id) for b in p.blocked}
        self._changed()

    def __repr__(self) -> str:
        return (
            f"LinkFaultTable(default={self.default_latency_ms}ms, "
            f"links={self.link_latencies_ms()}, blocked={sorted(self._blocked)})"
        )


def _check_ms(ms: float) -> float:
    ms = float(ms)
    if not (ms >= 0.0) or ms == float("inf"):
        raise ValueError(f"latency must be a finite number of milliseconds >= 0, got {ms}")
    return ms
