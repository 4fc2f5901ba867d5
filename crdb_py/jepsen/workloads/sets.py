"""sets: unique inserts, then reads of the whole set.

Ops: ``add`` (value: a fresh element) and ``read`` (ok value: the elements
present). Checked by `crdb_py.jepsen.checkers.sets`: every acknowledged
add is in every later read, failed ones never appear, nothing twice.
"""

from __future__ import annotations

import itertools
import random
import threading
from collections.abc import Sequence
from typing import Any

from crdb_py.jepsen.checkers import sets
from crdb_py.jepsen.client import SetClient
from crdb_py.jepsen.history import History, Op
from crdb_py.jepsen.workloads.base import GenOp, Verdict, verdict_of

__all__ = ["SetsWorkload"]


class SetsWorkload:
    name = "sets"
    key_kind = "set"

    def __init__(self, read_fraction: float = 0.1, key_range: int = 2000) -> None:
        self.read_fraction = read_fraction
        self.key_range = key_range
        self._next = itertools.count(1)
        self._lock = threading.Lock()

    def setup(self, client: SetClient) -> None:
        pass

    def generate(self, rng: random.Random) -> GenOp:
        if rng.random() < self.read_fraction:
            return GenOp("read")
        with self._lock:
            return GenOp("add", next(self._next))

    def apply(self, client: SetClient, op: GenOp) -> Any:
        if op.f == "read":
            return sorted(client.set_read())
        client.set_add(op.value)
        return op.value

    def final_ops(self) -> Sequence[GenOp]:
        return [GenOp("read")]

    def check(self, history: History | Sequence[Op]) -> Verdict:
        return verdict_of(sets.check(history))
