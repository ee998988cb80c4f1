"""A copy of a workspace's sources, for the tests and the benchmarks to change freely.

It needs only mailer itself: the benchmarks import it without pytest, and
the tests without Playwright.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from mailer.compose.defaults import copy_templates
from mailer.config import CONFIG_NAME, load_settings


def copy_workspace(source: Path, destination: Path) -> Path:
    """Copy the settings, templates and issues of the workspace at `source` into
    `destination` (created if missing) and return it.

    What is built or sent (subscribers, outbox, build) is left behind: the
    copy starts with no subscribers and nothing sent. The copy always has a
    templates folder, the workspace's own or else the package's defaults it
    renders with, so that a test or a benchmark can edit a template in place.
    """
    compose = load_settings(source / CONFIG_NAME).compose
    destination.mkdir(parents=True, exist_ok=True)
    shutil.copy(source / CONFIG_NAME, destination / CONFIG_NAME)
    if (source / compose.templates).is_dir():
        shutil.copytree(source / compose.templates, destination / compose.templates)
    copy_templates(destination / compose.templates)
    shutil.copytree(source / compose.issues, destination / compose.issues)
    return destination
