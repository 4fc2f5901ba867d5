"""crdb_py.kvserver."""
