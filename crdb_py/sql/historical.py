"""AS OF SYSTEM TIME: read-only transactions at a fixed past timestamp.

`SELECT ... AS OF SYSTEM TIME <ts>`, `BEGIN AS OF SYSTEM TIME <ts>` and
`SET TRANSACTION AS OF SYSTEM TIME <ts>` run on a `HistoricalTxn`: it
satisfies the `KVTxn` seam (crdb_py/sql/kv.py) by sending *non-transactional*
read batches with `header.timestamp` set (the DistSender and the replica
keep a timestamp that is already set), so every read of the transaction
sees the same MVCC snapshot, takes no locks and never conflicts — CockroachDB
serves such reads the same way. Writes are refused (25006).

`<ts>`: a negative interval relative to now (`'-1s'`, `'-250ms'`,
`'-2m'`, `'-1h'`, `'-1 second'`), an HLC decimal (`'<wall ns>.<logical>'`) or
a timestamp literal (`'2026-11-26 23:59:00'`, UTC).
"""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import Any

from crdb_py.kvclient.db import Batch
from crdb_py.sql import errors as E
from crdb_py.util.hlc import Timestamp, ts_to_proto

_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
          "m": 60_000_000_000, "h": 3_600_000_000_000,
          "second": 1_000_000_000, "seconds": 1_000_000_000, "sec": 1_000_000_000,
          "millisecond": 1_000_000, "milliseconds": 1_000_000,
          "minute": 60_000_000_000, "minutes": 60_000_000_000,
          "hour": 3_600_000_000_000, "hours": 3_600_000_000_000}
_INTERVAL = re.compile(r"^(-?\d+(?:\.\d+)?)\s*([a-zµ]+)$", re.I)


def _now(store: Any) -> Timestamp:
    clock = getattr(store, "clock", None)
    if clock is not None:
        return clock.now()
    return Timestamp(time.time_ns(), 0)


def parse_as_of(text: str, store: Any) -> Timestamp:
    """The timestamp an AS OF SYSTEM TIME clause names."""
    s = text.strip()
    if s.lower().startswith("interval"):
        s = s[len("interval"):].strip()
    s = s.strip("'\"").strip()
    m = _INTERVAL.match(s)
    if m and m.group(2).lower() in _UNITS:
        delta = int(float(m.group(1)) * _UNITS[m.group(2).lower()])
        if delta > 0:
            raise E.SQLError("AS OF SYSTEM TIME: interval value must be negative", "22023")
        now = _now(store)
        return Timestamp(now.wall_time + delta, 0)
    if re.fullmatch(r"\d+(\.\d+)?", s):
        wall, _, logical = s.partition(".")
        return Timestamp(int(wall), int(logical or 0))
    try:
        d = dt.datetime.fromisoformat(s)
    except ValueError:
        raise E.SQLError(f"AS OF SYSTEM TIME: value {text!r} is neither timestamp, "
                         "decimal nor interval", "22023") from None
    if d.tzinfo is None:
        d = d.replace(tzinfo=dt.UTC)
    ts = Timestamp(int(d.timestamp() * 1e9), 0)
    if ts > _now(store):
        raise E.SQLError("AS OF SYSTEM TIME: cannot specify timestamp in the future", "22023")
    return ts


def _read_only() -> E.SQLError:
    return E.SQLError("cannot execute writes in a read-only transaction "
                      "(AS OF SYSTEM TIME)", "25006")


class HistoricalTxn:
    """A read-only `KVTxn` at a fixed timestamp (non-transactional reads)."""

    trace = None

    def __init__(self, store: Any, ts: Timestamp) -> None:
        self.store = store
        self.ts = ts
        self.finished = False

    async def _send(self, b: Batch) -> list[Any]:
        ba = b.to_proto()
        ts_to_proto(self.ts, ba.header.timestamp)
        br = await self.store.sender.send(ba)
        return b.fill_results(br)

    async def get(self, key: bytes) -> bytes | None:
        return (await self._send(Batch().get(key)))[0].value

    async def scan(self, start: bytes, end: bytes, *, max_rows: int = 0) -> list[tuple[bytes, bytes]]:
        out: list[tuple[bytes, bytes]] = []
        while True:
            res = (await self._send(Batch(max_span_request_keys=max_rows).scan(start, end)))[0]
            out.extend(res.rows)
            if res.resume_span is None or (max_rows and len(out) >= max_rows):
                return out
            start = res.resume_span[0]

    async def reverse_scan(self, start: bytes, end: bytes, *, max_rows: int = 0) -> list[Any]:
        rows = await self.scan(start, end)
        rows.reverse()
        return rows[:max_rows] if max_rows else rows

    def new_batch(self) -> Batch:
        return Batch()

    async def run(self, b: Batch) -> list[Any]:
        if any(r.WhichOneof("value") != "get" for r in b.to_proto().requests):
            raise _read_only()
        return await self._send(b)

    async def put(self, key: bytes, value: bytes) -> None:
        raise _read_only()

    async def inc(self, key: bytes, delta: int = 1) -> int:
        raise _read_only()

    async def commit_in_batch(self, b: Batch) -> None:
        raise _read_only()

    async def commit(self) -> None:
        self.finished = True

    async def rollback(self) -> None:
        self.finished = True


_MODS = re.compile(r"AS\s+OF\s+SYSTEM\s+TIME\s+('[^']*'|\S+)|PRIORITY\s+(LOW|NORMAL|HIGH)"
                   r"|READ\s+(ONLY|WRITE)|ISOLATION\s+LEVEL\s+(\w+(?:\s+\w+)?)|TRANSACTION|,", re.I)
HIGH_PRIORITY = 2**31 - 1


def txn_modes(text: str) -> tuple[str | None, int | None, bool | None]:
    """BEGIN / SET TRANSACTION modes: (as-of text, priority, read only)."""
    aost: str | None = None
    prio: int | None = None
    ro: bool | None = None
    pos, s = 0, text.strip()
    while pos < len(s):
        if s[pos].isspace():
            pos += 1
            continue
        m = _MODS.match(s, pos)
        if m is None:
            raise E.syntax(f"at or near {s[pos:pos + 20]!r}: unknown transaction mode")
        if m.group(1):
            aost = m.group(1)
        elif m.group(2):
            prio = HIGH_PRIORITY if m.group(2).upper() == "HIGH" else 0
        elif m.group(3):
            ro = m.group(3).upper() == "ONLY"
        pos = m.end()
    return aost, prio, ro
