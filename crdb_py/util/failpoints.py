"""Failpoints: named places in the code where a test can pause, fail or kill.

A failpoint is a string name (``"kvclient.txn.before_ack"``) that code
passes through with ``await failpoints.hit(name)`` (or `hit_sync` in
synchronous code). Nothing is armed by default and an unarmed point costs a
dict lookup. A test arms a point with an action:

* ``pause`` — the caller blocks until `release(name)` (or `disable`);
  `wait_reached(name)` lets the test wait until something is parked there;
* ``error`` / ``error(message)`` — the caller raises `FailpointError`;
* ``kill`` — the process dies at once (``os._exit(137)``, no cleanup, no
  flush: a crash), the way M7's nemeses kill a coordinator;
* ``sleep(seconds)`` — the caller sleeps (async points only).

An action may be limited to the first *n* hits: ``error*1`` fails once.

From code: ``failpoints.enable("x", "pause")``. In a child process: set
``CRDB_PY_FAILPOINTS="name=action;name2=action"`` in its environment; the
module reads it at import (and `load_env()` re-reads it).

Pause works across threads: the parked coroutine polls a `threading.Event`
cheaply (the code under test may run on a loop in another thread than the
test). Every hit is counted (`hits(name)`), armed or not.

Cost. While nothing is armed, `hit`/`hit_sync` take a fast path: count the
hit and wake a `wait_reached` waiter if there is one — no lock, no Event
created. Hot paths may still guard with ``if failpoints._armed:`` to skip
even the call.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from crdb_py.util.errors import CrdbError

ENV_VAR = "CRDB_PY_FAILPOINTS"
_POLL = 0.002


class FailpointError(CrdbError):
    """Raised by a failpoint armed with ``error``."""


@dataclass(slots=True)
class _Armed:
    kind: str  # pause | error | kill | sleep
    arg: str = ""
    remaining: int = -1  # -1: unlimited
    released: threading.Event = field(default_factory=threading.Event)
    parked: int = 0


_armed: dict[str, _Armed] = {}
_hits: Counter[str] = Counter()
_lock = threading.Lock()
_reached: dict[str, threading.Event] = {}

_ACTION = re.compile(r"^\s*(pause|error|kill|sleep)\s*(?:\((.*)\))?\s*(?:\*\s*(\d+))?\s*$")


def enable(name: str, action: str) -> None:
    """Arm `name` with `action` (see the module docstring for the grammar)."""
    m = _ACTION.match(action)
    if m is None:
        raise ValueError(f"bad failpoint action {action!r} for {name!r}")
    kind, arg, count = m.group(1), m.group(2) or "", m.group(3)
    with _lock:
        _armed[name] = _Armed(kind, arg, int(count) if count else -1)


def disable(name: str) -> None:
    """Disarm `name`; anything paused there continues."""
    with _lock:
        a = _armed.pop(name, None)
    if a is not None:
        a.released.set()


def release(name: str) -> None:
    """Let everything paused at `name` continue (the point stays armed)."""
    with _lock:
        a = _armed.get(name)
    if a is not None:
        a.released.set()


def reset() -> None:
    """Disarm every point and forget the hit counts."""
    with _lock:
        names = list(_armed)
    for n in names:
        disable(n)
    with _lock:
        _hits.clear()
        _reached.clear()


def hits(name: str) -> int:
    return _hits[name]


def _reached_event(name: str) -> threading.Event:
    with _lock:
        ev = _reached.get(name)
        if ev is None:
            ev = _reached[name] = threading.Event()
            # Published before the check: a fast-path hit either sees the
            # event or its count is seen here.
            if _hits[name]:
                ev.set()
        return ev


def wait_reached_sync(name: str, timeout: float = 10.0) -> bool:
    """Block until some caller hit `name` (armed or not); False on timeout."""
    return _reached_event(name).wait(timeout)


async def wait_reached(name: str, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    ev = _reached_event(name)
    while not ev.is_set():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(_POLL)
    return True


def _count_unarmed(name: str) -> None:
    """The fast path: count the hit, wake a waiter; no lock (a lost count
    under a thread race is the worst case, and only while nothing is armed)."""
    _hits[name] += 1
    ev = _reached.get(name)
    if ev is not None and not ev.is_set():
        ev.set()


def _take(name: str) -> _Armed | None:
    with _lock:
        _hits[name] += 1
        ev = _reached.get(name)
        a = _armed.get(name)
        if a is not None:
            if a.remaining == 0:
                a = None
            elif a.remaining > 0:
                a.remaining -= 1
    if ev is not None and not ev.is_set():
        ev.set()
    return a


def _fire_now(name: str, a: _Armed) -> None:
    if a.kind == "kill":
        os._exit(137)
    if a.kind == "error":
        raise FailpointError(a.arg or f"failpoint {name} fired")


async def hit(name: str) -> None:
    """Pass failpoint `name` (async code)."""
    if not _armed:
        _count_unarmed(name)
        return
    a = _take(name)
    if a is None:
        return
    if a.kind == "pause":
        a.parked += 1
        try:
            while not a.released.is_set():
                await asyncio.sleep(_POLL)
        finally:
            a.parked -= 1
        return
    if a.kind == "sleep":
        await asyncio.sleep(float(a.arg or 0))
        return
    _fire_now(name, a)


def hit_sync(name: str) -> None:
    """Pass failpoint `name` (synchronous code; pause blocks the thread)."""
    if not _armed:
        _count_unarmed(name)
        return
    a = _take(name)
    if a is None:
        return
    if a.kind == "pause":
        a.released.wait()
        return
    if a.kind == "sleep":
        time.sleep(float(a.arg or 0))
        return
    _fire_now(name, a)


def load_env(value: str | None = None) -> None:
    """Arm the points listed in `value` (default: the ``CRDB_PY_FAILPOINTS``
    environment variable), ``name=action;name=action``."""
    spec = os.environ.get(ENV_VAR, "") if value is None else value
    for item in spec.split(";"):
        if not item.strip():
            continue
        name, sep, action = item.partition("=")
        if not sep:
            raise ValueError(f"bad {ENV_VAR} entry {item!r}: want name=action")
        enable(name.strip(), action.strip())


load_env()
