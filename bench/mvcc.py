"""MVCC throughput against raw rocksdict on the same data.

Measures, in one run on fresh RocksDB directories:

* point write: ``mvcc_put`` (non-transactional, fresh keys) vs ``Rdict.put``;
* point read: ``mvcc_get`` vs ``Rdict.get`` over the written keys;
* scan: ``mvcc_scan`` of all keys vs iterating ``Rdict.items()``;

rates are CPU time of this process, best of a few runs for reads;
prints a ratio table (goal: MVCC >= 0.3x raw for point writes and scans)
and writes JSON to ``bench/out/mvcc.json``.

    .venv/bin/python bench/mvcc.py [--keys N] [--value-size B] [--quick]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rocksdict import Options, Rdict

from crdb_py.storage import mvcc_get, mvcc_put, mvcc_scan
from crdb_py.storage.rocks import RocksEngine
from crdb_py.util.hlc import Timestamp


def _rate(n: int, fn, repeat: int = 1) -> float:  # type: ignore[no-untyped-def]
    """Best rate over `repeat` runs, in CPU time of this process (the
    machines are shared, so wall time mostly measures the neighbours)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return n / best if best > 0 else float("inf")


def run(n: int, value_size: int, scan_repeat: int) -> dict[str, object]:
    rng = random.Random(42)
    keys = [b"\x04user/%010d" % i for i in range(n)]
    shuffled = keys[:]
    rng.shuffle(shuffled)
    value = bytes(rng.getrandbits(8) for _ in range(value_size))
    ts = Timestamp(1_000_000_000, 0)
    read_ts = Timestamp(2_000_000_000, 0)
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as d:
        raw = Rdict(os.path.join(d, "raw"), Options(raw_mode=True))
        eng = RocksEngine(os.path.join(d, "mvcc"))

        def raw_put() -> None:
            put = raw.put
            for k in shuffled:
                put(k, value)

        def mvcc_put_all() -> None:
            for k in shuffled:
                mvcc_put(eng, k, ts, value)

        results["point write"] = {"raw": _rate(n, raw_put), "mvcc": _rate(n, mvcc_put_all)}

        def raw_get() -> None:
            get = raw.get
            for k in shuffled:
                get(k)

        def mvcc_get_all() -> None:
            for k in shuffled:
                mvcc_get(eng, k, read_ts)

        results["point read"] = {
            "raw": _rate(n, raw_get, 3),
            "mvcc": _rate(n, mvcc_get_all, 3),
        }

        def raw_scan() -> None:
            rows = list(raw.items(from_key=b"\x04"))
            assert len(rows) == n

        def mvcc_scan_all() -> None:
            r = mvcc_scan(eng, b"\x04", b"\xff\xff", read_ts)
            assert len(r.kvs) == n

        results["scan (rows)"] = {
            "raw": _rate(n, raw_scan, scan_repeat),
            "mvcc": _rate(n, mvcc_scan_all, scan_repeat),
        }
        eng.close()
        raw.close()
    for r in results.values():
        r["ratio"] = r["mvcc"] / r["raw"]
    return {
        "keys": n,
        "value_size": value_size,
        "rocksdict": importlib.metadata.version("rocksdict"),
        "python": platform.python_version(),
        "goal_ratio": 0.3,
        "results": results,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--value-size", type=int, default=64)
    ap.add_argument("--quick", action="store_true", help="small run for smoke tests")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "out" / "mvcc.json"))
    args = ap.parse_args(argv)
    n = 2_000 if args.quick else args.keys
    res = run(n, args.value_size, 1 if args.quick else 3)
    print(f"MVCC vs raw rocksdict {res['rocksdict']}: {n} keys, {args.value_size}-byte values")
    print(f"| {'operation':<12} | {'raw ops/s':>12} | {'mvcc ops/s':>12} | {'ratio':>6} | goal |")
    print(f"|{'-' * 14}|{'-' * 14}|{'-' * 14}|{'-' * 8}|------|")
    for name, r in res["results"].items():  # type: ignore[union-attr]
        goal = ">=0.3" if name != "point read" else "-"
        print(f"| {name:<12} | {r['raw']:>12,.0f} | {r['mvcc']:>12,.0f} | {r['ratio']:>6.2f} | {goal:<4} |")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
