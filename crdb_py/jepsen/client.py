"""The client seam of the Jepsen workloads: what each workload needs from a database.

A workload (`crdb_py.jepsen.workloads`) decides *what* to run and how to
record it; a client decides *how* to run it against a database. Each
workload names the few operations it needs as a small `Protocol` here, so
the same workload runs over the KV transaction API today (`KVClient`) and
over SQL tomorrow (M8: a client that speaks the same protocols through
PEP 249) without touching workloads, nemeses or checkers.

Rules every client keeps:

- each operation is one transaction (`run_txn`, retried on retryable
  errors), so an operation that returns took effect exactly once;
- an operation that certainly did not take effect raises `DefiniteFailure`
  (or a retryable `CrdbError` once the retries are exhausted: the txn was
  rolled back); anything else it raises may have taken effect and is
  recorded as `info` by the runner (see `classify`).

`KVClient` keeps every workload's keys under one `prefix`, so many runs can
share one cluster: ``<prefix><kind>/<%09d>`` (``kind`` is ``bank``,
``reg``, ``set``, ``la``, ``mono``). Values are ASCII integers, list-append
lists are JSON.
"""

from __future__ import annotations

import concurrent.futures
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol

from crdb_py.util import errors

__all__ = [
    "BankClient",
    "DefiniteFailure",
    "KVClient",
    "ListAppendClient",
    "MonotonicClient",
    "NonTransactionalDB",
    "RegisterClient",
    "SetClient",
    "classify",
]


class DefiniteFailure(Exception):
    """The operation certainly did not take effect (recorded as `fail`)."""


def classify(e: BaseException) -> Literal["fail", "info"]:
    """`fail` when `e` proves the operation did not take effect, else `info`.

    Retryable errors reach the workload only after `run_txn` gave up and
    rolled the txn back, and a ConditionFailedError is a refused write: both
    are definite. Ambiguous results, indeterminate commits, timeouts, dead
    nodes and anything unexpected are `info` — never `fail`."""
    if isinstance(e, DefiniteFailure):
        return "fail"
    if isinstance(e, (errors.AmbiguousResultError, errors.IndeterminateCommitError)):
        return "info"
    if isinstance(e, errors.ConditionFailedError):
        return "fail"
    if isinstance(e, errors.CrdbError) and type(e).retryable:
        return "fail"
    return "info"


# ---- what each workload needs ------------------------------------------------------


class BankClient(Protocol):
    def bank_setup(self, balances: Mapping[int, int]) -> None: ...

    def transfer(self, src: int, dst: int, amount: int) -> bool:
        """Move `amount` from `src` to `dst` in one txn; False (and no
        change) when `src` holds less than `amount`."""
        ...

    def read_balances(self) -> dict[int, int]:
        """Every account's balance, read in one txn."""
        ...


class RegisterClient(Protocol):
    def reg_read(self, key: int) -> int | None: ...

    def reg_write(self, key: int, value: int) -> None: ...

    def reg_cas(self, key: int, expected: int, new: int) -> bool:
        """Compare-and-set; False when the current value is not `expected`."""
        ...


class SetClient(Protocol):
    def set_add(self, element: int) -> None: ...

    def set_read(self) -> list[int]: ...


class ListAppendClient(Protocol):
    def list_txn(self, mops: Sequence[Sequence[Any]]) -> list[list[Any]]:
        """Run micro-ops ``["append", k, v]`` / ``["r", k, None]`` in one txn;
        returns them with reads filled in (``["r", k, [v, ...]]``)."""
        ...


class MonotonicClient(Protocol):
    def mono_inc(self) -> dict[str, Any]:
        """Read the maximum `m` (0 when empty), insert `m + 1`, commit; returns
        ``{"read": m, "insert": m + 1, "ts": (wall, logical)}`` with the
        transaction's commit timestamp."""
        ...

    def mono_read(self) -> list[int]: ...


# ---- the KV implementation ---------------------------------------------------------


def _last_put(t: Any, key: bytes, value: bytes) -> None:
    """The txn's last write, sent with its commit (one batch: the write and
    EndTxn, the shape a parallel commit is made for) when the txn supports it."""
    if hasattr(t, "commit_in_batch"):
        from crdb_py.kvclient.db import Batch

        t.commit_in_batch(Batch().put(key, value))
    else:
        t.put(key, value)


def _int(b: bytes | None) -> int | None:
    return None if b is None else int(b)


class KVClient:
    """All five client protocols over the KV transaction API.

    `db` is a `crdb_py.kvclient.txn.sync.SyncDB` (or anything with the same
    `run_txn(fn)` over a `SyncTxn`-like object)."""

    def __init__(self, db: Any, prefix: bytes = b"jepsen/") -> None:
        self.db = db
        self.prefix = prefix

    def key(self, kind: str, i: int) -> bytes:
        return b"%s%s/%09d" % (self.prefix, kind.encode(), i)

    def span(self, kind: str) -> tuple[bytes, bytes]:
        p = b"%s%s/" % (self.prefix, kind.encode())
        return p, p + b"\xff"

    def _txn(self, fn: Any) -> Any:
        try:
            return self.db.run_txn(fn)
        except concurrent.futures.TimeoutError as e:
            raise TimeoutError("operation timed out (outcome unknown)") from e

    def _scan_ints(self, t: Any, kind: str) -> list[tuple[int, bytes]]:
        lo, hi = self.span(kind)
        return [(int(k[len(lo):]), v) for k, v in t.scan(lo, hi)]

    # bank
    def bank_setup(self, balances: Mapping[int, int]) -> None:
        def fn(t: Any) -> None:
            for a, b in balances.items():
                t.put(self.key("bank", a), b"%d" % b)

        self._txn(fn)

    def transfer(self, src: int, dst: int, amount: int) -> bool:
        def fn(t: Any) -> bool:
            s = _int(t.get(self.key("bank", src))) or 0
            d = _int(t.get(self.key("bank", dst))) or 0
            if s < amount:
                return False
            t.put(self.key("bank", src), b"%d" % (s - amount))
            _last_put(t, self.key("bank", dst), b"%d" % (d + amount))
            return True

        return bool(self._txn(fn))

    def read_balances(self) -> dict[int, int]:
        return self._txn(lambda t: {a: int(v) for a, v in self._scan_ints(t, "bank")})

    # register
    def reg_read(self, key: int) -> int | None:
        return self._txn(lambda t: _int(t.get(self.key("reg", key))))

    def reg_write(self, key: int, value: int) -> None:
        self._txn(lambda t: t.put(self.key("reg", key), b"%d" % value))

    def reg_cas(self, key: int, expected: int, new: int) -> bool:
        try:
            self._txn(lambda t: t.cput(self.key("reg", key), b"%d" % new, b"%d" % expected))
        except errors.ConditionFailedError:
            return False
        return True

    # sets
    def set_add(self, element: int) -> None:
        self._txn(lambda t: t.put(self.key("set", element), b"1"))

    def set_read(self) -> list[int]:
        return self._txn(lambda t: [e for e, _ in self._scan_ints(t, "set")])

    # list-append
    def list_txn(self, mops: Sequence[Sequence[Any]]) -> list[list[Any]]:
        def fn(t: Any) -> list[list[Any]]:
            out: list[list[Any]] = []
            for f, k, v in mops:
                raw = t.get(self.key("la", k))
                cur = json.loads(raw) if raw is not None else []
                if f == "append":
                    t.put(self.key("la", k), json.dumps(cur + [v]).encode())
                    out.append(["append", k, v])
                else:
                    out.append(["r", k, cur])
            return out

        return self._txn(fn)

    # monotonic
    def mono_inc(self) -> dict[str, Any]:
        lo, hi = self.span("mono")

        def fn(t: Any) -> dict[str, Any]:
            top = t.reverse_scan(lo, hi, max_rows=1)
            m = int(top[0][0][len(lo):]) if top else 0
            t.put(self.key("mono", m + 1), b"1")
            t.commit()
            ts = t.txn.commit_timestamp
            return {"read": m, "insert": m + 1, "ts": (ts.wall_time, ts.logical)}

        return self._txn(fn)

    def mono_read(self) -> list[int]:
        return self._txn(lambda t: [e for e, _ in self._scan_ints(t, "mono")])


class NonTransactionalDB:
    """A deliberately broken database view for the checkers' mutation tests:
    `run_txn(fn)` hands `fn` the plain `db`, so every read and write of an
    "transaction" is its own single-key operation (no isolation, no
    atomicity: read skew, lost updates). A workload run through it must be
    flagged by its checker."""

    def __init__(self, db: Any) -> None:
        self.db = db

    def run_txn(self, fn: Any, **_: Any) -> Any:
        return fn(_NoTxn(self.db))


class _NoTxn:
    def __init__(self, db: Any) -> None:
        self._db = db

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)

    @property
    def txn(self) -> _NoTxn:
        return self

    @property
    def commit_timestamp(self) -> Any:
        from crdb_py.util.hlc import Timestamp

        return Timestamp(time.time_ns(), 0)  # "now": there is no transaction

    def commit(self) -> None:
        pass
