"""`bench/kv.py`: the pure helpers, and a `--quick` smoke run that checks
only that the benchmark runs, writes its outputs and leaves no process
behind (never its numbers)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from crdb_py.pb import data_pb2

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "kv.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_kv", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


kv = _load()


@pytest.mark.parametrize("klen, vlen", [(0, 0), (5, 64), (127, 128), (300, 20000)])
def test_etcd_put_request_is_protobuf_wire_format(klen: int, vlen: int) -> None:
    # Span{bytes key = 1; bytes end_key = 2} has PutRequest{key = 1; value = 2}'s layout.
    key, value = (bytes(range(256)) * 2)[:klen], b"v" * vlen
    raw = kv.etcd_put_request(key, value)
    if key and value:  # proto3 leaves empty fields out; we always write both
        assert raw == data_pb2.Span(key=key, end_key=value).SerializeToString()
    decoded = data_pb2.Span.FromString(raw)
    assert (decoded.key, decoded.end_key) == (key, value)


def test_cell_summary_percentiles_and_rates() -> None:
    lat = [float(i) for i in range(1, 101)]  # 1..100 ms
    cell = kv.Cell("x", 4, 2.0, 100, 1, lat, client_cpu_s=0.01, server_cpu_s=0.05)
    s = cell.summary()
    assert (s["p50_ms"], s["p90_ms"], s["p99_ms"]) == (51.0, 91.0, 100.0)
    assert s["ops_per_sec"] == 50.0
    assert s["client_cpu_us_per_op"] == 100.0 and s["server_cpu_us_per_op"] == 500.0


def test_table_prints_ratios_or_the_etcd_note() -> None:
    rows = [
        {"system": "crdb-py", "clients": 1, "ops_per_sec": 100.0, "p50_ms": 2.0, "p90_ms": 3.0,
         "p99_ms": 8.0, "client_cpu_us_per_op": 1.0, "server_cpu_us_per_op": 2.0, "errors": 0},
        {"system": "etcd", "clients": 1, "ops_per_sec": 400.0, "p50_ms": 1.0, "p90_ms": 1.5,
         "p99_ms": 2.0, "client_cpu_us_per_op": 1.0, "server_cpu_us_per_op": 2.0, "errors": 0},
    ]  # fmt: skip
    out = kv.table(rows, "etcd: not available")
    assert "| 1 | 2.00× | 4.00× | 0.25× |" in out
    out = kv.table(rows[:1], "etcd: not available")
    assert "etcd: not available" in out and "×" not in out


def test_profile_summary_by_package(tmp_path: Path) -> None:
    p = tmp_path / "p.txt"
    p.write_text(
        "main (m.py:1);_process (crdb_py/kvserver/store.py:9);_write (crdb_py/storage/rocks.py:114) 6\n"
        "main (m.py:1);step (crdb_py/raft/raft.py:3) 3\n"
        "main (m.py:1);_run (asyncio/events.py:80) 1\n"
    )
    s = kv.summarize_profile(str(p))
    assert s["samples"] == 10
    assert dict(s["self_by_package_pct"]) == {
        "storage (MVCC, rocksdict)": 60.0, "raft": 30.0, "asyncio": 10.0,
    }  # fmt: skip
    assert s["top_self_frames_pct"][0] == ("_write (crdb_py/storage/rocks.py:114)", 60.0)
    assert dict(s["top_inclusive_pct"])["main"] == 100.0


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def test_quick_run_writes_outputs_and_leaks_nothing(tmp_path: Path) -> None:
    cmd = [sys.executable, str(SCRIPT), "--quick", "--seconds", "0.5", "--warmup", "0.3",
           "--clients", "1,4", "--keys", "300", "--no-profile", "--out", str(tmp_path)]  # fmt: skip
    env = {**os.environ, "COLUMNS": "100"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    data = json.loads((tmp_path / "kv.json").read_text())
    have_etcd = shutil.which("etcd") is not None
    systems = {"crdb-py", "etcd"} if have_etcd else {"crdb-py"}
    assert {(r["system"], r["clients"]) for r in data["results"]} == {
        (s, c) for s in systems for c in (1, 4)
    }
    for r in data["results"]:
        assert r["ops"] > 0 and r["p50_ms"] <= r["p99_ms"]
    assert "| clients | system |" in proc.stdout
    if not have_etcd:
        assert "etcd: not available" in proc.stdout
    if importlib.util.find_spec("matplotlib") is not None:
        assert (tmp_path / "kv.png").stat().st_size > 0
    pids = [p for ps in data["meta"]["server_pids"].values() for p in ps]
    assert len(pids) == 3 * len(systems)
    assert all(_gone(p) for p in pids), "a server process outlived the benchmark"
