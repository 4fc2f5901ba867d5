"""`python -m crdb_py.jepsen.check HISTORY.jsonl --checker elle`: print a verdict.

Exit status 0 when the history is valid, 1 when an anomaly was found, 2 on
bad usage. Checker options: `--realtime` (elle), `--total N` and
`--accounts a,b,...` (bank), `--initial N` (monotonic).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from crdb_py.jepsen.checkers import CHECKERS
from crdb_py.jepsen.history import load


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m crdb_py.jepsen.check", description=__doc__)
    ap.add_argument("history", help="a JSON-lines history file")
    ap.add_argument("--checker", choices=sorted(CHECKERS), required=True)
    ap.add_argument("--realtime", action="store_true", help="elle: strict serializability")
    ap.add_argument("--total", type=int, help="bank: the sum of all balances")
    ap.add_argument("--accounts", help="bank: comma-separated account ids (ints if numeric)")
    ap.add_argument("--initial", type=int, default=0, help="monotonic: the initial maximum")
    ap.add_argument("--limit", type=int, default=5, help="instances shown per anomaly")
    args = ap.parse_args(argv)
    kw: dict[str, Any] = {}
    if args.checker == "elle":
        kw["realtime"] = args.realtime
    elif args.checker == "bank":
        if args.total is None:
            ap.error("--total is required for the bank checker")
        kw["total"] = args.total
        if args.accounts:
            kw["accounts"] = [int(a) if a.lstrip("-").isdigit() else a
                              for a in args.accounts.split(",")]
    elif args.checker == "monotonic":
        kw["initial"] = args.initial
    result = CHECKERS[args.checker](load(args.history), **kw)
    print(result.explain(limit=args.limit))
    return 0 if result.valid else 1


if __name__ == "__main__":
    sys.exit(main())
