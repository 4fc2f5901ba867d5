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
    cmd_get,
    cmd_increment,
    cmd_put,
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
