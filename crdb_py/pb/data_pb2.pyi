from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TransactionStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PENDING: _ClassVar[TransactionStatus]
    STAGING: _ClassVar[TransactionStatus]
    COMMITTED: _ClassVar[TransactionStatus]
    ABORTED: _ClassVar[TransactionStatus]

class ReplicaType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VOTER_FULL: _ClassVar[ReplicaType]
    LEARNER: _ClassVar[ReplicaType]
PENDING: TransactionStatus
STAGING: TransactionStatus
COMMITTED: TransactionStatus
ABORTED: TransactionStatus
VOTER_FULL: ReplicaType
LEARNER: ReplicaType

class Timestamp(_message.Message):
    __slots__ = ("wall_time", "logical")
    WALL_TIME_FIELD_NUMBER: _ClassVar[int]
    LOGICAL_FIELD_NUMBER: _ClassVar[int]
    wall_time: int
    logical: int
    def __init__(self, wall_time: _Optional[int] = ..., logical: _Optional[int] = ...) -> None: ...

class Span(_message.Message):
    __slots__ = ("key", "end_key")
    KEY_FIELD_NUMBER: _ClassVar[int]
    END_KEY_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    end_key: bytes
    def __init__(self, key: _Optional[bytes] = ..., end_key: _Optional[bytes] = ...) -> None: ...

class TxnMeta(_message.Message):
    __slots__ = ("id", "key", "epoch", "write_timestamp", "min_timestamp", "priority", "sequence", "coordinator_node_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    WRITE_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    MIN_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    COORDINATOR_NODE_ID_FIELD_NUMBER: _ClassVar[int]
    id: bytes
    key: bytes
    epoch: int
    write_timestamp: Timestamp
    min_timestamp: Timestamp
    priority: int
    sequence: int
    coordinator_node_id: int
    def __init__(self, id: _Optional[bytes] = ..., key: _Optional[bytes] = ..., epoch: _Optional[int] = ..., write_timestamp: _Optional[_Union[Timestamp, _Mapping]] = ..., min_timestamp: _Optional[_Union[Timestamp, _Mapping]] = ..., priority: _Optional[int] = ..., sequence: _Optional[int] = ..., coordinator_node_id: _Optional[int] = ...) -> None: ...

class SequencedWrite(_message.Message):
    __slots__ = ("key", "sequence")
    KEY_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    sequence: int
    def __init__(self, key: _Optional[bytes] = ..., sequence: _Optional[int] = ...) -> None: ...

class IgnoredSeqNumRange(_message.Message):
    __slots__ = ("start", "end")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    start: int
    end: int
    def __init__(self, start: _Optional[int] = ..., end: _Optional[int] = ...) -> None: ...

class Transaction(_message.Message):
    __slots__ = ("meta", "name", "status", "last_heartbeat", "read_timestamp", "global_uncertainty_limit", "lock_spans", "in_flight_writes", "ignored_seqnums", "commit_timestamp_fixed", "write_too_old")
    META_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LAST_HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    READ_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    GLOBAL_UNCERTAINTY_LIMIT_FIELD_NUMBER: _ClassVar[int]
    LOCK_SPANS_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_WRITES_FIELD_NUMBER: _ClassVar[int]
    IGNORED_SEQNUMS_FIELD_NUMBER: _ClassVar[int]
    COMMIT_TIMESTAMP_FIXED_FIELD_NUMBER: _ClassVar[int]
    WRITE_TOO_OLD_FIELD_NUMBER: _ClassVar[int]
    meta: TxnMeta
    name: str
    status: TransactionStatus
    last_heartbeat: Timestamp
    read_timestamp: Timestamp
    global_uncertainty_limit: Timestamp
    lock_spans: _containers.RepeatedCompositeFieldContainer[Span]
    in_flight_writes: _containers.RepeatedCompositeFieldContainer[SequencedWrite]
    ignored_seqnums: _containers.RepeatedCompositeFieldContainer[IgnoredSeqNumRange]
    commit_timestamp_fixed: bool
    write_too_old: bool
    def __init__(self, meta: _Optional[_Union[TxnMeta, _Mapping]] = ..., name: _Optional[str] = ..., status: _Optional[_Union[TransactionStatus, str]] = ..., last_heartbeat: _Optional[_Union[Timestamp, _Mapping]] = ..., read_timestamp: _Optional[_Union[Timestamp, _Mapping]] = ..., global_uncertainty_limit: _Optional[_Union[Timestamp, _Mapping]] = ..., lock_spans: _Optional[_Iterable[_Union[Span, _Mapping]]] = ..., in_flight_writes: _Optional[_Iterable[_Union[SequencedWrite, _Mapping]]] = ..., ignored_seqnums: _Optional[_Iterable[_Union[IgnoredSeqNumRange, _Mapping]]] = ..., commit_timestamp_fixed: _Optional[bool] = ..., write_too_old: _Optional[bool] = ...) -> None: ...

class TransactionRecord(_message.Message):
    __slots__ = ("meta", "status", "last_heartbeat", "lock_spans", "in_flight_writes", "ignored_seqnums")
    META_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LAST_HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    LOCK_SPANS_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_WRITES_FIELD_NUMBER: _ClassVar[int]
    IGNORED_SEQNUMS_FIELD_NUMBER: _ClassVar[int]
    meta: TxnMeta
    status: TransactionStatus
    last_heartbeat: Timestamp
    lock_spans: _containers.RepeatedCompositeFieldContainer[Span]
    in_flight_writes: _containers.RepeatedCompositeFieldContainer[SequencedWrite]
    ignored_seqnums: _containers.RepeatedCompositeFieldContainer[IgnoredSeqNumRange]
    def __init__(self, meta: _Optional[_Union[TxnMeta, _Mapping]] = ..., status: _Optional[_Union[TransactionStatus, str]] = ..., last_heartbeat: _Optional[_Union[Timestamp, _Mapping]] = ..., lock_spans: _Optional[_Iterable[_Union[Span, _Mapping]]] = ..., in_flight_writes: _Optional[_Iterable[_Union[SequencedWrite, _Mapping]]] = ..., ignored_seqnums: _Optional[_Iterable[_Union[IgnoredSeqNumRange, _Mapping]]] = ...) -> None: ...

class Intent(_message.Message):
    __slots__ = ("key", "txn")
    KEY_FIELD_NUMBER: _ClassVar[int]
    TXN_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    txn: TxnMeta
    def __init__(self, key: _Optional[bytes] = ..., txn: _Optional[_Union[TxnMeta, _Mapping]] = ...) -> None: ...

class LockUpdate(_message.Message):
    __slots__ = ("span", "txn", "status", "ignored_seqnums")
    SPAN_FIELD_NUMBER: _ClassVar[int]
    TXN_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    IGNORED_SEQNUMS_FIELD_NUMBER: _ClassVar[int]
    span: Span
    txn: TxnMeta
    status: TransactionStatus
    ignored_seqnums: _containers.RepeatedCompositeFieldContainer[IgnoredSeqNumRange]
    def __init__(self, span: _Optional[_Union[Span, _Mapping]] = ..., txn: _Optional[_Union[TxnMeta, _Mapping]] = ..., status: _Optional[_Union[TransactionStatus, str]] = ..., ignored_seqnums: _Optional[_Iterable[_Union[IgnoredSeqNumRange, _Mapping]]] = ...) -> None: ...

class Value(_message.Message):
    __slots__ = ("raw_bytes", "timestamp")
    RAW_BYTES_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    raw_bytes: bytes
    timestamp: Timestamp
    def __init__(self, raw_bytes: _Optional[bytes] = ..., timestamp: _Optional[_Union[Timestamp, _Mapping]] = ...) -> None: ...

class SequencedValue(_message.Message):
    __slots__ = ("sequence", "value", "deleted")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    value: bytes
    deleted: bool
    def __init__(self, sequence: _Optional[int] = ..., value: _Optional[bytes] = ..., deleted: _Optional[bool] = ...) -> None: ...

class MVCCMetadata(_message.Message):
    __slots__ = ("txn", "timestamp", "deleted", "key_bytes", "val_bytes", "raw_bytes", "intent_history")
    TXN_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    KEY_BYTES_FIELD_NUMBER: _ClassVar[int]
    VAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    RAW_BYTES_FIELD_NUMBER: _ClassVar[int]
    INTENT_HISTORY_FIELD_NUMBER: _ClassVar[int]
    txn: TxnMeta
    timestamp: Timestamp
    deleted: bool
    key_bytes: int
    val_bytes: int
    raw_bytes: bytes
    intent_history: _containers.RepeatedCompositeFieldContainer[SequencedValue]
    def __init__(self, txn: _Optional[_Union[TxnMeta, _Mapping]] = ..., timestamp: _Optional[_Union[Timestamp, _Mapping]] = ..., deleted: _Optional[bool] = ..., key_bytes: _Optional[int] = ..., val_bytes: _Optional[int] = ..., raw_bytes: _Optional[bytes] = ..., intent_history: _Optional[_Iterable[_Union[SequencedValue, _Mapping]]] = ...) -> None: ...

class MVCCStats(_message.Message):
    __slots__ = ("live_bytes", "live_count", "key_bytes", "key_count", "val_bytes", "val_count", "intent_count", "intent_bytes", "gc_bytes_age", "last_update_nanos")
    LIVE_BYTES_FIELD_NUMBER: _ClassVar[int]
    LIVE_COUNT_FIELD_NUMBER: _ClassVar[int]
    KEY_BYTES_FIELD_NUMBER: _ClassVar[int]
    KEY_COUNT_FIELD_NUMBER: _ClassVar[int]
    VAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    VAL_COUNT_FIELD_NUMBER: _ClassVar[int]
    INTENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    INTENT_BYTES_FIELD_NUMBER: _ClassVar[int]
    GC_BYTES_AGE_FIELD_NUMBER: _ClassVar[int]
    LAST_UPDATE_NANOS_FIELD_NUMBER: _ClassVar[int]
    live_bytes: int
    live_count: int
    key_bytes: int
    key_count: int
    val_bytes: int
    val_count: int
    intent_count: int
    intent_bytes: int
    gc_bytes_age: int
    last_update_nanos: int
    def __init__(self, live_bytes: _Optional[int] = ..., live_count: _Optional[int] = ..., key_bytes: _Optional[int] = ..., key_count: _Optional[int] = ..., val_bytes: _Optional[int] = ..., val_count: _Optional[int] = ..., intent_count: _Optional[int] = ..., intent_bytes: _Optional[int] = ..., gc_bytes_age: _Optional[int] = ..., last_update_nanos: _Optional[int] = ...) -> None: ...

class ReplicaDescriptor(_message.Message):
    __slots__ = ("node_id", "store_id", "replica_id", "type")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    REPLICA_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    node_id: int
    store_id: int
    replica_id: int
    type: ReplicaType
    def __init__(self, node_id: _Optional[int] = ..., store_id: _Optional[int] = ..., replica_id: _Optional[int] = ..., type: _Optional[_Union[ReplicaType, str]] = ...) -> None: ...

class RangeDescriptor(_message.Message):
    __slots__ = ("range_id", "start_key", "end_key", "replicas", "next_replica_id", "generation")
    RANGE_ID_FIELD_NUMBER: _ClassVar[int]
    START_KEY_FIELD_NUMBER: _ClassVar[int]
    END_KEY_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    NEXT_REPLICA_ID_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    range_id: int
    start_key: bytes
    end_key: bytes
    replicas: _containers.RepeatedCompositeFieldContainer[ReplicaDescriptor]
    next_replica_id: int
    generation: int
    def __init__(self, range_id: _Optional[int] = ..., start_key: _Optional[bytes] = ..., end_key: _Optional[bytes] = ..., replicas: _Optional[_Iterable[_Union[ReplicaDescriptor, _Mapping]]] = ..., next_replica_id: _Optional[int] = ..., generation: _Optional[int] = ...) -> None: ...

class Lease(_message.Message):
    __slots__ = ("start", "expiration", "replica", "sequence", "term")
    START_FIELD_NUMBER: _ClassVar[int]
    EXPIRATION_FIELD_NUMBER: _ClassVar[int]
    REPLICA_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TERM_FIELD_NUMBER: _ClassVar[int]
    start: Timestamp
    expiration: Timestamp
    replica: ReplicaDescriptor
    sequence: int
    term: int
    def __init__(self, start: _Optional[_Union[Timestamp, _Mapping]] = ..., expiration: _Optional[_Union[Timestamp, _Mapping]] = ..., replica: _Optional[_Union[ReplicaDescriptor, _Mapping]] = ..., sequence: _Optional[int] = ..., term: _Optional[int] = ...) -> None: ...

class NodeDescriptor(_message.Message):
    __slots__ = ("node_id", "address", "sql_address")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    SQL_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    node_id: int
    address: str
    sql_address: str
    def __init__(self, node_id: _Optional[int] = ..., address: _Optional[str] = ..., sql_address: _Optional[str] = ...) -> None: ...
