# crdb-py developer entry points. Every target works on a fresh machine:
# the virtualenv is created and the project installed into it on demand.
PY        ?= python3
VENV      := .venv
VPY       := $(VENV)/bin/python
STAMP     := $(VENV)/.installed
PROTO_SRC := $(wildcard protos/crdb_py/pb/*.proto)

.PHONY: test test-slow lint protos protos-check bench demo clean jepsen jepsen-sql

$(STAMP): pyproject.toml
	test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	$(VPY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

test: $(STAMP)
	$(VPY) -m pytest

test-slow: $(STAMP)
	$(VPY) -m pytest -m slow

lint: $(STAMP)
	$(VPY) -m ruff check crdb_py tests bench

protos: $(STAMP)
	$(VPY) -m grpc_tools.protoc -I protos --python_out=. --pyi_out=. --grpc_python_out=. $(PROTO_SRC)

# Jepsen soak: every workload x nemesis x commit setting on a fresh 3-node
# LocalCluster; histories and verdicts under jepsen-results/<time>/.
JEPSEN_ARGS ?= --ops 300 --time-limit 40
jepsen: $(STAMP)
	$(VPY) -m crdb_py.jepsen --matrix $(JEPSEN_ARGS)

# The same through SQL: bank and list-append over PEP 249 connections.
jepsen-sql: $(STAMP)
	$(VPY) -m crdb_py.jepsen --matrix --client sql $(JEPSEN_ARGS)

bench: $(STAMP)
	$(VPY) bench/mvcc.py
	$(VPY) bench/kv.py
	$(VPY) bench/commit_latency.py
	$(VPY) bench/sql.py

# A temporary N-node cluster with the example bank database and the SQL shell;
# everything is removed on exit. DEMO_ARGS="--nodes 5 --latency-ms 20".
DEMO_ARGS ?=
demo: $(STAMP)
	$(VENV)/bin/crdb-py demo $(DEMO_ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
