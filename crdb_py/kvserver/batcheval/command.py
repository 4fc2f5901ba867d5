"""The command registry: how a KV request is declared and evaluated.

Each KV command lives in its own file `cmd_<name>.py` and registers one
`Command` under the name of its field in `api_pb2.RequestUnion` (`"get"`,
`"put"`, `"end_txn"`, ...). A command is two pure functions:

* `declare_keys(desc, header, req, spans)` adds the spans it will read and
  write to a `SpanSet` (latching and the latch-coverage assertion use it);
* `evaluate(cargs, req, resp)` reads and writes through `cargs.rw` (an engine
  for read-only batches, a readable write batch for writes), fills the
  response message in place, and returns a `Result` of side effects for the
  replica to act on. It never touches raft, the network or the clock except
  through `cargs`.

Flags say how the replica runs the command: `is_write` (proposed through
raft), `is_read`, `is_range` (a span request), `is_admin` (handled by the
replica directly), `is_txn` (requires a transaction), `updates_tscache`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from crdb_py.kvserver.spanset import SpanSet
from crdb_py.pb import api_pb2, data_pb2
from crdb_py.storage.engine import ReadWriter
from crdb_py.storage.stats import MVCCStats
from crdb_py.util.hlc import Timestamp

if TYPE_CHECKING:
    from crdb_py.kvserver.tscache import TimestampCache


@dataclass(slots=True)
class CommandArgs:
    """What evaluation of one request may use."""

    rw: ReadWriter
    header: api_pb2.BatchHeader
    timestamp: Timestamp  # the batch's read/write timestamp (txn: read ts; writes go at txn.write_timestamp)
    desc: data_pb2.RangeDescriptor
    stats: MVCCStats  # the batch's stats delta, updated in place by writes
    now: Timestamp  # the leaseholder's clock at evaluation
    txn: data_pb2.Transaction | None = None
    uncertainty_limit: Timestamp | None = None
    max_keys: int = 0  # remaining across the batch; 0 = unlimited
    target_bytes: int = 0
    # the replica's timestamp cache, for reading only (`get_max`); updates go
    # through `Result.tscache_bumps` so they happen only if the batch applies
    tscache: TimestampCache | None = None
    # injected by the replica for commands that need more (e.g. the txn
    # record commands ask for the abort-span / tscache through these)
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Result:
    """Side effects of evaluating a request, beyond its writes."""

    # intents met by an inconsistent read, or written and to be resolved
    encountered_intents: list[data_pb2.Intent] = field(default_factory=list)
    # intents to resolve asynchronously once the batch applied (txn commit)
    resolve_intents: list[data_pb2.LockUpdate] = field(default_factory=list)
    # replicated side effects proposed with the write batch
    split: tuple[data_pb2.RangeDescriptor, data_pb2.RangeDescriptor] | None = None
    lease: data_pb2.Lease | None = None
    # local side effects after apply (txn record updates for waiters etc.)
    updated_txn: data_pb2.Transaction | None = None
    # intents this batch resolved itself (the lock table releases them after apply)
    resolved_locks: list[data_pb2.LockUpdate] = field(default_factory=list)
    # (key, end_key or b"", ts): spans to record in the timestamp cache at ts
    # with no txn id (QueryIntent's prevention), applied before latches drop
    tscache_bumps: list[tuple[bytes, bytes, Timestamp]] = field(default_factory=list)
    # replicated GC threshold moves (GCRequest): every replica updates its
    # in-memory copy when the command applies
    gc_threshold: Timestamp | None = None
    txn_span_gc_threshold: Timestamp | None = None
    num_keys: int = 0
    num_bytes: int = 0

    def merge(self, o: Result) -> None:
        self.encountered_intents.extend(o.encountered_intents)
        self.resolve_intents.extend(o.resolve_intents)
        self.resolved_locks.extend(o.resolved_locks)
        self.tscache_bumps.extend(o.tscache_bumps)
        if o.split is not None:
            self.split = o.split
        if o.lease is not None:
            self.lease = o.lease
        if o.updated_txn is not None:
            self.updated_txn = o.updated_txn
        if o.gc_threshold is not None:
            self.gc_threshold = o.gc_threshold
        if o.txn_span_gc_threshold is not None:
            self.txn_span_gc_threshold = o.txn_span_gc_threshold
        self.num_keys += o.num_keys
        self.num_bytes += o.num_bytes


DeclareFn = Callable[[data_pb2.RangeDescriptor, api_pb2.BatchHeader, Any, SpanSet], None]
EvalFn = Callable[[CommandArgs, Any, Any], Result]


@dataclass(frozen=True, slots=True)
class Command:
    name: str  # the RequestUnion field name
    declare_keys: DeclareFn
    evaluate: EvalFn
    is_write: bool = False
    is_read: bool = False
    is_range: bool = False
    is_admin: bool = False
    is_txn: bool = False  # requires header.txn
    updates_tscache: bool = False  # reads recorded in the timestamp cache


REGISTRY: dict[str, Command] = {}


def register(cmd: Command) -> Command:
    if cmd.name in REGISTRY:
        raise ValueError(f"command {cmd.name!r} registered twice")
    if cmd.name not in api_pb2.RequestUnion.DESCRIPTOR.fields_by_name:
        raise ValueError(f"{cmd.name!r} is not a RequestUnion field")
    REGISTRY[cmd.name] = cmd
    return cmd


def lookup(name: str) -> Command:
    try:
        return REGISTRY[name]
    except KeyError:
        from crdb_py.util.errors import InvalidArgumentError

        raise InvalidArgumentError(f"unsupported request {name!r}") from None
