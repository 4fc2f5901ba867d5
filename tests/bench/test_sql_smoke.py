"""bench/sql.py runs (--quick) and writes its table, JSON and plot."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_sql_bench_quick(tmp_path: Path) -> None:
    mod = runpy.run_path(str(ROOT / "bench" / "sql.py"))
    assert mod["main"](["--quick", "--ops", "10", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "sql.json").read_text())
    assert set(data["results"]) >= {"crdb-embedded", "crdb-embedded-nocache", "sqlite3"}
    assert data["results"]["crdb-embedded"]["insert"]["n"] == 10
    assert "| crdb-embedded | select |" in (tmp_path / "sql.md").read_text()
    assert (tmp_path / "sql.png").stat().st_size > 0
