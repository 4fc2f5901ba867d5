"""The error hierarchy.

Errors are part of the interface: each class has a stable `kind` (its name on
the wire, see `Error.kind` in `protos/crdb_py/pb/api.proto`), says whether the
operation may be retried, and maps to a SQLSTATE at the SQL edge. Messages
tell the user what happened and what to do.
"""

from __future__ import annotations

from typing import Any, ClassVar


class CrdbError(Exception):
    """Base of every error raised by crdb-py."""

    sqlstate: ClassVar[str] = "XX000"  # internal_error
    retryable: ClassVar[bool] = False

    @property
    def kind(self) -> str:
        return type(self).__name__


class InternalError(CrdbError):
    """An invariant was violated: a bug. Never silently repaired."""


class InvalidArgumentError(CrdbError):
    sqlstate = "22023"


class ValueTooLargeError(InvalidArgumentError):
    sqlstate = "54000"


class ClockOffsetError(CrdbError):
    """A remote clock is further ahead than the maximum offset allows."""

    sqlstate = "XXC01"


class StorageError(CrdbError):
    """The storage engine failed or is unusable (e.g. held by another process)."""

    sqlstate = "58030"


# ---- KV errors met while evaluating a request -------------------------------


class KVError(CrdbError):
    """An error from evaluating a KV request."""


class WriteIntentError(KVError):
    """The request met another transaction's intent(s); they must be resolved
    (by waiting, pushing, or resolution) before it can proceed."""

    def __init__(self, intents: list[Any], msg: str = "") -> None:
        self.intents = list(intents)
        super().__init__(msg or f"conflicting intent(s) on {len(self.intents)} key(s)")


class WriteTooOldError(KVError):
    """A write at timestamp T met a committed value at or above T. The write
    must move to `actual_timestamp` (newer than the existing value)."""

    retryable = True
    sqlstate = "40001"

    def __init__(self, timestamp: Any, actual_timestamp: Any, key: bytes = b"") -> None:
        self.timestamp = timestamp
        self.actual_timestamp = actual_timestamp
        self.key = key
        super().__init__(
            f"WriteTooOldError: write for key {key!r} at timestamp {timestamp} too old; "
            f"must write at or above {actual_timestamp}"
        )


class ReadWithinUncertaintyIntervalError(KVError):
    """A read at T saw a value at T' with T < T' <= uncertainty limit: it may
    have been written before the read in real time, so the reader must move
    its timestamp above T' and retry."""

    retryable = True
    sqlstate = "40001"

    def __init__(
        self, read_timestamp: Any, existing_timestamp: Any, limit: Any, key: bytes = b""
    ) -> None:
        self.read_timestamp = read_timestamp
        self.existing_timestamp = existing_timestamp
        self.limit = limit
        self.key = key
        super().__init__(
            f"ReadWithinUncertaintyIntervalError: read at time {read_timestamp} encountered "
            f"previous write with future timestamp {existing_timestamp} within uncertainty "
            f"interval `t <= {limit}`; restart transaction"
        )


class ConditionFailedError(KVError):
    """A ConditionalPut's expectation did not hold."""

    sqlstate = "23505"

    def __init__(self, actual_value: bytes | None, msg: str = "") -> None:
        self.actual_value = actual_value
        super().__init__(msg or f"unexpected value: {actual_value!r}")


class TransactionRetryError(KVError):
    """The transaction must restart (at a higher epoch / timestamp)."""

    retryable = True
    sqlstate = "40001"

    def __init__(self, reason: str, msg: str = "", txn: Any = None) -> None:
        self.reason = reason
        self.txn = txn
        super().__init__(msg or f"TransactionRetryError: retry txn ({reason}): restart transaction")


class TransactionAbortedError(KVError):
    """The transaction was aborted (by a pusher, a deadlock, or expiry)."""

    retryable = True
    sqlstate = "40001"

    def __init__(self, reason: str, txn: Any = None) -> None:
        self.reason = reason
        self.txn = txn
        super().__init__(f"TransactionAbortedError({reason}): restart transaction")


class TransactionPushError(KVError):
    """A push failed: the pushee is live and has priority."""

    def __init__(self, pushee: Any, msg: str = "") -> None:
        self.pushee = pushee
        super().__init__(msg or "failed to push transaction")


class TransactionStatusError(KVError):
    """The request does not fit the transaction record's status."""

    def __init__(self, msg: str, reason: str = "", txn: Any = None) -> None:
        self.reason = reason
        self.txn = txn
        super().__init__(f"TransactionStatusError: {msg}")


class IntentMissingError(KVError):
    """QueryIntent found no matching intent for an in-flight write."""

    retryable = True
    sqlstate = "40001"

    def __init__(self, key: bytes, msg: str = "") -> None:
        self.key = key
        super().__init__(msg or f"intent missing for key {key!r}")


# ---- routing / availability ---------------------------------------------------


class NotLeaseHolderError(KVError):
    """This replica does not hold the range's lease; `leaseholder` hints who does."""

    def __init__(self, range_id: int, leaseholder: Any = None, lease: Any = None) -> None:
        self.range_id = range_id
        self.leaseholder = leaseholder
        self.lease = lease
        super().__init__(f"r{range_id}: not the leaseholder; current lease is {lease}")


class RangeKeyMismatchError(KVError):
    """The request's keys are outside this replica's range (stale range cache)."""

    def __init__(self, key: bytes, end_key: bytes, range_desc: Any = None) -> None:
        self.key = key
        self.end_key = end_key
        self.range_desc = range_desc
        super().__init__(f"key range {key!r}-{end_key!r} outside of bounds of range")


class RangeNotFoundError(KVError):
    def __init__(self, range_id: int) -> None:
        self.range_id = range_id
        super().__init__(f"r{range_id} was not found on this store")


class NodeUnavailableError(KVError):
    sqlstate = "08006"

    def __init__(self, node_id: int, msg: str = "") -> None:
        self.node_id = node_id
        super().__init__(msg or f"node n{node_id} is unavailable")


class AmbiguousResultError(KVError):
    """The outcome of a write is unknown (e.g. the connection failed after it
    was sent). The client must not assume it failed."""

    sqlstate = "40003"


# ---- cluster membership (server) ----------------------------------------------


class ClusterAlreadyInitializedError(CrdbError):
    """`init` was sent to a node that already belongs to an initialized cluster."""

    def __init__(self, msg: str = "") -> None:
        super().__init__(
            msg or "cluster has already been initialized; `crdb-py init` is needed only once"
        )


class NodeNotInitializedError(CrdbError):
    """The node has not joined a cluster yet (it waits for `init` or a join)."""

    retryable = True

    def __init__(self, msg: str = "") -> None:
        super().__init__(
            msg or "node is not initialized yet: run `crdb-py init` on one node of the cluster"
        )


class JoinTimeoutError(CrdbError):
    """None of the `--join` addresses answered before the deadline."""

    def __init__(self, addresses: list[str], timeout: float) -> None:
        self.addresses = list(addresses)
        super().__init__(
            f"could not join a cluster: no answer from any of the --join addresses "
            f"{', '.join(self.addresses)} within {timeout:g}s; check that those nodes are "
            f"running and reachable"
        )


# ---- transport ----------------------------------------------------------------


class AddressInUseError(CrdbError):
    """A server could not listen on its address (port taken or not local)."""

    sqlstate = "58000"  # system_error


# ---- transactions, server side (M4) ----------------------------------------------


class IndeterminateCommitError(KVError):
    """A push met a STAGING transaction that may already be implicitly
    committed: it can neither be pushed nor aborted. The pusher must run
    transaction recovery on `staging_txn` (the record as found)."""

    def __init__(self, staging_txn: Any, msg: str = "") -> None:
        self.txn = staging_txn
        super().__init__(
            msg or "found a STAGING transaction record: its commit is indeterminate; "
            "recover the transaction before pushing it"
        )

    @property
    def staging_txn(self) -> Any:
        return self.txn


class RefreshFailedError(TransactionRetryError):
    """A refresh found a write by another txn in (refresh_from, refresh_to]
    on its span: the reads cannot move to the new timestamp, the txn must
    restart. `key` is the conflicting key, `existing_timestamp` the write's
    timestamp."""

    def __init__(
        self, key: bytes, existing_timestamp: Any, *, intent: bool = False, txn: Any = None
    ) -> None:
        self.key = key
        self.existing_timestamp = existing_timestamp
        what = "an intent" if intent else "a committed value"
        super().__init__(
            "RETRY_REFRESH_FAIL",
            f"TransactionRetryError: retry txn (RETRY_REFRESH_FAIL): refresh found {what} on "
            f"key {key!r} at {existing_timestamp}: restart transaction",
            txn=txn,
        )


# ---- transactions, client side (M5) ----------------------------------------------


class ConcurrentTxnUseError(CrdbError):
    """Two batches of one transaction were sent concurrently. A `Txn` runs
    one batch at a time; await each operation before starting the next, or
    put concurrent operations in one `Batch`."""

    def __init__(self, msg: str = "") -> None:
        super().__init__(
            msg
            or "concurrent use of one transaction: a batch is already in flight; await it "
            "before sending the next one, or send the operations together in one Batch"
        )


# ---- garbage collection ----------------------------------------------------------


class BatchTimestampBeforeGCError(KVError):
    """A request reads (or writes) at a timestamp at or below the range's GC
    threshold: the versions it would need may have been garbage-collected.
    SQLSTATE 72000 (PostgreSQL's ``snapshot_too_old``). Not retryable at the
    same timestamp: read at a more recent time (the TTL is ``gc.ttlseconds``)."""

    sqlstate = "72000"

    def __init__(self, timestamp: Any, threshold: Any, range_id: int = 0) -> None:
        self.timestamp = timestamp
        self.threshold = threshold
        self.range_id = range_id
        super().__init__(
            f"batch timestamp {timestamp} must be after replica GC threshold {threshold}"
            + (f" (r{range_id})" if range_id else "")
            + ": data this old has been garbage-collected; read at a more recent "
            "timestamp (older history is kept for gc.ttlseconds)"
        )
