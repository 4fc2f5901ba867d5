"""What every workload shares: the generated operation and the verdict."""

from __future__ import annotations

import random
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from crdb_py.jepsen.checkers.base import Result
from crdb_py.jepsen.history import History, Op

__all__ = ["GenOp", "Verdict", "Workload", "verdict_of"]


@dataclass(frozen=True, slots=True)
class GenOp:
    """One operation to invoke: `f` and `value` as recorded in the history."""

    f: str
    value: Any = None
    key: Hashable = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """A workload's checker result, flattened for the runner's table."""

    checker: str
    valid: bool
    anomalies: dict[str, int] = field(default_factory=dict)
    explanation: str = ""


def verdict_of(r: Result) -> Verdict:
    return Verdict(r.checker, r.valid, {k: len(v) for k, v in r.anomalies.items()}, r.explain())


class Workload(Protocol):
    name: str
    key_kind: str  # the KVClient key kind (splits and lease moves target it)
    key_range: int  # keys of that kind are in [0, key_range)

    def setup(self, client: Any) -> None: ...

    def generate(self, rng: random.Random) -> GenOp: ...

    def apply(self, client: Any, op: GenOp) -> Any:
        """Run `op`; return its `ok` value, or raise."""
        ...

    def final_ops(self) -> Sequence[GenOp]: ...

    def check(self, history: History | Sequence[Op]) -> Verdict: ...
