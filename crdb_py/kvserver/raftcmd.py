"""The replicated command: what a leaseholder proposes to a range's Raft group.

Commands are *proposer-evaluated*: the leaseholder evaluates a batch into a
write batch (engine mutations) plus replicated side effects, and this is what
travels through Raft. Every replica applies the same bytes, so followers never
evaluate anything.

Apply-time checks make reproposals idempotent and keep stale proposals out:

* `proposer_lease_seq` — a command proposed under lease N is rejected when the
  range's lease is no longer N when it applies (the proposer lost the lease,
  so its evaluation may be stale);
* `max_lease_index` (MLI) — each proposal is assigned a fresh MLI; a command
  applies only if its MLI is above the range's *lease applied index*, which it
  then becomes. A command reproposed after its first copy applied carries the
  same MLI and is rejected: a command applies at most once.

Lease requests skip both checks (they are checked against the previous lease
instead, see `lease.py`).

Encoding: msgpack of a small dict; bytes fields hold serialized protobufs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgpack

from crdb_py.pb import data_pb2


@dataclass(slots=True)
class RaftCommand:
    id: bytes  # 8 random bytes; identifies the local proposal
    proposer_lease_seq: int = 0
    max_lease_index: int = 0
    write_batch: bytes = b""  # WriteBatch.repr()
    stats_delta: dict[str, int] = field(default_factory=dict)
    # replicated side effects
    lease: bytes = b""  # a serialized data_pb2.Lease for a lease request
    prev_lease_seq: int = -1  # lease requests: the lease sequence they replace
    lease_transfer: bool = False  # a lease request proposed by the current holder
    split_left: bytes = b""  # serialized RangeDescriptors for a split
    split_right: bytes = b""
    split_right_stats: dict[str, int] = field(default_factory=dict)
    new_desc: bytes = b""  # a replica change: the new descriptor
    # GC threshold moves, as (wall, logical); the write batch persists them,
    # these update each replica's in-memory copy at apply
    gc_threshold: tuple[int, int] | None = None
    txn_span_gc_threshold: tuple[int, int] | None = None

    def encode(self) -> bytes:
        d: dict[str, object] = {"i": self.id, "s": self.proposer_lease_seq, "m": self.max_lease_index}
        if self.write_batch:
            d["w"] = self.write_batch
        if self.stats_delta:
            d["d"] = self.stats_delta
        if self.lease:
            d["l"] = self.lease
            d["pl"] = self.prev_lease_seq
            if self.lease_transfer:
                d["lt"] = True
        if self.split_left:
            d["sl"] = self.split_left
            d["sr"] = self.split_right
            d["ss"] = self.split_right_stats
        if self.new_desc:
            d["nd"] = self.new_desc
        if self.gc_threshold is not None:
            d["gt"] = list(self.gc_threshold)
        if self.txn_span_gc_threshold is not None:
            d["gx"] = list(self.txn_span_gc_threshold)
        return msgpack.packb(d, use_bin_type=True)

    @staticmethod
    def decode(data: bytes) -> RaftCommand:
        d = msgpack.unpackb(data, raw=False)
        return RaftCommand(
            id=d["i"],
            proposer_lease_seq=d["s"],
            max_lease_index=d["m"],
            write_batch=d.get("w", b""),
            stats_delta=d.get("d", {}),
            lease=d.get("l", b""),
            prev_lease_seq=d.get("pl", -1),
            lease_transfer=d.get("lt", False),
            split_left=d.get("sl", b""),
            split_right=d.get("sr", b""),
            split_right_stats=d.get("ss", {}),
            new_desc=d.get("nd", b""),
            gc_threshold=tuple(d["gt"]) if "gt" in d else None,  # type: ignore[arg-type]
            txn_span_gc_threshold=tuple(d["gx"]) if "gx" in d else None,  # type: ignore[arg-type]
        )

    @property
    def is_lease_request(self) -> bool:
        return bool(self.lease)

    def lease_pb(self) -> data_pb2.Lease:
        return data_pb2.Lease.FromString(self.lease)


@dataclass(slots=True)
class AppliedState:
    """Persisted atomically with every applied command (raw range-ID key)."""

    raft_applied_index: int = 0
    lease_applied_index: int = 0
    stats: dict[str, int] = field(default_factory=dict)

    def encode(self) -> bytes:
        return msgpack.packb(
            [self.raft_applied_index, self.lease_applied_index, self.stats], use_bin_type=True
        )

    @staticmethod
    def decode(data: bytes) -> AppliedState:
        a, b, c = msgpack.unpackb(data, raw=False)
        return AppliedState(a, b, c)
