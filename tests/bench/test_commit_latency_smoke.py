"""`bench/commit_latency.py`: its pure helpers, a `--smoke` run that checks
only that the benchmark runs, writes its outputs and leaves no process
behind (never its numbers), and a pinned server bug the benchmark found."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from crdb_py.kvclient.db import Batch

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "commit_latency.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_commit_latency", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


cl = _load()


def _range_of(key: bytes) -> int:
    """Index of the bench range holding `key` (ranges start at range_start(r))."""
    return max(r for r in range(cl.RANGES) if cl.range_start(r) <= key)


@pytest.mark.parametrize("w", [1, 2, 16])
def test_txn_keys_are_fresh_and_one_per_range(w: int) -> None:
    a, b = cl.txn_keys(w, 0, 7), cl.txn_keys(w, 1, 7)
    assert [_range_of(k) for k in a] == list(range(w))
    assert len(set(a) | set(b) | set(cl.txn_keys(w, 0, 8))) == 3 * w


def test_model_orders_the_modes() -> None:
    g, p = 1.0, 12.0  # near client: a cheap round trip, an expensive consensus round
    m = {mode.name: cl.model_ms(mode.name, g, p) for mode in cl.MODES}
    assert m["parallel+pipe"] == g + p
    assert m["2pc"] == m["parallel"] == m["2pc+pipe"] == 2 * p
    # far client (round trip 2d, round 2d + sync): the proofs wait out the round trip
    assert cl.model_ms("2pc+pipe", 7.0, 10.0) == 14.0 + 10.0
    assert cl.MODEL_ROUNDS == {"2pc": 2, "2pc+pipe": 2, "parallel": 2, "parallel+pipe": 1}


def test_percentiles_and_nan_to_null() -> None:
    xs = [float(i) for i in range(1, 101)]
    assert (cl.pct(xs, 0.5), cl.pct(xs, 0.9), cl.pct(xs, 0.99)) == (51.0, 91.0, 100.0)
    assert math.isnan(cl.pct([], 0.5))
    assert cl.no_nan({"a": [float("nan"), 1.0], "b": float("nan")}) == {"a": [None, 1.0], "b": None}


def _row(d: float, w: int, mode: str, p50: float, model: float, txns: int = 10) -> dict:
    return {"d_ms": d, "w": w, "mode": mode, "p50_ms": p50, "p90_ms": p50, "p99_ms": p50,
            "txns": txns, "failed": 10 - txns, "rounds": 1, "model_ms": model,
            "txns_per_sec": 100.0}  # fmt: skip


def test_goals_and_table() -> None:
    rows = [
        _row(5.0, 1, "2pc", 40.0, 30.0),
        _row(5.0, 1, "parallel+pipe", 20.0, 18.0),
        _row(5.0, 16, "2pc", 44.0, 30.0),
        _row(5.0, 16, "parallel+pipe", 30.0, 18.0),
    ]
    g = cl.goals(rows, 5.0)
    assert g["pc_pipe_over_2pc_at_w1"] == 0.5 and g["pc_pipe_wmax_over_w1"] == 1.5
    assert g["pc_pipe_worst_over_model"] == round(30.0 / 18.0, 3)
    assert g["met"] == {"w1_le_0.55x_2pc": True, "wmax_le_1.3x_w1": False,
                        "within_1.2x_model": False}  # fmt: skip
    # a cell without successful txns does not count towards a goal
    rows[1] = _row(5.0, 1, "parallel+pipe", float("nan"), 18.0, txns=0)
    g = cl.goals(rows, 5.0)
    assert g["pc_pipe_over_2pc_at_w1"] is None and not g["met"]["w1_le_0.55x_2pc"]
    out = cl.table(rows, {"5.0": {"get_ms": 1.0, "put_ms": 15.0}})
    assert "### d = 5 ms" in out and "raw get 1.00 ms, raw put 15.00 ms" in out
    assert "| 16 | parallel+pipe | 30.00 |" in out and "| 0.68× | 0/10 |" in out
    assert "| 1 | parallel+pipe | nan |" in out and "| 10/10 |" in out


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def test_smoke_run_writes_outputs_and_leaks_nothing(tmp_path: Path) -> None:
    cmd = [sys.executable, str(SCRIPT), "--smoke", "--out", str(tmp_path)]
    env = {**os.environ, "COLUMNS": "100"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    data = json.loads((tmp_path / "commit_latency.json").read_text())
    cells = {(r["d_ms"], r["w"], r["mode"]) for r in data["results"]}
    assert cells == {(d, w, m.name) for d in (0.0, 1.0) for w in (1, 2) for m in cl.MODES}
    for r in data["results"]:
        assert r["txns"] + r["failed"] == 3
        assert r["model_ms"] > 0
        if r["txns"]:
            assert r["p50_ms"] <= r["p99_ms"]
    assert set(data["meta"]["calibration"]) == {"0.0", "1.0"}
    assert "| W | mode | p50 ms |" in proc.stdout and "goals at d = 1 ms" in proc.stdout
    if importlib.util.find_spec("matplotlib") is not None:
        assert (tmp_path / "commit_latency.png").stat().st_size > 0
    pids = data["meta"]["server_pids"]
    assert len(pids) == 3
    assert all(_gone(p) for p in pids), "a node process outlived the benchmark"


def test_pipelined_write_is_proven_without_restart() -> None:
    from crdb_py.localcluster import LocalCluster

    with LocalCluster(nodes=3) as c:
        client = cl.Client({c.node_id(i): c.address(i) for i in range(3)})
        try:
            client.set_mode(cl.MODES[-1])  # parallel commits + pipelining

            async def five_txns() -> list[tuple[str, int]]:
                out = []
                for i in range(5):
                    txn = client.db.txn()
                    await txn.run(Batch().put(b"pin/%d" % i, b"v"))
                    await txn.commit()  # the proof rides with the STAGING EndTxn
                    out.append((txn.trace.commit_path.value, txn.trace.restarts))
                    await asyncio.sleep(0)
                return out

            assert client.call(five_txns(), 120) == [("parallel", 0)] * 5
        finally:
            client.close()
