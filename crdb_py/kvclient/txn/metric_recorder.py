"""The metric recorder: what each transaction cost, per txn and in total.

It sits at the bottom of the stack, just above the wrapped sender, so it
sees exactly the batches that go on the wire on the critical path — after
the pipeliner added proofs and the committer split a 2PC commit — and
classifies each with `rounds.batch_rounds` into the txn's `TxnTrace`.
Out-of-band requests (heartbeats, explicit commits, async rollbacks) are
sent to the raw sender below it and are not counted.

`TxnMetrics` is the registry shared by every txn of a `DB` (counters and a
histogram of consensus rounds per committed txn, per commit path); the
coordinator folds a finished txn's trace into it with `record_txn`.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from crdb_py.kvclient.txn.interceptor import (
    BatchRequest,
    BatchResponse,
    Interceptor,
    TxnState,
    kinds,
)
from crdb_py.kvclient.txn.rounds import BatchEvent, CommitPath, TxnTrace, batch_rounds


@dataclass(slots=True)
class TxnMetrics:
    """Counters for all txns of one client (thread-safe)."""

    commits: int = 0
    commits_1pc: int = 0
    commits_parallel: int = 0
    commits_2pc: int = 0
    commits_read_only: int = 0
    aborts: int = 0
    restarts: int = 0
    refreshes: int = 0
    refresh_failures: int = 0
    staging_pushed: int = 0
    rounds_hist: Counter[int] = field(default_factory=Counter)  # committed txns by rounds
    rounds_by_path: dict[str, Counter[int]] = field(default_factory=dict)
    durations: list[float] = field(default_factory=list)  # seconds, last 10k commits
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record_txn(self, trace: TxnTrace, *, committed: bool, duration: float = 0.0) -> None:
        with self._lock:
            self.restarts += trace.restarts
            self.refreshes += trace.refreshes
            self.refresh_failures += trace.failed_refreshes
            self.staging_pushed += trace.staging_pushed
            if not committed:
                self.aborts += 1
                return
            self.commits += 1
            path = trace.commit_path
            if path is CommitPath.ONE_PC:
                self.commits_1pc += 1
            elif path is CommitPath.PARALLEL:
                self.commits_parallel += 1
            elif path is CommitPath.TWO_PC:
                self.commits_2pc += 1
            elif path is CommitPath.READ_ONLY:
                self.commits_read_only += 1
            r = trace.rounds
            self.rounds_hist[r] += 1
            self.rounds_by_path.setdefault(path.value, Counter())[r] += 1
            self.durations.append(duration)
            if len(self.durations) > 10_000:
                del self.durations[:5_000]

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            return {
                "commits": self.commits,
                "commits_1pc": self.commits_1pc,
                "commits_parallel": self.commits_parallel,
                "commits_2pc": self.commits_2pc,
                "commits_read_only": self.commits_read_only,
                "aborts": self.aborts,
                "restarts": self.restarts,
                "refreshes": self.refreshes,
                "refresh_failures": self.refresh_failures,
                "staging_pushed": self.staging_pushed,
                "rounds_hist": dict(self.rounds_hist),
                "rounds_by_path": {k: dict(v) for k, v in self.rounds_by_path.items()},
            }


class MetricRecorder(Interceptor):
    name = "metric_recorder"

    def __init__(self, state: TxnState) -> None:
        super().__init__(state)
        self.started = time.monotonic()

    async def send(self, ba: BatchRequest) -> BatchResponse:
        self.state.trace.batches.append(
            BatchEvent(
                kinds=tuple(kinds(ba)),
                rounds=batch_rounds(ba),
                async_consensus=ba.header.async_consensus,
                epoch=ba.header.txn.meta.epoch,
            )
        )
        return await self.next(ba)
