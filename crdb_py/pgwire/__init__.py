"""crdb_py.pgwire."""
