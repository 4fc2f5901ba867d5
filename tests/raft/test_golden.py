"""Golden interaction transcripts: each tests/raft/testdata/*.txt script is
replayed and its output compared with the expected output embedded in it.
`pytest --rewrite` regenerates the expected output (review the diff!)."""

from __future__ import annotations

import difflib
import pathlib

import pytest

from tests.raft.interaction import run_script

TESTDATA = pathlib.Path(__file__).parent / "testdata"
SCRIPTS = sorted(TESTDATA.glob("*.txt"))


def test_there_are_transcripts() -> None:
    assert len(SCRIPTS) >= 6


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_transcript(path: pathlib.Path, rewrite: bool) -> None:
    text = path.read_text()
    got = run_script(text)
    if rewrite:
        path.write_text(got)
        return
    if got != text:
        diff = "".join(difflib.unified_diff(
            text.splitlines(keepends=True), got.splitlines(keepends=True),
            "expected", "got"))
        pytest.fail(f"{path.name} differs (run with --rewrite to regenerate):\n{diff}")


def test_runner_detects_a_changed_expectation() -> None:
    script = "add-nodes 1\n----\nwrong\n"
    assert run_script(script) != script
    fixed = run_script(script)
    assert run_script(fixed) == fixed
