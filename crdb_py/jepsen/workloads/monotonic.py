"""monotonic: read the maximum, insert max+1, report the commit timestamp.

Op ``inc`` (ok value ``{"read": m, "insert": m + 1, "ts": (wall, logical)}``,
the timestamp taken from the committed txn). Checked by
`crdb_py.jepsen.checkers.monotonic`: sorted by commit timestamp the inserts
strictly increase, no value twice, no two commits at one timestamp.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from crdb_py.jepsen.checkers import monotonic
from crdb_py.jepsen.client import MonotonicClient
from crdb_py.jepsen.history import History, Op
from crdb_py.jepsen.workloads.base import GenOp, Verdict, verdict_of

__all__ = ["MonotonicWorkload"]


class MonotonicWorkload:
    name = "monotonic"
    key_kind = "mono"

    def __init__(self, key_range: int = 500) -> None:
        self.key_range = key_range

    def setup(self, client: MonotonicClient) -> None:
        pass

    def generate(self, rng: random.Random) -> GenOp:
        return GenOp("inc")

    def apply(self, client: MonotonicClient, op: GenOp) -> Any:
        if op.f == "read":
            return client.mono_read()
        return client.mono_inc()

    def final_ops(self) -> Sequence[GenOp]:
        return []

    def check(self, history: History | Sequence[Op]) -> Verdict:
        return verdict_of(monotonic.check(history))
