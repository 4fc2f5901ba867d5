"""`crdb-py` as real processes: error paths and clean shutdown (no store needed)."""

from __future__ import annotations

import json
import signal
import socket

import pytest

from tests.cli.procs import cli, reap, spawn, wait_file


def test_sql_without_a_server_is_a_usage_error() -> None:
    # `sql` and `demo` themselves are tested in test_repl.py / test_demo.py
    r = cli(["sql"])
    assert r.returncode == 2
    assert "--url" in r.stderr and "--host" in r.stderr


def test_no_command_is_a_usage_error() -> None:
    assert cli([]).returncode == 2
    assert cli(["node"]).returncode == 2


def test_taken_port_is_a_clear_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = cli(["start", "--store", "mem", "--listen-addr", f"127.0.0.1:{port}"])
    assert r.returncode == 1
    assert f"127.0.0.1:{port}" in r.stderr and "already in use" in r.stderr
    assert "Traceback" not in r.stderr


def test_store_held_by_another_process(tmp_path) -> None:
    store = str(tmp_path / "store")
    pid_file = str(tmp_path / "pid")
    p = spawn(["start", "--store", store, "--listen-addr", "127.0.0.1:0", "--pid-file", pid_file],
              str(tmp_path / "n1.log"))
    try:
        assert int(wait_file(pid_file, p)) == p.pid
        r = cli(["start", "--store", store, "--listen-addr", "127.0.0.1:0"])
        assert r.returncode == 1
        assert "in use by another process" in r.stderr and store in r.stderr
        assert "Traceback" not in r.stderr
        assert p.poll() is None  # the holder is unaffected
    finally:
        reap(p)


def test_join_address_that_never_answers(tmp_path) -> None:
    socks = [socket.socket() for _ in range(2)]
    for s in socks:
        s.bind(("127.0.0.1", 0))  # reserved, nobody listens: connection refused
    addrs = [f"127.0.0.1:{s.getsockname()[1]}" for s in socks]
    try:
        r = cli(["start", "--store", "mem", "--listen-addr", "127.0.0.1:0",
                 "--join", ",".join(addrs), "--join-timeout", "1"])
    finally:
        for s in socks:
            s.close()
    assert r.returncode == 1
    assert "could not join" in r.stderr
    for a in addrs:
        assert a in r.stderr
    assert "Traceback" not in r.stderr


def test_sigterm_shuts_down_cleanly_and_status_works_before_init(tmp_path) -> None:
    pid_file = str(tmp_path / "pid")
    log = str(tmp_path / "n.log")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = spawn(["start", "--store", str(tmp_path / "s"), "--listen-addr", f"127.0.0.1:{port}",
               "--pid-file", pid_file], log)
    try:
        wait_file(pid_file, p)
        r = cli(["node", "status", "--host", f"127.0.0.1:{port}", "--format", "json"])
        assert r.returncode == 0, r.stderr
        rows = json.loads(r.stdout)
        assert [(x["id"], x["address"], x["live"]) for x in rows] == [(0, f"127.0.0.1:{port}", True)]
        p.send_signal(signal.SIGTERM)
        assert p.wait(15) == 0
    finally:
        reap(p)
    out = open(log).read()
    assert "waiting for `crdb-py init`" in out and "shutting down" in out


def test_status_and_init_of_unreachable_host_fail_clearly() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        addr = f"127.0.0.1:{s.getsockname()[1]}"
        for args in (["node", "status", "--host", addr, "--timeout", "0.5"],
                     ["init", "--host", addr, "--timeout", "0.5"]):
            r = cli(args)
            assert r.returncode == 1
            assert addr in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("bad", [["start", "--replication-factor", "x"], ["init"]])
def test_bad_flags_are_usage_errors(bad: list[str]) -> None:
    assert cli(bad).returncode == 2
