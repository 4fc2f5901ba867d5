"""A real `crdb-py start --sql-addr` process: psycopg and psql reach its SQL layer."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import psycopg
import pytest
from psycopg import errors

from tests.cli.procs import cli, reap, spawn, wait_file


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_node_serves_postgres_clients(tmp_path: Path) -> None:
    port, sql_port = _free_port(), _free_port()
    ready = str(tmp_path / "ready.json")
    p = spawn(["start", "--store", "mem", "--listen-addr", f"127.0.0.1:{port}",
               "--sql-addr", f"127.0.0.1:{sql_port}", "--replication-factor", "1",
               "--ready-file", ready, "--pid-file", str(tmp_path / "pid")], str(tmp_path / "n.log"))
    try:
        wait_file(str(tmp_path / "pid"), p)
        # before init: the SQL port answers, and refuses sessions with 57P03
        with pytest.raises(psycopg.OperationalError, match="not initialized"):
            psycopg.connect(host="127.0.0.1", port=sql_port, user="root", dbname="defaultdb",
                            connect_timeout=10)
        r = cli(["init", "--host", f"127.0.0.1:{port}"])
        assert r.returncode == 0, r.stderr
        info = json.loads(wait_file(ready, p, timeout=30))
        assert info["sql_address"] == f"127.0.0.1:{sql_port}"
        dsn = f"host=127.0.0.1 port={sql_port} user=root dbname=defaultdb"
        with psycopg.connect(dsn, connect_timeout=10) as conn:
            conn.execute("CREATE TABLE kv (k INT PRIMARY KEY, v STRING)")
            conn.commit()
            with conn.transaction():
                conn.execute("INSERT INTO kv VALUES (%s, %s), (%s, %s)", (1, "a", 2, "b"))
            assert conn.execute("SELECT v FROM kv WHERE k = %s", (2,)).fetchone() == ("b",)
            with pytest.raises(errors.UniqueViolation):
                conn.execute("INSERT INTO kv VALUES (1, 'dup')")
            conn.rollback()
        psql = shutil.which("psql")  # the psql tests proper live in test_clients.py
        if psql is not None:
            out = subprocess.run([psql, "-X", "-h", "127.0.0.1", "-p", str(sql_port), "-U", "root",
                                  "-d", "defaultdb", "-c", "\\d kv", "-c", "SELECT * FROM kv"],
                                 capture_output=True, text=True, timeout=60)
            assert out.returncode == 0, out.stderr
            assert 'Table "public.kv"' in out.stdout and " 2 | b" in out.stdout
        p.send_signal(signal.SIGTERM)
        assert p.wait(20) == 0
    finally:
        reap(p)
