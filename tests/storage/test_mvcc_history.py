"""Data-driven MVCC histories: tests/storage/testdata/*.txt.

A file is a sequence of blocks; state carries over from block to block::

    # comment
    run
    <command> <arg>=<value> <flag> ...
    ----
    <expected output>
    <blank line>

Each command prints what it returned (or ``error: <Kind>: <message>``);
every block ends with a dump of the engine's MVCC records and the stats,
after checking that the incrementally maintained stats equal
`compute_stats`. Every file runs on both engines and the outputs must be
identical. ``pytest --rewrite`` rewrites the expected output.

Arguments: keys and values are Python bytes-literal bodies (``k=a\\x00``);
timestamps are ``wall`` or ``wall,logical``; ``t=<name>`` runs a command in
a transaction created by ``txn_begin``.
"""

from __future__ import annotations

import codecs
import shlex
from pathlib import Path

import pytest

from crdb_py.pb import data_pb2
from crdb_py.storage import (
    MemEngine,
    MVCCStats,
    compute_stats,
    mvcc_clear_range,
    mvcc_conditional_put,
    mvcc_delete,
    mvcc_delete_range,
    mvcc_find_split_key,
    mvcc_garbage_collect,
    mvcc_get,
    mvcc_increment,
    mvcc_put,
    mvcc_resolve_write_intent,
    mvcc_resolve_write_intent_range,
    mvcc_scan,
    mvcc_scan_intents,
)
from crdb_py.storage.mvcc_key import decode_key
from crdb_py.storage.rocks import RocksEngine
from crdb_py.storage.stats import META_INLINE
from crdb_py.util.errors import CrdbError
from crdb_py.util.hlc import Timestamp, ts_from_proto, ts_to_proto

TESTDATA = Path(__file__).parent / "testdata"
FILES = sorted(TESTDATA.glob("*.txt"))


def _b(s: str) -> bytes:
    return codecs.escape_decode(s.encode())[0]  # type: ignore[no-any-return]


def _ts(s: str) -> Timestamp:
    w, _, lg = s.partition(",")
    return Timestamp(int(w), int(lg or 0))


def _fmt_ts(ts: Timestamp | None) -> str:
    return "-" if ts is None else f"{ts.wall_time},{ts.logical}"


def _fmt_kv(k: bytes, v: bytes | None) -> str:
    return f"{k!r} -> {'<tombstone>' if v is None else repr(v)}"


class Runner:
    def __init__(self, engine: MemEngine | RocksEngine) -> None:
        self.e = engine
        self.stats = MVCCStats()
        self.txns: dict[str, data_pb2.TxnMeta] = {}
        self.ids: dict[bytes, str] = {}

    def txn(self, a: dict[str, str]) -> data_pb2.TxnMeta | None:
        return self.txns[a["t"]] if "t" in a else None

    def run_block(self, lines: list[str]) -> str:
        out: list[str] = []
        for line in lines:
            cmd, *rest = shlex.split(line, posix=False)
            a = {}
            for tok in rest:
                k, _, v = tok.partition("=")
                a[k] = v
            try:
                res = self.run_cmd(cmd, a)
                if res is not None:
                    out.extend(f"{cmd}: {r}" for r in ([res] if isinstance(res, str) else res))
            except CrdbError as err:
                msg = str(err)
                if not msg.startswith(err.kind):
                    msg = f"{err.kind}: {msg}"
                out.append(f"{cmd}: error: {msg}")
        got = compute_stats(self.e)
        assert got.counters() == self.stats.counters(), (got, self.stats)
        out.extend(self.dump())
        s = self.stats
        out.append(
            f"stats: key_count={s.key_count} key_bytes={s.key_bytes} val_count={s.val_count} "
            f"val_bytes={s.val_bytes} live_count={s.live_count} live_bytes={s.live_bytes} "
            f"intent_count={s.intent_count} intent_bytes={s.intent_bytes}"
        )
        return "\n".join(out)

    def dump(self) -> list[str]:
        lines = []
        for ek, v in self.e.iter_range(b"\x01", b"\x02"):
            uk, ts = decode_key(ek)
            if ts.is_empty():
                if v[0] == META_INLINE:
                    lines.append(f"meta: {uk!r} -> inline {v[1:]!r}")
                else:
                    md = data_pb2.MVCCMetadata.FromString(v[1:])
                    hist = " ".join(
                        f"{h.sequence}:{'<del>' if h.deleted else repr(h.value)}"
                        for h in md.intent_history
                    )
                    lines.append(
                        f"meta: {uk!r} -> intent txn={self.ids.get(md.txn.id, '?')} "
                        f"epoch={md.txn.epoch} seq={md.txn.sequence} "
                        f"ts={_fmt_ts(ts_from_proto(md.timestamp))} del={md.deleted}"
                        + (f" hist=[{hist}]" if hist else "")
                    )
            else:
                lines.append(f"data: {uk!r}@{_fmt_ts(ts)} -> {'<tombstone>' if not v else repr(v[1:])}")
        return lines

    def run_cmd(self, cmd: str, a: dict[str, str]) -> str | list[str] | None:
        e, st = self.e, self.stats
        txn = self.txn(a) if cmd != "txn_begin" else None
        ts = _ts(a["ts"]) if "ts" in a else Timestamp()
        key = _b(a.get("k", ""))
        end = _b(a["end"]) if "end" in a else b""
        if cmd == "txn_begin":
            tid = len(self.txns).to_bytes(16, "big")
            m = data_pb2.TxnMeta(id=tid, key=key, epoch=int(a.get("epoch", 0)))
            ts_to_proto(ts, m.write_timestamp)
            self.txns[a["t"]] = m
            self.ids[tid] = a["t"]
            return None
        if cmd == "txn_step":
            txn.sequence += int(a.get("n", 1))  # type: ignore[union-attr]
            return f"seq={txn.sequence}"  # type: ignore[union-attr]
        if cmd == "txn_seq":
            txn.sequence = int(a["seq"])  # type: ignore[union-attr]
            return f"seq={txn.sequence}"  # type: ignore[union-attr]
        if cmd == "txn_epoch":
            txn.epoch = int(a["epoch"])  # type: ignore[union-attr]
            return f"epoch={txn.epoch}"  # type: ignore[union-attr]
        if cmd == "txn_restart":
            txn.epoch += 1  # type: ignore[union-attr]
            return f"epoch={txn.epoch}"  # type: ignore[union-attr]
        if cmd == "txn_advance":
            ts_to_proto(ts, txn.write_timestamp)  # type: ignore[union-attr]
            return f"write_ts={_fmt_ts(ts)}"
        if cmd == "put":
            mvcc_put(e, key, ts, _b(a["v"]), txn=txn, stats=st)
            return None
        if cmd == "del":
            return f"existed={mvcc_delete(e, key, ts, txn=txn, stats=st)}"
        if cmd == "cput":
            exp = _b(a["exp"]) if "exp" in a else None
            mvcc_conditional_put(
                e, key, ts, _b(a["v"]), exp, txn=txn, stats=st,
                allow_if_does_not_exist="allow_missing" in a,
            )
            return None
        if cmd == "inc":
            return str(mvcc_increment(e, key, ts, int(a["n"]), txn=txn, stats=st))
        read_kw = {
            "txn": txn,
            "uncertainty_limit": _ts(a["unc"]) if "unc" in a else None,
            "inconsistent": "inconsistent" in a,
            "tombstones": "tombstones" in a,
            "fail_on_more_recent": "fomr" in a,
        }
        if cmd == "get":
            r = mvcc_get(e, key, ts, **read_kw)  # type: ignore[arg-type]
            line = f"{key!r} -> {'<none>' if r.value is None else repr(r.value)} @{_fmt_ts(r.timestamp)}"
            if r.intent is not None:
                line += f" (intent of {self.ids.get(r.intent.txn.id, '?')})"
            return line
        if cmd == "scan":
            r = mvcc_scan(
                e, key, end, ts, reverse="reverse" in a, max_keys=int(a.get("max", 0)),
                target_bytes=int(a.get("tb", 0)), **read_kw,  # type: ignore[arg-type]
            )
            lines = [_fmt_kv(k, v) for k, v in r.kvs] or ["<no data>"]
            if r.resume_span is not None:
                lines.append(f"resume span [{r.resume_span[0]!r}, {r.resume_span[1]!r}) {r.resume_reason}")
            for i in r.intents:
                lines.append(f"intent {i.key!r} of {self.ids.get(i.txn.id, '?')}")
            return lines
        if cmd == "del_range":
            ks, resume = mvcc_delete_range(e, key, end, ts, txn=txn, stats=st, max_keys=int(a.get("max", 0)))
            return [f"deleted {[bytes(k) for k in ks]!r}"] + ([f"resume span [{resume[0]!r}, {resume[1]!r})"] if resume else [])
        if cmd in ("resolve", "resolve_range"):
            status = getattr(data_pb2, a["status"])
            ign = []
            for part in filter(None, a.get("ignored", "").split(",")):
                lo, _, hi = part.partition("-")
                ign.append((int(lo), int(hi or lo)))
            if cmd == "resolve":
                ok = mvcc_resolve_write_intent(e, key, txn, status, stats=st, ignored_seqnums=ign)  # type: ignore[arg-type]
                return f"resolved={ok}"
            n, resume = mvcc_resolve_write_intent_range(
                e, key, end, txn, status, stats=st, ignored_seqnums=ign, max_keys=int(a.get("max", 0))  # type: ignore[arg-type]
            )
            return f"resolved={n}" + (f" resume span [{resume[0]!r}, {resume[1]!r})" if resume else "")
        if cmd == "intents":
            return [f"{k!r} of {self.ids.get(md.txn.id, '?')}" for k, md in mvcc_scan_intents(e, key, end)] or ["<none>"]
        if cmd == "gc":
            return f"removed={mvcc_garbage_collect(e, key, end, ts, stats=st)}"
        if cmd == "clear_range":
            return f"removed={mvcc_clear_range(e, key, end, stats=st)}"
        if cmd == "split_key":
            return repr(mvcc_find_split_key(e, key, end, int(a["target"])))
        raise ValueError(f"unknown command {cmd!r}")


def _parse(text: str) -> list[tuple[list[str], str, list[str]]]:
    """[(preamble comment lines, 'run' block commands, expected output)]"""
    blocks = []
    lines = text.split("\n")
    i = 0
    pre: list[str] = []
    while i < len(lines):
        if lines[i].strip() != "run":
            if lines[i].strip() or pre:
                pre.append(lines[i])
            i += 1
            continue
        i += 1
        cmds = []
        while lines[i].strip() != "----":
            if lines[i].strip() and not lines[i].startswith("#"):
                cmds.append(lines[i].strip())
            i += 1
        i += 1
        exp = []
        while i < len(lines) and lines[i].strip():
            exp.append(lines[i])
            i += 1
        blocks.append((pre, cmds, "\n".join(exp)))
        pre = []
    return blocks


def _render(blocks: list[tuple[list[str], list[str], str]]) -> str:
    out = []
    for pre, cmds, exp in blocks:
        while pre and not pre[-1].strip():
            pre = pre[:-1]
        out.extend(pre)
        out.append("run")
        out.extend(cmds)
        out.append("----")
        out.append(exp)
        out.append("")
    return "\n".join(out)


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_mvcc_history(path: Path, tmp_path: Path, rewrite: bool) -> None:
    blocks = _parse(path.read_text())
    assert blocks, f"{path} has no run blocks"
    outputs = []
    for engine in (MemEngine(), RocksEngine(str(tmp_path / "db"))):
        r = Runner(engine)
        outputs.append([r.run_block(cmds) for _, cmds, _ in blocks])
        engine.close()
    assert outputs[0] == outputs[1], "engines disagree"
    if rewrite:
        path.write_text(_render([(p, c, o) for (p, c, _), o in zip(blocks, outputs[0])]))
        return
    for (_, cmds, exp), got in zip(blocks, outputs[0]):
        assert got == exp, "\n".join(["block:", *cmds])
