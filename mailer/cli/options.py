"""What every command shares: the workspace, the store, and the options written once."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..store import Store
from ..workspace import Workspace, find_workspace, open_workspace

workspace_option = click.option(
    "--workspace", "-w", type=click.Path(file_okay=False, path_type=Path),
    help="Workspace folder (default: the nearest folder upwards with newsletter.toml).",
)


def json_option(help: str):
    """--json, saying what it prints."""
    return click.option("--json", "as_json", is_flag=True, help=help)


def yes_option(help: str):
    """--yes, saying what it does not ask."""
    return click.option("--yes", is_flag=True, help=help)


def current_workspace() -> Workspace:
    """The workspace of this command: --workspace, else the nearest one upwards.

    Resolved when a command runs rather than by the root group, so that
    --help works outside a workspace.
    """
    meta = click.get_current_context().find_root().meta
    if "workspace" not in meta:
        given = meta.get("workspace_arg")
        meta["workspace"] = open_workspace(given) if given else find_workspace()
    return meta["workspace"]


def open_store() -> Store:
    """The workspace's subscriber store, made on first use: for commands that write."""
    return Store.open(current_workspace().store_path)


def reading_store() -> Store:
    """The workspace's subscriber store, for commands that only read.

    Where there is none yet, an empty one in memory answers instead: looking
    at a list must not create one (nor its -wal and -shm files).
    """
    path = current_workspace().store_path
    return Store.open(path if path.exists() else Path(":memory:"))


def echo_json(data, *, indent: int | None = 2) -> None:
    """Print `data` as JSON, keeping non-ASCII text as it is."""
    click.echo(json.dumps(data, ensure_ascii=False, indent=indent))
