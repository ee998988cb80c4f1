"""Shared fixtures: a copy of the repository's example workspace per test."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from bench.workspace_copy import copy_workspace

# moto (SES, SQS), SMTP and a faulty proxy, for the tests that send or sync;
# DNS, an SESv2 endpoint and SMTP with a login, for `mailer doctor`.
pytest_plugins = ["tests.servers", "tests.doctor_servers"]

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
    return copy_workspace(REPO, tmp_path / "workspace")


@pytest.fixture
def workspace(workspace_dir: Path):
    from mailer.workspace import Workspace

    return Workspace(workspace_dir)


# Debian's chromium package; Playwright drives it and never downloads its own.
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="session")
def chromium():
    """One headless Chromium for the whole run; each test gets its own context."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium chromium-driver")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def browser_page(chromium):
    """A fresh page (own storage, 1280×900) in the shared Chromium."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


@pytest.fixture
def preview_server(workspace):
    """`mailer preview` of the workspace copy, on a free port, stopped afterwards."""
    from mailer.web.preview import PreviewServer

    from .servers import SHUTDOWN_POLL

    server = PreviewServer(workspace)
    server.httpd.serve_forever = functools.partial(server.httpd.serve_forever,
                                                   poll_interval=SHUTDOWN_POLL)
    with server:
        yield server


@pytest.fixture
def store(tmp_path: Path):
    """An empty subscriber store in a real SQLite file."""
    from mailer.store import Store

    with Store.open(tmp_path / "store" / "mailer.db") as opened:
        yield opened


@pytest.fixture
def subscriber_file(tmp_path: Path):
    """Write a subscriber file: `text` in `encoding` (bytes as they are), returns its path."""

    def write(text: str | bytes, encoding: str = "utf-8", name: str = "list.csv") -> Path:
        path = tmp_path / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode(encoding))
        return path

    return write


@pytest.fixture
def run_mailer(workspace_dir: Path, monkeypatch: pytest.MonkeyPatch):
    """Run `mailer ARGS` inside the workspace copy; returns click's result."""
    from click.testing import CliRunner

    from mailer.cli import cli

    def invoke(*args: str, input: str | bytes | None = None):
        monkeypatch.chdir(workspace_dir)
        return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)

    return invoke


@pytest.fixture
def every_file_in_a_second_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Imports read every file in a forked second process, however small."""
    from mailer.subscribers import importer

    monkeypatch.setattr(importer, "PARALLEL_BYTES", 0)
    # Other tests leave server threads running in this process; the child
    # only reads, so it is safe to fork anyway.
    monkeypatch.setattr(importer, "_may_fork", lambda: True)
