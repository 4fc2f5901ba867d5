"""The lock gatekeeper: one user batch in a transaction's stack at a time.

In CockroachDB the coordinator's mutex serializes the interceptors and the
gatekeeper, at the bottom of the stack, releases it while a request is on
the wire — refusing a second concurrent request ("concurrent txn use
detected"). In asyncio there is no mutex: every `await` inside the stack is
a point where a second caller could interleave and corrupt the pipeliner's
or the refresher's bookkeeping. So the gatekeeper sits at the *top* and
keeps the door shut for the whole trip of a batch.

Choice: a concurrent batch **fails** with `ConcurrentTxnUseError` instead of
queueing. Queueing would hide a bug in the caller (two coroutines racing on
one transaction have no defined order, so their reads and writes would
interleave arbitrarily); CockroachDB errors too. Out-of-band requests
(heartbeats, the explicit commit, async rollback) never pass here.
"""

from __future__ import annotations

from crdb_py.kvclient.txn.interceptor import (
    BatchRequest,
    BatchResponse,
    Interceptor,
    TxnState,
)
from crdb_py.util.errors import ConcurrentTxnUseError


class LockGatekeeper(Interceptor):
    name = "lock_gatekeeper"

    def __init__(self, state: TxnState) -> None:
        super().__init__(state)
        self.in_flight = False

    async def send(self, ba: BatchRequest) -> BatchResponse:
        if self.in_flight:
            raise ConcurrentTxnUseError()
        self.in_flight = True
        try:
            return await self.next(ba)
        finally:
            self.in_flight = False
