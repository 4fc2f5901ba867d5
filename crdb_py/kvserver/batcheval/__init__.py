"""crdb_py.kvserver.batcheval."""
