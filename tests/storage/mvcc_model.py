"""A deliberately simple pure-Python model of MVCC semantics.

It stores, per key, committed versions in a dict and the intent as one
record (value, sequence, epoch, timestamp, history) — no encoding, no
iteration tricks — and answers reads by the rules written in
docs/design/storage.md. The stateful test holds both engines to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from crdb_py.util.hlc import Timestamp


class ModelError(Exception):
    """kind: the crdb_py error class name the real code must raise."""

    def __init__(self, kind: str, detail: object = None) -> None:
        super().__init__(kind, detail)
        self.kind = kind
        self.detail = detail


@dataclass
class MTxn:
    id: bytes
    epoch: int = 0
    seq: int = 0
    wts: Timestamp = field(default_factory=Timestamp)


@dataclass
class MIntent:
    txn_id: bytes
    epoch: int
    seq: int
    ts: Timestamp
    value: bytes | None
    history: list[tuple[int, bytes | None]]


@dataclass
class MKey:
    versions: dict[Timestamp, bytes | None] = field(default_factory=dict)
    intent: MIntent | None = None


class Model:
    def __init__(self) -> None:
        self.keys: dict[bytes, MKey] = {}

    # ---- reads ----
    def read(
        self,
        key: bytes,
        ts: Timestamp,
        txn: MTxn | None = None,
        unc: Timestamp | None = None,
        fomr: bool = False,
        inconsistent: bool = False,
        intents: list[bytes] | None = None,
    ) -> tuple[bool, bytes | None]:
        """(found, value): found False = conflict recorded in `intents`."""
        k = self.keys.get(key)
        if k is None:
            return True, None
        it = k.intent
        if it is not None:
            if txn is not None and it.txn_id == txn.id:
                if it.epoch == txn.epoch:
                    if txn.seq >= it.seq:
                        return True, it.value
                    older = [h for h in it.history if h[0] <= txn.seq]
                    if older:
                        return True, max(older, key=lambda h: h[0])[1]
            elif fomr or it.ts <= ts or (unc is not None and it.ts <= unc):
                assert intents is not None
                intents.append(key)
                if not inconsistent:
                    return False, None
        for vts in sorted(k.versions, reverse=True):
            if vts <= ts:
                return True, k.versions[vts]
            if fomr:
                raise ModelError("WriteTooOldError", vts.next())
            if unc is not None and ts < vts <= unc:
                raise ModelError("ReadWithinUncertaintyIntervalError", vts)
        return True, None

    def get(self, key: bytes, ts: Timestamp, **kw: object) -> bytes | None:
        intents: list[bytes] = []
        ok, v = self.read(key, ts, intents=intents, **kw)  # type: ignore[arg-type]
        if intents and not kw.get("inconsistent"):
            raise ModelError("WriteIntentError", intents)
        return v

    def scan(
        self, start: bytes, end: bytes, ts: Timestamp, reverse: bool = False, max_keys: int = 0,
        **kw: object,
    ) -> tuple[list[tuple[bytes, bytes]], bytes | None]:
        ks = sorted(k for k in self.keys if start <= k < end)
        if reverse:
            ks.reverse()
        out: list[tuple[bytes, bytes]] = []
        intents: list[bytes] = []
        resume: bytes | None = None
        for k in ks:
            if max_keys and len(out) >= max_keys:
                resume = k
                break
            ok, v = self.read(k, ts, intents=intents, **kw)  # type: ignore[arg-type]
            if ok and v is not None:
                out.append((k, v))
        if intents and not kw.get("inconsistent"):
            raise ModelError("WriteIntentError", intents)
        return out, resume

    # ---- writes ----
    def put(self, key: bytes, ts: Timestamp, value: bytes | None, txn: MTxn | None) -> None:
        k = self.keys.get(key) or MKey()
        wts = txn.wts if txn is not None else ts
        it = k.intent
        if it is not None:
            if txn is None or it.txn_id != txn.id:
                raise ModelError("WriteIntentError", [key])
            wts = wts.forward(it.ts)
            hist = it.history + [(it.seq, it.value)] if it.epoch == txn.epoch else []
            k.intent = MIntent(txn.id, txn.epoch, txn.seq, wts, value, hist)
            txn.wts = wts
            return
        if k.versions:
            newest = max(k.versions)
            if newest >= wts:
                raise ModelError("WriteTooOldError", newest.next())
        if txn is not None:
            k.intent = MIntent(txn.id, txn.epoch, txn.seq, wts, value, [])
        else:
            k.versions[wts] = value
        self.keys[key] = k

    def latest(self, key: bytes, txn: MTxn | None) -> bytes | None:
        return self.get(key, Timestamp(2**63 - 1, 2**31 - 1), txn=txn)

    def resolve(
        self, key: bytes, txn: MTxn, status: str, ignored: list[tuple[int, int]] = ()  # type: ignore[assignment]
    ) -> bool:
        k = self.keys.get(key)
        if k is None or k.intent is None or k.intent.txn_id != txn.id:
            return False
        it = k.intent
        rolled_back = False
        if ignored and it.epoch == txn.epoch and status != "ABORTED":
            writes = [*it.history, (it.seq, it.value)]
            kept = [w for w in writes if not any(lo <= w[0] <= hi for lo, hi in ignored)]
            if not kept:
                status = "ABORTED"
            else:
                rolled_back = len(kept) != len(writes)
                it.seq, it.value = kept[-1]
                it.history = kept[:-1]
        if status == "ABORTED" or (status == "COMMITTED" and it.epoch < txn.epoch):
            k.intent = None
        elif it.epoch > txn.epoch:
            return False
        elif status == "COMMITTED":
            assert txn.wts >= it.ts
            k.versions[txn.wts] = it.value
            k.intent = None
        else:
            if txn.wts <= it.ts and not rolled_back:
                return False
            it.ts = it.ts.forward(txn.wts)
        if not k.versions and k.intent is None:
            del self.keys[key]
        return True

    def gc(self, threshold: Timestamp) -> None:
        for key in list(self.keys):
            k = self.keys[key]
            below = sorted((t for t in k.versions if t <= threshold), reverse=True)
            for i, t in enumerate(below):
                if i > 0 or k.versions[t] is None:
                    del k.versions[t]
            if not k.versions and k.intent is None:
                del self.keys[key]
