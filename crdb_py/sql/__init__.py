"""crdb_py.sql."""
