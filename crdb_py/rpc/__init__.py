"""crdb_py.rpc."""
