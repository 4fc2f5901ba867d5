from __future__ import annotations

from crdb_py.server.admin import retype
from crdb_py.util.errors import (
    ClusterAlreadyInitializedError,
    InternalError,
    NodeNotInitializedError,
)


def test_retype_recovers_the_remote_error_class() -> None:
    exc = InternalError(
        "n1: rpc failed: INTERNAL: n1: ClusterAlreadyInitializedError: cluster has already "
        "been initialized"
    )
    out = retype(exc)
    assert isinstance(out, ClusterAlreadyInitializedError)
    assert "cluster has already been initialized" in str(out)
    out2 = retype(InternalError("n0: rpc failed: INTERNAL: n0: NodeNotInitializedError: wait"))
    assert isinstance(out2, NodeNotInitializedError)


def test_retype_leaves_other_errors_alone() -> None:
    plain = InternalError("n1: rpc failed: INTERNAL: boom")
    assert retype(plain) is plain
    odd = InternalError("n1: NoSuchThingError: x")
    assert retype(odd) is odd
    v = ValueError("ClusterAlreadyInitializedError: x")
    assert retype(v) is v
