"""CREATE / ALTER / DROP USER, SHOW USERS (crdb_py/sql/users.py) and the
executor's cancel points (crdb_py/sql/runtime.py `Canceller`)."""

from __future__ import annotations

import asyncio
import base64

import pytest

from crdb_py.sql import users
from crdb_py.sql.errors import SQLError
from crdb_py.sql.session import Session
from crdb_py.util.scram import make_verifier
from tests.sql.conftest import SyncSession
from tests.sql.fake_kv import FakeKV


def _stored(sess: SyncSession, name: str) -> str | None:
    return sess.loop.run_until_complete(users.lookup_verifier(sess.kv, name))


def _matches(verifier: str, password: str) -> bool:
    mech, it_salt, _ = verifier.split("$")
    it, salt = it_salt.split(":")
    return make_verifier(password, salt=base64.b64decode(salt), iterations=int(it)) == verifier


def _code(sess: SyncSession, sql: str) -> str:
    with pytest.raises(SQLError) as ei:
        sess.ex(sql)
    return ei.value.sqlstate


def test_create_user_stores_a_verifier_not_the_password(sess: SyncSession) -> None:
    assert sess.ex("CREATE USER alice WITH PASSWORD 's3cr''et'").tag == "CREATE ROLE"
    v = _stored(sess, "alice")
    assert v is not None and v.startswith("SCRAM-SHA-256$")
    assert "s3cr'et" not in v
    assert _matches(v, "s3cr'et") and not _matches(v, "s3cret")
    assert sess.rows("SHOW USERS") == [("alice", ""), ("root", "")]


def test_duplicates_missing_users_and_root(sess: SyncSession) -> None:
    sess.ex("CREATE USER Bob PASSWORD 'pw'")  # unquoted names fold to lower case
    assert _code(sess, "CREATE USER bob PASSWORD 'x'") == "42710"
    assert _code(sess, "CREATE USER root") == "42710"
    sess.ex("CREATE USER IF NOT EXISTS bob PASSWORD 'other'")
    assert _matches(_stored(sess, "bob") or "", "pw")  # IF NOT EXISTS left it alone
    assert _code(sess, "ALTER USER carol WITH PASSWORD 'x'") == "42704"
    assert _code(sess, "DROP USER carol") == "42704"
    assert _code(sess, "DROP USER root") == "42501"
    sess.ex("ALTER USER root PASSWORD 'x'")  # allowed (CockroachDB too): root for SCRAM
    assert _matches(_stored(sess, "root") or "", "x")
    assert sess.rows("SHOW USERS") == [("bob", ""), ("root", "")]  # root listed once
    sess.ex("DROP USER IF EXISTS carol")


def test_alter_and_drop(sess: SyncSession) -> None:
    sess.ex("CREATE USER u1 PASSWORD 'one'")
    sess.ex('CREATE ROLE "Mixed Case" LOGIN PASSWORD \'two\'')
    sess.ex("ALTER USER u1 WITH PASSWORD 'uno'")
    assert _matches(_stored(sess, "u1") or "", "uno")
    sess.ex("ALTER USER u1 PASSWORD NULL")
    assert _stored(sess, "u1") is None  # exists, but cannot log in with a password
    assert sess.rows("SHOW USERS") == [("Mixed Case", ""), ("root", ""), ("u1", "")]
    assert sess.ex('DROP USER u1, "Mixed Case"').tag == "DROP ROLE"
    assert sess.rows("SHOW ROLES") == [("root", "")]
    assert _stored(sess, "u1") is None


def test_user_ddl_is_transactional(sess: SyncSession) -> None:
    sess.ex("BEGIN")
    sess.ex("CREATE USER t1 PASSWORD 'pw'")
    assert ("t1", "") in sess.rows("SHOW USERS")
    assert _stored(sess, "t1") is None  # not visible outside the txn yet
    sess.ex("ROLLBACK")
    assert sess.rows("SHOW USERS") == [("root", "")]


def test_empty_password_is_refused(sess: SyncSession) -> None:
    assert _code(sess, "CREATE USER e PASSWORD ''") == "22023"


# -- cancel points --------------------------------------------------------------------------
async def _cross_join_setup(s: Session, n: int) -> None:
    await s.execute("CREATE TABLE t (k INT PRIMARY KEY)")
    await s.execute("INSERT INTO t VALUES " + ", ".join(f"({i})" for i in range(n)))


def test_session_cancel_stops_a_cross_join_and_the_loop_stays_live() -> None:
    async def main() -> None:
        s = Session(FakeKV())
        await _cross_join_setup(s, 40)  # 40**4 rows: seconds of work, if it never yielded
        ticks = 0

        async def heartbeat() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        hb = asyncio.create_task(heartbeat())
        q = asyncio.create_task(s.execute("SELECT count(*) FROM t a, t b, t c, t d"))
        while ticks < 50 and not q.done():  # the join yields: the heartbeat runs meanwhile
            await asyncio.sleep(0)
        assert not q.done()
        s.cancel()
        with pytest.raises(SQLError) as ei:
            await asyncio.wait_for(q, 60)
        assert ei.value.sqlstate == "57014"
        hb.cancel()
        assert (await s.execute("SELECT count(*) FROM t")).rows == [(40,)]

    asyncio.run(main())


def test_task_cancel_rolls_back_an_explicit_txn_statement() -> None:
    async def main() -> None:
        s = Session(FakeKV())
        await _cross_join_setup(s, 120)
        await s.execute("BEGIN")
        q = asyncio.create_task(s.execute("SELECT a.k FROM t a, t b, t c, t d WHERE a.k + d.k < 0"))
        await asyncio.sleep(0.05)
        q.cancel()
        with pytest.raises(asyncio.CancelledError):
            await q
        assert s.txn_status == "Aborted"
        await s.execute("ROLLBACK")
        assert (await s.execute("SELECT count(*) FROM t a, t b")).rows == [(120 * 120,)]

    asyncio.run(main())


def test_passwords_do_not_stay_in_the_statement_cache(sess: SyncSession) -> None:
    sess.ex("CREATE USER f PASSWORD 'hunter2'")
    sess.ex("ALTER USER f PASSWORD 'hunter3'")
    assert not [k for k in sess.s.cache._d if "hunter" in k]
    assert sess.rows("SHOW USERS") == [("f", ""), ("root", "")]
