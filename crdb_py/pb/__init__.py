"""Code generated from `protos/` by `make protos`. Never edit by hand."""
