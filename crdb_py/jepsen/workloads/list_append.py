"""list-append: multi-key transactions of appends and reads (Elle).

Op ``txn`` (value: micro-ops ``["append", k, v]`` / ``["r", k, None]``; ok
value: the same with reads filled in). Appended values are unique per key
(one global counter), so every read names the exact writers of its prefix
and `crdb_py.jepsen.checkers.elle` can infer ww/wr/rw dependencies and
name G0, G1a, G1b, G1c, G-single and G2 cycles.
"""

from __future__ import annotations

import itertools
import random
import threading
from collections.abc import Sequence
from typing import Any

from crdb_py.jepsen.checkers import elle
from crdb_py.jepsen.client import ListAppendClient
from crdb_py.jepsen.history import History, Op
from crdb_py.jepsen.workloads.base import GenOp, Verdict, verdict_of

__all__ = ["ListAppendWorkload"]


class ListAppendWorkload:
    name = "list-append"
    key_kind = "la"

    def __init__(self, keys: int = 8, min_len: int = 1, max_len: int = 4) -> None:
        self.key_range = keys
        self.min_len = min_len
        self.max_len = max_len
        self._next = itertools.count(1)
        self._lock = threading.Lock()

    def setup(self, client: ListAppendClient) -> None:
        pass

    def generate(self, rng: random.Random) -> GenOp:
        mops: list[list[Any]] = []
        for _ in range(rng.randint(self.min_len, self.max_len)):
            k = rng.randrange(self.key_range)
            if rng.random() < 0.5:
                mops.append(["r", k, None])
            else:
                with self._lock:
                    mops.append(["append", k, next(self._next)])
        return GenOp("txn", mops)

    def apply(self, client: ListAppendClient, op: GenOp) -> Any:
        return client.list_txn(op.value)

    def final_ops(self) -> Sequence[GenOp]:
        return [GenOp("txn", [["r", k, None] for k in range(self.key_range)])]

    def check(self, history: History | Sequence[Op]) -> Verdict:
        return verdict_of(elle.check(history))
