"""Consensus-round accounting: the latency model of a transaction.

The unit of write latency is one *round of consensus* (a Raft proposal
replicated to a quorum, L_c). Reads served by a leaseholder cost no round
(L_read ≈ 0). Each batch the coordinator puts on the wire while the user
waits is classified by `batch_rounds`:

============================================  ======
batch                                         rounds
============================================  ======
read-only (gets, scans, refreshes)            0
pipelined point writes (async consensus)      0
anything holding a QueryIntent (a proof)      1  (waits at most for the write's round)
synchronous writes (incl. EndTxn, STAGING)    1
============================================  ======

Parts of one batch sent to several ranges run in parallel, so a batch counts
once. Work outside the critical path — heartbeats, the explicit commit after
a parallel commit, async rollback, intent resolution — is never counted.
Hence: 1PC = 1, parallel commit = 1 for the final batch (plus 0 for every
pipelined write), 2PC = 1 (prove the in-flight writes) + 1 (EndTxn). The
metric recorder fills a `TxnTrace` per transaction; the committer names the
commit path. See docs/design/txn-coordinator.md.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from crdb_py.pb import api_pb2

_WRITES = frozenset(
    {"put", "conditional_put", "increment", "delete", "delete_range", "end_txn"}
)


class CommitPath(enum.Enum):
    NONE = "none"  # not finished (or aborted before committing)
    READ_ONLY = "read-only"  # nothing to commit: the EndTxn was elided
    ONE_PC = "1pc"
    PARALLEL = "parallel"
    TWO_PC = "2pc"
    ROLLBACK = "rollback"


@dataclass(frozen=True, slots=True)
class BatchEvent:
    """One batch the coordinator sent on the critical path."""

    kinds: tuple[str, ...]
    rounds: int
    async_consensus: bool
    epoch: int


@dataclass(slots=True)
class TxnTrace:
    """What one transaction cost; `txn.trace`."""

    commit_path: CommitPath = CommitPath.NONE
    batches: list[BatchEvent] = field(default_factory=list)
    refreshes: int = 0
    failed_refreshes: int = 0
    restarts: int = 0
    staging_pushed: int = 0  # parallel commits that came back pushed (retried as 2PC)
    notes: list[str] = field(default_factory=list)

    @property
    def rounds(self) -> int:
        """Sequential consensus rounds on the critical path, all epochs."""
        return sum(b.rounds for b in self.batches)

    def rounds_in_epoch(self, epoch: int) -> int:
        return sum(b.rounds for b in self.batches if b.epoch == epoch)

    def describe(self) -> str:
        lines = [f"commit path: {self.commit_path.value}; consensus rounds: {self.rounds}"]
        for b in self.batches:
            tag = " async" if b.async_consensus else ""
            lines.append(f"  epoch {b.epoch}: {b.rounds} round(s){tag}: {', '.join(b.kinds)}")
        return "\n".join(lines)


def batch_rounds(ba: api_pb2.BatchRequest) -> int:
    """Consensus rounds `ba` costs on the critical path (table above)."""
    kinds = [r.WhichOneof("value") for r in ba.requests]
    if "query_intent" in kinds:
        return 1
    if any(k in _WRITES for k in kinds):
        return 0 if ba.header.async_consensus else 1
    return 0
