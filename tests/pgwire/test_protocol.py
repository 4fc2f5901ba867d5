"""The wire protocol byte by byte, against the fake backend."""

from __future__ import annotations

import socket
import struct
import threading
import time

import pytest

from tests.pgwire.conftest import Running, Wire, column_names, fields, kinds, rows


def _ready_status(msgs: list[tuple[str, bytes]]) -> str:
    assert msgs[-1][0] == "Z"
    return msgs[-1][1].decode()


def _error(msgs: list[tuple[str, bytes]]) -> dict[str, str]:
    errs = [fields(b) for k, b in msgs if k == "E"]
    assert len(errs) == 1, msgs
    return errs[0]


def test_startup_trust_sends_parameters_and_key_data(srv: Running) -> None:
    w = Wire(srv.host, srv.port)
    msgs = w.startup()
    assert msgs[0] == ("R", struct.pack("!i", 0))  # AuthenticationOk
    params = dict(tuple(b[:-1].decode().split("\x00")) for k, b in msgs if k == "S")
    for name in ("server_version", "client_encoding", "DateStyle", "integer_datetimes",
                 "standard_conforming_strings", "TimeZone", "server_encoding", "is_superuser",
                 "session_authorization", "application_name"):
        assert name in params, name
    assert params["client_encoding"] == "UTF8" and params["session_authorization"] == "root"
    assert "K" in kinds(msgs)
    assert _ready_status(msgs) == "I"
    w.close()


def test_ssl_request_is_refused_then_startup_continues(srv: Running) -> None:
    w = Wire(srv.host, srv.port)
    w.send(struct.pack("!ii", 8, 80877103))
    assert w._exact(1) == b"N"
    assert _ready_status(w.startup()) == "I"
    w.close()


def test_unknown_database_is_fatal_3d000(srv: Running) -> None:
    w = Wire(srv.host, srv.port)
    body = struct.pack("!i", 196608) + b"user\x00root\x00database\x00nope\x00\x00"
    w.send(struct.pack("!i", len(body) + 4) + body)
    kind, b = w.read()
    assert kind == "E" and fields(b)["C"] == "3D000" and fields(b)["S"] == "FATAL"
    w.close()


def test_simple_query_with_several_statements(wire: Wire) -> None:
    msgs = wire.query("CREATE TABLE t (a int, b text); INSERT INTO t VALUES (1, 'x'), (2, NULL);"
                      " SELECT * FROM t; SELECT b FROM t WHERE a = 1")
    assert kinds(msgs) == "CCTDDCTDCZ"
    tags = [b.rstrip(b"\x00").decode() for k, b in msgs if k == "C"]
    assert tags == ["CREATE TABLE", "INSERT 0 2", "SELECT 2", "SELECT 1"]
    assert rows(msgs) == [["1", "x"], ["2", None], ["x"]]
    assert column_names(msgs[2][1]) == ["a", "b"]


def test_empty_query(wire: Wire) -> None:
    assert kinds(wire.query("  ")) == "IZ"


def test_simple_query_stops_at_first_error(srv: Running, wire: Wire) -> None:
    msgs = wire.query("CREATE TABLE t (a int); SELECT 1/0; INSERT INTO t VALUES (1)")
    assert kinds(msgs) == "CEZ"
    assert _error(msgs)["C"] == "22012"
    assert rows(wire.query("SELECT * FROM t")) == []  # the INSERT after the error never ran


def test_error_carries_sqlstate_and_connection_stays_usable(wire: Wire) -> None:
    e = _error(wire.query("SELECT * FROM missing"))
    assert e["C"] == "42P01" and "missing" in e["M"] and e["S"] == "ERROR"
    assert _error(wire.query("FROB"))["C"] == "42601"
    assert rows(wire.query("SELECT 7")) == [["7"]]


def test_ready_for_query_status_across_a_transaction(wire: Wire) -> None:
    wire.query("CREATE TABLE t (a int)")
    assert _ready_status(wire.query("BEGIN")) == "T"
    assert _ready_status(wire.query("INSERT INTO t VALUES (1)")) == "T"
    msgs = wire.query("SELECT 1/0")
    assert _error(msgs)["C"] == "22012" and _ready_status(msgs) == "E"
    msgs = wire.query("SELECT 1")
    assert _error(msgs)["C"] == "25P02" and _ready_status(msgs) == "E"
    msgs = wire.query("ROLLBACK")
    assert _ready_status(msgs) == "I" and kinds(msgs) == "CZ"
    assert rows(wire.query("SELECT * FROM t")) == []  # the insert was rolled back
    wire.query("BEGIN; INSERT INTO t VALUES (2); COMMIT")
    assert rows(wire.query("SELECT * FROM t")) == [["2"]]


def test_extended_unnamed_statement_and_portal(wire: Wire) -> None:
    wire.query("CREATE TABLE t (a int, b text); INSERT INTO t VALUES (1, 'one'), (2, 'two')")
    wire.parse("", "SELECT b FROM t WHERE a = $1", [20])
    wire.bind("", "", ["2"])
    wire.describe("P", "")
    wire.execute("")
    msgs = wire.sync()
    assert kinds(msgs) == "12TDCZ"
    assert column_names(msgs[2][1]) == ["b"]
    assert rows(msgs) == [["two"]]


def test_extended_named_statement_reused_with_describe(wire: Wire) -> None:
    wire.query("CREATE TABLE t (a int, b text)")
    wire.parse("ins", "INSERT INTO t VALUES ($1, $2)")
    wire.describe("S", "ins")
    msgs = wire.sync()
    assert kinds(msgs) == "1tnZ"  # ParseComplete, ParameterDescription, NoData
    assert struct.unpack("!h", msgs[1][1][:2])[0] == 2
    for i, name in enumerate(["x", "y", None]):
        wire.bind("", "ins", [str(i), name])
        wire.execute("")
    msgs = wire.sync()
    assert kinds(msgs) == "2C2C2CZ"
    assert rows(wire.query("SELECT * FROM t")) == [["0", "x"], ["1", "y"], ["2", None]]


def test_named_portal_with_row_limit_suspends(wire: Wire) -> None:
    wire.query("CREATE TABLE t (a int); INSERT INTO t VALUES (1), (2), (3)")
    wire.parse("q", "SELECT a FROM t")
    wire.bind("p", "q", [])
    wire.execute("p", 2)
    wire.execute("p", 2)
    msgs = wire.sync()
    assert kinds(msgs) == "12DDsDCZ"
    assert rows(msgs) == [["1"], ["2"], ["3"]]
    wire.msg("C", b"Pp\x00")
    wire.msg("C", b"Sq\x00")
    assert kinds(wire.sync()) == "33Z"
    wire.bind("p", "q", [])  # the statement is gone
    msgs = wire.sync()
    assert _error(msgs)["C"] == "26000"


def test_extended_error_skips_until_sync(wire: Wire) -> None:
    wire.parse("", "SELECT 1/0")
    wire.bind("", "", [])
    wire.execute("")
    wire.parse("", "SELECT 5")  # discarded: after an error everything up to Sync is
    wire.bind("", "", [])
    wire.execute("")
    msgs = wire.sync()
    assert kinds(msgs) == "12EZ" and _error(msgs)["C"] == "22012"
    wire.parse("", "SELECT 5")
    wire.bind("", "", [])
    wire.execute("")
    assert rows(wire.sync()) == [["5"]]


def test_parse_error_is_reported_at_parse(wire: Wire) -> None:
    wire.parse("bad", "FROB the thing")
    msgs = wire.sync()
    assert kinds(msgs) == "EZ" and _error(msgs)["C"] == "42601"


def test_bind_with_wrong_parameter_count_is_an_error(wire: Wire) -> None:
    wire.parse("s", "SELECT $1, $2")
    wire.bind("", "s", ["1"])
    msgs = wire.sync()
    assert kinds(msgs) == "1EZ" and _error(msgs)["C"] == "08P01"
    wire.bind("", "s", ["1", "2"])
    wire.execute("")
    assert rows(wire.sync()) == [["1", "2"]]


def test_binary_result_format(wire: Wire) -> None:
    wire.parse("", "SELECT 258")
    wire.bind("", "", [], [1])
    wire.describe("P", "")
    wire.execute("")
    msgs = wire.sync()
    data = [b for k, b in msgs if k == "D"][0]
    assert data[2:6] == struct.pack("!i", 8) and data[6:] == struct.pack("!q", 258)


def test_cancel_request_stops_a_running_statement(srv: Running) -> None:
    w = Wire(srv.host, srv.port)
    pid, secret = [struct.unpack("!ii", b) for k, b in w.startup() if k == "K"][0]
    out: list[list[tuple[str, bytes]]] = []
    t = threading.Thread(target=lambda: out.append(w.query("SELECT pg_sleep(30)")))
    t.start()
    deadline = time.monotonic() + 10
    while not any(s.backend.log for s in [srv]) and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    wrong = socket.create_connection((srv.host, srv.port))
    wrong.sendall(struct.pack("!iiii", 16, 80877102, pid, secret ^ 1))  # wrong key: ignored
    wrong.close()
    time.sleep(0.1)
    assert t.is_alive()
    c = socket.create_connection((srv.host, srv.port))
    c.sendall(struct.pack("!iiii", 16, 80877102, pid, secret))
    c.close()
    t.join(10)
    assert not t.is_alive()
    assert _error(out[0])["C"] == "57014"
    assert rows(w.query("SELECT 1")) == [["1"]]
    w.close()


@pytest.mark.parametrize("garbage", [
    struct.pack("!i", 3),                                   # startup length too small
    struct.pack("!i", 1 << 30),                             # startup length absurd
    struct.pack("!ii", 8, 12345),                           # unknown protocol code
    struct.pack("!ii", 16, 2 << 16) + b"\x00" * 8,          # protocol 2.0
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",                   # not PostgreSQL at all
])
def test_garbage_startup_gets_an_error_and_server_keeps_serving(srv: Running, garbage: bytes) -> None:
    other = Wire(srv.host, srv.port)
    other.startup()
    w = Wire(srv.host, srv.port)
    w.send(garbage)
    kind, body = w.read()
    assert kind == "E" and fields(body)["C"] == "08P01"
    with pytest.raises((EOFError, ConnectionError)):
        w.read()
    assert rows(other.query("SELECT 3")) == [["3"]]
    fresh = Wire(srv.host, srv.port)
    assert _ready_status(fresh.startup()) == "I"


@pytest.mark.parametrize("bad", [
    b"Q" + struct.pack("!i", 2),                            # length below 4
    b"Q" + struct.pack("!i", 0x7FFFFFF0),                   # length beyond the limit
    b"!" + struct.pack("!i", 4),                            # unknown message type
    b"P" + struct.pack("!i", 6) + b"ab",                    # Parse without its strings
    b"B" + struct.pack("!i", 9) + b"\x00\x00\x00\x05\x00",  # Bind cut short
])
def test_malformed_message_gets_an_error_and_no_crash(srv: Running, wire: Wire, bad: bytes) -> None:
    wire.parse("", "SELECT 1")  # so that the Bind below gets as far as its parameters
    wire.send(bad + b"S" + struct.pack("!i", 4))
    msgs = []
    try:
        while True:
            msgs.append(wire.read())
            if msgs[-1][0] == "Z":
                break
    except (EOFError, ConnectionError):
        pass
    errs = [fields(b) for k, b in msgs if k == "E"]
    assert errs and errs[0]["C"] == "08P01", msgs
    fresh = Wire(srv.host, srv.port)
    fresh.startup()
    assert rows(fresh.query("SELECT 4")) == [["4"]]


@pytest.mark.parametrize("sql,expected", [
    ("SHOW server_version", [["13.0.0"]]),
    ("show TRANSACTION ISOLATION LEVEL", [["serializable"]]),
    ("SHOW standard_conforming_strings;", [["on"]]),
    ("SELECT version()", [["PostgreSQL 13.0.0 (crdb-py)"]]),
    ("SELECT pg_catalog.current_database()", [["defaultdb"]]),
    ("SELECT current_user", [["root"]]),
])
def test_server_parameters_and_session_functions(wire: Wire, sql: str, expected: list[list[str]]) -> None:
    msgs = wire.query(sql)
    assert "E" not in kinds(msgs), msgs
    assert rows(msgs) == expected


def test_every_captured_psql_catalog_query_is_answered() -> None:
    """The golden list of psql 15's catalog queries: each is recognised, and the
    answer for \\d t describes the fake table."""
    import asyncio
    import pathlib

    from crdb_py.pgwire import pgcatalog
    from tests.pgwire.fake_backend import FakeBackend

    text = (pathlib.Path(__file__).parent / "testdata" / "psql15_describe.sql").read_text()
    queries = [q.strip() for q in text.split("-- query\n")[1:]]
    assert len(queries) >= 10

    async def run() -> list[list[tuple[object, ...]]]:
        b = FakeBackend()
        s = await b.new_session("root", "defaultdb")
        await s.execute("CREATE TABLE t (a int primary key, b text)")
        out = []
        for q in queries:
            assert pgcatalog.recognizes(q), q
            coro = pgcatalog.answer(q, s)
            assert coro is not None
            out.append((await coro).rows)
        return out

    answers = asyncio.run(run())
    flat = [r for rs in answers for r in rs]
    assert ("public", "t", "table", "root") in flat  # \dt
    assert (pgcatalog.TABLE_OID_BASE, "public", "t") in flat  # \d t: the oid lookup
    assert ("a", "int8", None, True, None, "", "") in flat  # \d t: the columns
    assert ("public", "root") in flat  # \dn
    assert any(len(r) == 11 and r[0] == "root" and r[1] is True for r in flat)  # \du


def test_random_bytes_never_break_the_server(srv: Running, caplog: pytest.LogCaptureFixture) -> None:
    """Fuzz: any byte string after start-up ends in an ErrorResponse, a normal
    answer or a closed socket, never a hang or a dead server."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    kinds_ = st.sampled_from(list(b"QPBDESCHXpdfF!\x00"))

    @st.composite
    def message(draw: st.DrawFn) -> bytes:
        body = draw(st.binary(max_size=40))
        n = draw(st.one_of(st.just(len(body) + 4), st.integers(-5, 80)))
        return bytes([draw(kinds_)]) + struct.pack("!i", n) + body

    @settings(max_examples=40, suppress_health_check=list(HealthCheck), deadline=None)
    @given(st.lists(message(), min_size=1, max_size=4))
    def one(msgs: list[bytes]) -> None:
        w = Wire(srv.host, srv.port)
        w.startup()
        w.sock.settimeout(0.15)
        w.send(b"".join(msgs) + b"S" + struct.pack("!i", 4))
        try:
            while True:
                kind, _ = w.read()
                if kind == "Z":
                    break
        except (EOFError, ConnectionError, TimeoutError, OSError):
            pass  # closed after a fatal error, or waiting for the rest of a long message
        w.close()

    one()
    bugs = [r for r in caplog.records if r.name.startswith("crdb_py.pgwire") and r.levelname == "ERROR"]
    assert not bugs, [r.getMessage() for r in bugs]  # no "internal error" paths were hit
    fresh = Wire(srv.host, srv.port)
    fresh.startup()
    assert rows(fresh.query("SELECT 6")) == [["6"]]


def test_portals_end_with_their_transaction(wire: Wire) -> None:
    wire.parse("q", "SELECT 1")
    wire.bind("p", "q", [])
    wire.sync()
    wire.execute("p")  # the implicit transaction ended at Sync: the portal is gone
    msgs = wire.sync()
    assert _error(msgs)["C"] == "34000"
    wire.query("BEGIN")
    wire.bind("p", "q", [])
    wire.sync()
    wire.execute("p")  # inside BEGIN the portal survives Sync
    msgs = wire.sync()
    assert rows(msgs) == [["1"]] and _ready_status(msgs) == "T"
    wire.query("COMMIT")


def test_many_concurrent_connections_do_not_cross_talk(srv: Running) -> None:
    import psycopg

    with psycopg.connect(srv.dsn(), autocommit=True) as conn:
        conn.execute("CREATE TABLE c (a int, b text)")
    errors: list[BaseException] = []

    def client(i: int) -> None:
        try:
            with psycopg.connect(srv.dsn(), autocommit=True, connect_timeout=10) as conn:
                for j in range(15):
                    conn.execute("INSERT INTO c VALUES (%s, %s)", (i * 100 + j, f"c{i}"))
                    got = conn.execute("SELECT b FROM c WHERE a = %s", (i * 100 + j,)).fetchall()
                    assert got == [(f"c{i}",)], got
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    with psycopg.connect(srv.dsn(), autocommit=True) as conn:
        assert conn.execute("SELECT a FROM c").rowcount == 8 * 15
