"""SET / SHOW CLUSTER SETTING: the two transaction knobs and the GC TTL, in KV.

A cluster setting lives in the system key space at ``\\x03settings/<name>``
(value: the text ``true`` / ``false``, or decimal digits for an integer
setting such as ``gc.ttlseconds``, which the stores' GC queues read on each
run — crdb_py/kvserver/gc_queue.py), written by ``SET CLUSTER SETTING``
in its own implicit transaction (inside BEGIN it is refused, 25001, as in
CockroachDB). The value takes effect through the gateway's `db.settings`
(`crdb_py/kvclient/txn/settings.py`), which every new KV transaction
snapshots when it starts:

* the gateway that ran the SET applies it right after the commit;
* every session refreshes its store's settings from KV before starting a
  transaction, at most once per `REFRESH_INTERVAL` seconds per store, so
  other gateways (other SQL processes, pgwire nodes) follow within ~1 s.

Rejected: gossip / rangefeeds (not built); reading the keys inside each
transaction (the txn's config snapshot is taken before its first read).
"""

from __future__ import annotations

import time
from typing import Any

from crdb_py.kvclient.txn.settings import (
    PARALLEL_COMMITS_ENABLED,
    WRITE_PIPELINING_ENABLED,
    TxnConfig,
)
from crdb_py.sql import errors as E
from crdb_py.sql.kv import WriteBuffer

PREFIX = b"\x03settings/"
KNOWN: dict[str, str] = {  # name -> TxnConfig field
    PARALLEL_COMMITS_ENABLED: "parallel_commits",
    WRITE_PIPELINING_ENABLED: "write_pipelining",
}
INT_SETTINGS: dict[str, int] = {  # name -> default (read by the servers, not the gateway)
    "gc.ttlseconds": 25 * 3600,  # crdb_py/kvserver/gc_queue.py
    "server.time_until_store_dead": 300,  # crdb_py/kvserver/store.py: replace dead replicas
}
REFRESH_INTERVAL = 1.0
_last_refresh: dict[int, float] = {}  # id(store) -> monotonic time


def setting_key(name: str) -> bytes:
    return PREFIX + name.encode()


def _check(name: str) -> str:
    n = name.strip().strip('"').lower()
    if n not in KNOWN and n not in INT_SETTINGS:
        raise E.SQLError(f"unknown cluster setting {name!r}", "42704")
    return n


def parse_bool(text: str) -> bool:
    v = text.strip().strip("'\"").lower()
    if v in ("true", "on", "1", "yes"):
        return True
    if v in ("false", "off", "0", "no"):
        return False
    raise E.SQLError(f"invalid value for a bool setting: {text!r}", "22023")


def parse_int(name: str, text: str) -> int:
    v = text.strip().strip("'\"")
    if not v.isdigit():
        raise E.SQLError(f"invalid value for {name}: {text!r} (a whole number >= 0)", "22023")
    return int(v)


def set_setting(buf: WriteBuffer, name: str, value: str) -> tuple[str, bool | int]:
    """Buffer the write; returns (name, value) for `apply_local` after commit."""
    n = _check(name)
    if n in INT_SETTINGS:
        i = parse_int(n, value)
        buf.put(setting_key(n), str(i).encode())
        return n, i
    v = parse_bool(value)
    buf.put(setting_key(n), b"true" if v else b"false")
    return n, v


def _default(store: Any, name: str) -> bool:
    s = getattr(store, "settings", None)
    if s is not None:
        return bool(s.get(name))
    return bool(getattr(TxnConfig(), KNOWN[name]))


async def show_setting(buf: WriteBuffer, store: Any, name: str) -> bool | int:
    n = _check(name)
    raw = await buf.get(setting_key(n))
    if n in INT_SETTINGS:
        return INT_SETTINGS[n] if raw is None or not raw.isdigit() else int(raw)
    return _default(store, n) if raw is None else raw == b"true"


async def show_all(buf: WriteBuffer, store: Any) -> list[tuple[str, str]]:
    """Every setting as text (CockroachDB's SHOW ALL CLUSTER SETTINGS shape)."""
    out = []
    for n in sorted([*KNOWN, *INT_SETTINGS]):
        v = await show_setting(buf, store, n)
        out.append((n, str(v).lower() if isinstance(v, bool) else str(v)))
    return out


def apply_local(store: Any, name: str, value: bool | int) -> None:
    s = getattr(store, "settings", None)
    if s is not None and name in KNOWN:  # integer settings are read by the servers
        s.set(name, value)


async def refresh(store: Any, *, force: bool = False) -> None:
    """Load stored settings into `store.settings` (rate-limited per store)."""
    if getattr(store, "settings", None) is None:
        return
    now = time.monotonic()
    if not force and now - _last_refresh.get(id(store), -1e9) < REFRESH_INTERVAL:
        return
    _last_refresh[id(store)] = now
    txn = store.txn("sql-settings")
    try:
        rows = await txn.scan(PREFIX, PREFIX + b"\xff")
        await txn.commit()
    except Exception:  # best effort: keep the current settings
        try:
            await txn.rollback()
        except Exception:
            pass
        return
    for k, v in rows:
        name = k[len(PREFIX):].decode(errors="replace")
        if name in KNOWN:
            apply_local(store, name, v == b"true")
