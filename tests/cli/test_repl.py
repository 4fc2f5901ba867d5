"""`crdb-py sql`: the shell against a real node, driven through a pseudo-terminal
(pexpect) and as a script runner (-e, -f, piped stdin)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from crdb_py.cli.repl import Shell, split_statements
from crdb_py.localcluster import free_port
from crdb_py.pgwire.server import PGServer
from tests.cli.procs import cli, reap, spawn, wait_file
from tests.pgwire.fake_backend import FakeBackend

ROOT = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A single-node cluster serving SQL; yields its postgresql:// URL."""
    d = tmp_path_factory.mktemp("node")
    port, sql_port = free_port(), free_port()
    ready = str(d / "ready.json")
    p = spawn(["start", "--store", "mem", "--listen-addr", f"127.0.0.1:{port}",
               "--sql-addr", f"127.0.0.1:{sql_port}", "--replication-factor", "1",
               "--ready-file", ready, "--pid-file", str(d / "pid")], str(d / "n.log"))
    try:
        wait_file(str(d / "pid"), p)
        r = cli(["init", "--host", f"127.0.0.1:{port}"])
        assert r.returncode == 0, r.stderr
        info = json.loads(wait_file(ready, p, timeout=30))
        yield f"postgresql://root@{info['sql_address']}/defaultdb?sslmode=disable"
        p.send_signal(signal.SIGTERM)
        p.wait(20)
    finally:
        reap(p)


def _env(home: Path) -> dict[str, str]:
    return dict(os.environ, HOME=str(home), TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1",
                PYTHONUNBUFFERED="1", COLUMNS="200", LINES="50")


def _spawn_shell(url: str, home: Path, *extra: str) -> pexpect.spawn:
    c = pexpect.spawn(sys.executable, ["-m", "crdb_py.cli.main", "sql", "--url", url, *extra],
                      env=_env(home), cwd=str(ROOT), encoding="utf-8", timeout=30,
                      dimensions=(50, 200))
    c.logfile_read = open(home / "pty.log", "a")
    return c


def _finish(c: pexpect.spawn) -> int:
    c.expect(pexpect.EOF)
    c.close()
    if c.logfile_read is not None:
        c.logfile_read.close()
    return int(c.exitstatus if c.exitstatus is not None else -1)


def _clean(s: str) -> str:
    return ANSI.sub("", s)


def _run(args: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "crdb_py.cli.main", *args], input=stdin,
                          capture_output=True, text=True, timeout=60, cwd=str(ROOT))


# ---- pure pieces -----------------------------------------------------------------------


def test_split_statements_respects_quotes_comments_and_dollar_quotes() -> None:
    assert split_statements("select 1; select 2;") == (["select 1", "select 2"], "")
    assert split_statements("select ';' ; sel") == (["select ';'"], " sel")
    assert split_statements("select 'it''s;'; x") == (["select 'it''s;'"], " x")
    assert split_statements('select 1 as "a;b";') == (['select 1 as "a;b"'], "")
    assert split_statements("select 1 -- no; end\n;") == (["select 1 -- no; end"], "")
    assert split_statements("select /* ; */ 1;") == (["select /* ; */ 1"], "")
    assert split_statements("select $$a;b$$;") == (["select $$a;b$$"], "")
    assert split_statements("select 'open;") == ([], "select 'open;")
    assert split_statements(";;") == ([], "")


# ---- interactive, through a pseudo-terminal -----------------------------------------------------


def test_interactive_prompt_multiline_txn_state_and_meta(node: str, tmp_path: Path) -> None:
    c = _spawn_shell(node, tmp_path)
    try:
        c.expect(r"root@127\.0\.0\.1:\d+/defaultdb>")
        c.sendline("CREATE TABLE items (id INT PRIMARY KEY, name STRING);")
        c.expect("CREATE TABLE")
        c.expect("defaultdb>")
        # multi-line: continuation prompt until ';'
        c.sendline("INSERT INTO items")
        c.expect("->")
        c.sendline("VALUES (1, 'one'),")
        c.expect("->")
        c.sendline("(2, 'two');")
        c.expect("INSERT 0 2")
        c.expect("defaultdb>")
        # transaction state in the prompt: OPEN, ERROR, back to idle
        c.sendline("BEGIN;")
        c.expect("defaultdb OPEN>")
        c.sendline("SELECT * FROM no_such_table;")
        c.expect("ERROR: ")
        c.expect("SQLSTATE: 42P01")
        c.expect("defaultdb ERROR>")
        c.sendline("ROLLBACK;")
        c.expect(r"ROLLBACK\s+\S*root@127\.0\.0\.1:\d+/defaultdb>")
        # Ctrl+C at the prompt drops the half-typed statement
        c.send("SELECT 'lost'")
        c.sendintr()
        c.expect("defaultdb>")
        c.sendline("SELECT name FROM items WHERE id = 2;")
        c.expect(r"two.*\(1 row\)")
        c.expect("defaultdb>")
        c.sendline("\\dt")
        c.expect(r"table_name.*items")
        c.expect("defaultdb>")
        c.sendline("\\d items")
        c.expect(r"column_name.*id.*INT.*name.*STRING.*items_pkey")
        c.expect("defaultdb>")
        c.sendline("\\x")
        c.expect("Expanded display is on")
        c.sendline("SELECT id, name FROM items WHERE id = 1;")
        c.expect(r"-\[ RECORD 1 \]\s+id\s+\| 1\s+name \| one")
        c.sendline("\\x off")
        c.expect("Expanded display is off")
        c.sendline("\\timing")
        c.expect("Timing is on")
        c.sendline("SELECT 1;")
        c.expect(r"Time: \d+\.\d+ ms")
        c.sendline("\\set display_format csv")
        c.sendline("SELECT id, name FROM items ORDER BY id;")
        c.expect(r"id,name\s+1,one\s+2,two")
        # tab completion of a table name: "ite" alone would be an unknown table
        c.send("SELECT count(*) FROM ite\t")
        c.expect("ms")
        c.sendline(";")
        c.expect(r"count\s+2")
        c.sendline("\\q")
        assert _finish(c) == 0
    finally:
        c.close(force=True)
    hist = (tmp_path / ".crdb_py_history").read_text()
    assert "CREATE TABLE items" in hist and "\\dt" in hist


def test_ctrl_c_cancels_the_running_statement_not_the_shell(tmp_path: Path) -> None:
    """Ctrl+C during `SELECT pg_sleep(60)` sends a CancelRequest (our pgwire
    server in front of a backend whose pg_sleep waits for cancellation); the
    shell reports it, stays up, and runs the next statement."""
    loop = asyncio.new_event_loop()
    t = threading.Thread(target=loop.run_forever, daemon=True)
    t.start()
    srv = PGServer(FakeBackend(), "127.0.0.1", 0)
    asyncio.run_coroutine_threadsafe(srv.start(), loop).result(10)
    host, port = srv.address
    c = _spawn_shell(f"postgresql://root@{host}:{port}/defaultdb?sslmode=disable", tmp_path,
                     "--history", "")
    try:
        c.expect("defaultdb>")
        c.sendline("SELECT pg_sleep(60);")
        c.expect("pg_sleep")
        # The echo can arrive before the line editor has left raw mode (where
        # ^C is a key, not SIGINT): give it a moment, then press Ctrl+C until
        # the shell reports the cancellation.
        time.sleep(1.0)
        for _ in range(6):
            c.sendintr()
            if c.expect(["cancelled: statement interrupted by Ctrl\\+C", pexpect.TIMEOUT],
                        timeout=4) == 0:
                break
        else:
            pytest.fail("Ctrl+C never cancelled the statement")
        c.expect("defaultdb>")
        c.sendline("SELECT 7;")
        c.expect(r"\b7\b")
        c.expect("defaultdb>")
        c.sendeof()
        assert _finish(c) == 0
    finally:
        c.close(force=True)
        asyncio.run_coroutine_threadsafe(srv.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        t.join(5)
        loop.close()


# ---- scripts ------------------------------------------------------------------------------


def test_execute_flags_run_in_order_with_a_format(node: str) -> None:
    r = _run(["sql", "--url", node, "--format", "csv",
              "-e", "CREATE TABLE e1 (k INT PRIMARY KEY, v STRING); INSERT INTO e1 VALUES (1, 'a')",
              "-e", "SELECT k, v FROM e1"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["CREATE TABLE", "INSERT 0 1", "k,v", "1,a"]
    j = _run(["sql", "--url", node, "--format", "json", "-e", "SELECT k, v FROM e1"])
    assert json.loads(j.stdout) == [{"k": 1, "v": "a"}]
    e = _run(["sql", "--url", node, "--echo", "--format", "tsv", "-e", "SELECT v FROM e1"])
    assert e.stdout.splitlines() == ["SELECT v FROM e1;", "v", "a"]


def test_file_stops_on_first_error_when_asked(node: str, tmp_path: Path) -> None:
    script = tmp_path / "s.sql"
    script.write_text("CREATE TABLE f1 (k INT PRIMARY KEY);\nINSERT INTO f1 VALUES (1);\n"
                      "INSERT INTO f1 VALUES (1);\nINSERT INTO f1 VALUES (2);\n")
    r = _run(["sql", "--url", node, "--stop-on-error", "-f", str(script)])
    assert r.returncode == 1
    assert "SQLSTATE: 23505" in r.stderr
    got = _run(["sql", "--url", node, "--format", "tsv", "-e", "SELECT k FROM f1 ORDER BY k"])
    assert got.stdout.splitlines() == ["k", "1"]  # the statement after the error never ran
    # without --stop-on-error the script goes on (and still exits 1)
    script.write_text(script.read_text().replace("f1", "f2"))
    r = _run(["sql", "--url", node, "-f", str(script)])
    assert r.returncode == 1
    got = _run(["sql", "--url", node, "--format", "tsv", "-e", "SELECT k FROM f2 ORDER BY k"])
    assert got.stdout.splitlines() == ["k", "1", "2"]


def test_piped_stdin_with_meta_commands(node: str, tmp_path: Path) -> None:
    out_file = tmp_path / "out.txt"
    inc = tmp_path / "inc.sql"
    inc.write_text("INSERT INTO p1 VALUES (2, 'from include');\n")
    stdin = (
        "CREATE TABLE p1 (k INT PRIMARY KEY, v STRING);\n"
        "INSERT INTO p1\n  VALUES (1, 'multi\nline');\n"
        f"\\i {inc}\n"
        "\\l\n"
        "\\?\n"
        "\\set greeting hi\n"
        "\\unset greeting\n"
        "\\set\n"
        "\\echo hello from echo\n"
        "\\! echo from-the-shell\n"
        f"\\o {out_file}\n"
        "SELECT v FROM p1 WHERE k = 2;\n"
        "\\o\n"
        "\\set ON_ERROR_STOP 1\n"
        "SELECT * FROM missing_table;\n"
        "SELECT 'never printed';\n"
    )
    r = _run(["sql", "--url", node], stdin=stdin)
    assert r.returncode == 1
    assert "hello from echo" in r.stdout and "from-the-shell" in r.stdout
    assert re.search(r"database_name\s.*\bdefaultdb\b", r.stdout, re.S)  # \l
    assert "\\demo ls" in r.stdout and "\\timing" in r.stdout  # \?
    assert "display_format = 'table'" in r.stdout and "greeting" not in r.stdout  # \set
    assert "from include" not in r.stdout and "from include" in out_file.read_text()
    assert "never printed" not in r.stdout
    got = _run(["sql", "--url", node, "--format", "json", "-e", "SELECT k, v FROM p1 ORDER BY k"])
    assert json.loads(got.stdout) == [{"k": 1, "v": "multi\nline"}, {"k": 2, "v": "from include"}]


def test_completions_offer_keywords_tables_and_columns(node: str) -> None:
    sh = Shell(node)
    try:
        assert sh.execute("CREATE TABLE comp_accounts (acct_id INT PRIMARY KEY, acct_owner STRING)")
        assert "comp_accounts" in sh.completions("SELECT * FROM comp_a")
        assert "SELECT" in sh.completions("SEL")
        assert set(sh.completions("SELECT acct_ FROM comp_accounts WHERE acct_")) \
            >= {"acct_id", "acct_owner"}
        assert "\\dt" in sh.completions("\\d")
    finally:
        sh.close()


def test_unreachable_server_and_bad_arguments_fail_clearly() -> None:
    r = _run(["sql", "--host", f"127.0.0.1:{free_port()}", "-e", "SELECT 1"])
    assert r.returncode == 1 and "error: cannot connect" in r.stderr
    r = _run(["sql", "-e", "SELECT 1"])
    assert r.returncode == 2 and "--url" in r.stderr
