"""`crdb-py demo`: a real N-node cluster under the shell, `\\demo` commands,
and cleanup (no node process and no temporary directory survive)."""

from __future__ import annotations

import os
import re
import signal
import sys
import time
from pathlib import Path

import pexpect
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _spawn_demo(home: Path, *args: str) -> pexpect.spawn:
    env = dict(os.environ, HOME=str(home), TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1",
               PYTHONUNBUFFERED="1")
    c = pexpect.spawn(sys.executable, ["-m", "crdb_py.cli.main", "demo", *args], env=env,
                      cwd=str(ROOT), encoding="utf-8", timeout=60, dimensions=(50, 200))
    c.logfile_read = open(home / "pty.log", "a")  # closed by _close
    return c


def _close(c: pexpect.spawn) -> None:
    c.close(force=True)
    if c.logfile_read is not None:
        c.logfile_read.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is gone for our purposes
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def _ls(c: pexpect.spawn, nodes: int) -> dict[int, tuple[str, int | None]]:
    """`\\demo ls` → {node: (up|down, pid)}."""
    c.sendline("\\demo ls")
    got: dict[int, tuple[str, int | None]] = {}
    for _ in range(nodes):
        c.expect(r"node (\d+): (up|down)(?: pid (\d+))?")
        m = c.match
        got[int(m.group(1))] = (m.group(2), int(m.group(3)) if m.group(3) else None)
    c.expect("defaultdb")
    c.expect(">")
    return got


def _wait_gone(pids: list[int], path: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(_alive(p) for p in pids) and not os.path.exists(path):
            return
        time.sleep(0.1)
    assert not [p for p in pids if _alive(p)], "demo left node processes behind"
    assert not os.path.exists(path), f"demo left {path} behind"


def test_demo_three_nodes_ls_shutdown_restart_add_and_cleanup(tmp_path: Path) -> None:
    c = _spawn_demo(tmp_path, "--nodes", "3", "--history", "")
    try:
        c.expect(r"starting a 3-node demo cluster in (\S+) \.\.\.")
        cluster_dir = c.match.group(1)
        urls = []
        for i in (1, 2, 3):
            c.expect(rf"node {i}: (postgresql://root@127\.0\.0\.1:\d+/defaultdb\S*)")
            urls.append(c.match.group(1))
        assert len(set(urls)) == 3
        c.expect("defaultdb>")
        c.sendline("SELECT count(*), sum(balance) FROM accounts;")
        c.expect(r"4\s+\|\s+1000")
        ls = _ls(c, 3)
        assert {n: s for n, (s, _) in ls.items()} == {1: "up", 2: "up", 3: "up"}
        pids = [p for _, p in ls.values() if p]
        assert len(pids) == 3 and all(_alive(p) for p in pids)

        c.sendline("\\demo shutdown 2")
        c.expect("node 2 has been shut down")
        assert _ls(c, 3)[2] == ("down", None)
        assert not _alive(ls[2][1] or 0)
        c.sendline("UPDATE accounts SET balance = balance + 1 WHERE id = 4;")
        c.expect("UPDATE 1")  # two of three replicas are a quorum

        c.sendline("\\demo restart 2")
        c.expect("node 2 has been restarted")
        ls2 = _ls(c, 3)
        assert ls2[2][0] == "up" and ls2[2][1] not in (None, ls[2][1])
        pids.append(ls2[2][1] or 0)

        c.sendline("\\demo add")
        c.expect(r"node 4 has been added: postgresql://\S+")
        ls4 = _ls(c, 4)
        assert ls4[4][0] == "up"
        pids.append(ls4[4][1] or 0)

        # shutting down the shell's own node moves the shell elsewhere
        c.sendline("\\demo shutdown 1")
        c.expect(r"node 1 has been shut down; the shell moved to node (\d)")
        c.sendline("SELECT balance FROM accounts WHERE id = 4;")
        c.expect(r"balance\s+\S*\s+1\b")

        c.sendline("\\demo shutdown 9")
        c.expect("no node 9")
        c.sendline("\\q")
        c.expect(pexpect.EOF)
        c.close()
        assert c.exitstatus == 0
        _wait_gone(pids, cluster_dir)
    finally:
        _close(c)


def test_demo_cleans_up_on_sigterm(tmp_path: Path) -> None:
    c = _spawn_demo(tmp_path, "--nodes", "1", "--empty", "--history", "")
    try:
        c.expect(r"starting a 1-node demo cluster in (\S+) \.\.\.")
        cluster_dir = c.match.group(1)
        c.expect("defaultdb>")
        ls = _ls(c, 1)
        pid = ls[1][1]
        assert pid is not None and _alive(pid)
        c.sendline("\\dt")  # --empty: no example tables
        c.expect(r"table_name\s+\S*\s+\(0 rows\)")
        c.kill(signal.SIGTERM)
        c.expect(pexpect.EOF)
        c.close()
        _wait_gone([pid], cluster_dir)
    finally:
        _close(c)


@pytest.mark.parametrize("args", [["--nodes", "0"]])
def test_demo_refuses_bad_arguments(args: list[str], tmp_path: Path) -> None:
    c = _spawn_demo(tmp_path, *args)
    try:
        c.expect("error: --nodes must be at least 1")
        c.expect(pexpect.EOF)
        c.close()
        assert c.exitstatus == 1
    finally:
        _close(c)


def test_demo_with_execute_runs_statements_and_exits(tmp_path: Path) -> None:
    c = _spawn_demo(tmp_path, "--nodes", "1", "--format", "csv",
                    "-e", "SELECT owner FROM accounts WHERE id = 2", "-e", "\\demo ls")
    try:
        c.expect(r"starting a 1-node demo cluster in (\S+) \.\.\.")
        cluster_dir = c.match.group(1)
        c.expect(r"owner\s+bob")
        c.expect(r"node 1: up pid (\d+)")
        pid = int(c.match.group(1))
        c.expect(pexpect.EOF)
        c.close()
        assert c.exitstatus == 0
        _wait_gone([pid], cluster_dir)
        assert re.search(r"node 1: postgresql://", (tmp_path / "pty.log").read_text())
    finally:
        _close(c)
