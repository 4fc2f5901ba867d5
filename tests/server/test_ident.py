from __future__ import annotations

import msgpack
import pytest

from crdb_py.server.ident import (
    STORE_IDENT_KEY,
    StoreIdent,
    has_range_data,
    read_ident,
    write_ident,
)
from crdb_py.storage.mem import MemEngine
from crdb_py.storage.rocks import RocksEngine
from crdb_py.util.errors import StorageError
from crdb_py.util.keys import raft_hard_state_key


def test_round_trip_and_persistence(tmp_path) -> None:
    path = str(tmp_path / "s")
    eng = RocksEngine(path)
    assert read_ident(eng) is None
    ident = StoreIdent("c-1", 3, 7)
    write_ident(eng, ident)
    write_ident(eng, ident)  # idempotent
    eng.close()
    eng = RocksEngine(path)
    try:
        assert read_ident(eng) == ident
    finally:
        eng.close()


def test_refuses_to_overwrite_a_different_identity() -> None:
    eng = MemEngine()
    write_ident(eng, StoreIdent("c-1", 1, 1))
    with pytest.raises(StorageError, match="already belongs"):
        write_ident(eng, StoreIdent("c-2", 1, 1))
    assert read_ident(eng) == StoreIdent("c-1", 1, 1)


@pytest.mark.parametrize(
    "raw",
    [
        b"\xc1garbage",
        msgpack.packb({"v": 99, "cluster_id": "c", "node_id": 1, "store_id": 1}),
        msgpack.packb({"v": 1, "cluster_id": "c", "node_id": 0, "store_id": 1}),
        msgpack.packb({"v": 1, "node_id": 1, "store_id": 1}),
    ],
)
def test_corrupt_identity_is_a_storage_error(raw: bytes) -> None:
    eng = MemEngine()
    eng.put(STORE_IDENT_KEY, raw)
    with pytest.raises(StorageError):
        read_ident(eng)


def test_has_range_data() -> None:
    eng = MemEngine()
    write_ident(eng, StoreIdent("c", 1, 1))
    assert not has_range_data(eng)  # the identity itself is not range data
    eng.put(raft_hard_state_key(1), b"x")
    assert has_range_data(eng)
    eng2 = MemEngine()
    eng2.put(b"\x01some-mvcc-key", b"x")
    assert has_range_data(eng2)


def test_peers_round_trip_and_are_not_range_data() -> None:
    from crdb_py.server.ident import load_peers, save_peer

    eng = MemEngine()
    save_peer(eng, 300, b"c")
    save_peer(eng, 2, b"a")
    save_peer(eng, 7, b"b")
    save_peer(eng, 2, b"a2")  # overwrite
    assert load_peers(eng) == [b"a2", b"b", b"c"]  # by node id
    assert not has_range_data(eng)
    write_ident(eng, StoreIdent("c", 1, 1))
    assert load_peers(eng) == [b"a2", b"b", b"c"]  # the identity is not a peer
