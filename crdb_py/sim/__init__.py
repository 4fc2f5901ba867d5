"""crdb_py.sim."""
