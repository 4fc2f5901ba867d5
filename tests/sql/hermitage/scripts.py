"""Hermitage's test cases (PostgreSQL "serializable" column), one script each.

Every script starts from `test(id, value)` = {(1, 10), (2, 20)} and keeps
Hermitage's interleaving; where PostgreSQL blocks or aborts, crdb-py (which
buffers writes until COMMIT, see docs/design/sql.md) may instead abort at
COMMIT with 40001 — the runner accepts either, never a wrong answer.
"""

from __future__ import annotations

SETUP = """
setup: create table test (id int primary key, value int)
setup: insert into test (id, value) values (1, 10), (2, 20)
"""

SCRIPTS: dict[str, str] = {
    # G0: write cycles (dirty writes)
    "G0": """
T1: begin
T2: begin
T1: update test set value = 11 where id = 1
T2: update test set value = 12 where id = 1
T1: update test set value = 21 where id = 2
T1: commit
T2: update test set value = 22 where id = 2
T2: commit
check: select * from test order by id => 1,11 | 2,21 or 1,12 | 2,22
""",
    # G1a: aborted reads
    "G1a": """
T1: begin
T2: begin
T1: update test set value = 101 where id = 1
T2: select * from test order by id => 1,10 | 2,20
T1: rollback
T2: select * from test order by id => 1,10 | 2,20
T2: commit
""",
    # G1b: intermediate reads
    "G1b": """
T1: begin
T2: begin
T1: update test set value = 101 where id = 1
T2: select * from test order by id => 1,10 | 2,20
T1: update test set value = 11 where id = 1
T1: commit
T2: select * from test order by id => 1,10 | 2,20
T2: commit
""",
    # G1c: circular information flow
    "G1c": """
T1: begin
T2: begin
T1: update test set value = 11 where id = 1
T2: update test set value = 22 where id = 2
T1: select * from test where id = 2 => 2,20
T2: select * from test where id = 1 => 1,10
T1: commit
T2: commit
expect: not both T1 T2
""",
    # OTV: observed transaction vanishes
    "OTV": """
T1: begin
T2: begin
T3: begin
T1: update test set value = 11 where id = 1
T1: update test set value = 19 where id = 2
T2: update test set value = 12 where id = 1
T1: commit
T3: select * from test order by id => 1,11 | 2,19 or 1,10 | 2,20
T2: update test set value = 18 where id = 2
T3: select * from test where id = 2 => 2,19 or 2,20
T2: commit
T3: select * from test where id = 1 => 1,11 or 1,10
T3: commit
expect: committed T1
check: select * from test order by id => 1,11 | 2,19 or 1,12 | 2,18
""",
    # PMP: predicate-many-preceders (read predicates)
    "PMP": """
T1: begin
T2: begin
T1: select * from test where value = 30 =>
T2: insert into test (id, value) values (3, 30)
T2: commit
T1: select * from test where value % 3 = 0 =>
T1: commit
expect: committed T2
""",
    # PMP with write predicates
    "PMP-write": """
T1: begin
T2: begin
T1: update test set value = value + 10
T2: select * from test order by id => 1,10 | 2,20
T2: delete from test where value = 20
T1: commit
T2: commit
check: select * from test order by id => 1,20 | 2,30 or 1,20 or 2,30
""",
    # P4: lost update
    "P4": """
T1: begin
T2: begin
T1: select * from test where id = 1 => 1,10
T2: select * from test where id = 1 => 1,10
T1: update test set value = 11 where id = 1
T2: update test set value = 11 where id = 1
T1: commit
T2: commit
expect: not both T1 T2
""",
    # G-single: single anti-dependency cycles (read skew)
    "G-single": """
T1: begin
T2: begin
T1: select * from test where id = 1 => 1,10
T2: select * from test where id = 1 => 1,10
T2: select * from test where id = 2 => 2,20
T2: update test set value = 12 where id = 1
T2: update test set value = 18 where id = 2
T2: commit
T1: select * from test where id = 2 => 2,20
T1: commit
""",
    # G-single with a write predicate
    "G-single-write": """
T1: begin
T2: begin
T1: select * from test where id = 1 => 1,10
T2: select * from test order by id => 1,10 | 2,20
T2: update test set value = 12 where id = 1
T2: update test set value = 18 where id = 2
T2: commit
T1: delete from test where value = 20
T1: commit
expect: committed T2
expect: aborted T1
check: select * from test order by id => 1,12 | 2,18
""",
    # G2-item: item anti-dependency cycles (write skew on disjoint read sets)
    "G2-item": """
T1: begin
T2: begin
T1: select * from test where id in (1, 2) order by id => 1,10 | 2,20
T2: select * from test where id in (1, 2) order by id => 1,10 | 2,20
T1: update test set value = 11 where id = 1
T2: update test set value = 21 where id = 2
T1: commit
T2: commit
expect: not both T1 T2
""",
    # G2: anti-dependency cycles (write skew on predicate reads)
    "G2": """
T1: begin
T2: begin
T1: select * from test where value % 3 = 0 =>
T2: select * from test where value % 3 = 0 =>
T1: insert into test (id, value) values (3, 30)
T2: insert into test (id, value) values (4, 42)
T1: commit
T2: commit
expect: not both T1 T2
""",
    # G2 with two anti-dependency edges (three sessions)
    "G2-two-edges": """
T1: begin
T1: select * from test order by id => 1,10 | 2,20
T2: begin
T2: update test set value = value + 5 where id = 2
T2: commit
T3: begin
T3: select * from test order by id => 1,10 | 2,25
T3: commit
T1: update test set value = 0 where id = 1
T1: commit
expect: committed T2
expect: aborted T1
""",
}

# Anomalies that must show up when reads bypass the transaction (no snapshot,
# no read tracking): the proof that these scripts can fail.
CAUGHT_WHEN_BROKEN = ("G1c", "P4", "G-single", "G-single-write", "G2-item", "G2",
                      "G2-two-edges")
