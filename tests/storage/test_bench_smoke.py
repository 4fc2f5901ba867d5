from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_mvcc_quick_runs_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "mvcc.json"
    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "mvcc.py"), "--quick", "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "point write" in r.stdout and "scan (rows)" in r.stdout
    res = json.loads(out.read_text())
    assert set(res["results"]) == {"point write", "point read", "scan (rows)"}
    assert all(v["raw"] > 0 and v["mvcc"] > 0 for v in res["results"].values())
