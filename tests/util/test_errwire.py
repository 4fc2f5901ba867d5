"""Round trips of every error class through the pb `Error` message."""

from __future__ import annotations

import inspect

import pytest

from crdb_py.pb import api_pb2, data_pb2
from crdb_py.util import errors
from crdb_py.util.errwire import _all_error_classes, error_from_proto, error_to_proto
from crdb_py.util.hlc import Timestamp


def _txn() -> data_pb2.Transaction:
    t = data_pb2.Transaction(name="t1", status=data_pb2.PENDING)
    t.meta.id = b"\x01" * 16
    t.meta.key = b"anchor"
    t.meta.epoch = 2
    return t


def _intent(key: bytes) -> data_pb2.Intent:
    i = data_pb2.Intent(key=key)
    i.txn.id = b"\x02" * 16
    return i


def _desc() -> data_pb2.RangeDescriptor:
    d = data_pb2.RangeDescriptor(range_id=7, start_key=b"a", end_key=b"m", generation=3)
    d.replicas.add(node_id=1, store_id=1, replica_id=1)
    d.replicas.add(node_id=2, store_id=2, replica_id=2)
    return d


def _lease() -> data_pb2.Lease:
    lease = data_pb2.Lease(sequence=4, term=9)
    lease.replica.node_id = 2
    lease.replica.replica_id = 2
    return lease


# (exception, attributes that must survive the trip)
SAMPLES: dict[type, tuple[errors.CrdbError, dict]] = {}


def _sample(exc: errors.CrdbError, **attrs: object) -> None:
    SAMPLES[type(exc)] = (exc, attrs)


_sample(errors.CrdbError("base"))
_sample(errors.InternalError("invariant broken"))
_sample(errors.InvalidArgumentError("bad arg"))
_sample(errors.ValueTooLargeError("too big"))
_sample(errors.ClockOffsetError("clock"))
_sample(errors.StorageError("disk"))
_sample(errors.KVError("kv"))
_sample(
    errors.WriteIntentError([_intent(b"a"), _intent(b"b")]),
    intents=[_intent(b"a"), _intent(b"b")],
)
_sample(
    errors.WriteTooOldError(Timestamp(10, 1), Timestamp(20, 2), key=b"k"),
    timestamp=Timestamp(10, 1),
    actual_timestamp=Timestamp(20, 2),
)
_sample(
    errors.ReadWithinUncertaintyIntervalError(Timestamp(5), Timestamp(7, 3), Timestamp(9)),
    read_timestamp=Timestamp(5),
    existing_timestamp=Timestamp(7, 3),
    limit=Timestamp(9),
)
_sample(errors.ConditionFailedError(b"old"), actual_value=b"old")
_sample(errors.TransactionRetryError("RETRY_SERIALIZABLE", txn=_txn()), reason="RETRY_SERIALIZABLE", txn=_txn())
_sample(errors.TransactionAbortedError("ABORT_REASON_PUSHER_ABORTED", txn=_txn()), reason="ABORT_REASON_PUSHER_ABORTED", txn=_txn())
_sample(errors.TransactionPushError(_txn()), pushee=_txn())
_sample(errors.TransactionStatusError("already committed", reason="REASON_TXN_COMMITTED", txn=_txn()), reason="REASON_TXN_COMMITTED", txn=_txn())
_sample(errors.IntentMissingError(b"k"))
_sample(
    errors.NotLeaseHolderError(7, leaseholder=_lease().replica, lease=_lease()),
    range_id=7,
    leaseholder=_lease().replica,
    lease=_lease(),
)
_sample(errors.RangeKeyMismatchError(b"a", b"z", range_desc=_desc()), range_desc=_desc())
_sample(errors.RangeNotFoundError(12), range_id=12)
_sample(errors.NodeUnavailableError(3))
_sample(errors.AmbiguousResultError("connection lost after send"))


def _round_trip(exc: BaseException, index: int | None = None) -> errors.CrdbError:
    pb = error_to_proto(exc, api_pb2.Error(), index=index)
    wire = api_pb2.Error.FromString(pb.SerializeToString())
    return error_from_proto(wire)


@pytest.mark.parametrize("cls", sorted(_all_error_classes().values(), key=lambda c: c.__name__), ids=lambda c: c.__name__)
def test_every_error_class_round_trips(cls: type[errors.CrdbError]) -> None:
    if cls in SAMPLES:
        exc, attrs = SAMPLES[cls]
    else:
        # A class without a sample (e.g. added later by another layer): kind,
        # message and retryability must still survive; structured attributes
        # travel only if errwire maps them (see its docstring).
        exc, attrs = _construct(cls), {}
    got = _round_trip(exc)
    assert type(got) is cls
    assert got.kind == cls.__name__
    assert str(got) == str(exc)
    assert type(got).retryable == cls.retryable
    assert got.index == -1
    for name, want in attrs.items():
        assert getattr(got, name) == want, name
    if cls in SAMPLES:
        # Everything the constructor sets exists after decoding too.
        assert set(vars(exc)) <= set(vars(got)) | {"index"}


def _construct(cls: type[errors.CrdbError]) -> errors.CrdbError:
    try:
        params = [
            p for p in inspect.signature(cls).parameters.values()
            if p.default is inspect.Parameter.empty and p.kind is p.POSITIONAL_OR_KEYWORD
        ]
    except ValueError:  # plain Exception.__init__
        return cls("some message")
    if not params:
        return cls()
    if len(params) == 1:
        return cls("some message")
    exc = cls.__new__(cls)
    exc.args = (f"{cls.__name__} built without its constructor",)
    return exc


def test_missing_optional_fields_come_back_as_none() -> None:
    got = _round_trip(errors.NotLeaseHolderError(3))
    assert isinstance(got, errors.NotLeaseHolderError)
    assert got.leaseholder is None and got.lease is None and got.range_id == 3
    got = _round_trip(errors.RangeKeyMismatchError(b"a", b"b"))
    assert isinstance(got, errors.RangeKeyMismatchError) and got.range_desc is None
    got = _round_trip(errors.ConditionFailedError(None))
    assert isinstance(got, errors.ConditionFailedError) and got.actual_value is None
    got = _round_trip(errors.ConditionFailedError(b""))
    assert isinstance(got, errors.ConditionFailedError) and got.actual_value == b""


def test_index_travels() -> None:
    assert _round_trip(errors.ConditionFailedError(b"x"), index=4).index == 4
    exc = errors.ConditionFailedError(b"x")
    exc.index = 2  # type: ignore[attr-defined]
    assert _round_trip(exc).index == 2


def test_retryable_flag_on_wire() -> None:
    pb = error_to_proto(errors.WriteTooOldError(Timestamp(1), Timestamp(2)), api_pb2.Error())
    assert pb.retryable and pb.kind == "WriteTooOldError"
    pb = error_to_proto(errors.ConditionFailedError(b"x"), api_pb2.Error())
    assert not pb.retryable


def test_foreign_exception_becomes_internal_error() -> None:
    got = _round_trip(ZeroDivisionError("division by zero"))
    assert isinstance(got, errors.InternalError)
    assert "ZeroDivisionError" in str(got)


def test_unknown_kind_decodes_to_kv_error() -> None:
    pb = api_pb2.Error(kind="SomeFutureError", message="from a newer server", index=1)
    got = error_from_proto(pb)
    assert type(got) is errors.KVError
    assert got.wire_kind == "SomeFutureError"  # type: ignore[attr-defined]
    assert "from a newer server" in str(got) and got.index == 1  # type: ignore[attr-defined]
