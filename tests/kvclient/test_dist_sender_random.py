"""Randomized (seeded, deterministic) check of DistSender against a model:
splits behind the client's back, lease moves and a node outage between
batches; every batch's results must equal what the data map says."""

from __future__ import annotations

import random

import pytest

from crdb_py.kvclient import batch as kb
from tests.kvclient.fake_cluster import FakeCluster
from tests.kvclient.helpers import make_sender, run, user_rows

ALPHA = b"abcdefghijklmnopqrstuvwxy"


def rand_key(rng: random.Random) -> bytes:
    return bytes([rng.choice(ALPHA)]) + bytes([rng.choice(ALPHA)])


def perturb(c: FakeCluster, rng: random.Random) -> None:
    what = rng.random()
    if what < 0.4:
        k = rand_key(rng) + b"5"
        r = c.range_for(k)
        if r.desc.start_key != k:
            c.split(k)
    elif what < 0.7:
        r = rng.choice(list(c.ranges.values()))
        choices = [rep.node_id for rep in r.desc.replicas if rep.node_id not in c.down]
        c.set_leaseholder(r.desc.range_id, rng.choice(choices))
    else:
        c.down.clear()
        if rng.random() < 0.6:
            dead = rng.choice(c.nodes)
            c.down.add(dead)
            for r in c.ranges.values():
                if r.leaseholder == dead:
                    r.leaseholder = next(x.node_id for x in r.desc.replicas if x.node_id != dead)


def span(rng: random.Random) -> tuple[bytes, bytes]:
    a, b = sorted((rand_key(rng), rand_key(rng)))
    return (a, b + b"\xff") if a == b else (a, b)


@pytest.mark.parametrize("seed", range(6))
def test_random_batches_match_the_model(seed: int) -> None:
    rng = random.Random(seed)
    splits = sorted({rand_key(rng) for _ in range(14)})
    c = FakeCluster.with_splits(splits)
    for _ in range(250):
        c.data[rand_key(rng) + bytes([rng.choice(ALPHA)])] = bytes([rng.randrange(256)]) * 3
    ds, _ = make_sender(c, seed=seed)
    for _ in range(40):
        perturb(c, rng)
        limited = rng.random() < 0.4
        if limited:
            s = span(rng)
            reverse = rng.random() < 0.5
            mk = kb.reverse_scan_request if reverse else kb.scan_request
            want = user_rows(c, *s)[:: -1 if reverse else 1]
            got: list = []
            cur: tuple[bytes, bytes] | None = s
            while cur is not None:
                br = run(ds.send(kb.batch(mk(*cur), max_span_request_keys=rng.randint(1, 12))))
                got += [(r.key, r.value.raw_bytes) for r in kb.inner(br.responses[0]).rows]
                rs = kb.resume_span(br.responses[0])
                cur = None if rs is None else (rs.key, rs.end_key)
            assert got == want
            continue
        reqs, wants = [], []
        for _ in range(rng.randint(1, 6)):
            kind = rng.random()
            if kind < 0.3:
                s = span(rng)
                reqs.append(kb.scan_request(*s))
                wants.append(("rows", user_rows(c, *s)))
            elif kind < 0.6:
                s = span(rng)
                reqs.append(kb.reverse_scan_request(*s))
                wants.append(("rows", user_rows(c, *s)[::-1]))
            else:
                k = rand_key(rng) + bytes([rng.choice(ALPHA)])
                reqs.append(kb.get_request(k))
                wants.append(("value", c.data.get(k)))
        br = run(ds.send(kb.batch(*reqs)))
        for resp, (what, want) in zip(br.responses, wants):
            m = kb.inner(resp)
            if what == "rows":
                assert [(r.key, r.value.raw_bytes) for r in m.rows] == want
            else:
                assert (m.value.raw_bytes if m.HasField("value") else None) == want
    assert ds.metrics.range_key_mismatch > 0 and ds.metrics.not_leaseholder > 0
