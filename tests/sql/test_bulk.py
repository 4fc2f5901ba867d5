"""Bulk writes: a transaction of tens of thousands of rows commits (its one
commit batch used to cost O(rows²) in the one-phase-commit check and ran
into the 10 s RPC timeout as an ambiguous result)."""

from __future__ import annotations

import crdb_py

ROWS = 20_000


def test_a_20k_row_transaction_commits() -> None:
    conn = crdb_py.connect()
    try:
        cur = conn.cursor()
        cur.execute("CREATE TABLE t (k INT PRIMARY KEY, v STRING)")
        conn.commit()
        for lo in range(0, ROWS, 2_000):  # inside one explicit transaction
            vals = ", ".join(f"({i}, 'value-{i}')" for i in range(lo, lo + 2_000))
            cur.execute(f"INSERT INTO t VALUES {vals}")
        conn.commit()
        cur.execute("SELECT count(*), min(k), max(k) FROM t")
        assert cur.fetchall() == [(ROWS, 0, ROWS - 1)]
        conn.autocommit = True  # and one implicit statement of as many rows
        vals = ", ".join(f"({i}, 'x')" for i in range(ROWS, 2 * ROWS))
        cur.execute(f"INSERT INTO t VALUES {vals}")
        cur.execute("SELECT count(*) FROM t")
        assert cur.fetchall() == [(2 * ROWS,)]
    finally:
        conn.close()
