"""The KV `Txn` API: every `KVOps` operation, run through a coordinator.

>>> async def transfer(txn):                                   # doctest: +SKIP
...     a = int(await txn.get(b"a")); b = int(await txn.get(b"b"))
...     await txn.put(b"a", str(a - 10).encode())
...     await txn.put(b"b", str(b + 10).encode())
>>> await db.run_txn(transfer)                                 # doctest: +SKIP

A `Txn` runs one batch at a time (`ConcurrentTxnUseError` otherwise). After
a retryable error (sqlstate 40001) it is already at its next epoch: run the
same logic again on it, or let `DB.run_txn` do that. After
`TransactionAbortedError` it is finished: start a new one. `commit()` sends
the EndTxn alone; `commit_in_batch(b)` sends the final writes with it, which
lets a single-range txn commit in one phase and a multi-range one commit in
parallel with its last writes. `trace` says what the txn cost.
"""

from __future__ import annotations

from types import TracebackType

from crdb_py.kvclient.db import Batch, KVOps, Result
from crdb_py.kvclient.txn.coord_sender import TxnCoordSender
from crdb_py.kvclient.txn.rounds import TxnTrace
from crdb_py.pb import api_pb2, data_pb2
from crdb_py.util.errors import TransactionAbortedError, TransactionStatusError
from crdb_py.util.hlc import Timestamp, ts_from_proto


class Txn(KVOps):
    """A transaction (see the module docstring)."""

    def __init__(self, coord: TxnCoordSender) -> None:
        self.coord = coord

    # ---- state -----------------------------------------------------------------------

    @property
    def id(self) -> bytes:
        return self.coord.id

    @property
    def epoch(self) -> int:
        return self.coord.epoch

    @property
    def status(self) -> str:
        return data_pb2.TransactionStatus.Name(self.coord.txn.status)

    @property
    def read_timestamp(self) -> Timestamp:
        return ts_from_proto(self.coord.txn.read_timestamp)

    @property
    def commit_timestamp(self) -> Timestamp:
        """The write timestamp (the commit timestamp once committed)."""
        return ts_from_proto(self.coord.txn.meta.write_timestamp)

    @property
    def finished(self) -> bool:
        return self.coord.finished

    @property
    def committed(self) -> bool:
        return self.coord.committed

    @property
    def trace(self) -> TxnTrace:
        return self.coord.trace

    # ---- operations ---------------------------------------------------------------------

    async def run(self, b: Batch) -> list[Result]:
        br = await self.coord.send(b.to_proto())
        return b.fill_results(br)

    async def commit(self) -> None:
        """Commit (no-op if already committed; raises if it was aborted)."""
        if self.coord.finished:
            if self.coord.committed:
                return
            raise TransactionAbortedError("ABORTED_RECORD_FOUND", txn=self.coord.txn)
        ba = api_pb2.BatchRequest()
        ba.requests.add().end_txn.commit = True
        await self.coord.send(ba)
        self._check_committed()

    async def commit_in_batch(self, b: Batch) -> list[Result]:
        """Run `b` and commit in the same batch."""
        if self.coord.finished:
            raise TransactionStatusError("the transaction is already finished", reason="done")
        ba = b.to_proto()
        ba.requests.add().end_txn.commit = True
        br = await self.coord.send(ba)
        self._check_committed()
        del br.responses[-1]
        return b.fill_results(br)

    def _check_committed(self) -> None:
        if not self.coord.committed:
            raise TransactionStatusError(
                f"commit did not commit the transaction (status {self.status})",
                reason="not committed",
            )

    async def rollback(self) -> None:
        await self.coord.rollback()

    async def drain(self) -> None:
        """Wait for this txn's background work (explicit commit, async abort)."""
        await self.coord.drain()

    async def __aenter__(self) -> Txn:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            await self.commit()
        else:
            await self.rollback()
