"""crdb_py.raft."""
