"""bench/raft.py runs (--quick) and writes its table, JSON and plot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_raft_quick(tmp_path: Path) -> None:
    out = tmp_path / "out"
    p = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "raft.py"),
            "--quick",
            "--proposals",
            "30",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    assert "| nodes | mode |" in p.stdout
    data = json.loads((out / "raft.json").read_text())
    rows = data["results"]
    assert {(r["nodes"], r["mode"]) for r in rows} == {
        (n, m) for n in (3, 5) for m in ("single", "pipelined", "batched")
    }
    assert all(r["proposals"] == 30 and r["steps_per_commit"] > 0 for r in rows)
    assert (out / "raft.png").stat().st_size > 0
