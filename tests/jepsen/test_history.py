"""The history format: recording, pairing, JSON-lines round trips, streaming to a
file, torn tails, malformed histories, and the bridge to the register checker."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from crdb_py.jepsen import linearizability
from crdb_py.jepsen.history import History, Op, load, operations, register_events, save


def ticking() -> object:
    t = iter(range(1_000_000))
    return lambda: float(next(t))


def test_recording_assigns_indexes_times_and_pairs_completions() -> None:
    h = History(clock=ticking())
    h.invoke(0, "txn", [["append", "x", 1]])
    h.invoke(1, "read", key="k")
    h.ok(1, 5)
    h.info(0, error="ambiguous result")
    h.invoke(2, "add", 7)
    assert [o.index for o in h] == [0, 1, 2, 3, 4]
    assert [o.time for o in h] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert [o.type for o in h] == ["invoke", "invoke", "ok", "info", "invoke"]
    assert h.ops[2].f == "read" and h.ops[2].key == "k"  # completions inherit f and key
    assert h.ops[3].error == "ambiguous result"
    assert h.in_flight() == [2]
    ops = operations(h.ops)
    assert [(o.f, o.status) for o in ops] == [("txn", "info"), ("read", "ok"), ("add", "info")]
    assert ops[0].value == [["append", "x", 1]]  # info: what was attempted
    assert ops[1].value == 5 and ops[1].call == 1 and ops[1].ret == 2
    assert ops[2].complete is None and ops[2].ret == float("inf")


def test_recorder_rejects_double_invoke_and_stray_completion() -> None:
    h = History()
    h.invoke(0, "add", 1)
    with pytest.raises(ValueError, match="in flight"):
        h.invoke(0, "add", 2)
    with pytest.raises(ValueError, match="no operation"):
        h.ok(1)


def test_operations_rejects_malformed_histories() -> None:
    with pytest.raises(ValueError, match="without invoke"):
        operations([Op(0, "ok", 0, "add", 1)])
    with pytest.raises(ValueError, match="twice"):
        operations([Op(0, "invoke", 0, "add", 1), Op(1, "invoke", 0, "add", 2)])
    with pytest.raises(ValueError, match="does not match"):
        operations([Op(0, "invoke", 0, "add", 1), Op(1, "ok", 0, "read", 1)])


def test_fail_value_is_the_attempt() -> None:
    h = History()
    h.invoke(3, "transfer", {"from": 1, "to": 2, "amount": 5})
    h.fail(3, error="insufficient funds")
    (o,) = operations(h.ops)
    assert o.status == "fail" and o.value == {"from": 1, "to": 2, "amount": 5}


def test_jsonl_round_trip_keeps_values(tmp_path: Path) -> None:
    h = History(clock=ticking())
    h.invoke(0, "txn", [["append", 1, 2], ["r", 3, None]])
    h.ok(0, [["append", 1, 2], ["r", 3, [4, 5]]])
    h.invoke(1, "read")
    h.ok(1, {0: 10, 1: -3, "acct": 7})  # integer map keys must survive
    h.invoke(2, "read")
    h.ok(2, frozenset({1, 2, 3}))
    h.invoke(4, "cas", (1, 2), key=("t", 9))
    h.fail(4, error="condition failed")
    path = tmp_path / "h.jsonl"
    h.save(path)
    back = load(path).ops
    assert len(back) == len(h.ops)
    assert back[1].value == (("append", 1, 2), ("r", 3, (4, 5)))  # lists load as tuples
    assert back[3].value == {0: 10, 1: -3, "acct": 7}
    assert back[5].value == frozenset({1, 2, 3})
    assert back[6].key == ("t", 9) and back[7].error == "condition failed"
    for x, y in zip(h.ops, back, strict=True):
        assert (x.index, x.type, x.process, x.f, x.time) == (y.index, y.type, y.process, y.f, y.time)
    # saving what was loaded is a fixed point
    save(back, tmp_path / "again.jsonl")
    assert (tmp_path / "again.jsonl").read_text() == path.read_text()


def test_streaming_leaves_a_readable_prefix_and_tolerates_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    h = History(path=path, clock=ticking())
    h.invoke(0, "add", 1)
    h.ok(0)
    h.invoke(1, "add", 2)
    # a reader sees every event already, before close()
    assert [o.type for o in load(path)] == ["invoke", "ok", "invoke"]
    h.close()
    with open(path, "a") as fh:
        fh.write('{"index": 3, "type": "ok", "proc')  # the writer died mid-line
    assert len(load(path)) == 3
    lines = path.read_text().splitlines()
    path.write_text("\n".join(["garbage", *lines[:3]]) + "\n")
    with pytest.raises(ValueError, match="bad history line"):
        load(path)


def test_concurrent_recording_from_threads() -> None:
    h = History()
    per, threads = 200, 8

    def client(p: int) -> None:
        for i in range(per):
            h.invoke(p, "add", p * per + i)
            h.ok(p)

    ts = [threading.Thread(target=client, args=(p,)) for p in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert [o.index for o in h] == list(range(2 * per * threads))
    ops = operations(h.ops)
    assert sorted(o.invoke.value for o in ops) == list(range(per * threads))
    assert all(o.status == "ok" for o in ops)


def test_register_events_feed_the_linearizability_checker() -> None:
    h = History(clock=ticking())
    h.invoke(0, "write", 1, key="x")
    h.ok(0)
    h.invoke(1, "cas", [1, 2], key="x")
    h.ok(1, True)
    h.invoke(2, "read", key="x")
    h.ok(2, 2)
    assert linearizability.check(register_events(h)).ok
    h.invoke(2, "read", key="x")
    h.ok(2, 1)  # stale
    assert not linearizability.check(register_events(h)).ok


def test_check_cli_prints_the_verdict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from crdb_py.jepsen.check import main

    h = History(clock=ticking())
    h.invoke(0, "txn", [["append", "x", 1], ["r", "y", None]])
    h.invoke(1, "txn", [["append", "y", 1], ["r", "x", None]])
    h.ok(0, [["append", "x", 1], ["r", "y", [1]]])
    h.ok(1, [["append", "y", 1], ["r", "x", [1]]])
    bad = tmp_path / "g1c.jsonl"
    h.save(bad)
    assert main([str(bad), "--checker", "elle"]) == 1
    out = capsys.readouterr().out
    assert "INVALID" in out and "G1c" in out
    good = tmp_path / "bank.jsonl"
    b = History()
    b.invoke(0, "read")
    b.ok(0, {0: 3, 1: 7})
    b.save(good)
    assert main([str(good), "--checker", "bank", "--total", "10", "--accounts", "0,1"]) == 0
    assert "VALID" in capsys.readouterr().out
    assert main([str(good), "--checker", "bank", "--total", "11"]) == 1
    assert "wrong-total" in capsys.readouterr().out


def test_check_cli_runs_as_a_module(tmp_path: Path) -> None:
    import subprocess
    import sys

    h = History()
    h.invoke(0, "add", 1)
    h.ok(0)
    h.invoke(0, "read")
    h.ok(0, [])
    path = tmp_path / "sets.jsonl"
    h.save(path)
    p = subprocess.run([sys.executable, "-m", "crdb_py.jepsen.check", str(path), "--checker",
                        "sets"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1, p.stderr
    assert "lost" in p.stdout
