"""register: single-key read / write / compare-and-set, checked for linearizability.

Ops carry ``key`` (a register id): ``read`` (ok value: the value, None =
absent), ``write`` (value: a fresh unique integer), ``cas`` (value
``(expected, new)``, ok value True / False). CAS expects one of the last
values written to that key, so it succeeds often enough to matter. Checked
per key by `crdb_py.jepsen.linearizability` (Wing–Gong/Porcupine search).
"""

from __future__ import annotations

import itertools
import random
import threading
from collections import defaultdict, deque
from collections.abc import Sequence
from typing import Any

from crdb_py.jepsen import linearizability
from crdb_py.jepsen.client import RegisterClient
from crdb_py.jepsen.history import History, Op, register_events
from crdb_py.jepsen.workloads.base import GenOp, Verdict

__all__ = ["RegisterWorkload"]


class RegisterWorkload:
    name = "register"
    key_kind = "reg"

    def __init__(self, keys: int = 5, max_configs: int = 500_000) -> None:
        self.key_range = keys
        self.max_configs = max_configs
        self._next = itertools.count(1)
        self._recent: dict[int, deque[int]] = defaultdict(lambda: deque(maxlen=3))
        self._lock = threading.Lock()

    def setup(self, client: RegisterClient) -> None:
        pass

    def generate(self, rng: random.Random) -> GenOp:
        k = rng.randrange(self.key_range)
        r = rng.random()
        with self._lock:
            if r < 0.4:
                return GenOp("read", None, k)
            v = next(self._next)
            recent = self._recent[k]
            if r < 0.7 or not recent:
                recent.append(v)
                return GenOp("write", v, k)
            recent.append(v)
            return GenOp("cas", (rng.choice(list(recent)[:-1] or [v - 1]), v), k)

    def apply(self, client: RegisterClient, op: GenOp) -> Any:
        k = int(op.key)  # type: ignore[call-overload]
        if op.f == "read":
            return client.reg_read(k)
        if op.f == "write":
            client.reg_write(k, op.value)
            return op.value
        exp, new = op.value
        return client.reg_cas(k, exp, new)

    def final_ops(self) -> Sequence[GenOp]:
        return [GenOp("read", None, k) for k in range(self.key_range)]

    def check(self, history: History | Sequence[Op]) -> Verdict:
        r = linearizability.check(register_events(history), max_configs=self.max_configs)
        anomalies: dict[str, int] = {}
        bad = [k for k in r.bad_keys if k.status == "illegal"]
        unknown = [k for k in r.bad_keys if k.status == "unknown"]
        if bad:
            anomalies["nonlinearizable"] = len(bad)
        if unknown:
            anomalies["unknown"] = len(unknown)
        return Verdict("linearizability", not anomalies, anomalies, r.explain())
