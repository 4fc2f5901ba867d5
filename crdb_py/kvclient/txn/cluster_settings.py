"""Cluster settings stored in KV, and the refresher that spreads them.

The two coordinator knobs (`settings.py`) are *cluster* settings: set once,
they apply to every gateway. A setting lives at a system key, the encoding
shared with SQL's ``SET CLUSTER SETTING`` (crdb_py/sql/cluster_settings.py)::

    b"\\x03settings/" + name   ->   b"true" | b"false"   (booleans)
                                   b"<decimal>"          (integers)

A missing key means "the default". Writes go through an ordinary KV put, so
they are replicated and durable like any other value.

How a change reaches a gateway. Each `DB` owns a `TxnSettings`, snapshotted
by every transaction when it starts (a switch never changes the rules of a
running txn). `set_cluster_setting(db, ...)` writes the key and updates
`db.settings` at once; every *other* gateway runs a `SettingsRefresher`
(`watch_cluster_settings(db)`), a task on the DB's loop that scans the
settings span every `interval` seconds (0.5 s by default) and copies what
it finds into its `db.settings`. So new transactions everywhere follow a
change within about one interval.

Rejected: gossip or rangefeeds (not built); reading the keys at every txn
start (a KV read on every transaction's critical path for a value that
changes a few times per cluster lifetime).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Protocol

from crdb_py.kvclient.txn.settings import (
    MAX_INFLIGHT_BYTES,
    TxnConfig,
    TxnSettings,
    parse_bool,
)

log = logging.getLogger(__name__)

PREFIX = b"\x03settings/"
PREFIX_END = b"\x03settings0"  # "/" + 1: the end of the settings span
DEFAULT_REFRESH_INTERVAL = 0.5

_INT_SETTINGS = {MAX_INFLIGHT_BYTES}


class _KV(Protocol):
    async def get(self, key: bytes) -> bytes | None: ...
    async def put(self, key: bytes, value: bytes) -> None: ...
    async def scan(self, start: bytes, end: bytes) -> list[tuple[bytes, bytes]]: ...


def setting_key(name: str) -> bytes:
    return PREFIX + name.encode()


def _check(name: str) -> str:
    if name not in TxnSettings.names():
        raise KeyError(f"unknown cluster setting {name!r}; known: {TxnSettings.names()}")
    return name


def encode_value(name: str, value: Any) -> bytes:
    """The stored form of `value` (validated; strings like "off" accepted)."""
    if _check(name) in _INT_SETTINGS:
        return b"%d" % int(value)
    return b"true" if parse_bool(value) else b"false"


def decode_value(name: str, raw: bytes) -> Any:
    if name in _INT_SETTINGS:
        return int(raw)
    return raw == b"true"


def default_value(name: str) -> Any:
    return TxnSettings(TxnConfig()).get(_check(name))


async def set_cluster_setting(db: _KV, name: str, value: Any) -> None:
    """Store `name = value` for the whole cluster and apply it to `db`'s own
    settings at once (other gateways follow through their refreshers)."""
    raw = encode_value(name, value)
    await db.put(setting_key(name), raw)
    settings = getattr(db, "settings", None)
    if isinstance(settings, TxnSettings):
        settings.set(name, decode_value(name, raw))


async def get_cluster_setting(db: _KV, name: str) -> Any:
    """The stored value of `name` (its default when never set)."""
    raw = await db.get(setting_key(_check(name)))
    return default_value(name) if raw is None else decode_value(name, raw)


async def load_cluster_settings(db: _KV) -> dict[str, Any]:
    """Every stored (known) setting: name -> value."""
    out: dict[str, Any] = {}
    for k, v in await db.scan(PREFIX, PREFIX_END):
        name = k[len(PREFIX):].decode(errors="replace")
        if name in TxnSettings.names():
            out[name] = decode_value(name, v)
    return out


class SettingsRefresher:
    """Copies the stored cluster settings into `settings` every `interval`
    seconds, on the loop `start()` was called from."""

    def __init__(
        self, db: _KV, settings: TxnSettings, *, interval: float = DEFAULT_REFRESH_INTERVAL
    ) -> None:
        self.db = db
        self.settings = settings
        self.interval = interval
        self.refreshes = 0  # successful loads
        self._task: asyncio.Task[None] | None = None

    async def refresh(self) -> dict[str, Any]:
        """Load once and apply; returns what was stored."""
        stored = await load_cluster_settings(self.db)
        for name, value in stored.items():
            self.settings.set(name, value)
        self.refreshes += 1
        return stored

    def start(self) -> SettingsRefresher:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="cluster-settings-refresher"
            )
        return self

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self.refresh(), max(1.0, 4 * self.interval))
            except asyncio.CancelledError:
                raise
            except Exception as e:  # unavailable for a while: keep the last values
                log.debug("cluster settings refresh failed: %s", e)
            await asyncio.sleep(self.interval)

    async def stop(self) -> None:
        t, self._task = self._task, None
        if t is not None:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t


def watch_cluster_settings(db: Any, *, interval: float = DEFAULT_REFRESH_INTERVAL) -> SettingsRefresher:
    """Start a refresher keeping `db.settings` in step with the cluster
    (call on `db`'s loop; `await refresher.stop()` when done)."""
    return SettingsRefresher(db, db.settings, interval=interval).start()
