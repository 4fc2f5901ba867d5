from __future__ import annotations

from crdb_py.kvclient import batch as kb
from crdb_py.pb import api_pb2, data_pb2
from crdb_py.util import keys


def test_constructors_and_kinds() -> None:
    g = kb.get_request(b"a")
    assert kb.kind(g) == "get" and kb.request_span(g) == (b"a", b"")
    s = kb.scan_request(b"a", b"c")
    assert kb.is_range(s) and kb.is_read(s) and not kb.is_write(s)
    rs = kb.reverse_scan_request(b"a", b"c")
    assert kb.is_reverse(rs) and not kb.is_reverse(s)
    c = kb.cput_request(b"k", b"new", None)
    assert kb.is_write(c) and not c.conditional_put.exp_exists
    c = kb.cput_request(b"k", b"new", b"")
    assert c.conditional_put.exp_exists and c.conditional_put.exp_value == b""
    d = kb.delete_range_request(b"a", b"z", return_keys=True)
    assert d.delete_range.return_keys and kb.request_span(d) == (b"a", b"z")
    assert kb.kind(kb.admin_split_request(b"m")) == "admin_split"
    ba = kb.batch(g, s, max_span_request_keys=3)
    assert ba.header.max_span_request_keys == 3 and kb.has_limits(ba)
    assert kb.batch_addr_span(ba) == (b"a", b"c")
    assert not kb.batch_is_write(ba) and kb.batch_is_write(kb.batch(g, c))


def test_truncate_range_and_point_requests() -> None:
    s = kb.scan_request(b"b", b"f")
    t = kb.truncate_request(s, b"c", b"e")
    assert t is not None and kb.request_span(t) == (b"c", b"e")
    assert kb.request_span(s) == (b"b", b"f")  # original untouched
    assert kb.truncate_request(s, b"f", b"g") is None
    assert kb.truncate_request(s, b"a", b"b") is None
    t = kb.truncate_request(s, b"a", b"z")
    assert t is not None and kb.request_span(t) == (b"b", b"f")
    g = kb.get_request(b"c")
    assert kb.truncate_request(g, b"c", b"d") is not None
    assert kb.truncate_request(g, b"a", b"c") is None


def test_range_local_keys_route_by_anchor() -> None:
    txn_key = keys.transaction_key(b"cc", b"\x01" * 16)
    g = kb.get_request(txn_key)
    assert kb.addr_span(g) == (b"cc", b"cc\x00")
    assert kb.truncate_request(g, b"c", b"d") is not None
    assert kb.truncate_request(g, b"d", b"e") is None
    lo, hi = keys.range_local_span(b"b", b"f")
    r = kb._req("resolve_intent_range", lo, hi)
    assert kb.addr_span(r) == (b"b", b"f")
    t = kb.truncate_request(r, b"c", b"e")
    assert t is not None and kb.request_span(t) == keys.range_local_span(b"c", b"e")


def test_next_and_prev_touched_key() -> None:
    ba = kb.batch(kb.get_request(b"b"), kb.scan_request(b"m", b"p"), kb.get_request(b"x"))
    assert kb.next_touched_key(ba, b"a") == b"b"
    assert kb.next_touched_key(ba, b"c") == b"m"
    assert kb.next_touched_key(ba, b"n") == b"n"
    assert kb.next_touched_key(ba, b"p") == b"x"
    assert kb.next_touched_key(ba, b"y") is None
    assert kb.prev_touched_key(ba, b"z") == b"x\x00"
    assert kb.prev_touched_key(ba, b"x") == b"p"
    assert kb.prev_touched_key(ba, b"n") == b"n"
    assert kb.prev_touched_key(ba, b"b") is None


def test_combine_response_concatenates_rows_and_keys() -> None:
    a = kb.empty_response_for(kb.scan_request(b"a", b"z"))
    b = kb.empty_response_for(kb.scan_request(b"a", b"z"))
    a.scan.rows.add(key=b"a")
    b.scan.rows.add(key=b"m")
    b.scan.header.num_keys = 1
    a.scan.header.num_keys = 1
    kb.combine_response(a, b)
    assert [r.key for r in a.scan.rows] == [b"a", b"m"] and a.scan.header.num_keys == 2
    d1 = api_pb2.ResponseUnion()
    d1.delete_range.keys.append(b"a")
    d2 = api_pb2.ResponseUnion()
    d2.delete_range.keys.append(b"q")
    kb.combine_response(d1, d2)
    assert list(d1.delete_range.keys) == [b"a", b"q"]
    g1, g2 = api_pb2.ResponseUnion(), api_pb2.ResponseUnion()
    g1.get.SetInParent()
    g2.get.value.raw_bytes = b"v"
    kb.combine_response(g1, g2)
    assert g1.get.value.raw_bytes == b"v"


def test_merge_txn_forwards_timestamps_and_status() -> None:
    a = data_pb2.Transaction(status=data_pb2.PENDING)
    a.meta.write_timestamp.wall_time = 5
    b = data_pb2.Transaction(status=data_pb2.STAGING, write_too_old=True)
    b.meta.write_timestamp.wall_time = 9
    b.read_timestamp.wall_time = 3
    kb.merge_txn(a, b)
    assert a.meta.write_timestamp.wall_time == 9 and a.read_timestamp.wall_time == 3
    assert a.status == data_pb2.STAGING and a.write_too_old
    c = data_pb2.Transaction(status=data_pb2.PENDING)
    c.meta.write_timestamp.wall_time = 1
    kb.merge_txn(a, c)
    assert a.meta.write_timestamp.wall_time == 9 and a.status == data_pb2.STAGING
