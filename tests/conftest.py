"""Shared fixtures: a copy of the repository's example workspace per test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_ISSUE = REPO / "issues" / "2024-26.md"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden", action="store_true",
        help="Rewrite tests/golden/ from the current output instead of comparing.",
    )


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


@pytest.fixture
def workspace_dir(tmp_path: Path) -> Path:
    """A fresh copy of the example workspace (settings, templates, issues)."""
    root = tmp_path / "workspace"
    root.mkdir()
    shutil.copy(REPO / "newsletter.toml", root / "newsletter.toml")
    shutil.copytree(REPO / "templates", root / "templates")
    shutil.copytree(REPO / "issues", root / "issues")
    return root


@pytest.fixture
def workspace(workspace_dir: Path):
    from mailer.workspace import Workspace

    return Workspace(workspace_dir)
