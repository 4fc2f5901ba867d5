"""The bounded Jepsen slice of `make test`, on one real 3-node LocalCluster.

Short runs, one nemesis each, under two of the four commit settings, plus
the planted bug (a client with transactions switched off) that the checker
must flag on the real cluster. The full matrix (`make jepsen`) runs the
same code; its smallest version is the slow test at the end.
"""

from __future__ import annotations

import json
import os

import pytest

from crdb_py.jepsen.history import load, operations
from crdb_py.jepsen.runner import RunResult, RunSpec, full_matrix, run, run_matrix, table
from crdb_py.kvclient.txn.committer import FP_BROKEN_ACK_WITHOUT_WRITES
from crdb_py.localcluster import LocalCluster
from crdb_py.util import failpoints


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(nodes=3, sync=False) as c:
        yield c


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("jepsen"))


def _structurally_sound(r: RunResult, cluster: LocalCluster) -> None:
    h = load(r.history_path)
    ops = operations(h.ops)
    assert r.counts["ops"] == len(ops) > 0
    assert r.counts["ok"] > 0, f"nothing succeeded: {r.counts}"
    # Ambiguity is never a failure: every `fail` carries a definite error.
    for o in ops:
        if o.status == "fail":
            err = o.complete.error or ""
            assert "Ambiguous" not in err and "Timeout" not in err and "died" not in err, err
    assert all(cluster.is_running(i) for i in range(cluster.num_nodes)), "nemesis left a node down"
    if r.spec.nemesis != "none":
        assert r.nemesis_events, "the nemesis never acted"
        assert r.nemesis_events[-1]["what"] == "heal-all"
    with open(r.history_path.removesuffix(".jsonl") + ".result.json") as fh:
        assert json.load(fh)["run"] == r.spec.name


_SPECS = {
    "bank-kill": RunSpec("bank", "kill", "2pc", ops=10_000, time_limit=6, concurrency=4,
                         nemesis_interval=1.0, nemesis_duration=2.5, seed=1),
    "list-append-split": RunSpec("list-append", "split-lease", "parallel+pipelining", ops=10_000,
                                 time_limit=6, concurrency=3, nemesis_interval=1.0,
                                 nemesis_duration=0.5, seed=2, final_timeout=10),
}


def _run(name: str, cluster: LocalCluster, results_dir: str) -> RunResult:
    return run(_SPECS[name], cluster, results_dir)


def test_bank_under_kill_with_2pc(cluster, results_dir) -> None:
    r = _run("bank-kill", cluster, results_dir)
    _structurally_sound(r, cluster)
    assert any(e["what"] == "kill" for e in r.nemesis_events)
    assert r.valid, f"{r.history_path}\n{r.verdict.explanation}\n{r.error or ''}"


def test_list_append_under_splits_and_lease_moves(cluster, results_dir) -> None:
    r = _run("list-append-split", cluster, results_dir)
    _structurally_sound(r, cluster)
    assert any(e["what"] in ("split", "lease") for e in r.nemesis_events)
    assert r.valid, f"{r.history_path}\n{r.verdict.explanation}\n{r.error or ''}"


def test_planted_bug_non_transactional_bank_is_caught(cluster, results_dir) -> None:
    spec = RunSpec("bank", "none", "2pc", ops=120, time_limit=10, concurrency=4, seed=3,
                   broken="no-txn")
    r = run(spec, cluster, results_dir)
    assert r.counts["ok"] > 0
    assert not r.verdict.valid, "the bank checker missed transfers that are not transactions"
    assert {"wrong-total", "negative-balance"} & set(r.verdict.anomalies), r.verdict.anomalies


def test_planted_committer_bug_is_caught(cluster, results_dir) -> None:
    """A parallel commit acknowledged without its final writes (the test-only
    failpoint in committer.py): transfers lose the credit, reads see money
    vanish."""
    spec = RunSpec("bank", "none", "parallel+pipelining", ops=10_000, time_limit=4,
                   concurrency=3, seed=5)
    failpoints.enable(FP_BROKEN_ACK_WITHOUT_WRITES, "error")
    try:
        r = run(spec, cluster, results_dir)
    finally:
        failpoints.disable(FP_BROKEN_ACK_WITHOUT_WRITES)
    assert failpoints.hits(FP_BROKEN_ACK_WITHOUT_WRITES) > 0
    assert r.counts["ok"] > 0
    assert "wrong-total" in r.verdict.anomalies, r.verdict.explanation


def test_coordinator_crash_is_recorded_as_ambiguous(cluster, results_dir) -> None:
    spec = RunSpec("sets", "coordinator-crash", "parallel+pipelining", ops=10_000, time_limit=5,
                   concurrency=2, nemesis_interval=0.5, nemesis_duration=0.1, seed=4)
    r = run(spec, cluster, results_dir)
    _structurally_sound(r, cluster)
    crashed = [e for e in r.nemesis_events if e["what"] == "coordinator-crash"]
    assert crashed, r.nemesis_events
    h = load(r.history_path)
    died = {o.process for o in h.ops if o.type == "info" and "coordinator process died" in (o.error or "")}
    assert {e["process"] for e in crashed} <= died
    assert r.valid, f"{r.history_path}\n{r.verdict.explanation}\n{r.error or ''}"


@pytest.mark.slow
def test_full_matrix_code_path(tmp_path) -> None:
    specs = full_matrix(ops=40, time_limit=5, final_timeout=5)
    with LocalCluster(nodes=3, sync=False) as c:
        results = run_matrix(specs, c, str(tmp_path))
        assert len(results) == len(specs) == 5 * 6 * 4
        for r in results:
            assert os.path.exists(r.history_path)
            assert r.counts["ops"] > 0
            assert r.error is None or "final" in r.error, r.error
    assert table(results).row_count == len(specs)
    with open(tmp_path / "summary.json") as fh:
        assert len(json.load(fh)) == len(specs)
