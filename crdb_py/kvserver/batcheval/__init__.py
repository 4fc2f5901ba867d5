"""crdb_py.kvserver.batcheval: one file per KV command.

Importing the package imports every `cmd_*` module, which registers its
`Command` in `command.REGISTRY` under the command's `RequestUnion` field
name. `crdb_py.kvserver.evaluate` declares and evaluates whole batches on
top of the registry.
"""

from __future__ import annotations

from crdb_py.kvserver.batcheval import (  # noqa: F401  (imported to register)
    cmd_conditional_put,
    cmd_delete,
    cmd_delete_range,
    cmd_end_txn,
    cmd_gc,
    cmd_get,
    cmd_heartbeat_txn,
    cmd_increment,
    cmd_push_txn,
    cmd_put,
    cmd_query_intent,
    cmd_query_txn,
    cmd_recover_txn,
    cmd_refresh,
    cmd_refresh_range,
    cmd_resolve_intent,
    cmd_resolve_intent_range,
    cmd_reverse_scan,
    cmd_scan,
)
from crdb_py.kvserver.batcheval.command import (
    REGISTRY,
    Command,
    CommandArgs,
    Result,
    lookup,
    register,
)

__all__ = ["REGISTRY", "Command", "CommandArgs", "Result", "lookup", "register"]
