"""crdb_py.cli."""
