from crdb_py.pb import data_pb2 as _data_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReadConsistency(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONSISTENT: _ClassVar[ReadConsistency]
    INCONSISTENT: _ClassVar[ReadConsistency]

class PushTxnType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PUSH_TIMESTAMP: _ClassVar[PushTxnType]
    PUSH_ABORT: _ClassVar[PushTxnType]
    PUSH_TOUCH: _ClassVar[PushTxnType]
CONSISTENT: ReadConsistency
INCONSISTENT: ReadConsistency
PUSH_TIMESTAMP: PushTxnType
PUSH_ABORT: PushTxnType
PUSH_TOUCH: PushTxnType

class RequestHeader(_message.Message):
    __slots__ = ("key", "end_key", "sequence")
    KEY_FIELD_NUMBER: _ClassVar[int]
    END_KEY_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    end_key: bytes
    sequence: int
    def __init__(self, key: _Optional[bytes] = ..., end_key: _Optional[bytes] = ..., sequence: _Optional[int] = ...) -> None: ...

class ResponseHeader(_message.Message):
    __slots__ = ("resume_span", "num_keys", "num_bytes")
    RESUME_SPAN_FIELD_NUMBER: _ClassVar[int]
    NUM_KEYS_FIELD_NUMBER: _ClassVar[int]
    NUM_BYTES_FIELD_NUMBER: _ClassVar[int]
    resume_span: _data_pb2.Span
    num_keys: int
    num_bytes: int
    def __init__(self, resume_span: _Optional[_Union[_data_pb2.Span, _Mapping]] = ..., num_keys: _Optional[int] = ..., num_bytes: _Optional[int] = ...) -> None: ...

class KeyValue(_message.Message):
    __slots__ = ("key", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    value: _data_pb2.Value
    def __init__(self, key: _Optional[bytes] = ..., value: _Optional[_Union[_data_pb2.Value, _Mapping]] = ...) -> None: ...

class GetRequest(_message.Message):
    __slots__ = ("header",)
    HEADER_FIELD_NUMBER: _ClassVar[int]
    header: RequestHeader
    def __init__(self, header: _Optional[_Union[RequestHeader, _Mapping]] = ...) -> None: ...

class GetResponse(_message.Message):
    __slots__ = ("header", "value")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    header: ResponseHeader
    value: _data_pb2.Value
    def __init__(self, header: _Optional[_Union[ResponseHeader, _Mapping]] = ..., value: _Optional[_Union[_data_pb2.Value, _Mapping]] = ...) -> None: ...

class ScanRequest(_message.Message):
    __slots__ = ("header",)
    HEADER_FIELD_NUMBER: _ClassVar[int]
    header: RequestHeader
    def __init__(self, header: _Optional[_Union[RequestHeader, _Mapping]] = ...) -> None: ...

class ScanResponse(_message.Message):
    __slots__ = ("header", "rows")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    header: ResponseHeader
    rows: _containers.RepeatedCompositeFieldContainer[KeyValue]
    def __init__(self, header: _Optional[_Union[ResponseHeader, _Mapping]] = ..., rows: _Optional[_Iterable[_Union[KeyValue, _Mapping]]] = ...) -> None: ...

class ReverseScanRequest(_message.Message):
    __slots__ = ("header",)
    HEADER_FIELD_NUMBER: _ClassVar[int]
    header: RequestHeader
    def __init__(self, header: _Optional[_Union[RequestHeader, _Mapping]] = ...) -> None: ...

class ReverseScanResponse(_message.Message):
    __slots__ = ("header", "rows")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    header: ResponseHeader
    rows: _containers.RepeatedCompositeFieldContainer[KeyValue]
    def __init__(self, header: _Optional[_Union[ResponseHeader, _Mapping]] = ..., rows: _Optional[_Iterable[_Union[KeyValue, _Mapping]]] = ...) -> None: ...

class PutRequest(_message.Message):
    __slots__ = ("header", "value", "blind")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    BLIND_FIELD_NUMBER: _ClassVar[int]
    header: RequestHeader
    value: bytes
    blind: bool
    def __init__(self, header: _Optional[_Union[RequestHeader, _Mapping]] = ..., value: _Optional[bytes] = ..., blind: _Optional[bool] = ...) -> None: ...

class PutResponse(_message.Message):
    __slots__ = ("header",)
    HEADER_FIELD_NUMBER: _ClassVar[int]
    header: ResponseHeader
    def __init__(self, header: _Optional[_Union[ResponseHeader, _Mapping]] = ...) -> None: ...

class ConditionalPutRequest(_message.Message):
    __slots__ = ("header", "value", "exp_value", "exp_exists", "allow_if_does_not_exist")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    EXP_VALUE_FIELD_NUMBER: _ClassVar[int]
    EXP_EXISTS_FIELD_NUMBER: _ClassVar[int]
    ALLOW_IF_DOES_NOT_EXIST_FIELD_NUMBER: _ClassVar[int]
    header: RequestHeader
    value: bytes
    exp_value: bytes
    exp_exists: bool
    allow_if_does_not_exist: bool
    def __init__(self, header: _Optional[_Union[RequestHeader, _Mapping]] = ..., value: _Optional[bytes] = ..., exp_value: _Optional[bytes] = ..., exp_exists: _Optional[bool] = ..., allow_if_does_not_exist: _Optional[bool] = ...) -> None: ...

class ConditionalPutResponse(_message.Message):
    __slots__ = ("header",)
    HEADER_FIELD_NUMBER: _ClassVar[int]
    header: ResponseHeader
    def __init__(self, header: _Optional[_Union[ResponseHeader, _Mapping]] = ...) -> None: ...

class IncrementRequest(_message.Message):
    __slots__ = ("header", "increment")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    INCREMENT_FIELD_NUMBER: _ClassVar[int]
    header: RequestHeader
    increment: int
    def __init__(self, header: _Optional[_Union[RequestHeader, _Mapping]] = ..., increment: _Optional[int] = ...) -> None: ...

class IncrementResponse(_message.Message):
    __slots__ = ("header", "new_value")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    NEW_VALUE_FIELD_NUMBER: _ClassVar[int]
    header: ResponseHeader
    new_value: int
    def __init__(self, header: _Optional[_Union[ResponseHeader, _Mapping]] = ..., new_value: _Optional[int] = ...) -> None: ...

class DeleteRequest(_message.Message):
    __slots__ = ("header",)
    HEADER_FIELD_NUMBER: _ClassVar[int]
    header: RequestHeader
    def __init__(self, header: _Optional[_Union[RequestHeader, _Mapping]] = ...) -> None: ...

class DeleteResponse(_message.Message):
    __slots__ = ("header", "found_key")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    FOUND_KEY_FIELD_NUMBER: _ClassVar[int]
    header: ResponseHeader
    found_key: bool
    def __init__(self, header: _Optional[_Union[ResponseHeader, _Mapping]] = ..., found_key: _Optional[bool] = ...) -> None: ...

class DeleteRangeRequest(_message.Message):
    __slots__ = ("header", "return_keys")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    RETURN_KEYS_FIELD_NUMBER: _ClassVar[int]
    header: RequestHeader
    return_keys: bool
    def __init__(self, header: _Optional[_Union[RequestHeader, _Mapping]] = ..., return_keys: _Optional[bool] = ...) -> None: ...

class DeleteRangeResponse(_message.Message):
    __slots__ = ("header", "keys")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    header: ResponseHeader
    keys: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, header: _Optional[_Union[ResponseHeader, _Mapping]] = ..., keys: _Optional[_Iterable[bytes]] = ...) -> None: ...

class HeartbeatTxnRequest(_message.Message):
    __slots__ = ("header", "now")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    NOW_FIELD_NUMBER: _ClassVar[int]
    header: RequestHeader
    now: _data_pb2.Timestamp
    def __init__(self, header: _Optional[_Union[RequestHeader, _Mapping]] = ..., now: _Optional[_Union[_data_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class HeartbeatTxnResponse(_message.Message):
    __slots__ = ("header", "txn")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    TXN_FIELD_NUMBER: _ClassVar[int]
    header: ResponseHeader
    txn: _data_pb2.Transaction
    def __init__(self, header: _Optional[_Union[ResponseHeader, _Mapping]] = ..., txn: _Optional[_Union[_data_pb2.Transaction, _Mapping]] = ...) -> None: ...

class EndTxnRequest(_message.Message):
    __slots__ = ("header", "commit", "lock_spans", "in_flight_writes", "deadline", "require_1pc", "poison")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    LOCK_SPANS_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_WRITES_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_FIELD_NUMBER: _ClassVar[int]
    REQUIRE_1PC_FIELD_NUMBER: _ClassVar[int]
    POISON_FIELD_NUMBER: _ClassVar[int]
    header: RequestHeader
    commit: bool
    lock_spans: _containers.RepeatedCompositeFieldContainer[_data_pb2.Span]
    in_flight_writes: _containers.RepeatedCompositeFieldContainer[_data_pb2.SequencedWrite]
    deadline: _data_pb2.Timestamp
    require_1pc: bool
    poison: bool
    def __init__(self, header: _Optional[_Union[RequestHeader, _Mapping]] = ..., commit: _Optional[bool] = ..., lock_spans: _Optional[_Iterable[_Union[_data_pb2.Span, _Mapping]]] = ..., in_flight_writes: _Optional[_Iterable[_Union[_data_pb2.SequencedWrite, _Mapping]]] = ..., deadline: _Optional[_Union[_data_pb2.Timestamp, _Mapping]] = ..., require_1pc: _Optional[bool] = ..., poison: _Optional[bool] = ...) -> None: ...

class EndTxnResponse(_message.Message):
    __slots__ = ("header", "one_phase_commit")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    ONE_PHASE_COMMIT_FIELD_NUMBER: _ClassVar[int]
    header: ResponseHeader
    one_phase_commit: bool
    def __init__(self, header: _Optional[_Union[ResponseHeader, _Mapping]] = ..., one_phase_commit: _Optional[bool] = ...) -> None: ...

class PushTxnRequest(_message.Message):
    __slots__ = ("header", "pusher_txn", "pushee_txn", "push_to", "push_type", "force")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    PUSHER_TXN_FIELD_NUMBER: _ClassVar[int]
    PUSHEE_TXN_FIELD_NUMBER: _ClassVar[int]
    PUSH_TO_FIELD_NUMBER: _ClassVar[int]
    PUSH_TYPE_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    header: RequestHeader
    pusher_txn: _data_pb2.Transaction
    pushee_txn: _data_pb2.TxnMeta
    push_to: _data_pb2.Timestamp
    push_type: PushTxnType
    force: bool
    def __init__(self, header: _Optional[_Union[RequestHeader, _Mapping]] = ..., pusher_txn: _Optional[_Union[_data_pb2.Transaction, _Mapping]] = ..., pushee_txn: _Optional[_Union[_data_pb2.TxnMeta, _Mapping]] = ..., push_to: _Optional[_Union[_data_pb2.Timestamp, _Mapping]] = ..., push_type: _Optional[_Union[PushTxnType, str]] = ..., force: _Optional[bool] = ...) -> None: ...

class PushTxnResponse(_message.Message):
    __slots__ = ("header", "pushee_txn")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    PUSHEE_TXN_FIELD_NUMBER: _ClassVar[int]
    header: ResponseHeader
    pushee_txn: _data_pb2.Transaction
    def __init__(self, header: _Optional[_Union[ResponseHeader, _Mapping]] = ..., pushee_txn: _Optional[_Union[_data_pb2.Transaction, _Mapping]] = ...) -> None: ...

class QueryTxnRequest(_message.Message):
    __slots__ = ("header", "txn", "wait_for_update")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    TXN_FIELD_NUMBER: _ClassVar[int]
    WAIT_FOR_UPDATE_FIELD_NUMBER: _ClassVar[int]
    header: RequestHeader
    txn: _data_pb2.TxnMeta
    wait_for_update: bool
    def __init__(self, header: _Optional[_Union[RequestHeader, _Mapping]] = ..., txn: _Optional[_Union[_data_pb2.TxnMeta, _Mapping]] = ..., wait_for_update: _Optional[bool] = ...) -> None: ...

class QueryTxnResponse(_message.Message):
    __slots__ = ("header", "queried_txn", "txn_record_exists", "waiting_txns")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    QUERIED_TXN_FIELD_NUMBER: _ClassVar[int]
    TXN_RECORD_EXISTS_FIELD_NUMBER: _ClassVar[int]
    WAITING_TXNS_FIELD_NUMBER: _ClassVar[int]
    header: ResponseHeader
    queried_txn: _data_pb2.Transaction
    txn_record_exists: bool
    waiting_txns: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, header: _Optional[_Union[ResponseHeader, _Mapping]] = ..., queried_txn: _Optional[_Union[_data_pb2.Transaction, _Mapping]] = ..., txn_record_exists: _Optional[bool] = ..., waiting_txns: _Optional[_Iterable[bytes]] = ...) -> None: ...

class QueryIntentRequest(_message.Message):
    __slots__ = ("header", "txn", "error_if_missing")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    TXN_FIELD_NUMBER: _ClassVar[int]
    ERROR_IF_MISSING_FIELD_NUMBER: _ClassVar[int]
    header: RequestHeader
    txn: _data_pb2.TxnMeta
    error_if_missing: bool
    def __init__(self, header: _Optional[_Union[RequestHeader, _Mapping]] = ..., txn: _Optional[_Union[_data_pb2.TxnMeta, _Mapping]] = ..., error_if_missing: _Optional[bool] = ...) -> None: ...

class QueryIntentResponse(_message.Message):
    __slots__ = ("header", "found_intent")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    FOUND_INTENT_FIELD_NUMBER: _ClassVar[int]
    header: ResponseHeader
    found_intent: bool
    def __init__(self, header: _Optional[_Union[ResponseHeader, _Mapping]] = ..., found_intent: _Optional[bool] = ...) -> None: ...

class RecoverTxnRequest(_message.Message):
    __slots__ = ("header", "txn", "implicitly_committed")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    TXN_FIELD_NUMBER: _ClassVar[int]
    IMPLICITLY_COMMITTED_FIELD_NUMBER: _ClassVar[int]
    header: RequestHeader
    txn: _data_pb2.TxnMeta
    implicitly_committed: bool
    def __init__(self, header: _Optional[_Union[RequestHeader, _Mapping]] = ..., txn: _Optional[_Union[_data_pb2.TxnMeta, _Mapping]] = ..., implicitly_committed: _Optional[bool] = ...) -> None: ...

class RecoverTxnResponse(_message.Message):
    __slots__ = ("header", "recovered_txn")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    RECOVERED_TXN_FIELD_NUMBER: _ClassVar[int]
    header: ResponseHeader
    recovered_txn: _data_pb2.Transaction
    def __init__(self, header: _Optional[_Union[ResponseHeader, _Mapping]] = ..., recovered_txn: _Optional[_Union[_data_pb2.Transaction, _Mapping]] = ...) -> None: ...

class ResolveIntentRequest(_message.Message):
    __slots__ = ("header", "intent_txn", "status", "ignored_seqnums", "poison")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    INTENT_TXN_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    IGNORED_SEQNUMS_FIELD_NUMBER: _ClassVar[int]
    POISON_FIELD_NUMBER: _ClassVar[int]
    header: RequestHeader
    intent_txn: _data_pb2.TxnMeta
    status: _data_pb2.TransactionStatus
    ignored_seqnums: _containers.RepeatedCompositeFieldContainer[_data_pb2.IgnoredSeqNumRange]
    poison: bool
    def __init__(self, header: _Optional[_Union[RequestHeader, _Mapping]] = ..., intent_txn: _Optional[_Union[_data_pb2.TxnMeta, _Mapping]] = ..., status: _Optional[_Union[_data_pb2.TransactionStatus, str]] = ..., ignored_seqnums: _Optional[_Iterable[_Union[_data_pb2.IgnoredSeqNumRange, _Mapping]]] = ..., poison: _Optional[bool] = ...) -> None: ...

class ResolveIntentResponse(_message.Message):
    __slots__ = ("header",)
    HEADER_FIELD_NUMBER: _ClassVar[int]
    header: ResponseHeader
    def __init__(self, header: _Optional[_Union[ResponseHeader, _Mapping]] = ...) -> None: ...

class ResolveIntentRangeRequest(_message.Message):
    __slots__ = ("header", "intent_txn", "status", "ignored_seqnums", "poison")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    INTENT_TXN_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    IGNORED_SEQNUMS_FIELD_NUMBER: _ClassVar[int]
    POISON_FIELD_NUMBER: _ClassVar[int]
    header: RequestHeader
    intent_txn: _data_pb2.TxnMeta
    status: _data_pb2.TransactionStatus
    ignored_seqnums: _containers.RepeatedCompositeFieldContainer[_data_pb2.IgnoredSeqNumRange]
    poison: bool
    def __init__(self, header: _Optional[_Union[RequestHeader, _Mapping]] = ..., intent_txn: _Optional[_Union[_data_pb2.TxnMeta, _Mapping]] = ..., status: _Optional[_Union[_data_pb2.TransactionStatus, str]] = ..., ignored_seqnums: _Optional[_Iterable[_Union[_data_pb2.IgnoredSeqNumRange, _Mapping]]] = ..., poison: _Optional[bool] = ...) -> None: ...

class ResolveIntentRangeResponse(_message.Message):
    __slots__ = ("header",)
    HEADER_FIELD_NUMBER: _ClassVar[int]
    header: ResponseHeader
    def __init__(self, header: _Optional[_Union[ResponseHeader, _Mapping]] = ...) -> None: ...

class RefreshRequest(_message.Message):
    __slots__ = ("header", "refresh_from")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    REFRESH_FROM_FIELD_NUMBER: _ClassVar[int]
    header: RequestHeader
    refresh_from: _data_pb2.Timestamp
    def __init__(self, header: _Optional[_Union[RequestHeader, _Mapping]] = ..., refresh_from: _Optional[_Union[_data_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RefreshResponse(_message.Message):
    __slots__ = ("header",)
    HEADER_FIELD_NUMBER: _ClassVar[int]
    header: ResponseHeader
    def __init__(self, header: _Optional[_Union[ResponseHeader, _Mapping]] = ...) -> None: ...

class RefreshRangeRequest(_message.Message):
    __slots__ = ("header", "refresh_from")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    REFRESH_FROM_FIELD_NUMBER: _ClassVar[int]
    header: RequestHeader
    refresh_from: _data_pb2.Timestamp
    def __init__(self, header: _Optional[_Union[RequestHeader, _Mapping]] = ..., refresh_from: _Optional[_Union[_data_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RefreshRangeResponse(_message.Message):
    __slots__ = ("header",)
    HEADER_FIELD_NUMBER: _ClassVar[int]
    header: ResponseHeader
    def __init__(self, header: _Optional[_Union[ResponseHeader, _Mapping]] = ...) -> None: ...

class AdminSplitRequest(_message.Message):
    __slots__ = ("header", "split_key")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    SPLIT_KEY_FIELD_NUMBER: _ClassVar[int]
    header: RequestHeader
    split_key: bytes
    def __init__(self, header: _Optional[_Union[RequestHeader, _Mapping]] = ..., split_key: _Optional[bytes] = ...) -> None: ...

class AdminSplitResponse(_message.Message):
    __slots__ = ("header", "left", "right")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    LEFT_FIELD_NUMBER: _ClassVar[int]
    RIGHT_FIELD_NUMBER: _ClassVar[int]
    header: ResponseHeader
    left: _data_pb2.RangeDescriptor
    right: _data_pb2.RangeDescriptor
    def __init__(self, header: _Optional[_Union[ResponseHeader, _Mapping]] = ..., left: _Optional[_Union[_data_pb2.RangeDescriptor, _Mapping]] = ..., right: _Optional[_Union[_data_pb2.RangeDescriptor, _Mapping]] = ...) -> None: ...

class AdminTransferLeaseRequest(_message.Message):
    __slots__ = ("header", "target_node_id")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    TARGET_NODE_ID_FIELD_NUMBER: _ClassVar[int]
    header: RequestHeader
    target_node_id: int
    def __init__(self, header: _Optional[_Union[RequestHeader, _Mapping]] = ..., target_node_id: _Optional[int] = ...) -> None: ...

class AdminTransferLeaseResponse(_message.Message):
    __slots__ = ("header",)
    HEADER_FIELD_NUMBER: _ClassVar[int]
    header: ResponseHeader
    def __init__(self, header: _Optional[_Union[ResponseHeader, _Mapping]] = ...) -> None: ...

class RequestUnion(_message.Message):
    __slots__ = ("get", "scan", "reverse_scan", "put", "conditional_put", "increment", "delete", "delete_range", "heartbeat_txn", "end_txn", "push_txn", "query_txn", "query_intent", "recover_txn", "resolve_intent", "resolve_intent_range", "refresh", "refresh_range", "admin_split", "admin_transfer_lease", "gc")
    GET_FIELD_NUMBER: _ClassVar[int]
    SCAN_FIELD_NUMBER: _ClassVar[int]
    REVERSE_SCAN_FIELD_NUMBER: _ClassVar[int]
    PUT_FIELD_NUMBER: _ClassVar[int]
    CONDITIONAL_PUT_FIELD_NUMBER: _ClassVar[int]
    INCREMENT_FIELD_NUMBER: _ClassVar[int]
    DELETE_FIELD_NUMBER: _ClassVar[int]
    DELETE_RANGE_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_TXN_FIELD_NUMBER: _ClassVar[int]
    END_TXN_FIELD_NUMBER: _ClassVar[int]
    PUSH_TXN_FIELD_NUMBER: _ClassVar[int]
    QUERY_TXN_FIELD_NUMBER: _ClassVar[int]
    QUERY_INTENT_FIELD_NUMBER: _ClassVar[int]
    RECOVER_TXN_FIELD_NUMBER: _ClassVar[int]
    RESOLVE_INTENT_FIELD_NUMBER: _ClassVar[int]
    RESOLVE_INTENT_RANGE_FIELD_NUMBER: _ClassVar[int]
    REFRESH_FIELD_NUMBER: _ClassVar[int]
    REFRESH_RANGE_FIELD_NUMBER: _ClassVar[int]
    ADMIN_SPLIT_FIELD_NUMBER: _ClassVar[int]
    ADMIN_TRANSFER_LEASE_FIELD_NUMBER: _ClassVar[int]
    GC_FIELD_NUMBER: _ClassVar[int]
    get: GetRequest
    scan: ScanRequest
    reverse_scan: ReverseScanRequest
    put: PutRequest
    conditional_put: ConditionalPutRequest
    increment: IncrementRequest
    delete: DeleteRequest
    delete_range: DeleteRangeRequest
    heartbeat_txn: HeartbeatTxnRequest
    end_txn: EndTxnRequest
    push_txn: PushTxnRequest
    query_txn: QueryTxnRequest
    query_intent: QueryIntentRequest
    recover_txn: RecoverTxnRequest
    resolve_intent: ResolveIntentRequest
    resolve_intent_range: ResolveIntentRangeRequest
    refresh: RefreshRequest
    refresh_range: RefreshRangeRequest
    admin_split: AdminSplitRequest
    admin_transfer_lease: AdminTransferLeaseRequest
    gc: GCRequest
    def __init__(self, get: _Optional[_Union[GetRequest, _Mapping]] = ..., scan: _Optional[_Union[ScanRequest, _Mapping]] = ..., reverse_scan: _Optional[_Union[ReverseScanRequest, _Mapping]] = ..., put: _Optional[_Union[PutRequest, _Mapping]] = ..., conditional_put: _Optional[_Union[ConditionalPutRequest, _Mapping]] = ..., increment: _Optional[_Union[IncrementRequest, _Mapping]] = ..., delete: _Optional[_Union[DeleteRequest, _Mapping]] = ..., delete_range: _Optional[_Union[DeleteRangeRequest, _Mapping]] = ..., heartbeat_txn: _Optional[_Union[HeartbeatTxnRequest, _Mapping]] = ..., end_txn: _Optional[_Union[EndTxnRequest, _Mapping]] = ..., push_txn: _Optional[_Union[PushTxnRequest, _Mapping]] = ..., query_txn: _Optional[_Union[QueryTxnRequest, _Mapping]] = ..., query_intent: _Optional[_Union[QueryIntentRequest, _Mapping]] = ..., recover_txn: _Optional[_Union[RecoverTxnRequest, _Mapping]] = ..., resolve_intent: _Optional[_Union[ResolveIntentRequest, _Mapping]] = ..., resolve_intent_range: _Optional[_Union[ResolveIntentRangeRequest, _Mapping]] = ..., refresh: _Optional[_Union[RefreshRequest, _Mapping]] = ..., refresh_range: _Optional[_Union[RefreshRangeRequest, _Mapping]] = ..., admin_split: _Optional[_Union[AdminSplitRequest, _Mapping]] = ..., admin_transfer_lease: _Optional[_Union[AdminTransferLeaseRequest, _Mapping]] = ..., gc: _Optional[_Union[GCRequest, _Mapping]] = ...) -> None: ...

class ResponseUnion(_message.Message):
    __slots__ = ("get", "scan", "reverse_scan", "put", "conditional_put", "increment", "delete", "delete_range", "heartbeat_txn", "end_txn", "push_txn", "query_txn", "query_intent", "recover_txn", "resolve_intent", "resolve_intent_range", "refresh", "refresh_range", "admin_split", "admin_transfer_lease", "gc")
    GET_FIELD_NUMBER: _ClassVar[int]
    SCAN_FIELD_NUMBER: _ClassVar[int]
    REVERSE_SCAN_FIELD_NUMBER: _ClassVar[int]
    PUT_FIELD_NUMBER: _ClassVar[int]
    CONDITIONAL_PUT_FIELD_NUMBER: _ClassVar[int]
    INCREMENT_FIELD_NUMBER: _ClassVar[int]
    DELETE_FIELD_NUMBER: _ClassVar[int]
    DELETE_RANGE_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_TXN_FIELD_NUMBER: _ClassVar[int]
    END_TXN_FIELD_NUMBER: _ClassVar[int]
    PUSH_TXN_FIELD_NUMBER: _ClassVar[int]
    QUERY_TXN_FIELD_NUMBER: _ClassVar[int]
    QUERY_INTENT_FIELD_NUMBER: _ClassVar[int]
    RECOVER_TXN_FIELD_NUMBER: _ClassVar[int]
    RESOLVE_INTENT_FIELD_NUMBER: _ClassVar[int]
    RESOLVE_INTENT_RANGE_FIELD_NUMBER: _ClassVar[int]
    REFRESH_FIELD_NUMBER: _ClassVar[int]
    REFRESH_RANGE_FIELD_NUMBER: _ClassVar[int]
    ADMIN_SPLIT_FIELD_NUMBER: _ClassVar[int]
    ADMIN_TRANSFER_LEASE_FIELD_NUMBER: _ClassVar[int]
    GC_FIELD_NUMBER: _ClassVar[int]
    get: GetResponse
    scan: ScanResponse
    reverse_scan: ReverseScanResponse
    put: PutResponse
    conditional_put: ConditionalPutResponse
    increment: IncrementResponse
    delete: DeleteResponse
    delete_range: DeleteRangeResponse
    heartbeat_txn: HeartbeatTxnResponse
    end_txn: EndTxnResponse
    push_txn: PushTxnResponse
    query_txn: QueryTxnResponse
    query_intent: QueryIntentResponse
    recover_txn: RecoverTxnResponse
    resolve_intent: ResolveIntentResponse
    resolve_intent_range: ResolveIntentRangeResponse
    refresh: RefreshResponse
    refresh_range: RefreshRangeResponse
    admin_split: AdminSplitResponse
    admin_transfer_lease: AdminTransferLeaseResponse
    gc: GCResponse
    def __init__(self, get: _Optional[_Union[GetResponse, _Mapping]] = ..., scan: _Optional[_Union[ScanResponse, _Mapping]] = ..., reverse_scan: _Optional[_Union[ReverseScanResponse, _Mapping]] = ..., put: _Optional[_Union[PutResponse, _Mapping]] = ..., conditional_put: _Optional[_Union[ConditionalPutResponse, _Mapping]] = ..., increment: _Optional[_Union[IncrementResponse, _Mapping]] = ..., delete: _Optional[_Union[DeleteResponse, _Mapping]] = ..., delete_range: _Optional[_Union[DeleteRangeResponse, _Mapping]] = ..., heartbeat_txn: _Optional[_Union[HeartbeatTxnResponse, _Mapping]] = ..., end_txn: _Optional[_Union[EndTxnResponse, _Mapping]] = ..., push_txn: _Optional[_Union[PushTxnResponse, _Mapping]] = ..., query_txn: _Optional[_Union[QueryTxnResponse, _Mapping]] = ..., query_intent: _Optional[_Union[QueryIntentResponse, _Mapping]] = ..., recover_txn: _Optional[_Union[RecoverTxnResponse, _Mapping]] = ..., resolve_intent: _Optional[_Union[ResolveIntentResponse, _Mapping]] = ..., resolve_intent_range: _Optional[_Union[ResolveIntentRangeResponse, _Mapping]] = ..., refresh: _Optional[_Union[RefreshResponse, _Mapping]] = ..., refresh_range: _Optional[_Union[RefreshRangeResponse, _Mapping]] = ..., admin_split: _Optional[_Union[AdminSplitResponse, _Mapping]] = ..., admin_transfer_lease: _Optional[_Union[AdminTransferLeaseResponse, _Mapping]] = ..., gc: _Optional[_Union[GCResponse, _Mapping]] = ...) -> None: ...

class BatchHeader(_message.Message):
    __slots__ = ("timestamp", "txn", "range_id", "read_consistency", "max_span_request_keys", "target_bytes", "async_consensus", "gateway_node_id", "can_forward_read_timestamp")
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    TXN_FIELD_NUMBER: _ClassVar[int]
    RANGE_ID_FIELD_NUMBER: _ClassVar[int]
    READ_CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    MAX_SPAN_REQUEST_KEYS_FIELD_NUMBER: _ClassVar[int]
    TARGET_BYTES_FIELD_NUMBER: _ClassVar[int]
    ASYNC_CONSENSUS_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_NODE_ID_FIELD_NUMBER: _ClassVar[int]
    CAN_FORWARD_READ_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    timestamp: _data_pb2.Timestamp
    txn: _data_pb2.Transaction
    range_id: int
    read_consistency: ReadConsistency
    max_span_request_keys: int
    target_bytes: int
    async_consensus: bool
    gateway_node_id: int
    can_forward_read_timestamp: bool
    def __init__(self, timestamp: _Optional[_Union[_data_pb2.Timestamp, _Mapping]] = ..., txn: _Optional[_Union[_data_pb2.Transaction, _Mapping]] = ..., range_id: _Optional[int] = ..., read_consistency: _Optional[_Union[ReadConsistency, str]] = ..., max_span_request_keys: _Optional[int] = ..., target_bytes: _Optional[int] = ..., async_consensus: _Optional[bool] = ..., gateway_node_id: _Optional[int] = ..., can_forward_read_timestamp: _Optional[bool] = ...) -> None: ...

class Error(_message.Message):
    __slots__ = ("kind", "message", "retryable", "txn", "index", "intents", "actual_timestamp", "existing_timestamp", "lease", "leaseholder", "range", "actual_value", "actual_value_exists", "reason", "key", "end_key", "node_id")
    KIND_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    TXN_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    INTENTS_FIELD_NUMBER: _ClassVar[int]
    ACTUAL_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    EXISTING_TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    LEASEHOLDER_FIELD_NUMBER: _ClassVar[int]
    RANGE_FIELD_NUMBER: _ClassVar[int]
    ACTUAL_VALUE_FIELD_NUMBER: _ClassVar[int]
    ACTUAL_VALUE_EXISTS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    END_KEY_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    kind: str
    message: str
    retryable: bool
    txn: _data_pb2.Transaction
    index: int
    intents: _containers.RepeatedCompositeFieldContainer[_data_pb2.Intent]
    actual_timestamp: _data_pb2.Timestamp
    existing_timestamp: _data_pb2.Timestamp
    lease: _data_pb2.Lease
    leaseholder: _data_pb2.ReplicaDescriptor
    range: _data_pb2.RangeDescriptor
    actual_value: bytes
    actual_value_exists: bool
    reason: str
    key: bytes
    end_key: bytes
    node_id: int
    def __init__(self, kind: _Optional[str] = ..., message: _Optional[str] = ..., retryable: _Optional[bool] = ..., txn: _Optional[_Union[_data_pb2.Transaction, _Mapping]] = ..., index: _Optional[int] = ..., intents: _Optional[_Iterable[_Union[_data_pb2.Intent, _Mapping]]] = ..., actual_timestamp: _Optional[_Union[_data_pb2.Timestamp, _Mapping]] = ..., existing_timestamp: _Optional[_Union[_data_pb2.Timestamp, _Mapping]] = ..., lease: _Optional[_Union[_data_pb2.Lease, _Mapping]] = ..., leaseholder: _Optional[_Union[_data_pb2.ReplicaDescriptor, _Mapping]] = ..., range: _Optional[_Union[_data_pb2.RangeDescriptor, _Mapping]] = ..., actual_value: _Optional[bytes] = ..., actual_value_exists: _Optional[bool] = ..., reason: _Optional[str] = ..., key: _Optional[bytes] = ..., end_key: _Optional[bytes] = ..., node_id: _Optional[int] = ...) -> None: ...

class BatchRequest(_message.Message):
    __slots__ = ("header", "requests")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    header: BatchHeader
    requests: _containers.RepeatedCompositeFieldContainer[RequestUnion]
    def __init__(self, header: _Optional[_Union[BatchHeader, _Mapping]] = ..., requests: _Optional[_Iterable[_Union[RequestUnion, _Mapping]]] = ...) -> None: ...

class BatchResponse(_message.Message):
    __slots__ = ("header", "responses", "error", "now")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    RESPONSES_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    NOW_FIELD_NUMBER: _ClassVar[int]
    header: BatchHeader
    responses: _containers.RepeatedCompositeFieldContainer[ResponseUnion]
    error: Error
    now: _data_pb2.Timestamp
    def __init__(self, header: _Optional[_Union[BatchHeader, _Mapping]] = ..., responses: _Optional[_Iterable[_Union[ResponseUnion, _Mapping]]] = ..., error: _Optional[_Union[Error, _Mapping]] = ..., now: _Optional[_Union[_data_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AbortSpanEntry(_message.Message):
    __slots__ = ("key", "timestamp", "priority")
    KEY_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    timestamp: _data_pb2.Timestamp
    priority: int
    def __init__(self, key: _Optional[bytes] = ..., timestamp: _Optional[_Union[_data_pb2.Timestamp, _Mapping]] = ..., priority: _Optional[int] = ...) -> None: ...

class GCKey(_message.Message):
    __slots__ = ("key", "timestamp")
    KEY_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    timestamp: _data_pb2.Timestamp
    def __init__(self, key: _Optional[bytes] = ..., timestamp: _Optional[_Union[_data_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GCRequest(_message.Message):
    __slots__ = ("header", "keys", "threshold", "txn_span_gc_threshold", "txn_records", "abort_span_txn_ids")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    TXN_SPAN_GC_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    TXN_RECORDS_FIELD_NUMBER: _ClassVar[int]
    ABORT_SPAN_TXN_IDS_FIELD_NUMBER: _ClassVar[int]
    header: RequestHeader
    keys: _containers.RepeatedCompositeFieldContainer[GCKey]
    threshold: _data_pb2.Timestamp
    txn_span_gc_threshold: _data_pb2.Timestamp
    txn_records: _containers.RepeatedCompositeFieldContainer[_data_pb2.TxnMeta]
    abort_span_txn_ids: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, header: _Optional[_Union[RequestHeader, _Mapping]] = ..., keys: _Optional[_Iterable[_Union[GCKey, _Mapping]]] = ..., threshold: _Optional[_Union[_data_pb2.Timestamp, _Mapping]] = ..., txn_span_gc_threshold: _Optional[_Union[_data_pb2.Timestamp, _Mapping]] = ..., txn_records: _Optional[_Iterable[_Union[_data_pb2.TxnMeta, _Mapping]]] = ..., abort_span_txn_ids: _Optional[_Iterable[bytes]] = ...) -> None: ...

class GCResponse(_message.Message):
    __slots__ = ("header", "versions_removed", "txn_records_removed", "abort_span_entries_removed")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    VERSIONS_REMOVED_FIELD_NUMBER: _ClassVar[int]
    TXN_RECORDS_REMOVED_FIELD_NUMBER: _ClassVar[int]
    ABORT_SPAN_ENTRIES_REMOVED_FIELD_NUMBER: _ClassVar[int]
    header: ResponseHeader
    versions_removed: int
    txn_records_removed: int
    abort_span_entries_removed: int
    def __init__(self, header: _Optional[_Union[ResponseHeader, _Mapping]] = ..., versions_removed: _Optional[int] = ..., txn_records_removed: _Optional[int] = ..., abort_span_entries_removed: _Optional[int] = ...) -> None: ...
