from crdb_py.pb import api_pb2 as _api_pb2
from crdb_py.pb import data_pb2 as _data_pb2
from crdb_py.pb import raft_pb2 as _raft_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class NodeStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StoreStatus(_message.Message):
    __slots__ = ("store_id", "range_count", "lease_count", "leader_count")
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    RANGE_COUNT_FIELD_NUMBER: _ClassVar[int]
    LEASE_COUNT_FIELD_NUMBER: _ClassVar[int]
    LEADER_COUNT_FIELD_NUMBER: _ClassVar[int]
    store_id: int
    range_count: int
    lease_count: int
    leader_count: int
    def __init__(self, store_id: _Optional[int] = ..., range_count: _Optional[int] = ..., lease_count: _Optional[int] = ..., leader_count: _Optional[int] = ...) -> None: ...

class NodeStatus(_message.Message):
    __slots__ = ("desc", "live", "started_at_nanos", "stores", "build")
    DESC_FIELD_NUMBER: _ClassVar[int]
    LIVE_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_NANOS_FIELD_NUMBER: _ClassVar[int]
    STORES_FIELD_NUMBER: _ClassVar[int]
    BUILD_FIELD_NUMBER: _ClassVar[int]
    desc: _data_pb2.NodeDescriptor
    live: bool
    started_at_nanos: int
    stores: _containers.RepeatedCompositeFieldContainer[StoreStatus]
    build: str
    def __init__(self, desc: _Optional[_Union[_data_pb2.NodeDescriptor, _Mapping]] = ..., live: _Optional[bool] = ..., started_at_nanos: _Optional[int] = ..., stores: _Optional[_Iterable[_Union[StoreStatus, _Mapping]]] = ..., build: _Optional[str] = ...) -> None: ...

class NodeStatusResponse(_message.Message):
    __slots__ = ("nodes",)
    NODES_FIELD_NUMBER: _ClassVar[int]
    nodes: _containers.RepeatedCompositeFieldContainer[NodeStatus]
    def __init__(self, nodes: _Optional[_Iterable[_Union[NodeStatus, _Mapping]]] = ...) -> None: ...

class BootstrapRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class BootstrapResponse(_message.Message):
    __slots__ = ("cluster_id",)
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    cluster_id: str
    def __init__(self, cluster_id: _Optional[str] = ...) -> None: ...

class JoinRequest(_message.Message):
    __slots__ = ("desc",)
    DESC_FIELD_NUMBER: _ClassVar[int]
    desc: _data_pb2.NodeDescriptor
    def __init__(self, desc: _Optional[_Union[_data_pb2.NodeDescriptor, _Mapping]] = ...) -> None: ...

class JoinResponse(_message.Message):
    __slots__ = ("node_id", "cluster_id", "nodes")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    node_id: int
    cluster_id: str
    nodes: _containers.RepeatedCompositeFieldContainer[_data_pb2.NodeDescriptor]
    def __init__(self, node_id: _Optional[int] = ..., cluster_id: _Optional[str] = ..., nodes: _Optional[_Iterable[_Union[_data_pb2.NodeDescriptor, _Mapping]]] = ...) -> None: ...

class LinkLatency(_message.Message):
    __slots__ = ("from_node_id", "to_node_id", "latency_ms")
    FROM_NODE_ID_FIELD_NUMBER: _ClassVar[int]
    TO_NODE_ID_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    from_node_id: int
    to_node_id: int
    latency_ms: float
    def __init__(self, from_node_id: _Optional[int] = ..., to_node_id: _Optional[int] = ..., latency_ms: _Optional[float] = ...) -> None: ...

class BlockedLink(_message.Message):
    __slots__ = ("from_node_id", "to_node_id")
    FROM_NODE_ID_FIELD_NUMBER: _ClassVar[int]
    TO_NODE_ID_FIELD_NUMBER: _ClassVar[int]
    from_node_id: int
    to_node_id: int
    def __init__(self, from_node_id: _Optional[int] = ..., to_node_id: _Optional[int] = ...) -> None: ...

class LinkFaults(_message.Message):
    __slots__ = ("default_latency_ms", "link_latencies", "blocked")
    DEFAULT_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    LINK_LATENCIES_FIELD_NUMBER: _ClassVar[int]
    BLOCKED_FIELD_NUMBER: _ClassVar[int]
    default_latency_ms: float
    link_latencies: _containers.RepeatedCompositeFieldContainer[LinkLatency]
    blocked: _containers.RepeatedCompositeFieldContainer[BlockedLink]
    def __init__(self, default_latency_ms: _Optional[float] = ..., link_latencies: _Optional[_Iterable[_Union[LinkLatency, _Mapping]]] = ..., blocked: _Optional[_Iterable[_Union[BlockedLink, _Mapping]]] = ...) -> None: ...

class SetLinkFaultsRequest(_message.Message):
    __slots__ = ("faults",)
    FAULTS_FIELD_NUMBER: _ClassVar[int]
    faults: LinkFaults
    def __init__(self, faults: _Optional[_Union[LinkFaults, _Mapping]] = ...) -> None: ...

class SetLinkFaultsResponse(_message.Message):
    __slots__ = ("faults",)
    FAULTS_FIELD_NUMBER: _ClassVar[int]
    faults: LinkFaults
    def __init__(self, faults: _Optional[_Union[LinkFaults, _Mapping]] = ...) -> None: ...

class BatchStreamRequest(_message.Message):
    __slots__ = ("id", "request")
    ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    id: int
    request: _api_pb2.BatchRequest
    def __init__(self, id: _Optional[int] = ..., request: _Optional[_Union[_api_pb2.BatchRequest, _Mapping]] = ...) -> None: ...

class BatchStreamResponse(_message.Message):
    __slots__ = ("id", "response", "error")
    ID_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    id: int
    response: _api_pb2.BatchResponse
    error: str
    def __init__(self, id: _Optional[int] = ..., response: _Optional[_Union[_api_pb2.BatchResponse, _Mapping]] = ..., error: _Optional[str] = ...) -> None: ...

class BatchStreamRequests(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[BatchStreamRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[BatchStreamRequest, _Mapping]]] = ...) -> None: ...

class BatchStreamResponses(_message.Message):
    __slots__ = ("responses",)
    RESPONSES_FIELD_NUMBER: _ClassVar[int]
    responses: _containers.RepeatedCompositeFieldContainer[BatchStreamResponse]
    def __init__(self, responses: _Optional[_Iterable[_Union[BatchStreamResponse, _Mapping]]] = ...) -> None: ...
