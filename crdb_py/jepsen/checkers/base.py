"""The result every checker returns, and the counting they share."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from crdb_py.jepsen.history import Operation

__all__ = ["Result", "count_statuses"]


@dataclass(slots=True)
class Result:
    """A checker's verdict.

    `anomalies` maps an anomaly name (`G-single`, `lost`, `wrong-total`, ...)
    to one human-readable explanation per instance; `details` holds the same
    instances as structured values (same names, same order) for tests and
    tools. `counts` has the `ok` / `fail` / `info` operation counts the
    checker looked at. `valid` is True iff no anomaly was found.
    """

    checker: str
    anomalies: dict[str, list[str]] = field(default_factory=dict)
    details: dict[str, list[Any]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def valid(self) -> bool:
        return not self.anomalies

    @property
    def anomaly_types(self) -> set[str]:
        return set(self.anomalies)

    def add(self, name: str, explanation: str, detail: Any = None) -> None:
        self.anomalies.setdefault(name, []).append(explanation)
        self.details.setdefault(name, []).append(detail)

    def explain(self, limit: int = 5) -> str:
        c = self.counts
        head = (f"{self.checker}: {'VALID' if self.valid else 'INVALID'} "
                f"(ok {c.get('ok', 0)}, fail {c.get('fail', 0)}, info {c.get('info', 0)})")
        lines = [head]
        for name in sorted(self.anomalies):
            items = self.anomalies[name]
            lines.append(f"  {name}: {len(items)}")
            for text in items[:limit]:
                lines.extend("    " + ln for ln in text.splitlines())
            if len(items) > limit:
                lines.append(f"    ... and {len(items) - limit} more")
        return "\n".join(lines)


def count_statuses(ops: Iterable[Operation]) -> dict[str, int]:
    counts = {"ok": 0, "fail": 0, "info": 0}
    for op in ops:
        counts[op.status] += 1
    return counts
