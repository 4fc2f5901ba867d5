"""crdb_py.storage."""
