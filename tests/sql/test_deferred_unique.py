"""Uniqueness checked by ConditionalPut at commit (implicit transactions).

An implicit INSERT / UPSERT / UPDATE / DELETE does not read a row's primary
key and unique index entries before writing them: the commit batch carries
ConditionalPut(expect absent) for them. A failed condition re-runs the
statement with the reads, which reports the precise 23505. Inside BEGIN the
reads stay (the error must surface at the statement, not at COMMIT).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

import crdb_py
from crdb_py.sql import errors as E
from crdb_py.sql.kv import WriteBuffer
from crdb_py.sql.session import Session
from tests.sql.conftest import SyncSession
from tests.sql.fake_kv import FakeBatch, FakeKV, FakeTxn


class Trips:
    """Counts a FakeKV's round trips by kind."""

    def __init__(self) -> None:
        self.log: list[str] = []
        trips = self

        class T(FakeTxn):
            async def get(self, key: bytes) -> bytes | None:
                trips.log.append("get")
                return await super().get(key)

            async def commit_in_batch(self, b: FakeBatch) -> None:
                trips.log.append(f"commit({len(b.conditions)} cput)")
                await super().commit_in_batch(b)

        class KV(FakeKV):
            def txn(self, name: str = "") -> FakeTxn:
                return T(self)

        self.kv = KV()


def _ex(loop: asyncio.AbstractEventLoop, s: Session, sql: str, *p: Any) -> Any:
    return loop.run_until_complete(s.execute(sql, list(p)))


def test_implicit_insert_reads_nothing_before_writing() -> None:
    t = Trips()
    loop = asyncio.new_event_loop()
    try:
        s = Session(t.kv)
        _ex(loop, s, "CREATE TABLE u (id INT PRIMARY KEY, email TEXT UNIQUE, n INT)")
        _ex(loop, s, "CREATE INDEX u_n ON u (n)")
        _ex(loop, s, "INSERT INTO u VALUES (1, 'a', 0)")
        t.log.clear()
        _ex(loop, s, "INSERT INTO u VALUES (2, 'b', 0)")
        # catalog reads only (database, descriptor), then one commit whose
        # primary key and unique entry are conditional; the non-unique entry is not.
        assert t.log == ["get", "get", "commit(2 cput)"]
        t.log.clear()
        _ex(loop, s, "INSERT INTO u VALUES (3, 'c', 1), (4, 'd', 1), (5, 'e', 1)")
        assert t.log == ["get", "get", "commit(6 cput)"]  # N rows: still no reads
    finally:
        loop.close()


@pytest.mark.parametrize("sql,index,detail", [
    ("INSERT INTO u VALUES (1, 'z')", "u_pkey", "Key (id)=(1) already exists."),
    ("INSERT INTO u VALUES (9, 'a')", "u_email_key", "Key (email)=(a) already exists."),
    ("UPDATE u SET id = 1 WHERE id = 2", "u_pkey", "Key (id)=(1) already exists."),
    ("UPDATE u SET email = 'a' WHERE id = 2", "u_email_key", "Key (email)=(a) already exists."),
    ("INSERT INTO u VALUES (7, 'x'), (7, 'y')", "u_pkey", "Key (id)=(7) already exists."),
])
def test_violations_report_like_a_read_check(sess: SyncSession, sql: str, index: str,
                                             detail: str) -> None:
    sess.ex("CREATE TABLE u (id INT PRIMARY KEY, email TEXT UNIQUE)")
    sess.ex("INSERT INTO u VALUES (1, 'a'), (2, 'b')")
    with pytest.raises(E.SQLError) as ei:
        sess.ex(sql)
    assert ei.value.sqlstate == "23505"
    assert f'"{index}"' in str(ei.value) and detail in str(ei.value)
    assert sess.rows("SELECT * FROM u ORDER BY id") == [(1, "a"), (2, "b")]


def test_violation_inside_begin_is_reported_by_the_statement(sess: SyncSession) -> None:
    sess.ex("CREATE TABLE u (id INT PRIMARY KEY)")
    sess.ex("INSERT INTO u VALUES (1)")
    sess.ex("BEGIN")
    sess.ex("SAVEPOINT s")
    with pytest.raises(E.SQLError) as ei:
        sess.ex("INSERT INTO u VALUES (1)")
    assert ei.value.sqlstate == "23505"
    sess.ex("ROLLBACK TO SAVEPOINT s")
    sess.ex("INSERT INTO u VALUES (2)")
    sess.ex("COMMIT")
    assert sess.rows("SELECT id FROM u ORDER BY id") == [(1,), (2,)]


def test_a_row_deleted_and_reinserted_by_one_statement(sess: SyncSession) -> None:
    """Shifting primary keys: new keys that the statement itself deleted are
    plain puts (the KV row still exists until commit), others conditional."""
    sess.ex("CREATE TABLE u (id INT PRIMARY KEY, v TEXT)")
    sess.ex("INSERT INTO u VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    sess.ex("UPDATE u SET id = id + 1")
    assert sess.rows("SELECT * FROM u ORDER BY id") == [(2, "a"), (3, "b"), (4, "c")]
    sess.ex("UPSERT INTO u VALUES (4, 'd'), (5, 'e')")
    assert sess.rows("SELECT * FROM u ORDER BY id") == [(2, "a"), (3, "b"), (4, "d"), (5, "e")]
    sess.ex("DELETE FROM u WHERE id > 3")
    assert sess.rows("SELECT count(*) FROM u") == [(2,)]


def test_write_buffer_flags() -> None:
    buf = WriteBuffer(FakeKV().txn())
    buf.put_new(b"a", b"1")
    sp = buf.savepoint()
    buf.put_new(b"b", b"2")
    buf.put(b"a", b"3")  # a later write keeps the first write's expectation
    assert buf.expect_absent == {b"a", b"b"}
    buf.rollback_to(sp)
    assert buf.expect_absent == {b"a"} and b"b" not in buf.writes
    buf.delete(b"a")
    buf.put(b"c", b"4")

    sent = FakeBatch()

    class Capture(FakeTxn):
        async def commit_in_batch(self, b: FakeBatch) -> None:
            sent.ops, sent.conditions = b.ops, b.conditions

    buf.txn = Capture(FakeKV())
    asyncio.run(buf.commit())
    # "a" was inserted and deleted again by this txn: nothing is sent for it
    # (a Delete would remove a row someone else inserted meanwhile).
    assert sent.ops == [(b"c", b"4")] and sent.conditions == []


def test_concurrent_inserts_of_one_key_on_a_real_store() -> None:
    """Eight connections insert the same keys at once: every key ends with
    exactly one row, and every other attempt failed with 23505."""
    root = crdb_py.connect()
    try:
        root.autocommit = True
        root.cursor().execute("CREATE TABLE race (k INT PRIMARY KEY, who INT)")
        wins: list[tuple[int, int]] = []
        losses: list[str] = []
        lock = threading.Lock()

        def worker(w: int) -> None:
            c = root.new_session()
            c.autocommit = True
            cur = c.cursor()
            for k in range(15):
                try:
                    cur.execute("INSERT INTO race VALUES (%s, %s)", (k, w))
                    with lock:
                        wins.append((k, w))
                except crdb_py.dbapi.Error as e:
                    with lock:
                        losses.append(e.sqlstate)
            c.close()

        ts = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(120)
        cur = root.cursor()
        cur.execute("SELECT k, who FROM race ORDER BY k")
        rows = cur.fetchall()
        assert [k for k, _ in rows] == list(range(15))
        assert sorted(wins) == sorted(rows)  # each acknowledged insert is the row
        assert len(losses) == 8 * 15 - 15 and set(losses) == {"23505"}
    finally:
        root.close()


def test_explicit_multirow_insert_checks_in_one_batch() -> None:
    t = Trips()
    batches: list[int] = []

    orig_run = FakeTxn.run

    async def counting_run(self: FakeTxn, b: FakeBatch) -> list[Any]:
        batches.append(len(b.gets))
        return await orig_run(self, b)

    loop = asyncio.new_event_loop()
    try:
        FakeTxn.run = counting_run  # type: ignore[method-assign]
        s = Session(t.kv)
        _ex(loop, s, "CREATE TABLE u (id INT PRIMARY KEY, email TEXT UNIQUE)")
        _ex(loop, s, "INSERT INTO u VALUES (1000, 'taken')")
        _ex(loop, s, "BEGIN")
        _ex(loop, s, "SELECT 1")
        t.log.clear()
        batches.clear()
        values = ", ".join(f"({i}, 'e{i}')" for i in range(50))
        _ex(loop, s, f"INSERT INTO u VALUES {values}")
        # 50 rows x (primary key + unique email) = 100 keys, read in one batch
        assert batches == [100]
        assert len(t.log) <= 100 + 3  # the batch's own gets, plus catalog reads
        with pytest.raises(E.SQLError) as ei:
            _ex(loop, s, "INSERT INTO u VALUES (60, 'a'), (61, 'taken'), (1000, 'b')")
        assert ei.value.sqlstate == "23505" and "Key (email)=(taken)" in str(ei.value)
        _ex(loop, s, "ROLLBACK")
        _ex(loop, s, "BEGIN")
        with pytest.raises(E.SQLError) as ei:
            _ex(loop, s, "INSERT INTO u VALUES (70, 'x'), (71, 'y'), (70, 'z')")
        assert "Key (id)=(70)" in str(ei.value)
        _ex(loop, s, "ROLLBACK")
        _ex(loop, s, "BEGIN")
        _ex(loop, s, "DELETE FROM u WHERE id = 1000")
        _ex(loop, s, "INSERT INTO u VALUES (1000, 'taken'), (1001, 'again')")  # freed in this txn
        _ex(loop, s, "COMMIT")
        assert _ex(loop, s, "SELECT id FROM u ORDER BY id").rows == [(1000,), (1001,)]
    finally:
        FakeTxn.run = orig_run  # type: ignore[method-assign]
        loop.close()
