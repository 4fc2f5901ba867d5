"""A one-operation client process (the coordinator-crash nemesis runs it).

Reads one JSON request on stdin (node addresses, key prefix, settings,
workload name, the operation as a history line), runs the operation with a
fresh client and prints the completion as a history line. Failpoints come
from ``CRDB_PY_FAILPOINTS`` (the nemesis arms a kill); a killed child
prints nothing and its operation is recorded as `info`.

The client is the KV one (`KVClient` under ``prefix``) unless the request
says ``"client": "sql"``: then the operation is one SQL transaction through
``crdb_py.connect(target)`` on the run's tables (``suffix``), exactly as a
runner worker would run it (`SQLClient`).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from crdb_py.jepsen.client import KVClient, classify
from crdb_py.jepsen.history import Op
from crdb_py.jepsen.workloads import WORKLOADS, GenOp


def _kv_client(req: dict[str, Any]) -> tuple[Any, Any]:
    from crdb_py.kvclient.txn.settings import PARALLEL_COMMITS_ENABLED, WRITE_PIPELINING_ENABLED
    from crdb_py.kvclient.txn.sync import SyncDB
    from crdb_py.localcluster import open_kv

    kv = open_kv({int(k): v for k, v in req["nodes"].items()})
    kv.db.settings.set(PARALLEL_COMMITS_ENABLED, req["parallel"])
    kv.db.settings.set(WRITE_PIPELINING_ENABLED, req["pipelining"])
    return KVClient(SyncDB(kv.db, kv._loop, timeout=10.0), req["prefix"].encode()), kv


def _sql_client(req: dict[str, Any]) -> tuple[Any, Any]:
    import crdb_py
    from crdb_py.jepsen.sql_client import SQLClient
    from crdb_py.kvclient.txn.settings import PARALLEL_COMMITS_ENABLED, WRITE_PIPELINING_ENABLED

    target = req["target"]
    client = SQLClient(lambda: crdb_py.connect(target), table_suffix=req["suffix"],
                       autocommit=req.get("autocommit", False),
                       statement_timeout_ms=req.get("statement_timeout_ms"), target=target)
    conn = client._conn()  # connect now: the nemesis times its kill from "connected"
    conn._backend.db.settings.set(PARALLEL_COMMITS_ENABLED, req["parallel"])
    conn._backend.db.settings.set(WRITE_PIPELINING_ENABLED, req["pipelining"])
    return client, client


def main() -> int:
    req = json.loads(sys.stdin.read())
    op = Op.from_json(req["op"])
    client, closer = (_sql_client if req.get("client") == "sql" else _kv_client)(req)
    w = WORKLOADS[req["workload"]]()
    print("connected", flush=True)
    value = op.value
    if op.f == "txn":
        value = [list(m) for m in value]
    try:
        res = w.apply(client, GenOp(op.f, value, op.key))
        out = Op(0, "ok", op.process, op.f, res)
    except Exception as e:
        out = Op(0, classify(e), op.process, op.f, error=repr(e))
    print(out.to_json(), flush=True)
    closer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
