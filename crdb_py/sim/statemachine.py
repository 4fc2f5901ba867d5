"""The replicated state machine the simulator runs on each raft node.

`HashChainStateMachine` keeps the applied index and a hash chain over every
applied entry: ``d(i) = blake2b(d(i-1) | index | term | type | data)``. Two
replicas with equal digests at an index applied identical command sequences up
to it, so the state-machine-safety checker compares one 16-byte value per
index instead of whole histories, and the comparison still holds across
snapshots (a snapshot carries the digest). Snapshot data is
``applied (8 bytes) | digest (16 bytes)``.

Anything with the `StateMachine` shape can replace it (M3 runs KV replicas).
"""

from __future__ import annotations

import hashlib
import struct
from typing import Protocol

from crdb_py.raft.types import Entry

__all__ = ["HashChainStateMachine", "StateMachine"]

_HDR = struct.Struct(">QQB")
_SNAP = struct.Struct(">Q16s")


class StateMachine(Protocol):
    applied: int

    def apply(self, entry: Entry) -> None: ...

    def digest(self) -> bytes: ...

    def snapshot(self) -> bytes: ...

    def restore(self, data: bytes) -> None: ...


class HashChainStateMachine:
    __slots__ = ("_digest", "applied")

    def __init__(self) -> None:
        self.applied = 0
        self._digest = bytes(16)

    def apply(self, entry: Entry) -> None:
        h = hashlib.blake2b(self._digest, digest_size=16)
        h.update(_HDR.pack(entry.index, entry.term, int(entry.type)))
        h.update(entry.data)
        self._digest = h.digest()
        self.applied = entry.index

    def digest(self) -> bytes:
        return self._digest

    def snapshot(self) -> bytes:
        return _SNAP.pack(self.applied, self._digest)

    def restore(self, data: bytes) -> None:
        if not data:
            self.applied, self._digest = 0, bytes(16)
            return
        self.applied, self._digest = _SNAP.unpack(data)
