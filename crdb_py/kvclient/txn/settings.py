"""The coordinator's cluster settings, switchable at run time.

Two knobs carry CockroachDB's names so that 2PC, 2PC + pipelining, parallel
commits and both can be compared on one build:

* ``kv.transaction.write_pipelining_enabled`` — point-write batches go out
  with async consensus and are proven later (`pipeliner.py`);
* ``kv.transaction.parallel_commits_enabled`` — the final batch stages the
  record in parallel with the last writes (`committer.py`).

`TxnSettings` is the mutable, thread-safe holder a node (or a test) owns;
`SET CLUSTER SETTING` and `LocalCluster(...)` arguments write to it. Each
transaction takes a frozen `TxnConfig` snapshot when it starts, so a switch
never changes the rules in the middle of a transaction.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import Any

PARALLEL_COMMITS_ENABLED = "kv.transaction.parallel_commits_enabled"
WRITE_PIPELINING_ENABLED = "kv.transaction.write_pipelining_enabled"
MAX_INFLIGHT_BYTES = "kv.transaction.write_pipelining_max_batch_size_bytes"

_FIELDS = {
    PARALLEL_COMMITS_ENABLED: "parallel_commits",
    WRITE_PIPELINING_ENABLED: "write_pipelining",
    MAX_INFLIGHT_BYTES: "max_inflight_bytes",
}


@dataclass(frozen=True, slots=True)
class TxnConfig:
    """The settings one transaction runs with (a snapshot)."""

    parallel_commits: bool = True
    write_pipelining: bool = True
    max_inflight_bytes: int = 256 << 10  # pipeliner budget (key bytes of in-flight writes)
    max_lock_spans: int = 1000  # lock footprint is condensed beyond this
    one_phase_commit: bool = True
    heartbeat_interval: float = 1.0  # seconds
    max_refresh_attempts: int = 5


def _parse_bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in ("true", "on", "1", "yes"):
        return True
    if s in ("false", "off", "0", "no"):
        return False
    raise ValueError(f"not a boolean setting value: {v!r}")


parse_bool = _parse_bool  # public name (cluster_settings.py, SQL)


class TxnSettings:
    """Runtime-switchable settings; `snapshot()` at every txn start.

    >>> s = TxnSettings(); s.set(PARALLEL_COMMITS_ENABLED, "false")
    >>> s.snapshot().parallel_commits
    False
    """

    def __init__(self, config: TxnConfig | None = None, **overrides: Any) -> None:
        self._lock = threading.Lock()
        self._config = replace(config or TxnConfig(), **overrides)

    def snapshot(self) -> TxnConfig:
        with self._lock:
            return self._config

    def set(self, name: str, value: Any) -> None:
        """Set a setting by its cluster-setting name (values may be strings)."""
        attr = _FIELDS.get(name)
        if attr is None:
            raise KeyError(f"unknown transaction setting {name!r}; known: {sorted(_FIELDS)}")
        v: Any = int(value) if attr == "max_inflight_bytes" else _parse_bool(value)
        with self._lock:
            self._config = replace(self._config, **{attr: v})

    def get(self, name: str) -> Any:
        attr = _FIELDS.get(name)
        if attr is None:
            raise KeyError(f"unknown transaction setting {name!r}")
        return getattr(self.snapshot(), attr)

    def update(self, **fields: Any) -> None:
        """Replace `TxnConfig` fields by attribute name (tests, constructors)."""
        with self._lock:
            self._config = replace(self._config, **fields)

    @staticmethod
    def names() -> list[str]:
        return sorted(_FIELDS)
