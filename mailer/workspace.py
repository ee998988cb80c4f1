"""A writer's workspace: the folder holding ``newsletter.toml`` and its parts.

Found like git finds a repository, by walking up from the current folder, so
every command works from anywhere inside it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from .config import CONFIG_NAME, Settings, load_settings
from .errors import IssueError, WorkspaceNotFound

# The names Markdown files go by, the usual one first: `mailer render issue-538`
# finds issues/issue-538.md, else issues/issue-538.markdown.
ISSUE_SUFFIXES = (".md", ".markdown")


def issue_stem(file_name: str) -> str | None:
    """The issue name of `file_name` if it is a Markdown file, else None."""
    for suffix in ISSUE_SUFFIXES:
        if file_name.endswith(suffix) and len(file_name) > len(suffix):
            return file_name[:-len(suffix)]
    return None


def issue_files(folder: Path) -> dict[str, Path]:
    """The issues in `folder` by stem, oldest name first.

    issues/x.md wins over issues/x.markdown, as `mailer render x` picks it;
    hidden files and editors' lock files (``.x.md``, ``#x.md#``) are none.
    """
    found: dict[str, Path] = {}
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        names = []
    for name in names:
        stem = issue_stem(name)
        if stem and not name.startswith((".", "#")) and (stem not in found or name.endswith(".md")):
            found[stem] = folder / name
    return found


@dataclass(frozen=True)
class Workspace:
    """The workspace at `root`, with its settings and the paths derived from them."""

    root: Path

    @cached_property
    def settings(self) -> Settings:
        return load_settings(self.root / CONFIG_NAME)

    @property
    def issues_dir(self) -> Path:
        return self.root / self.settings.compose.issues

    @property
    def templates_dir(self) -> Path:
        return self.root / self.settings.compose.templates

    @property
    def subscribers_dir(self) -> Path:
        return self.root / "subscribers"

    @property
    def store_path(self) -> Path:
        """The subscriber store (SQLite): subscribers, their history, the send ledger."""
        return self.subscribers_dir / "mailer.db"

    def outbox_dir(self, stem: str, *, tests: bool = False) -> Path:
        """Where the outbox transport writes the messages of issue `stem`.

        Test messages (`send-issue --to`) go to its `tests/` folder, so that
        the folder of a send holds exactly what the list was sent.
        """
        folder = self.root / "outbox" / stem
        return folder / "tests" if tests else folder

    @property
    def send_lock_path(self) -> Path:
        """Held by the one send running in this workspace."""
        return self.subscribers_dir / "send.lock"

    @property
    def build_dir(self) -> Path:
        """Where `mailer render` writes by default."""
        return self.root / "build"

    def issue_path(self, name: str) -> Path:
        """Resolve an issue given as a path, a file name in issues/, or a stem."""
        given = Path(name)
        candidates = [given, self.issues_dir / given,
                      *(self.issues_dir / f"{name}{suffix}" for suffix in ISSUE_SUFFIXES)]
        for candidate in candidates:
            if candidate.is_file():
                return candidate
        for candidate in candidates:
            if candidate.exists():
                raise IssueError("is not a file", path=candidate, hint="give an issue's .md file")
        raise IssueError(
            "no such issue",
            path=given,
            hint=f"give a path, or the name of a file in {self.issues_dir}",
        )

def find_workspace(start: Path | None = None) -> Workspace:
    """The workspace containing `start` (default: the current folder)."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_NAME).is_file():
            return Workspace(folder)
    raise WorkspaceNotFound(
        f"no {CONFIG_NAME} in {here} or any folder above it",
        hint="run inside a workspace or pass --workspace DIR",
    )


def open_workspace(root: Path) -> Workspace:
    """The workspace at exactly `root`, as given by --workspace."""
    if not (root / CONFIG_NAME).is_file():
        raise WorkspaceNotFound(f"no {CONFIG_NAME} in {root}", hint="pass the folder that holds it")
    return Workspace(root.resolve())
