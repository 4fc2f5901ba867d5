"""Jepsen-style histories: what clients invoked and what they were told, in order.

A history is a list of `Op` events. Every operation a client runs produces
two: an `invoke` when it starts and exactly one completion — `ok` (it took
effect, `value` is its result), `fail` (it certainly did not take effect) or
`info` (unknown: a timeout, an ambiguous commit, a crash). An invoke with no
completion at the end of the history counts as `info`. A *process* runs one
operation at a time; after an `info` a workload should move the client to a
fresh process id (the old one may still be running in the database), as
Jepsen does.

Each event carries two clocks: `index`, its position in the history (the
logical time; real-time order of the events the recorder saw), and `time`,
the wall-clock seconds at which it was recorded (informational: latency
plots, reading a failure beside the node logs). Checkers that need real-time
precedence use `index` only.

`value` is free-form per workload: a list-append transaction is a list of
micro-ops `["append", k, v]` / `["r", k, None | [v, ...]]`, a bank read a
mapping account -> balance, a set insert the element. `error` holds the
message of the error that made an operation `fail` or `info`, and `key`
names the object of single-key workloads (registers).

Files. `History.save` / `load` use JSON lines, one event per line, so a run
that is killed mid-way still leaves a readable prefix (`History(path=...)`
streams every event to the file as it is recorded). JSON has no tuples and
only string map keys, so on load lists come back as tuples (hashable, the
checkers treat any sequence alike) and mappings are written tagged
(`{"__map__": [[k, v], ...]}`) so integer account ids survive.
"""

from __future__ import annotations

import json
import threading
import time as _time
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

__all__ = [
    "EventType",
    "History",
    "Op",
    "Operation",
    "history_ops",
    "load",
    "operations",
    "register_events",
    "save",
]

EventType = Literal["invoke", "ok", "fail", "info"]
_TYPES = ("invoke", "ok", "fail", "info")


@dataclass(frozen=True, slots=True)
class Op:
    """One event of a history (see the module docstring)."""

    index: int
    type: EventType
    process: int
    f: str
    value: Any = None
    time: float = 0.0
    key: Hashable = None
    error: str | None = None

    def to_json(self) -> str:
        d: dict[str, Any] = {
            "index": self.index, "type": self.type, "process": self.process,
            "f": self.f, "value": _encode(self.value), "time": self.time,
        }
        if self.key is not None:
            d["key"] = _encode(self.key)
        if self.error is not None:
            d["error"] = self.error
        return json.dumps(d, separators=(",", ":"))

    @staticmethod
    def from_json(line: str) -> Op:
        d = json.loads(line)
        if d.get("type") not in _TYPES:
            raise ValueError(f"bad event type in history line: {line!r}")
        return Op(
            index=int(d["index"]), type=d["type"], process=int(d["process"]), f=d["f"],
            value=_decode(d.get("value")), time=float(d.get("time", 0.0)),
            key=_decode(d.get("key")), error=d.get("error"),
        )


@dataclass(frozen=True, slots=True)
class Operation:
    """An invoke paired with its completion. `status` is `info` both for an
    explicit `info` and for an invoke that never completed (`complete` is
    then None). `value` is the completion's value for `ok` and the invoke's
    otherwise (what was attempted)."""

    invoke: Op
    complete: Op | None

    @property
    def status(self) -> Literal["ok", "fail", "info"]:
        if self.complete is None or self.complete.type == "info":
            return "info"
        return "ok" if self.complete.type == "ok" else "fail"

    @property
    def process(self) -> int:
        return self.invoke.process

    @property
    def f(self) -> str:
        return self.invoke.f

    @property
    def key(self) -> Hashable:
        return self.invoke.key

    @property
    def value(self) -> Any:
        if self.complete is not None and self.complete.type == "ok":
            return self.complete.value
        return self.invoke.value

    @property
    def call(self) -> int:
        """Logical time of the invoke."""
        return self.invoke.index

    @property
    def ret(self) -> float:
        """Logical time of the completion; +inf for `info` (may take effect
        at any time after its call)."""
        if self.status == "info" or self.complete is None:
            return float("inf")
        return self.complete.index


def operations(ops: Iterable[Op]) -> list[Operation]:
    """Pair each invoke with its process's next completion, in invoke order.

    Raises ValueError on a malformed history (a process invoking twice, a
    completion without an invoke, a completion whose `f` differs)."""
    open_: dict[int, int] = {}
    out: list[Operation | None] = []
    invokes: list[Op] = []
    for op in ops:
        if op.type == "invoke":
            if op.process in open_:
                raise ValueError(f"process {op.process} invoked twice (event {op.index})")
            open_[op.process] = len(out)
            out.append(None)
            invokes.append(op)
            continue
        slot = open_.pop(op.process, None)
        if slot is None:
            raise ValueError(f"completion without invoke: process {op.process} (event {op.index})")
        inv = invokes[slot]
        if inv.f != op.f:
            raise ValueError(f"completion {op.index} ({op.f}) does not match invoke {inv.index}")
        out[slot] = Operation(inv, op)
    for slot in open_.values():
        out[slot] = Operation(invokes[slot], None)
    return [o for o in out if o is not None]


class History:
    """Records a history as clients run; safe to call from many threads.

        h = History(path="run.jsonl")
        h.invoke(p, "txn", [["append", 1, 5], ["r", 2, None]])
        h.ok(p, [["append", 1, 5], ["r", 2, [3, 4]]])

    `clock` returns wall-clock seconds (default `time.time`); `path` streams
    each event as a JSON line as soon as it is recorded.
    """

    def __init__(
        self,
        ops: Iterable[Op] = (),
        *,
        path: str | Path | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.ops: list[Op] = list(ops)
        self._open: dict[int, Op] = {}
        self._lock = threading.Lock()
        self._clock = clock or _time.time
        self._file: IO[str] | None = open(path, "w") if path is not None else None

    def _record(self, type_: EventType, process: int, f: str | None, value: Any,
                key: Hashable, error: str | None) -> Op:
        with self._lock:
            if type_ == "invoke":
                if process in self._open:
                    raise ValueError(f"process {process} already has an operation in flight")
            elif process not in self._open:
                raise ValueError(f"process {process} has no operation in flight")
            else:
                inv = self._open.pop(process)
                f, key = inv.f, inv.key
            assert f is not None
            op = Op(len(self.ops), type_, process, f, value, self._clock(), key, error)
            if type_ == "invoke":
                self._open[process] = op
            self.ops.append(op)
            if self._file is not None:
                self._file.write(op.to_json() + "\n")
                self._file.flush()
            return op

    def invoke(self, process: int, f: str, value: Any = None, *, key: Hashable = None) -> Op:
        return self._record("invoke", process, f, value, key, None)

    def ok(self, process: int, value: Any = None) -> Op:
        return self._record("ok", process, None, value, None, None)

    def fail(self, process: int, value: Any = None, error: str | None = None) -> Op:
        return self._record("fail", process, None, value, None, error)

    def info(self, process: int, value: Any = None, error: str | None = None) -> Op:
        return self._record("info", process, None, value, None, error)

    def in_flight(self) -> list[int]:
        with self._lock:
            return sorted(self._open)

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def save(self, path: str | Path) -> None:
        save(self.ops, path)

    def operations(self) -> list[Operation]:
        return operations(self.ops)

    def __iter__(self) -> Iterator[Op]:
        return iter(self.ops)

    def __len__(self) -> int:
        return len(self.ops)


def save(ops: Iterable[Op], path: str | Path) -> None:
    with open(path, "w") as fh:
        for op in ops:
            fh.write(op.to_json() + "\n")


def load(path: str | Path) -> History:
    """Read a JSON-lines history. A torn last line (the writer was killed
    mid-write) is ignored; any other bad line raises ValueError."""
    lines = Path(path).read_text().splitlines()
    ops: list[Op] = []
    for n, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            ops.append(Op.from_json(line))
        except (json.JSONDecodeError, KeyError) as e:
            if n == len(lines) - 1:
                break
            raise ValueError(f"{path}:{n + 1}: bad history line: {e}") from e
    return History(ops)


def history_ops(history: History | Sequence[Op]) -> Sequence[Op]:
    return history.ops if isinstance(history, History) else history


def register_events(history: History | Sequence[Op]) -> list[Any]:
    """Convert a register history (f in read/write/cas, `key` set) into the
    events of `crdb_py.jepsen.linearizability`, so one recording format
    feeds every checker."""
    from crdb_py.jepsen.linearizability import Event

    out = []
    for op in history_ops(history):
        value = op.value
        if op.f == "cas" and op.type == "invoke" and isinstance(value, (list, tuple)):
            value = tuple(value)
        out.append(Event(op.process, op.type, op.f, op.key, value, op.time))
    return out


# ---- JSON encoding of values -----------------------------------------------------


def _encode(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {"__map__": [[_encode(k), _encode(x)] for k, x in v.items()]}
    if isinstance(v, (list, tuple)):
        return [_encode(x) for x in v]
    if isinstance(v, (set, frozenset)):
        return {"__set__": sorted((_encode(x) for x in v), key=repr)}
    return v


def _decode(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(_decode(x) for x in v)
    if isinstance(v, dict):
        if "__map__" in v:
            return {_decode(k): _decode(x) for k, x in v["__map__"]}
        if "__set__" in v:
            return frozenset(_decode(x) for x in v["__set__"])
        return {k: _decode(x) for k, x in v.items()}
    return v
