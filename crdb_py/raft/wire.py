"""Conversion between the core's value types and their protobuf wire form
(`crdb_py/pb/raft_pb2`). Used at the transport edge and for encoding
configuration changes into log entries; the core itself never touches
protobufs on its hot paths.

Every raft message crossing a node boundary goes through `message_to_proto`
and `message_from_proto`, so they are written for speed: fields are
assigned one by one (a proto3 scalar left at zero is the same as one never
set), enum values are looked up in a dict instead of calling the enum class,
and the value types are built positionally.
"""

from __future__ import annotations

from crdb_py.pb import raft_pb2
from crdb_py.raft.types import (
    ConfChange,
    ConfChangeType,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    Snapshot,
    SnapshotMetadata,
)

_MESSAGE_TYPES = {int(t): t for t in MessageType}
_ENTRY_TYPES = {int(t): t for t in EntryType}


def _message_type(v: int) -> MessageType:
    t = _MESSAGE_TYPES.get(v)
    return t if t is not None else MessageType(v)  # an unknown value raises ValueError


def _entry_type(v: int) -> EntryType:
    t = _ENTRY_TYPES.get(v)
    return t if t is not None else EntryType(v)


def entry_to_proto(e: Entry) -> raft_pb2.Entry:
    return raft_pb2.Entry(term=e.term, index=e.index, type=int(e.type), data=e.data)


def entry_from_proto(p: raft_pb2.Entry) -> Entry:
    return Entry(p.term, p.index, _entry_type(p.type), p.data)


def hard_state_to_proto(hs: HardState) -> raft_pb2.HardState:
    return raft_pb2.HardState(term=hs.term, vote=hs.vote, commit=hs.commit)


def hard_state_from_proto(p: raft_pb2.HardState) -> HardState:
    return HardState(term=p.term, vote=p.vote, commit=p.commit)


def conf_state_to_proto(cs: ConfState) -> raft_pb2.ConfState:
    return raft_pb2.ConfState(voters=list(cs.voters), learners=list(cs.learners))


def conf_state_from_proto(p: raft_pb2.ConfState) -> ConfState:
    return ConfState(voters=tuple(p.voters), learners=tuple(p.learners))


def snapshot_to_proto(s: Snapshot) -> raft_pb2.Snapshot:
    md = s.metadata
    return raft_pb2.Snapshot(
        data=s.data,
        metadata=raft_pb2.SnapshotMetadata(
            conf_state=conf_state_to_proto(md.conf_state), index=md.index, term=md.term
        ),
    )


def snapshot_from_proto(p: raft_pb2.Snapshot) -> Snapshot:
    md = p.metadata
    return Snapshot(
        data=p.data,
        metadata=SnapshotMetadata(
            conf_state=conf_state_from_proto(md.conf_state), index=md.index, term=md.term
        ),
    )


def conf_change_to_proto(cc: ConfChange) -> raft_pb2.ConfChange:
    return raft_pb2.ConfChange(type=int(cc.type), node_id=cc.node_id, context=cc.context)


def conf_change_from_proto(p: raft_pb2.ConfChange) -> ConfChange:
    return ConfChange(type=ConfChangeType(p.type), node_id=p.node_id, context=p.context)


def encode_conf_change(cc: ConfChange) -> bytes:
    """The data of a CONF_CHANGE log entry."""
    return conf_change_to_proto(cc).SerializeToString()


def decode_conf_change(data: bytes) -> ConfChange:
    """Decode the data of a CONF_CHANGE log entry (the app calls this when it
    applies one, then `RawNode.apply_conf_change`)."""
    p = raft_pb2.ConfChange()
    p.ParseFromString(data)
    return conf_change_from_proto(p)


def message_to_proto(m: Message) -> raft_pb2.Message:
    p = raft_pb2.Message()
    p.type = m.type
    p.to = m.to
    setattr(p, "from", m.frm)  # `from` is a Python keyword
    p.term = m.term
    p.log_term = m.log_term
    p.index = m.index
    p.commit = m.commit
    if m.reject:
        p.reject = True
    if m.reject_hint:
        p.reject_hint = m.reject_hint
    if m.context:
        p.context = m.context
    if m.entries:
        add = p.entries.add
        for e in m.entries:
            add(term=e.term, index=e.index, type=e.type, data=e.data)
    if m.snapshot is not None:
        p.snapshot.CopyFrom(snapshot_to_proto(m.snapshot))
    return p


def message_from_proto(p: raft_pb2.Message) -> Message:
    ents = p.entries
    return Message(
        _message_type(p.type),
        p.to,
        getattr(p, "from"),
        p.term,
        p.log_term,
        p.index,
        [Entry(e.term, e.index, _entry_type(e.type), e.data) for e in ents] if ents else [],
        p.commit,
        snapshot_from_proto(p.snapshot) if p.HasField("snapshot") else None,
        p.reject,
        p.reject_hint,
        p.context,
    )


def message_to_bytes(m: Message) -> bytes:
    return message_to_proto(m).SerializeToString()


def message_from_bytes(b: bytes) -> Message:
    p = raft_pb2.Message()
    p.ParseFromString(b)
    return message_from_proto(p)
