"""Jepsen-style testing: histories, workloads, nemeses and their checkers.

`linearizability` checks single-key register histories (read / write / CAS)
for linearizability (Wing–Gong search with Lowe's memoization, partitioned
per key). Workloads and further checkers (bank, sets, list-append) live
beside it.
"""

from crdb_py.jepsen.linearizability import (
    CheckResult,
    Event,
    History,
    Operation,
    Register,
    check,
)

__all__ = ["CheckResult", "Event", "History", "Operation", "Register", "check"]
