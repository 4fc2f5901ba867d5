"""DistSender against a fake in-memory cluster: routing, truncation,
fan-out, stitching, limits and every retry path. Deterministic: seeded rng,
fake clock (sleeps advance it instantly)."""

from __future__ import annotations

import pytest

from crdb_py.kvclient import batch as kb
from crdb_py.pb import api_pb2
from crdb_py.util import errors, keys
from tests.kvclient.fake_cluster import FakeCluster
from tests.kvclient.helpers import letter_cluster, make_sender, run, user_rows


def rows_of(br: api_pb2.BatchResponse, i: int = 0) -> list[tuple[bytes, bytes]]:
    m = kb.inner(br.responses[i])
    return [(r.key, r.value.raw_bytes) for r in m.rows]


def resume_of(br: api_pb2.BatchResponse, i: int = 0) -> tuple[bytes, bytes] | None:
    rs = kb.resume_span(br.responses[i])
    return None if rs is None else (rs.key, rs.end_key)


# ---- routing and truncation ------------------------------------------------------


def test_point_requests_go_to_the_leaseholder_of_their_range() -> None:
    c = letter_cluster()
    ds, _ = make_sender(c)
    br = run(ds.send(kb.batch(kb.get_request(b"c1"), kb.get_request(b"k0"), kb.put_request(b"z9", b"new"))))
    assert br.responses[0].get.value.raw_bytes == b"v-c1"
    assert br.responses[1].get.value.raw_bytes == b"v-k0"
    assert kb.kind(br.responses[2]) == "put" and c.data[b"z9"] == b"new"
    calls = c.user_calls()
    by_range = {call.range_id: call for call in calls}  # the last call per range
    for key in (b"c1", b"k0", b"z9"):
        r = c.range_for(key)
        call = by_range[r.desc.range_id]
        assert call.node_id == r.leaseholder
        assert [k for _, k, _ in call.reqs] == [key]
    # only the ranges holding a key were contacted, none in between
    assert set(by_range) == {c.range_for(k).desc.range_id for k in (b"c1", b"k0", b"z9")}
    # with the leaseholders cached, each range takes exactly one RPC
    n = len(c.calls)
    run(ds.send(kb.batch(kb.get_request(b"c1"), kb.get_request(b"k0"), kb.put_request(b"z9", b"new"))))
    assert [(x.range_id, x.node_id) for x in c.calls[n:]] == [
        (c.range_for(k).desc.range_id, c.range_for(k).leaseholder) for k in (b"c1", b"k0", b"z9")
    ]


def test_scan_is_truncated_to_each_range() -> None:
    c = letter_cluster()
    ds, _ = make_sender(c)
    br = run(ds.send(kb.batch(kb.scan_request(b"b1", b"d1"))))
    assert rows_of(br) == user_rows(c, b"b1", b"d1")
    spans = sorted({(call.range_id, call.reqs[0][1:]) for call in c.user_calls()})
    assert spans == [
        (c.range_for(b"b").desc.range_id, (b"b1", b"c")),
        (c.range_for(b"c").desc.range_id, (b"c", b"d")),
        (c.range_for(b"d").desc.range_id, (b"d", b"d1")),
    ]
    assert all(call.range_id == c.range_for(call.reqs[0][1]).desc.range_id for call in c.user_calls())


def test_parts_are_sent_in_parallel() -> None:
    c = letter_cluster()
    ds, _ = make_sender(c)
    run(ds.send(kb.batch(kb.scan_request(b"a", b"z"))))  # warms the cache
    c.max_inflight = 0
    br = run(ds.send(kb.batch(kb.scan_request(b"a", b"z"))))
    assert rows_of(br) == user_rows(c, b"a", b"z")
    assert c.max_inflight == 13


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_stitching_scans_forward_and_reverse_across_13_ranges(seed: int) -> None:
    c = letter_cluster(keys_per_range=3)
    ds, _ = make_sender(c, seed=seed)
    ba = kb.batch(
        kb.scan_request(b"a", b"zz"),
        kb.reverse_scan_request(b"a", b"zz"),
        kb.scan_request(b"f", b"h"),
        kb.get_request(b"q2"),
        kb.reverse_scan_request(b"bb", b"e1"),
    )
    br = run(ds.send(ba))
    assert rows_of(br, 0) == user_rows(c, b"a", b"zz")
    assert rows_of(br, 1) == user_rows(c, b"a", b"zz")[::-1]
    assert rows_of(br, 2) == user_rows(c, b"f", b"h")
    assert br.responses[3].get.value.raw_bytes == b"v-q2"
    assert rows_of(br, 4) == user_rows(c, b"bb", b"e1")[::-1]
    assert br.responses[0].scan.header.num_keys == len(user_rows(c, b"a", b"zz"))
    assert resume_of(br, 0) is None


def test_delete_range_keys_concatenated_in_order() -> None:
    c = letter_cluster()
    ds, _ = make_sender(c)
    want = [k for k, _ in user_rows(c, b"c", b"h")]
    br = run(ds.send(kb.batch(kb.delete_range_request(b"c", b"h", return_keys=True))))
    assert list(br.responses[0].delete_range.keys) == want
    assert user_rows(c, b"c", b"h") == []


def test_range_local_key_routes_to_the_anchor_range() -> None:
    c = letter_cluster()
    tk = keys.transaction_key(b"k5", b"\x07" * 16)
    c.data[tk] = b"record"
    ds, _ = make_sender(c)
    br = run(ds.send(kb.batch(kb.get_request(tk))))
    assert br.responses[0].get.value.raw_bytes == b"record"
    assert c.user_calls()[-1].range_id == c.range_for(b"k").desc.range_id


def test_header_carries_range_id_and_no_timestamp() -> None:
    c = letter_cluster()
    seen: list[api_pb2.BatchHeader] = []

    def hook(node_id: int, ba: api_pb2.BatchRequest) -> None:
        seen.append(api_pb2.BatchHeader().__class__.FromString(ba.header.SerializeToString()))

    c.hook = hook
    ds, _ = make_sender(c, gateway_node_id=4)
    run(ds.send(kb.batch(kb.put_request(b"g1", b"x"), kb.put_request(b"p1", b"y"))))
    user = [h for h in seen if h.range_id != 1]
    assert {h.range_id for h in user} == {c.range_for(b"g").desc.range_id, c.range_for(b"p").desc.range_id}
    assert all(h.timestamp.wall_time == 0 and h.timestamp.logical == 0 for h in seen)
    assert all(h.gateway_node_id == 4 for h in seen)


# ---- meta lookups and the cache --------------------------------------------------


def test_meta_lookups_fill_the_cache_once() -> None:
    c = letter_cluster()
    ds, _ = make_sender(c)
    run(ds.send(kb.batch(kb.scan_request(b"a", b"z"))))
    meta = [call for call in c.calls if call not in c.user_calls()]
    # the first range is known without a lookup; the 12 others need one each
    # (retries after NotLeaseHolder on the meta range repeat the same scan)
    assert len({call.reqs[0][1] for call in meta}) == 12
    assert ds.range_cache.lookups == 13  # the first range comes from the provider, no RPC
    assert all(call.range_id == 1 for call in meta)
    assert all(call.max_keys == 1 for call in meta)
    n = len(c.calls)
    run(ds.send(kb.batch(kb.scan_request(b"a", b"z"))))
    assert len(c.calls) - n == 13  # no meta lookups, one RPC per range
    assert len(ds.range_cache) == 13


def test_concurrent_sends_coalesce_meta_lookups() -> None:
    import asyncio

    c = letter_cluster()
    ds, _ = make_sender(c)

    async def main() -> None:
        await asyncio.gather(*(ds.send(kb.batch(kb.get_request(b"q0"))) for _ in range(10)))

    run(main())
    meta = [call for call in c.calls if call.reqs[0][1].startswith(keys.META_PREFIX)]
    assert len({call.reqs[0][1] for call in meta}) == 1 and ds.range_cache.lookups == 1
    assert len(meta) <= 3  # one lookup, at most tried on each meta replica


# ---- limits and resume spans --------------------------------------------------------


def page_through(ds, c: FakeCluster, start: bytes, end: bytes, *, reverse: bool, **limits):
    pages = []
    span: tuple[bytes, bytes] | None = (start, end)
    while span is not None:
        mk = kb.reverse_scan_request if reverse else kb.scan_request
        c.max_inflight = 0
        br = run(ds.send(kb.batch(mk(*span), **limits)))
        assert c.max_inflight <= 1  # ranges visited one at a time
        pages.append(rows_of(br))
        span = resume_of(br)
    return pages


@pytest.mark.parametrize("limit", [1, 4, 5, 7, 100])
def test_forward_scan_with_key_limit_pages_in_order(limit: int) -> None:
    c = letter_cluster(keys_per_range=2)
    ds, _ = make_sender(c)
    pages = page_through(ds, c, b"a", b"z", reverse=False, max_span_request_keys=limit)
    flat = [r for p in pages for r in p]
    assert flat == user_rows(c, b"a", b"z")
    assert all(len(p) == limit for p in pages[:-1]) and 0 < len(pages[-1]) <= limit


@pytest.mark.parametrize("limit", [1, 3, 4, 100])
def test_reverse_scan_with_key_limit_pages_in_order(limit: int) -> None:
    c = letter_cluster(keys_per_range=2)
    ds, _ = make_sender(c)
    pages = page_through(ds, c, b"a", b"z", reverse=True, max_span_request_keys=limit)
    flat = [r for p in pages for r in p]
    assert flat == user_rows(c, b"a", b"z")[::-1]
    assert all(len(p) == limit for p in pages[:-1])


def test_limit_exhausted_at_range_boundary_sets_resume_at_next_range() -> None:
    c = letter_cluster(keys_per_range=2)
    ds, _ = make_sender(c)
    br = run(ds.send(kb.batch(kb.scan_request(b"b", b"z"), max_span_request_keys=4)))
    assert [k for k, _ in rows_of(br)] == [b"b0", b"b1", b"c0", b"c1"]
    assert resume_of(br) == (b"d", b"z")
    visited = {call.range_id for call in c.user_calls()}
    assert visited == {c.range_for(b"b").desc.range_id, c.range_for(b"c").desc.range_id}


def test_target_bytes_limit() -> None:
    c = letter_cluster(keys_per_range=2)
    ds, _ = make_sender(c)
    row_bytes = len(b"b0") + len(b"v-b0")
    br = run(ds.send(kb.batch(kb.scan_request(b"b", b"z"), target_bytes=3 * row_bytes)))
    assert [k for k, _ in rows_of(br)] == [b"b0", b"b1", b"c0"]
    assert resume_of(br) == (b"c1", b"z")
    pages = page_through(ds, c, b"b", b"z", reverse=False, target_bytes=3 * row_bytes)
    assert [r for p in pages for r in p] == user_rows(c, b"b", b"z")


def test_limited_batch_with_two_scans_follows_range_order() -> None:
    c = letter_cluster(keys_per_range=2)
    ds, _ = make_sender(c)
    ba = kb.batch(kb.scan_request(b"b", b"c9"), kb.scan_request(b"d", b"f"), max_span_request_keys=3)
    br = run(ds.send(ba))
    # range [b,c): scan 1 takes b0 b1; range [c,d): scan 1 takes c0, limit hit
    assert [k for k, _ in rows_of(br, 0)] == [b"b0", b"b1", b"c0"]
    assert resume_of(br, 0) == (b"c1", b"c9")
    assert rows_of(br, 1) == [] and resume_of(br, 1) == (b"d", b"f")


def test_limited_batch_with_scans_sharing_ranges() -> None:
    c = letter_cluster(keys_per_range=2)
    ds, _ = make_sender(c)
    ba = kb.batch(kb.scan_request(b"b", b"e"), kb.scan_request(b"b1", b"d"), max_span_request_keys=5)
    br = run(ds.send(ba))
    # range [b,c): scan 1 -> b0 b1, scan 2 -> b1; range [c,d): scan 1 -> c0 c1 (limit hit)
    assert [k for k, _ in rows_of(br, 0)] == [b"b0", b"b1", b"c0", b"c1"]
    assert [k for k, _ in rows_of(br, 1)] == [b"b1"]
    assert resume_of(br, 0) == (b"d", b"e")
    assert resume_of(br, 1) == (b"c", b"d")


def test_limited_batch_get_not_reached_gets_resume_span() -> None:
    c = letter_cluster(keys_per_range=2)
    ds, _ = make_sender(c)
    ba = kb.batch(kb.scan_request(b"b", b"d"), kb.get_request(b"q0"), max_span_request_keys=2)
    br = run(ds.send(ba))
    assert [k for k, _ in rows_of(br, 0)] == [b"b0", b"b1"]
    assert resume_of(br, 0) == (b"c", b"d")
    assert not br.responses[1].get.HasField("value") and resume_of(br, 1) == (b"q0", b"")
    ba = kb.batch(kb.scan_request(b"b", b"d"), kb.get_request(b"q0"), max_span_request_keys=10)
    br = run(ds.send(ba))
    assert br.responses[1].get.value.raw_bytes == b"v-q0" and resume_of(br, 1) is None


def test_limits_reject_writes_and_mixed_directions() -> None:
    c = letter_cluster()
    ds, _ = make_sender(c)
    with pytest.raises(errors.InvalidArgumentError):
        run(ds.send(kb.batch(kb.put_request(b"a", b"x"), max_span_request_keys=1)))
    with pytest.raises(errors.InvalidArgumentError):
        run(ds.send(kb.batch(kb.scan_request(b"a", b"c"), kb.reverse_scan_request(b"a", b"c"), max_span_request_keys=1)))
    assert c.calls == []


# ---- retries ---------------------------------------------------------------------


def test_not_leaseholder_hint_is_followed_and_cached() -> None:
    c = letter_cluster()
    ds, _ = make_sender(c)
    run(ds.send(kb.batch(kb.get_request(b"g0"))))
    r = c.range_for(b"g")
    new_lh = next(rep.node_id for rep in r.desc.replicas if rep.node_id != r.leaseholder)
    old_lh = r.leaseholder
    c.set_leaseholder(r.desc.range_id, new_lh)
    n = len(c.calls)
    ds.metrics.not_leaseholder = 0
    br = run(ds.send(kb.batch(kb.get_request(b"g0"))))
    assert br.responses[0].get.value.raw_bytes == b"v-g0"
    assert [call.node_id for call in c.calls[n:]] == [old_lh, new_lh]
    assert ds.metrics.not_leaseholder == 1
    assert ds.range_cache.get_cached(b"g0").leaseholder.node_id == new_lh
    n = len(c.calls)
    run(ds.send(kb.batch(kb.get_request(b"g0"))))
    assert [call.node_id for call in c.calls[n:]] == [new_lh]


def test_not_leaseholder_without_hint_tries_next_replicas() -> None:
    c = letter_cluster()
    c.no_hint = True
    ds, _ = make_sender(c)
    run(ds.send(kb.batch(kb.get_request(b"g0"))))
    r = c.range_for(b"g")
    last = r.desc.replicas[2].node_id
    c.set_leaseholder(r.desc.range_id, last)
    n = len(c.calls)
    br = run(ds.send(kb.batch(kb.get_request(b"g0"))))
    assert br.responses[0].get.value.raw_bytes == b"v-g0"
    tried = [call.node_id for call in c.calls[n:]]
    assert tried[-1] == last and len(set(tried)) == len(tried) and len(tried) >= 2


def test_leaseholder_hint_outside_descriptor_evicts_it() -> None:
    c = letter_cluster()
    ds, _ = make_sender(c)
    run(ds.send(kb.batch(kb.get_request(b"g0"))))
    r = c.range_for(b"g")
    # the range moved a replica to node 5 (outside our cached descriptor) and gave it the lease
    outsider = next(n for n in c.nodes if all(rep.node_id != n for rep in r.desc.replicas))
    r.desc.replicas[1].node_id = outsider
    r.desc.generation += 1
    c._write_meta(r.desc)
    c.set_leaseholder(r.desc.range_id, outsider)
    br = run(ds.send(kb.batch(kb.get_request(b"g0"))))
    assert br.responses[0].get.value.raw_bytes == b"v-g0"
    assert c.calls[-1].node_id == outsider
    assert ds.range_cache.get_cached(b"g0").desc.generation == r.desc.generation


def test_range_key_mismatch_after_split_rediscovers_and_resplits() -> None:
    c = letter_cluster(keys_per_range=3)
    ds, _ = make_sender(c)
    run(ds.send(kb.batch(kb.scan_request(b"a", b"z"))))  # warm, now stale after splits:
    c.split(b"g1")
    c.split(b"k2")
    ba = kb.batch(
        kb.scan_request(b"f", b"k2"),
        kb.get_request(b"g2"),
        kb.reverse_scan_request(b"g0", b"k1"),
        kb.put_request(b"k2", b"new"),
    )
    want0, want2 = user_rows(c, b"f", b"k2"), user_rows(c, b"g0", b"k1")[::-1]
    br = run(ds.send(ba))
    assert rows_of(br, 0) == want0
    assert br.responses[1].get.value.raw_bytes == b"v-g2"
    assert rows_of(br, 2) == want2
    assert c.data[b"k2"] == b"new"
    assert ds.metrics.range_key_mismatch >= 2
    # the cache now knows the new ranges
    assert ds.range_cache.get_cached(b"g1").desc.start_key == b"g1"
    assert ds.range_cache.get_cached(b"k2").desc.start_key == b"k2"


def test_range_key_mismatch_with_limits_keeps_order_and_resume() -> None:
    c = letter_cluster(keys_per_range=3)
    ds, _ = make_sender(c)
    run(ds.send(kb.batch(kb.scan_request(b"a", b"z"))))
    c.split(b"c1")
    c.split(b"d2")
    pages = page_through(ds, c, b"b", b"z", reverse=False, max_span_request_keys=4)
    assert [r for p in pages for r in p] == user_rows(c, b"b", b"z")
    assert ds.metrics.range_key_mismatch >= 1


def test_mismatch_error_without_descriptor_re_looks_up_meta() -> None:
    c = letter_cluster()
    ds, _ = make_sender(c)
    run(ds.send(kb.batch(kb.get_request(b"g0"))))
    c.split(b"g1")
    state = {"stripped": 0}

    def hook(node_id: int, ba: api_pb2.BatchRequest):
        br = c._serve(node_id, ba)
        if br.error.kind == "RangeKeyMismatchError":
            br.error.ClearField("range")
            state["stripped"] += 1
        return br

    c.hook = hook
    br = run(ds.send(kb.batch(kb.get_request(b"g0"), kb.get_request(b"g1"))))
    assert br.responses[0].get.value.raw_bytes == b"v-g0"
    assert br.responses[1].get.value.raw_bytes == b"v-g1"
    assert state["stripped"] == 1


def test_unavailable_leaseholder_fails_over_to_next_replica() -> None:
    c = letter_cluster()
    ds, _ = make_sender(c)
    run(ds.send(kb.batch(kb.get_request(b"g0"))))
    r = c.range_for(b"g")
    dead = r.leaseholder
    c.down.add(dead)
    c.set_leaseholder(r.desc.range_id, r.desc.replicas[1].node_id)
    n = len(c.calls)
    br = run(ds.send(kb.batch(kb.get_request(b"g0"))))
    assert br.responses[0].get.value.raw_bytes == b"v-g0"
    assert c.calls[n].node_id == dead and ds.metrics.node_unavailable == 1
    assert ds.range_cache.get_cached(b"g0").leaseholder.node_id == r.leaseholder


def test_all_replicas_down_retries_with_backoff_then_raises() -> None:
    c = letter_cluster()
    ds, ft = make_sender(c, timeout=5.0)
    run(ds.send(kb.batch(kb.get_request(b"g0"))))
    r = c.range_for(b"g")
    c.down.update(rep.node_id for rep in r.desc.replicas)
    with pytest.raises(errors.NodeUnavailableError) as ei:
        run(ds.send(kb.batch(kb.get_request(b"g0"))))
    assert f"r{r.desc.range_id}" in str(ei.value)
    assert ft.t >= 5.0 and len(ft.sleeps) >= 3
    assert all(s <= ds.retry.max_backoff * (1 + ds.retry.jitter) for s in ft.sleeps)
    assert ft.sleeps[1] > ft.sleeps[0]  # exponential growth at first
    assert len(set(ft.sleeps)) == len(ft.sleeps) or ds.retry.jitter == 0


def test_all_replicas_down_then_recover_before_deadline() -> None:
    c = letter_cluster()
    ds, ft = make_sender(c)
    run(ds.send(kb.batch(kb.get_request(b"g0"))))
    r = c.range_for(b"g")
    nodes = {rep.node_id for rep in r.desc.replicas}
    c.down.update(nodes)

    def on_sleep(n: int) -> None:
        if n == 3:
            c.down.difference_update(nodes)

    ft.on_sleep = on_sleep
    br = run(ds.send(kb.batch(kb.get_request(b"g0"))))
    assert br.responses[0].get.value.raw_bytes == b"v-g0"
    assert len(ft.sleeps) == 3


def test_range_not_found_on_every_replica_evicts_and_retries() -> None:
    c = letter_cluster(nodes=[1, 2, 3, 4, 5, 6])
    ds, ft = make_sender(c)
    run(ds.send(kb.batch(kb.get_request(b"g0"))))
    r = c.range_for(b"g")
    # every replica moved to other nodes (meta updated): the old ones no longer have it
    old = [rep.node_id for rep in r.desc.replicas]
    new = [n for n in c.nodes if n not in old]
    for rep, n in zip(r.desc.replicas, new):
        rep.node_id = n
    r.desc.generation += 1
    c._write_meta(r.desc)
    c.set_leaseholder(r.desc.range_id, new[0])
    ds.metrics.range_not_found = 0
    n = len(c.calls)
    br = run(ds.send(kb.batch(kb.get_request(b"g0"))))
    assert br.responses[0].get.value.raw_bytes == b"v-g0"
    assert sorted(x.node_id for x in c.calls[n : n + 3]) == sorted(old)
    assert ds.metrics.range_not_found == 3 and len(ft.sleeps) == 1
    assert c.calls[-1].node_id == new[0]
    assert ds.range_cache.get_cached(b"g0").desc.generation == r.desc.generation


def test_ambiguous_write_is_raised_not_retried() -> None:
    c = letter_cluster()
    ds, _ = make_sender(c)
    run(ds.send(kb.batch(kb.get_request(b"g0"))))
    r = c.range_for(b"g")
    c.ambiguous.add(r.leaseholder)
    n = len(c.calls)
    with pytest.raises(errors.AmbiguousResultError):
        run(ds.send(kb.batch(kb.put_request(b"g5", b"x"))))
    assert len(c.calls) - n == 1
    assert c.data[b"g5"] == b"x"  # it did happen: the client must not think it failed


def test_ambiguous_read_is_retried_elsewhere() -> None:
    c = letter_cluster()
    ds, _ = make_sender(c)
    run(ds.send(kb.batch(kb.get_request(b"g0"))))
    r = c.range_for(b"g")
    bad = r.leaseholder
    c.ambiguous.add(bad)
    c.set_leaseholder(r.desc.range_id, r.desc.replicas[1].node_id)
    br = run(ds.send(kb.batch(kb.get_request(b"g0"))))
    assert br.responses[0].get.value.raw_bytes == b"v-g0"


def test_ambiguous_error_wins_over_other_part_errors() -> None:
    c = letter_cluster()
    ds, _ = make_sender(c)
    run(ds.send(kb.batch(kb.scan_request(b"a", b"z"))))
    c.ambiguous.add(c.range_for(b"p").leaseholder)
    c.data[b"c0"] = b"other"
    ba = kb.batch(kb.cput_request(b"c0", b"x", b"v-c0"), kb.put_request(b"p5", b"y"))
    with pytest.raises(errors.AmbiguousResultError):
        run(ds.send(ba))


# ---- errors ------------------------------------------------------------------------


def test_error_index_refers_to_the_original_batch() -> None:
    c = letter_cluster()
    ds, _ = make_sender(c)
    ba = kb.batch(
        kb.put_request(b"a5", b"1"),
        kb.get_request(b"k0"),
        kb.cput_request(b"p0", b"x", b"wrong"),
        kb.put_request(b"p9", b"2"),
    )
    with pytest.raises(errors.ConditionFailedError) as ei:
        run(ds.send(ba))
    assert ei.value.index == 2 and ei.value.actual_value == b"v-p0"


def test_lowest_index_error_wins() -> None:
    c = letter_cluster()
    ds, _ = make_sender(c)
    ba = kb.batch(
        kb.cput_request(b"x0", b"x", b"wrong"),
        kb.cput_request(b"b0", b"x", b"wrong"),
    )
    with pytest.raises(errors.ConditionFailedError) as ei:
        run(ds.send(ba))
    assert ei.value.index == 0 and ei.value.actual_value == b"v-x0"


def test_empty_batch() -> None:
    ds, _ = make_sender(letter_cluster())
    assert len(run(ds.send(api_pb2.BatchRequest())).responses) == 0


def test_reverse_limited_scan_after_splits() -> None:
    c = letter_cluster(keys_per_range=3)
    ds, _ = make_sender(c)
    run(ds.send(kb.batch(kb.scan_request(b"a", b"z"))))
    c.split(b"e1")
    c.split(b"h2")
    pages = page_through(ds, c, b"b", b"k", reverse=True, max_span_request_keys=4)
    assert [r for p in pages for r in p] == user_rows(c, b"b", b"k")[::-1]
    assert all(len(p) == 4 for p in pages[:-1])
    assert ds.metrics.range_key_mismatch >= 1


def test_meta_range_unavailable_then_recovers() -> None:
    c = letter_cluster()
    ds, ft = make_sender(c)
    meta_nodes = {rep.node_id for rep in c.first_range().replicas}
    c.down.update(meta_nodes)

    def on_sleep(n: int) -> None:
        if n == 2:
            c.down.difference_update(meta_nodes)

    ft.on_sleep = on_sleep
    br = run(ds.send(kb.batch(kb.get_request(b"q0"))))
    assert br.responses[0].get.value.raw_bytes == b"v-q0"
    assert len(ft.sleeps) == 2


def test_meta_range_unavailable_gives_up_at_deadline() -> None:
    c = letter_cluster()
    ds, ft = make_sender(c, timeout=3.0)
    c.down.update(rep.node_id for rep in c.first_range().replicas)
    with pytest.raises(errors.NodeUnavailableError):
        run(ds.send(kb.batch(kb.get_request(b"q0"))))
    assert ft.t >= 3.0


def test_responses_ratchet_the_gateway_clock() -> None:
    from crdb_py.util.hlc import HLC, ManualClock

    c = letter_cluster()
    hlc = HLC(ManualClock(500), max_offset_nanos=0)
    ds, _ = make_sender(c, hlc=hlc)
    c.now = 10_000
    run(ds.send(kb.batch(kb.get_request(b"g0"))))
    assert hlc.peek().wall_time == c.now  # the last server reading
    hlc2 = HLC(ManualClock(500), max_offset_nanos=100)
    ds2, _ = make_sender(c, hlc=hlc2)
    run(ds2.send(kb.batch(kb.get_request(b"g0"))))
    assert hlc2.peek().wall_time == 0 and ds2.metrics.clock_offset_rejections > 0


def test_wrong_number_of_responses_is_an_internal_error() -> None:
    c = letter_cluster()

    def hook(node_id: int, ba: api_pb2.BatchRequest):
        br = c._serve(node_id, ba)
        if not br.HasField("error") and ba.header.range_id != 1:
            br.responses.append(api_pb2.ResponseUnion())
        return br

    c.hook = hook
    ds, _ = make_sender(c)
    with pytest.raises(errors.InternalError):
        run(ds.send(kb.batch(kb.get_request(b"g0"))))


def test_cancelling_a_send_cancels_its_parts() -> None:
    import asyncio

    c = letter_cluster()
    ds, _ = make_sender(c)
    run(ds.send(kb.batch(kb.scan_request(b"a", b"z"))))
    gate = asyncio.Event()

    async def main() -> None:
        orig = c.send_to_node

        async def slow(node_id: int, ba: api_pb2.BatchRequest) -> api_pb2.BatchResponse:
            await gate.wait()
            return await orig(node_id, ba)

        c.send_to_node = slow  # type: ignore[method-assign]
        t = asyncio.ensure_future(ds.send(kb.batch(kb.scan_request(b"a", b"z"))))
        await asyncio.sleep(0.01)
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        await asyncio.sleep(0)
        pending = [x for x in asyncio.all_tasks() if x is not asyncio.current_task()]
        assert pending == []

    run(main())
