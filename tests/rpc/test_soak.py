"""Soak: all-to-all raft traffic under randomly changing latencies and
one-way blocks. Per link: strictly increasing (no reordering, no duplicates);
after healing, every link delivers again."""

from __future__ import annotations

import asyncio
import random

import pytest

from tests.rpc.harness import KINDS, make_cluster, raft_msg, run, wait_until


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", [1, 2])
def test_all_to_all_under_changing_faults(kind: str, seed: int) -> None:
    async def body() -> None:
        rng = random.Random(seed)
        n = 4
        c = await make_cluster(kind, n, inject=True)
        ids = list(range(1, n + 1))
        nxt = {(a, b): 1 for a in ids for b in ids if a != b}
        try:
            for round_ in range(60):
                # change the weather
                c.faults.set_latency(rng.choice([0, 0, 1, 5, 15]))
                for _ in range(3):
                    a, b = rng.sample(ids, 2)
                    c.faults.set_link_latency(a, b, rng.choice([None, 0, 2, 10, 30]))
                if round_ % 10 == 5:
                    a, b = rng.sample(ids, 2)
                    c.faults.block(a, b)
                if round_ % 10 == 8:
                    c.faults.heal()
                for _ in range(rng.randint(1, 4)):
                    for _ in range(rng.randint(1, 200)):
                        a, b = rng.sample(ids, 2)
                        c.transports[a].send_raft_message(b, raft_msg(a, b, nxt[(a, b)]))
                        nxt[(a, b)] += 1
                    await asyncio.sleep(rng.choice([0, 0, 0.001, 0.005]))
            # a final lossless phase: heal, then one more message per link
            c.faults.heal()
            await asyncio.sleep(0.2)
            for (a, b), i in nxt.items():
                assert c.transports[a].send_raft_message(b, raft_msg(a, b, i))
            for (a, b), i in nxt.items():
                await wait_until(lambda a=a, b=b, i=i: i in c.nodes[b].indexes_from(a), 10)
            for (a, b), i in nxt.items():
                got = c.nodes[b].indexes_from(a)
                assert got == sorted(set(got)), f"n{a}->n{b} reordered or duplicated"
                assert got[-1] == i
        finally:
            await c.close()

    run(body(), timeout=60)
