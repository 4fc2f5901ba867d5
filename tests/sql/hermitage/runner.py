"""A tiny interpreter for Hermitage-style isolation scripts.

Martin Kleppmann's Hermitage (github.com/ept/hermitage) tests each isolation
anomaly with a fixed interleaving of statements from two or three sessions.
A script here is that interleaving, one statement per line::

    setup: create table test (id int primary key, value int)
    setup: insert into test values (1, 10), (2, 20)
    T1: begin
    T2: begin
    T1: select value from test where id = 1   => 10
    T2: update test set value = 12 where id = 1
    T1: commit
    T2: commit
    expect: not both T1 T2        # at least one of them must not commit
    check: select value from test order by id => 11 | 20

Semantics (what "the anomaly is prevented" means here, as for PostgreSQL's
serializable column): a statement may *block* — the runner waits
`block_after` seconds, records it as blocked, and goes on with the other
sessions (a session's next statement first waits for its blocked one) — or
fail with SQLSTATE 40001, after which that transaction is dead: its further
statements are skipped and it counts as aborted. `=> rows` is checked only
when the statement succeeds (rows joined by ` | `, columns by `,`; `=> ` with
nothing after it is the empty result): a serializable system may abort a
reader instead of answering, but must never answer wrongly. `expect:` lines
constrain the outcome: `committed T1`, `aborted T2`, `not both T1 T2`.
`check:` runs in a fresh session after everything settles.

The runner drives `Session`s (crdb_py/sql/session.py) on one event loop —
the embedded backend's loop thread — so the same scripts run over the
embedded store and over a real LocalCluster.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import re
from dataclasses import dataclass, field
from typing import Any

from crdb_py.sql import types as T
from crdb_py.util.errors import CrdbError


@dataclass
class Outcome:
    committed: set[str] = field(default_factory=set)
    aborted: set[str] = field(default_factory=set)
    blocked: list[str] = field(default_factory=list)  # "T2: <sql>" that blocked
    violations: list[str] = field(default_factory=list)  # wrong answers / broken expectations

    @property
    def ok(self) -> bool:
        return not self.violations


def _fmt(v: Any) -> str:
    return "NULL" if v is None else T.to_text(v)


def _render(rows: list[tuple[Any, ...]]) -> str:
    return " | ".join(",".join(_fmt(v) for v in r) for r in rows)


def _norm(s: str) -> str:
    return re.sub(r"\s+", "", s)


def _matches(rows: list[tuple[Any, ...]], want: str) -> bool:
    """`want` is one rendering, or several separated by ` or `."""
    got = _norm(_render(rows))
    return any(got == _norm(alt) for alt in want.split(" or "))


def sqlstate(e: BaseException) -> str:
    return str(getattr(e, "sqlstate", "") or getattr(e, "code", "") or "")


class Runner:
    """Runs one script over `sessions` (name -> Session) on `loop`."""

    def __init__(self, loop: asyncio.AbstractEventLoop, make_session: Any,
                 *, block_after: float = 0.5, settle: float = 30.0) -> None:
        self.loop = loop
        self.make_session = make_session  # () -> Session
        self.block_after = block_after
        self.settle = settle

    def _submit(self, coro: Any) -> cf.Future[Any]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def _sync(self, sess: Any, sql: str) -> Any:
        return self._submit(sess.execute(sql)).result(self.settle)

    def run(self, script: str) -> Outcome:
        out = Outcome()
        sessions: dict[str, Any] = {}
        pending: dict[str, tuple[cf.Future[Any], str, str | None]] = {}
        dead: set[str] = set()
        expects: list[str] = []
        checks: list[tuple[str, str | None]] = []
        setup = self.make_session()

        def settle(name: str, timeout: float) -> None:
            fut, sql, want = pending.pop(name)
            try:
                res = fut.result(timeout)
            except cf.TimeoutError:
                out.violations.append(f"{name}: {sql!r} never finished (deadlock?)")
                dead.add(name)
                return
            except CrdbError as e:
                if sqlstate(e) == "40001":
                    out.aborted.add(name)
                    dead.add(name)
                    self._submit(sessions[name].execute("ROLLBACK")).result(self.settle)
                    return
                out.violations.append(f"{name}: {sql!r} failed: {sqlstate(e)} {e}")
                dead.add(name)
                return
            low = sql.strip().lower()
            if low in ("commit", "end") and res.tag == "COMMIT":
                out.committed.add(name)
            elif low in ("commit", "end"):
                out.aborted.add(name)
            if want is not None and not _matches(res.rows, want):
                out.violations.append(f"{name}: {sql!r} returned {_render(res.rows)!r}, "
                                      f"want {want!r}")

        for raw in script.strip().splitlines():
            line = re.sub(r"\s#.*$", "", raw).strip()
            if not line:
                continue
            who, _, rest = line.partition(":")
            who = who.strip()
            sql, arrow, want = rest.partition("=>")
            sql = sql.strip()
            want_s = want.strip() if arrow else None
            if who == "setup":
                self._sync(setup, sql)
                continue
            if who == "expect":
                expects.append(sql)
                continue
            if who == "check":
                checks.append((sql, want_s))
                continue
            if who in pending:  # a session's statements run in order
                settle(who, self.settle)
            if who in dead:
                continue
            sess = sessions.get(who)
            if sess is None:
                sess = sessions[who] = self.make_session()
            pending[who] = (self._submit(sess.execute(sql)), sql, want_s)
            fut = pending[who][0]
            try:
                fut.result(self.block_after)
            except cf.TimeoutError:
                out.blocked.append(f"{who}: {sql}")
                continue
            except BaseException:  # settled below
                pass
            settle(who, 0)
        for name in list(pending):
            settle(name, self.settle)
        for name, s in sessions.items():
            if name not in out.committed and name not in out.aborted:
                out.aborted.add(name)  # never committed (rolled back or dead)
            self._submit(s.close()).result(self.settle)
        for e in expects:
            self._expect(e, out)
        for sql, want in checks:
            res = self._sync(setup, sql)
            if want is not None and not _matches(res.rows, want):
                out.violations.append(f"check {sql!r} returned {_render(res.rows)!r}, "
                                      f"want {want!r}")
        self._submit(setup.close()).result(self.settle)
        return out

    @staticmethod
    def _expect(e: str, out: Outcome) -> None:
        words = e.split()
        op, names = " ".join(words[:2]) if words[:2] == ["not", "both"] else words[0], words[-2:]
        if op == "committed" and words[1] not in out.committed:
            out.violations.append(f"expected {words[1]} to commit")
        elif op == "aborted" and words[1] not in out.aborted:
            out.violations.append(f"expected {words[1]} to abort")
        elif op == "not both" and set(names) <= out.committed:
            out.violations.append(f"both {names[0]} and {names[1]} committed (anomaly)")
