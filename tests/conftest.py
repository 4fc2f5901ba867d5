"""Shared pytest options: `--rewrite` regenerates golden (data-driven) test files."""

from __future__ import annotations

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
