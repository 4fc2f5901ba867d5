"""crdb_py.util."""
