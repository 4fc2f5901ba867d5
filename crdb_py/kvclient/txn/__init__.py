"""crdb_py.kvclient.txn."""
