"""crdb_py.raft — the sans-IO raft core (see crdb_py/raft/raft.py and
docs/design/raft.md).

The application drives a `RawNode` over a `Storage`: tick, step messages,
propose, and process each `Ready` (persist, send, apply, advance).
"""

from crdb_py.raft.errors import (
    CompactedError,
    ProposalDroppedError,
    RaftError,
    SnapshotOutOfDateError,
    SnapshotTemporarilyUnavailable,
    UnavailableError,
)
from crdb_py.raft.raft import Config, Rng
from crdb_py.raft.rawnode import BasicStatus, PeerProgress, RawNode, Status
from crdb_py.raft.storage import MemoryStorage, Storage
from crdb_py.raft.tracker import ProgressState
from crdb_py.raft.types import (
    NONE,
    ConfChange,
    ConfChangeType,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    Ready,
    Snapshot,
    SnapshotMetadata,
    SoftState,
    StateType,
)
from crdb_py.raft.wire import decode_conf_change, encode_conf_change

__all__ = [
    "NONE",
    "BasicStatus",
    "CompactedError",
    "Config",
    "ConfChange",
    "ConfChangeType",
    "ConfState",
    "Entry",
    "EntryType",
    "HardState",
    "MemoryStorage",
    "Message",
    "MessageType",
    "PeerProgress",
    "ProgressState",
    "ProposalDroppedError",
    "RaftError",
    "RawNode",
    "Ready",
    "Rng",
    "Snapshot",
    "SnapshotMetadata",
    "SnapshotOutOfDateError",
    "SnapshotTemporarilyUnavailable",
    "SoftState",
    "StateType",
    "Status",
    "Storage",
    "UnavailableError",
    "decode_conf_change",
    "encode_conf_change",
]
