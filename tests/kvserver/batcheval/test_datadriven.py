"""Data-driven transcripts of batch evaluation (`testdata/*.txt`).

Each file is a sequence of blocks separated by blank lines::

    <directive> [args...]
    <request lines...>
    ----
    <expected output>

Directives:

    txn NAME ts=R [write=W] [unc=U]   start a txn reading at R (writing at W)
    bump NAME write=W                 move a txn's write timestamp
    resolve NAME commit|abort         resolve all its intents (storage level)
    batch [ts=T | txn=NAME] [max_keys=N] [target_bytes=N] [inconsistent] [unc=U]
                                      evaluate the request lines as one batch

Requests (keys are user keys; ``seq=N`` on any):

    get k=a   scan k=a end=z   rscan k=a end=z   put k=a v=x   del k=a
    cput k=a v=x [exp=y] [allow]   inc k=a by=N   delrange k=a end=z

Output: one line per response, or ``error <index>: <kind> <details>``; then
``intents:`` for intents an inconsistent read met. Timestamps print as
``wall`` or ``wall.logical``. ``pytest --rewrite`` regenerates the expected
output.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest

from crdb_py.pb import api_pb2, data_pb2
from crdb_py.storage import MemEngine, mvcc_resolve_write_intent_range
from crdb_py.util.errors import CrdbError
from crdb_py.util.hlc import Timestamp, ts_from_proto, ts_to_proto
from tests.kvserver.batcheval import helpers as h

TESTDATA = Path(__file__).parent / "testdata"


def _ts(s: str) -> Timestamp:
    wall, _, logical = s.partition(".")
    return Timestamp(int(wall), int(logical or 0))


def _fmt_ts(t: Any) -> str:
    t = t if isinstance(t, Timestamp) else ts_from_proto(t)
    return f"{t.wall_time}.{t.logical}" if t.logical else str(t.wall_time)


def _esc(b: bytes) -> str:
    """Printable ASCII as is, anything else escaped (e.g. ``a\\x00``)."""
    return "".join(chr(c) if 0x20 < c < 0x7F and c != 0x5C else f"\\x{c:02x}" for c in b)


def _ukey(b: bytes) -> str:
    return _esc(b[1:]) if b.startswith(b"\x04") else repr(b)


class Transcript:
    def __init__(self) -> None:
        self.env = h.Env(MemEngine())
        self.txns: dict[str, data_pb2.Transaction] = {}
        self.names: dict[bytes, str] = {}

    def txn_name(self, meta: data_pb2.TxnMeta) -> str:
        return self.names.get(meta.id, "?")

    # ---- directives ----------------------------------------------------------

    def run_block(self, directive: str, body: list[str]) -> str:
        words = shlex.split(directive)
        cmd, args = words[0], _args(words[1:])
        if cmd == "txn":
            name = words[1]
            t = h.make_txn(
                _ts(args["ts"]),
                _ts(args["write"]) if "write" in args else None,
                uncertainty=_ts(args["unc"]) if "unc" in args else None,
            )
            self.txns[name] = t
            self.names[t.meta.id] = name
            return "ok"
        if cmd == "bump":
            ts_to_proto(_ts(args["write"]), self.txns[words[1]].meta.write_timestamp)
            return "ok"
        if cmd == "resolve":
            status = data_pb2.COMMITTED if words[2] == "commit" else data_pb2.ABORTED
            wb = self.env.engine.new_batch()
            n, _ = mvcc_resolve_write_intent_range(
                wb, b"\x04", b"\x05", self.txns[words[1]].meta, status, stats=self.env.stats
            )
            self.env.engine.write(wb)
            return f"resolved {n}"
        if cmd == "batch":
            return self.run_batch(args, body)
        raise ValueError(f"unknown directive {cmd!r}")

    def run_batch(self, args: dict[str, str], body: list[str]) -> str:
        reqs = [_request(line) for line in body]
        ba = h.batch(
            *reqs,
            at=_ts(args["ts"]) if "ts" in args else None,
            txn=self.txns[args["txn"]] if "txn" in args else None,
            max_keys=int(args.get("max_keys", 0)),
            target_bytes=int(args.get("target_bytes", 0)),
            inconsistent="inconsistent" in args,
        )
        unc = _ts(args["unc"]) if "unc" in args else None
        try:
            br, res = self.env.run(ba, uncertainty_limit=unc)
        except CrdbError as e:
            return f"error {getattr(e, 'index', '?')}: {self.fmt_error(e)}"
        out = [self.fmt_response(ru) for ru in br.responses]
        if res.encountered_intents:
            out.append(
                "intents: "
                + " ".join(
                    f"{_ukey(i.key)}({self.txn_name(i.txn)})" for i in res.encountered_intents
                )
            )
        return "\n".join(out)

    # ---- formatting ----------------------------------------------------------

    def fmt_error(self, e: CrdbError) -> str:
        kind = e.kind
        if kind == "WriteIntentError":
            items = " ".join(f"{_ukey(i.key)}({self.txn_name(i.txn)})" for i in e.intents)  # type: ignore[attr-defined]
            return f"{kind} {items}"
        if kind == "WriteTooOldError":
            return f"{kind} {_ukey(e.key)} write at {_fmt_ts(e.timestamp)}, must be >= {_fmt_ts(e.actual_timestamp)}"  # type: ignore[attr-defined]
        if kind == "ReadWithinUncertaintyIntervalError":
            return f"{kind} {_ukey(e.key)} read at {_fmt_ts(e.read_timestamp)} saw {_fmt_ts(e.existing_timestamp)}"  # type: ignore[attr-defined]
        if kind == "ConditionFailedError":
            actual = e.actual_value  # type: ignore[attr-defined]
            return f"{kind} actual={'<absent>' if actual is None else _esc(actual)}"
        return f"{kind} {e}"

    def fmt_response(self, ru: api_pb2.ResponseUnion) -> str:
        name = ru.WhichOneof("value")
        r = getattr(ru, name)
        parts: list[str] = []
        if name == "get":
            if r.HasField("value"):
                parts.append(f"{_esc(r.value.raw_bytes)} @{_fmt_ts(r.value.timestamp)}")
            elif not r.header.HasField("resume_span"):
                parts.append("<absent>")
        elif name in ("scan", "reverse_scan"):
            parts += [f"{_ukey(x.key)}={_esc(x.value.raw_bytes)}" for x in r.rows]
            if not r.rows:
                parts.append("<empty>")
        elif name == "increment":
            parts.append(str(r.new_value))
        elif name == "delete":
            parts.append("found" if r.found_key else "not found")
        elif name == "delete_range":
            parts.append("deleted=[" + ",".join(_ukey(x) for x in r.keys) + "]")
        else:
            parts.append("ok")
        if r.header.HasField("resume_span"):
            rs = r.header.resume_span
            span = _ukey(rs.key) if not rs.end_key else f"[{_ukey(rs.key)},{_ukey(rs.end_key)})"
            parts.append(f"resume={span}")
        return f"{name}: " + " ".join(parts)


def _args(words: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for w in words:
        key, _, val = w.partition("=")
        out[key] = val
    return out


def _request(line: str) -> h.RU:
    words = shlex.split(line)
    op, a = words[0], _args(words[1:])
    key = h.k(a["k"])
    seq = int(a.get("seq", 0))
    if op == "get":
        return h.get(key, seq)
    if op == "scan":
        return h.scan(key, h.k(a["end"]), seq)
    if op == "rscan":
        return h.rscan(key, h.k(a["end"]), seq)
    if op == "put":
        return h.put(key, a["v"].encode(), seq)
    if op == "cput":
        exp = a["exp"].encode() if "exp" in a else None
        return h.cput(key, a["v"].encode(), exp, allow="allow" in a, seq=seq)
    if op == "inc":
        return h.inc(key, int(a["by"]), seq)
    if op == "del":
        return h.delete(key, seq)
    if op == "delrange":
        return h.delrange(key, h.k(a["end"]), seq=seq)
    raise ValueError(f"unknown request {op!r}")


def _parse(text: str) -> list[tuple[list[str], list[str]]]:
    """Blocks of (input lines, expected lines); comments kept out."""
    blocks: list[tuple[list[str], list[str]]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if not lines[i].strip() or lines[i].startswith("#"):
            i += 1
            continue
        inp: list[str] = []
        while lines[i] != "----":
            inp.append(lines[i])
            i += 1
        i += 1
        exp: list[str] = []
        while i < len(lines) and lines[i].strip():
            exp.append(lines[i])
            i += 1
        blocks.append((inp, exp))
    return blocks


def _render(text: str, outputs: list[str]) -> str:
    """The file with each block's expected output replaced."""
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    it = iter(outputs)
    while i < len(lines):
        out.append(lines[i])
        if lines[i] == "----":
            i += 1
            while i < len(lines) and lines[i].strip():
                i += 1
            out.extend(next(it).splitlines())
            continue
        i += 1
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("path", sorted(TESTDATA.glob("*.txt")), ids=lambda p: p.stem)
def test_transcript(path: Path, rewrite: bool) -> None:
    text = path.read_text()
    tr = Transcript()
    outputs: list[str] = []
    for inp, expected in _parse(text):
        got = tr.run_block(inp[0], inp[1:])
        outputs.append(got)
        if not rewrite:
            assert got.splitlines() == expected, f"{path.name}: block {inp}"
    if rewrite:
        path.write_text(_render(text, outputs))
    # Whatever the transcript did, the stats deltas add up.
    from crdb_py.storage import compute_stats

    assert tr.env.stats.counters() == compute_stats(tr.env.engine).counters()
