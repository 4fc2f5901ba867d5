"""Shared pytest options: `--rewrite` regenerates golden (data-driven) test files."""

from __future__ import annotations

import os

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--rewrite",
        action="store_true",
        default=False,
        help="rewrite the expected output of golden test files instead of comparing",
    )


@pytest.fixture
def rewrite(request: pytest.FixtureRequest) -> bool:
    """True when the run should rewrite golden files (`pytest --rewrite`)."""
    return bool(request.config.getoption("--rewrite"))


# Hypothesis: no per-example deadline (these 2-core machines are noisy), and
# in CI (`CI` set) a derandomized search, so a run is reproducible: a failure
# there is a failure on every run. Locally the search stays random, so new
# examples keep being explored; `--hypothesis-seed` replays one.
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "dev", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.register_profile(
    "ci",
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
