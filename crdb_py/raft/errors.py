"""Errors raised by the raft core and its log storage.

Storage errors (`CompactedError`, `UnavailableError`,
`SnapshotTemporarilyUnavailable`) are part of the `Storage` contract and are
expected in normal operation: the core catches them (e.g. to fall back to a
snapshot). `ProposalDroppedError` is returned to the proposer, who may retry
elsewhere.
"""

from __future__ import annotations

from crdb_py.util.errors import CrdbError


class RaftError(CrdbError):
    """Base of the raft errors."""


class CompactedError(RaftError):
    """The requested index is older than the storage's first index: it was
    compacted away (truncated into a snapshot)."""

    def __init__(self, msg: str = "requested index is unavailable due to compaction") -> None:
        super().__init__(msg)


class UnavailableError(RaftError):
    """The requested index is newer than the storage's last index."""

    def __init__(self, msg: str = "requested entry at index is unavailable") -> None:
        super().__init__(msg)


class SnapshotTemporarilyUnavailable(RaftError):
    """The application cannot produce a snapshot right now; the leader retries
    on a later heartbeat."""

    def __init__(self, msg: str = "snapshot is temporarily unavailable") -> None:
        super().__init__(msg)


class SnapshotOutOfDateError(RaftError):
    """A snapshot older than the storage's current one was applied/created."""

    def __init__(self, msg: str = "requested index is older than the existing snapshot") -> None:
        super().__init__(msg)


class ProposalDroppedError(RaftError):
    """The proposal was not appended: this replica is not the leader, no leader
    is known, a leadership transfer is in progress, or (for a configuration
    change) another one is still pending. Retry at the leader, later."""

    retryable = True

    def __init__(self, msg: str = "raft proposal dropped", lead: int = 0) -> None:
        self.lead = lead
        super().__init__(msg)
