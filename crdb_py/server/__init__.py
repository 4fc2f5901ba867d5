"""crdb_py.server."""
