"""Value types of the raft core: entries, messages, hard state, Ready.

These are plain slotted dataclasses, not protobufs: the core creates and
reads them millions of times, and the wire form (`crdb_py/pb/raft_pb2`) is
produced only at the transport edge (see `crdb_py/raft/wire.py`).

Node ids are positive ints; 0 means "none".
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

NONE = 0


class MessageType(enum.IntEnum):
    # local messages (never sent over the wire)
    HUP = 0  # campaign
    BEAT = 1  # leader: send heartbeats
    PROP = 2  # propose entries
    CHECK_QUORUM = 3
    # network messages
    APP = 10  # append entries
    APP_RESP = 11
    VOTE = 12
    VOTE_RESP = 13
    PRE_VOTE = 14
    PRE_VOTE_RESP = 15
    SNAP = 16
    SNAP_STATUS = 17  # local: application reports snapshot success/failure
    HEARTBEAT = 18
    HEARTBEAT_RESP = 19
    UNREACHABLE = 20  # local: transport reports a peer unreachable
    TRANSFER_LEADER = 21  # `index` = the transferee
    TIMEOUT_NOW = 22


class EntryType(enum.IntEnum):
    NORMAL = 0
    CONF_CHANGE = 1


class ConfChangeType(enum.IntEnum):
    ADD_NODE = 0
    REMOVE_NODE = 1
    ADD_LEARNER_NODE = 2


class StateType(enum.IntEnum):
    FOLLOWER = 0
    PRE_CANDIDATE = 1
    CANDIDATE = 2
    LEADER = 3


@dataclass(slots=True)
class Entry:
    term: int
    index: int
    type: EntryType = EntryType.NORMAL
    data: bytes = b""


@dataclass(slots=True, frozen=True)
class HardState:
    term: int = 0
    vote: int = NONE
    commit: int = 0

    def is_empty(self) -> bool:
        return self.term == 0 and self.vote == NONE and self.commit == 0


@dataclass(slots=True, frozen=True)
class ConfState:
    voters: tuple[int, ...] = ()
    learners: tuple[int, ...] = ()


@dataclass(slots=True, frozen=True)
class ConfChange:
    type: ConfChangeType
    node_id: int
    context: bytes = b""


@dataclass(slots=True, frozen=True)
class SnapshotMetadata:
    conf_state: ConfState = field(default_factory=ConfState)
    index: int = 0
    term: int = 0


@dataclass(slots=True, frozen=True)
class Snapshot:
    data: bytes = b""
    metadata: SnapshotMetadata = field(default_factory=SnapshotMetadata)

    def is_empty(self) -> bool:
        return self.metadata.index == 0


@dataclass(slots=True)
class Message:
    type: MessageType
    to: int = NONE
    frm: int = NONE  # `from` is a keyword
    term: int = 0
    log_term: int = 0
    index: int = 0
    entries: list[Entry] = field(default_factory=list)
    commit: int = 0
    snapshot: Snapshot | None = None
    reject: bool = False
    reject_hint: int = 0
    context: bytes = b""


@dataclass(slots=True, frozen=True)
class SoftState:
    lead: int = NONE
    state: StateType = StateType.FOLLOWER


@dataclass(slots=True)
class Ready:
    """What the application must do, in this order (see docs/design/raft.md):

    1. persist `hard_state` (if not None), `entries` and `snapshot` durably
       (synced) — in one atomic write;
    2. then send `messages` (some of them depend on step 1: votes and append
       acks; the core only emits those here, in the Ready that carries the
       state they depend on, so sending after persisting is always safe);
    3. apply `committed_entries` to the state machine (in order);
    4. call `advance(ready)`.

    Readies are persisted and advanced in the order they were handed out.
    `must_sync` says whether step 1 must be synced (new entries, term or
    vote); a commit-index-only change may be written lazily.
    """

    soft_state: SoftState | None = None
    hard_state: HardState | None = None
    entries: list[Entry] = field(default_factory=list)
    snapshot: Snapshot | None = None
    committed_entries: list[Entry] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    must_sync: bool = False

    def contains_updates(self) -> bool:
        return bool(
            self.soft_state is not None
            or self.hard_state is not None
            or self.entries
            or (self.snapshot is not None and not self.snapshot.is_empty())
            or self.committed_entries
            or self.messages
        )
