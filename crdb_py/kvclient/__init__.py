"""crdb_py.kvclient."""
