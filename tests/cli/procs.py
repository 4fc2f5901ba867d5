"""Helpers for tests that run real `crdb-py` processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence


def child_pids() -> set[int]:
    """Pids whose parent is this process (zombies included: they leak too)."""
    me, out = os.getpid(), set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid ... ; comm may contain spaces/parens
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == me:
            out.add(int(entry))
    return out


def cli(args: Sequence[str], timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crdb_py.cli.main", *args],
        capture_output=True, text=True, timeout=timeout,
    )


def spawn(args: Sequence[str], log_path: str) -> subprocess.Popen[bytes]:
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "crdb_py.cli.main", *args],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )


def wait_file(path: str, proc: subprocess.Popen[bytes] | None = None, timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            with open(path) as f:
                data = f.read()
            if data:
                return data
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode} before writing {path}")
        time.sleep(0.02)
    raise AssertionError(f"{path} not written within {timeout}s")


def reap(*procs: subprocess.Popen[bytes]) -> None:
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait()
