"""Store identity: which cluster, node and store an engine belongs to.

A store directory is useless without knowing whose it is. The identity is
written once — when the node bootstraps a cluster (`crdb-py init`) or is
admitted by `Admin.Join` — as a raw (unversioned, never replicated) engine key
under the store-local prefix ``b"\\x00s"``::

    b"\\x00sident"  ->  msgpack {"v": 1, "cluster_id": str, "node_id": int, "store_id": int}

Next to it, the node keeps the last known address of every peer (a cache
of the `NodeDescriptor`s in KV, used to find the cluster again after a
restart, before KV is reachable)::

    b"\\x00speer/" + node_id(4 bytes big endian)  ->  NodeDescriptor (pb)

It is the first thing a restarting node reads: with an identity the node
starts its store straight away (no join); without one it waits to be
bootstrapped or admitted. The key lives outside every range's key space
(raw keys of ranges start ``b"\\x00i"``), so no snapshot or replica removal
ever touches it.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgpack

from crdb_py.storage.engine import Engine
from crdb_py.util.errors import StorageError

STORE_LOCAL_PREFIX = b"\x00s"
STORE_IDENT_KEY = STORE_LOCAL_PREFIX + b"ident"
STORE_PEER_PREFIX = STORE_LOCAL_PREFIX + b"peer/"
_VERSION = 1


@dataclass(frozen=True, slots=True)
class StoreIdent:
    cluster_id: str
    node_id: int
    store_id: int

    def encode(self) -> bytes:
        return msgpack.packb(
            {
                "v": _VERSION,
                "cluster_id": self.cluster_id,
                "node_id": self.node_id,
                "store_id": self.store_id,
            }
        )

    @staticmethod
    def decode(data: bytes) -> StoreIdent:
        try:
            d = msgpack.unpackb(data)
            if d.get("v") != _VERSION:
                raise ValueError(f"unknown store identity version {d.get('v')!r}")
            ident = StoreIdent(str(d["cluster_id"]), int(d["node_id"]), int(d["store_id"]))
        except (ValueError, KeyError, TypeError, msgpack.UnpackException) as exc:
            raise StorageError(f"corrupt store identity record: {exc}") from exc
        if ident.node_id <= 0 or ident.store_id <= 0 or not ident.cluster_id:
            raise StorageError(f"invalid store identity {ident}")
        return ident


def read_ident(engine: Engine) -> StoreIdent | None:
    """The store's identity, or None if it was never bootstrapped/joined."""
    data = engine.get(STORE_IDENT_KEY)
    return None if data is None else StoreIdent.decode(data)


def write_ident(engine: Engine, ident: StoreIdent) -> None:
    """Persist `ident` durably. Refuses to overwrite a different identity."""
    existing = read_ident(engine)
    if existing is not None and existing != ident:
        raise StorageError(f"store already belongs to {existing}; refusing to overwrite with {ident}")
    batch = engine.new_batch()
    batch.put(STORE_IDENT_KEY, ident.encode())
    engine.write(batch, sync=True)


def has_range_data(engine: Engine) -> bool:
    """True if the engine holds any range state (raw range keys or MVCC data)."""
    for _ in engine.iter_range(b"\x00i", b"\x00j"):
        return True
    for _ in engine.iter_range(b"\x01", None):
        return True
    return False


def store_peer_key(node_id: int) -> bytes:
    return STORE_PEER_PREFIX + node_id.to_bytes(4, "big")


def save_peer(engine: Engine, node_id: int, desc_bytes: bytes) -> None:
    """Remember a peer's descriptor (not synced: a lost update is relearnt)."""
    engine.put(store_peer_key(node_id), desc_bytes)


def load_peers(engine: Engine) -> list[bytes]:
    """Serialized NodeDescriptors saved by `save_peer`, by node id."""
    end = STORE_LOCAL_PREFIX + b"peer0"  # b"/" + 1
    return [v for _, v in engine.iter_range(STORE_PEER_PREFIX, end)]
