"""`crdb-py sql`: a psql-like shell over the PostgreSQL wire protocol.

The shell is a client like any other: it talks to a node's SQL port through
psycopg 3 (autocommit, so BEGIN/COMMIT typed by the user drive the server's
transaction state) and never imports the SQL layer. Its pieces:

* **Input.** Lines accumulate until a ``;`` outside quotes, dollar quotes
  and comments ends a statement (`split_statements`); a line starting with a
  backslash on an empty buffer is a meta-command. Interactive input goes
  through prompt_toolkit (history in ``~/.crdb_py_history``, tab completion of
  keywords, tables and columns); ``-e``, ``-f`` and piped stdin feed the same
  `Shell.feed`.
* **Prompt.** ``user@host:port/db>`` plus the transaction state psycopg reads
  from each ReadyForQuery: `` OPEN`` inside BEGIN, `` ERROR`` in a failed
  transaction; the continuation prompt ends in ``->``.
* **Ctrl+C.** At the prompt it clears the input. During a statement the
  SIGINT reaches psycopg's wait loop, which sends a CancelRequest and waits
  for the server's 57014; the shell reports "cancelled" and goes on.
* **Meta-commands.** ``\\?`` lists them. Catalog commands (``\\l``, ``\\dt``,
  ``\\d t``) use SHOW statements, which every crdb-py node answers.
* **Scripts** stop at the first error when ON_ERROR_STOP is set
  (``--stop-on-error`` / ``\\set ON_ERROR_STOP 1``); the exit code is 1 if any
  statement failed.

`crdb-py demo` hands the shell a `DemoControl` for ``\\demo`` commands.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from typing import IO, Any, Protocol

from crdb_py.cli.format import FORMATS, render

HELP = """\
General
  \\q                 quit (also Ctrl+D)
  \\?                 this help
  \\! [COMMAND]       run a shell command
  \\echo TEXT         print TEXT
  \\i FILE            run the statements in FILE
  \\o [FILE]          send results to FILE (no FILE: back to the terminal)
Informational
  \\l                 list databases
  \\dt                list tables
  \\d [TABLE]         list tables, or describe TABLE (columns and indexes)
Formatting
  \\x [on|off]        expanded (record) output
  \\timing [on|off]   show how long each statement took
  \\set [NAME [VALUE]] show or set a variable: ON_ERROR_STOP, ECHO,
                     display_format (table, csv, tsv, json, records)
  \\unset NAME        unset a variable
Demo (crdb-py demo only)
  \\demo ls | shutdown N | restart N | add
Statements end with ';'. Ctrl+C cancels the running statement.
"""

KEYWORDS = (
    "ABORT ADD ALL ALTER AND AS ASC BEGIN BETWEEN BY CASCADE CASE CHECK COLUMN COLUMNS COMMIT "
    "COUNT CREATE CROSS DATABASE DATABASES DEFAULT DELETE DESC DISTINCT DROP ELSE END EXISTS "
    "EXPLAIN FALSE FOREIGN FROM FULL GROUP HAVING IF IN INDEX INDEXES INNER INSERT INT INTO IS "
    "JOIN KEY LEFT LIKE LIMIT NOT NULL OFFSET ON OR ORDER OUTER PRIMARY REFERENCES RETURNING "
    "RIGHT ROLLBACK SELECT SET SHOW STRING TABLE TABLES THEN TRANSACTION TRUE TRUNCATE UNIQUE "
    "UPDATE UPSERT USE USING VALUES WHEN WHERE WITH"
).split()


class DemoControl(Protocol):
    """What `\\demo` talks to (implemented by `crdb_py.cli.demo.Demo`)."""

    def demo_command(self, shell: Shell, args: list[str]) -> str: ...


# ---- statement splitting ---------------------------------------------------------------


def split_statements(buf: str) -> tuple[list[str], str]:
    """Complete ``;``-terminated statements in `buf` and the unfinished rest.

    >>> split_statements("select 1; select ';'")
    (['select 1'], " select ';'")
    """
    out: list[str] = []
    i, start, n = 0, 0, len(buf)
    while i < n:
        c = buf[i]
        if c in "'\"":
            j = buf.find(c, i + 1)
            while j != -1 and j + 1 < n and buf[j + 1] == c:  # doubled quote
                j = buf.find(c, j + 2)
            if j == -1:
                break
            i = j + 1
            continue
        if c == "-" and buf.startswith("--", i):
            j = buf.find("\n", i)
            if j == -1:
                break
            i = j + 1
            continue
        if c == "/" and buf.startswith("/*", i):
            j = buf.find("*/", i + 2)
            if j == -1:
                break
            i = j + 2
            continue
        if c == "$":
            j = buf.find("$", i + 1)
            tag = buf[i:j + 1] if j != -1 else ""
            if tag and (tag == "$$" or tag[1:-1].isidentifier()):
                k = buf.find(tag, j + 1)
                if k == -1:
                    break
                i = k + len(tag)
                continue
        if c == ";":
            stmt = buf[start:i].strip()
            if stmt:
                out.append(stmt)
            start = i + 1
        i += 1
    return out, buf[start:]


# ---- the shell ---------------------------------------------------------------------------


class Shell:
    """One session: a connection, variables, and the input buffer."""

    def __init__(self, conninfo: str, *, fmt: str = "table", stop_on_error: bool = False,
                 echo: bool = False, out: IO[str] | None = None, err: IO[str] | None = None,
                 demo: DemoControl | None = None) -> None:
        import psycopg

        self._psycopg = psycopg
        self.conninfo = conninfo
        self.vars: dict[str, str] = {"display_format": fmt}
        if stop_on_error:
            self.vars["ON_ERROR_STOP"] = "1"
        if echo:
            self.vars["ECHO"] = "all"
        self.expanded = False
        self.timing = False
        self.stdout: IO[str] = out or sys.stdout
        self.out: IO[str] = self.stdout
        self.err: IO[str] = err or sys.stderr
        self.demo = demo
        self.buffer = ""
        self.errors = 0
        self.quit = False
        self.conn: Any = None
        self.ident = ""
        self._tables: list[str] | None = None
        self._columns: dict[str, list[str]] = {}
        self.connect(conninfo)

    # ---- connection ---------------------------------------------------------------------

    def connect(self, conninfo: str) -> None:
        conn = self._psycopg.connect(conninfo, autocommit=True, connect_timeout=15)
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.close()
        self.conn, self.conninfo = conn, conninfo
        i = conn.info
        self.ident = f"{i.user}@{i.host}:{i.port}/{i.dbname}"
        self._tables, self._columns = None, {}

    def close(self) -> None:
        if self.out is not self.stdout:
            self.out.close()
            self.out = self.stdout
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.close()

    @property
    def stop_on_error(self) -> bool:
        return self.vars.get("ON_ERROR_STOP", "").lower() in ("1", "on", "true", "yes")

    def txn_state(self) -> str:
        """'' idle, 'OPEN' inside BEGIN, 'ERROR' in a failed transaction, '?' broken."""
        from psycopg.pq import TransactionStatus as TS

        if self.conn is None or self.conn.closed:
            return "?"
        st = self.conn.info.transaction_status
        return {TS.IDLE: "", TS.INTRANS: "OPEN", TS.INERROR: "ERROR"}.get(st, "?")

    def prompt(self) -> str:
        state = self.txn_state()
        base = self.ident
        if self.buffer.strip():
            return " " * max(0, len(base) - 2) + "-> "
        return f"{base}{' ' + state if state else ''}> "

    # ---- input ----------------------------------------------------------------------------

    def feed(self, line: str) -> None:
        """One line of input: a meta-command, or part of SQL statements."""
        if not self.buffer.strip() and line.lstrip().startswith("\\"):
            self.meta(line.strip())
            return
        self.buffer += line + "\n"
        stmts, self.buffer = split_statements(self.buffer)
        for s in stmts:
            if self.quit:
                return
            ok = self.execute(s)
            if not ok and self.stop_on_error:
                self.quit = True
                self.buffer = ""
                return
        rest = self.buffer.strip()
        if rest.startswith("\\"):  # `SELECT 1; \x` — a meta-command after statements
            self.buffer = ""
            self.meta(rest)
        elif not rest:
            self.buffer = ""

    def run_lines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.feed(line.rstrip("\n"))
            if self.quit:
                return
        if self.buffer.strip():  # a last statement without ';'
            rest, self.buffer = self.buffer, ""
            self.feed(rest.rstrip() + ";")

    # ---- statements -------------------------------------------------------------------------

    def execute(self, sql: str) -> bool:
        """Run one statement and print its result; False on error."""
        if self.vars.get("ECHO") == "all":
            self._print(sql + ";")
        if self.conn is None or self.conn.closed or self.txn_state() == "?":
            try:
                self.connect(self.conninfo)
            except self._psycopg.Error as e:
                return self._fail(f"ERROR: not connected: {e}")
        t0 = time.perf_counter()
        try:
            cur = self.conn.execute(sql)
            rows = cur.fetchall() if cur.description is not None else None
        except KeyboardInterrupt:
            # psycopg has sent a CancelRequest and waited for the server.
            self._note("cancelled: statement interrupted by Ctrl+C")
            self.errors += 1
            self._recover_after_interrupt()
            return False
        except self._psycopg.Error as e:
            return self._report(e)
        dt = (time.perf_counter() - t0) * 1000
        if rows is not None:
            cols = [d.name for d in cur.description]
            self._print(render(cols, rows, self.vars.get("display_format", "table"),
                               expanded=self.expanded), end="")
        else:
            self._print(cur.statusmessage or "OK")
        if self.timing:
            self._print(f"Time: {dt:.3f} ms")
        if cur.statusmessage and cur.statusmessage.split()[0] in ("CREATE", "DROP", "ALTER"):
            self._tables, self._columns = None, {}
        return True

    def _recover_after_interrupt(self) -> None:
        """A second Ctrl+C can interrupt psycopg while it waits for the
        cancelled statement to end, leaving the connection mid-query: the
        only safe repair is a new connection (its transaction is lost)."""
        if self.conn.closed or self.txn_state() == "?":
            self._note("(the statement did not stop cleanly; reconnecting — any open "
                       "transaction was rolled back)")
            with contextlib.suppress(Exception):
                self.conn.close()
            try:
                self.connect(self.conninfo)
            except self._psycopg.Error as e:
                self._note(f"reconnect failed: {str(e).strip()}; the next statement retries")

    def _report(self, e: Exception) -> bool:
        diag = getattr(e, "diag", None)
        msg = (diag.message_primary if diag is not None else None) or str(e).strip()
        text = f"ERROR: {msg}"
        code = getattr(e, "sqlstate", None)
        if diag is not None and diag.message_detail:
            text += f"\nDETAIL: {diag.message_detail}"
        if code:
            text += f"\nSQLSTATE: {code}"
        if isinstance(e, self._psycopg.OperationalError) and self.conn is not None \
                and self.conn.closed:
            text += "\n(connection lost; the next statement reconnects)"
        return self._fail(text)

    def _fail(self, text: str) -> bool:
        self.errors += 1
        print(text, file=self.err, flush=True)
        return False

    def _print(self, text: str, end: str = "\n") -> None:
        print(text, end=end, file=self.out, flush=True)

    def _note(self, text: str) -> None:
        print(text, file=self.err, flush=True)

    def _query(self, sql: str) -> list[tuple[Any, ...]]:
        return list(self.conn.execute(sql).fetchall())

    # ---- meta-commands ----------------------------------------------------------------------

    def meta(self, line: str) -> None:
        cmd, _, rest = line.partition(" ")
        cmd, rest = cmd.rstrip(";"), rest.strip()
        try:
            handler = _META.get(cmd)
            if handler is None:
                self._fail(f"invalid command {cmd}; try \\? for help")
                return
            handler(self, rest)
        except self._psycopg.Error as e:
            self._report(e)
            if self.stop_on_error:
                self.quit = True
        except (OSError, ValueError) as e:
            self._fail(f"error: {e}")
            if self.stop_on_error:
                self.quit = True

    def _m_quit(self, rest: str) -> None:
        self.quit = True

    def _m_help(self, rest: str) -> None:
        self._print(HELP, end="")

    def _m_list_dbs(self, rest: str) -> None:
        self.execute("SHOW DATABASES")

    def _m_list_tables(self, rest: str) -> None:
        self.execute("SHOW TABLES")

    def _m_describe(self, rest: str) -> None:
        if not rest:
            self.execute("SHOW TABLES")
            return
        name = rest.rstrip(";").strip()
        if not name.replace("_", "").isalnum():
            raise ValueError(f"not a table name: {name!r}")
        self._print(f'Table "{name}"')
        if self.execute(f"SHOW COLUMNS FROM {name}"):
            self._print("Indexes:")
            self.execute(f"SHOW INDEXES FROM {name}")

    def _toggle(self, rest: str, current: bool, what: str) -> bool:
        v = rest.lower()
        new = (not current) if not v else v in ("on", "1", "true")
        if v and v not in ("on", "off", "1", "0", "true", "false"):
            raise ValueError(f"{what}: expected on or off, got {rest!r}")
        return new

    def _m_expanded(self, rest: str) -> None:
        self.expanded = self._toggle(rest, self.expanded, "\\x")
        self._print(f"Expanded display is {'on' if self.expanded else 'off'}.")

    def _m_timing(self, rest: str) -> None:
        self.timing = self._toggle(rest, self.timing, "\\timing")
        self._print(f"Timing is {'on' if self.timing else 'off'}.")

    def _m_set(self, rest: str) -> None:
        if not rest:
            for k in sorted(self.vars):
                self._print(f"{k} = '{self.vars[k]}'")
            return
        name, _, value = rest.partition(" ")
        value = value.strip()
        if name == "display_format" and value not in FORMATS:
            raise ValueError(f"display_format must be one of {', '.join(FORMATS)}")
        self.vars[name] = value

    def _m_unset(self, rest: str) -> None:
        if rest == "display_format":
            self.vars[rest] = "table"
        else:
            self.vars.pop(rest, None)

    def _m_include(self, rest: str) -> None:
        if not rest:
            raise ValueError("\\i needs a file name")
        with open(os.path.expanduser(rest)) as f:
            saved, self.buffer = self.buffer, ""
            self.run_lines(f)
            self.buffer = saved

    def _m_output(self, rest: str) -> None:
        if self.out is not self.stdout:
            self.out.close()
        self.out = open(os.path.expanduser(rest), "a") if rest else self.stdout

    def _m_echo(self, rest: str) -> None:
        self._print(rest)

    def _m_shell(self, rest: str) -> None:
        self.out.flush()
        r = subprocess.run(rest or os.environ.get("SHELL", "/bin/sh"), shell=True,
                           stdout=None if self.out is self.stdout else self.out)
        if r.returncode != 0:
            self._note(f"command exited with code {r.returncode}")

    def _m_demo(self, rest: str) -> None:
        if self.demo is None:
            raise ValueError("\\demo works only inside `crdb-py demo`")
        self._print(self.demo.demo_command(self, shlex.split(rest)), end="")

    # ---- completion ---------------------------------------------------------------------------

    def tables(self) -> list[str]:
        if self._tables is None:
            try:
                self._tables = [r[0] for r in self._query("SHOW TABLES")]
            except Exception:
                return []
        return self._tables

    def columns(self, table: str) -> list[str]:
        if table not in self._columns:
            try:
                self._columns[table] = [r[0] for r in self._query(f"SHOW COLUMNS FROM {table}")]
            except Exception:
                return []
        return self._columns[table]

    def completions(self, text_before: str) -> list[str]:
        """Candidates for the word before the cursor: meta-commands, SQL
        keywords, table names, and columns of tables named in the buffer."""
        word = text_before.split()[-1] if text_before and not text_before[-1].isspace() else ""
        if word.startswith("\\"):
            return [m for m in sorted(_META) if m.startswith(word)]
        low = word.lower()
        cands: list[str] = []
        if self.txn_state() in ("", "OPEN"):
            tabs = self.tables()
            cands += [t for t in tabs if t.lower().startswith(low)]
            said = {w.strip(",;()").lower() for w in (self.buffer + text_before).split()}
            for t in tabs:
                if t.lower() in said:
                    cands += [c for c in self.columns(t) if c.lower().startswith(low)]
        cands += [k for k in KEYWORDS if k.lower().startswith(low)]
        seen: set[str] = set()
        return [c for c in cands if not (c in seen or seen.add(c))]  # type: ignore[func-returns-value]

    # ---- interactive loop ---------------------------------------------------------------------

    def interactive(self, history: str | None) -> None:
        from prompt_toolkit import PromptSession
        from prompt_toolkit.completion import Completer, Completion
        from prompt_toolkit.history import FileHistory, InMemoryHistory

        shell = self

        class _Completer(Completer):
            def get_completions(self, document: Any, complete_event: Any) -> Iterator[Any]:
                before = document.text_before_cursor
                word = document.get_word_before_cursor(WORD=True)
                for c in shell.completions(before):
                    yield Completion(c, start_position=-len(word))

        hist = FileHistory(os.path.expanduser(history)) if history else InMemoryHistory()
        session: PromptSession[str] = PromptSession(history=hist, completer=_Completer(),
                                                    complete_while_typing=False)
        self._print("# Welcome to crdb-py sql. Type \\? for help, \\q to quit.")
        while not self.quit:
            try:
                line = session.prompt(self.prompt())
            except KeyboardInterrupt:
                self.buffer = ""
                continue
            except EOFError:
                break
            try:
                self.feed(line)
            except KeyboardInterrupt:
                self._note("cancelled")
        self.quit = False  # an interactive \q or error never counts as a script stop


def run(conninfo: str, *, execute: list[str], file: str | None, fmt: str, stop_on_error: bool,
        echo: bool, history: str | None, demo: DemoControl | None = None,
        on_connect: Any = None) -> int:
    """The `crdb-py sql` entry point; returns the exit code."""
    import psycopg

    try:
        shell = Shell(conninfo, fmt=fmt, stop_on_error=stop_on_error, echo=echo, demo=demo)
    except psycopg.Error as e:
        print(f"error: cannot connect to {conninfo}: {str(e).strip()}", file=sys.stderr)
        return 1
    try:
        if on_connect is not None:
            on_connect(shell)
        if execute or file:
            for stmt in execute:
                shell.run_lines(stmt.splitlines() or [""])
                if shell.quit:
                    break
            if file and not shell.quit:
                if file == "-":
                    shell.run_lines(sys.stdin)
                else:
                    with open(file) as f:
                        shell.run_lines(f)
        elif not sys.stdin.isatty():
            shell.run_lines(sys.stdin)
        else:
            shell.interactive(history)
            return 0
        return 1 if shell.errors else 0
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        shell.close()


_META: dict[str, Any] = {
    "\\q": Shell._m_quit, "\\quit": Shell._m_quit, "\\?": Shell._m_help,
    "\\l": Shell._m_list_dbs, "\\dt": Shell._m_list_tables, "\\d": Shell._m_describe,
    "\\x": Shell._m_expanded, "\\timing": Shell._m_timing, "\\set": Shell._m_set,
    "\\unset": Shell._m_unset, "\\i": Shell._m_include, "\\o": Shell._m_output,
    "\\echo": Shell._m_echo, "\\!": Shell._m_shell, "\\demo": Shell._m_demo,
}
