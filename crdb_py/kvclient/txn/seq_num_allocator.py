"""The sequence-number allocator: every request of a txn gets a sequence.

Writes (point and ranged) and EndTxn take the next sequence number; reads
take the current one, so a read sees exactly the txn's writes issued before
it (the intent history keeps older values per sequence). Sequences start
again at 0 in each epoch: intents of an older epoch are ignored anyway. The
pipeliner sits below and uses these numbers to name in-flight writes
(key, sequence), which is why this interceptor comes first.
"""

from __future__ import annotations

from crdb_py.kvclient import batch as kb
from crdb_py.kvclient.txn.interceptor import (
    POINT_WRITES,
    RANGED_WRITES,
    BatchRequest,
    BatchResponse,
    Interceptor,
    TxnState,
)

_SEQUENCED = POINT_WRITES | RANGED_WRITES | {"end_txn"}


class SeqNumAllocator(Interceptor):
    name = "seq_num_allocator"

    def __init__(self, state: TxnState) -> None:
        super().__init__(state)
        self.write_seq = 0

    async def send(self, ba: BatchRequest) -> BatchResponse:
        for r in ba.requests:
            if kb.kind(r) in _SEQUENCED:
                self.write_seq += 1
            kb.inner(r).header.sequence = self.write_seq
        ba.header.txn.meta.sequence = self.write_seq
        return await self.next(ba)

    def epoch_bumped(self) -> None:
        self.write_seq = 0
