"""crdb_py.kvclient.txn: the transaction coordinator.

`TxnCoordSender` (coord_sender.py) is a stack of interceptors, one concern
per file: lock_gatekeeper, heartbeater, seq_num_allocator, pipeliner,
span_refresher, committer, metric_recorder. `Txn` (txn.py) is the API;
`TxnSettings` (settings.py) the two cluster settings; `TxnTrace`
(rounds.py) the per-txn consensus-round accounting; `SyncDB` / `SyncTxn`
(sync.py) the blocking facade. See docs/design/txn-coordinator.md.
"""
