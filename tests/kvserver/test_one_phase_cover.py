"""One-phase-commit eligibility: every lock span must lie inside the batch's
writes. Checked in O((L + W) log W) (`evaluate._all_covered`); this pins it
to the definition (some single write covers each lock span, or the written
spans together do) and shows a big commit batch stays cheap."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from crdb_py.kvserver.evaluate import _all_covered
from crdb_py.pb import data_pb2
from crdb_py.util import keys

KEY = st.binary(min_size=1, max_size=2).map(lambda b: b"\x05" + b)


def _naive(spans: list[data_pb2.Span], writes: list[tuple[bytes, bytes]]) -> bool:
    """Covered by the union of the written keys/spans (brute force)."""
    def covered_point(k: bytes) -> bool:
        return any(w == k if not e else w <= k < e for w, e in writes)

    for sp in spans:
        if not sp.end_key:
            if not covered_point(sp.key):
                return False
            continue
        # a ranged lock span: every key in it must be written; with byte keys
        # that needs written spans whose union contains [key, end_key)
        pos = sp.key
        while pos < sp.end_key:
            nxt = [e for w, e in writes if e and w <= pos < e]
            if nxt:
                pos = max(nxt)
            elif pos in {w for w, e in writes if not e} and keys.next_key(pos) >= sp.end_key:
                pos = sp.end_key
            else:
                return False
    return True


@settings(max_examples=300, deadline=None)
@given(
    writes=st.lists(st.tuples(KEY, st.one_of(st.just(b""), KEY)), max_size=8).map(
        lambda ws: [(k, e) if not e or e > k else (k, b"") for k, e in ws]),
    spans=st.lists(st.tuples(KEY, st.one_of(st.just(b""), KEY)), min_size=1, max_size=5),
)
def test_matches_the_definition(writes: list[tuple[bytes, bytes]],
                                spans: list[tuple[bytes, bytes]]) -> None:
    lock = [data_pb2.Span(key=k, end_key=e if e > k else b"") for k, e in spans]
    assert _all_covered(lock, writes) == _naive(lock, writes)


def test_examples() -> None:
    sp = data_pb2.Span
    assert _all_covered([sp(key=b"a")], [(b"a", b"")])
    assert not _all_covered([sp(key=b"b")], [(b"a", b"")])
    assert _all_covered([sp(key=b"b", end_key=b"d")], [(b"a", b"c"), (b"c", b"e")])
    assert not _all_covered([sp(key=b"b", end_key=b"f")], [(b"a", b"c"), (b"c", b"e")])
    assert _all_covered([sp(key=b"a", end_key=b"a\x00")], [(b"a", b"")])


def test_a_big_commit_batch_is_linearithmic() -> None:
    ws = [(b"\x05k%06d" % i, b"") for i in range(50_000)]
    lock = [data_pb2.Span(key=k) for k, _ in ws]
    assert _all_covered(lock, ws)  # was 50k x 50k comparisons
    assert not _all_covered([*lock, data_pb2.Span(key=b"\x05zz")], ws)
