"""Data-driven SQL logic tests (after CockroachDB's logictest format).

Each file under testdata/logic/ is a sequence of blocks separated by blank
lines::

    statement ok
    <sql>

    statement error <SQLSTATE>
    <sql>

    query [rowsort]
    <sql>
    ----
    <row: values separated by " | "; NULL for null>

Run with `--rewrite` to regenerate the expected rows of `query` blocks.
"""

from __future__ import annotations

import pathlib

import pytest

from crdb_py.sql.errors import SQLError
from crdb_py.util.errors import CrdbError
from tests.sql.conftest import SyncSession, fmt

DATA = pathlib.Path(__file__).parent / "testdata" / "logic"
FILES = sorted(DATA.glob("*.txt"))


def _blocks(text: str) -> list[list[str]]:
    out: list[list[str]] = []
    cur: list[str] = []
    for line in text.splitlines():
        if not line.strip():
            if cur:
                out.append(cur)
                cur = []
            continue
        if line.startswith("#") and not cur:
            continue
        cur.append(line)
    if cur:
        out.append(cur)
    return out


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_logic(path: pathlib.Path, any_sess: SyncSession, rewrite: bool) -> None:
    run_file(path, any_sess, rewrite)


def test_logic_on_local_cluster() -> None:
    """Every logic file, in order, against a 3-node LocalCluster (SQL runs in
    this process over a DistSender client)."""
    from crdb_py.embed import open_backend, release_backend
    from crdb_py.localcluster import LocalCluster
    from tests.sql.conftest import EmbeddedSession

    with LocalCluster(3) as lc:
        b = open_backend(",".join(lc.addresses))
        try:
            for path in FILES:
                run_file(path, EmbeddedSession(b), False)  # type: ignore[arg-type]
        finally:
            release_backend(b)


def run_file(path: pathlib.Path, sess: SyncSession, rewrite: bool) -> None:
    blocks = _blocks(path.read_text())
    assert blocks, "empty logic file"
    new_text: list[str] = []
    for b in blocks:
        head = b[0].split()
        if head[0] == "statement":
            sql = "\n".join(b[1:])
            if head[1] == "ok":
                try:
                    sess.ex(sql)
                except CrdbError as e:
                    pytest.fail(f"{path.name}: {sql!r} failed: {e.sqlstate} {e}")
            else:
                want = head[2]
                with pytest.raises((SQLError, CrdbError)) as ei:
                    sess.ex(sql)
                assert ei.value.sqlstate == want, f"{path.name}: {sql!r}: {ei.value}"
            new_text.append("\n".join(b))
            continue
        assert head[0] == "query", f"bad block {b}"
        sep = b.index("----") if "----" in b else len(b)
        sql = "\n".join(b[1:sep])
        want = b[sep + 1:]
        try:
            rows = sess.rows(sql)
        except CrdbError as e:
            pytest.fail(f"{path.name}: {sql!r} failed: {e.sqlstate} {e}")
        got = [" | ".join(fmt(v) for v in r) for r in rows]
        if "rowsort" in head:
            got = sorted(got)
        if rewrite:
            new_text.append("\n".join([*b[:sep], "----", *got]))
            continue
        assert got == want, f"{path.name}: {sql}"
        new_text.append("\n".join(b))
    if rewrite:
        path.write_text("\n\n".join(new_text) + "\n")
