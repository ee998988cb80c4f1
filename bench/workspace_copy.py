"""A copy of a workspace's sources, for the tests and the benchmarks to change freely.

It needs only mailer itself: the benchmarks import it without pytest, and
the tests without Playwright.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from mailer.config import CONFIG_NAME, load_settings


def copy_workspace(source: Path, destination: Path) -> Path:
    """Copy the settings, templates and issues of the workspace at `source` into
    `destination` (created if missing) and return it.

    What is built or sent (subscribers, outbox, build) is left behind: the
    copy starts with no subscribers and nothing sent.
    """
    compose = load_settings(source / CONFIG_NAME).compose
    destination.mkdir(parents=True, exist_ok=True)
    shutil.copy(source / CONFIG_NAME, destination / CONFIG_NAME)
    shutil.copytree(source / compose.templates, destination / compose.templates)
    shutil.copytree(source / compose.issues, destination / compose.issues)
    return destination
