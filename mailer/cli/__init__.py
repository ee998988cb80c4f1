"""The `mailer` command line: thin commands, one call each, one-line errors.

Every command finds its workspace by walking up from the current folder (or
takes --workspace), calls one function of the library, and prints. A
`MailerError` becomes ``Error: <one line>`` and exit status 1; anything else
is a bug and keeps its traceback. The commands live in one module per
domain; this one is the root group that gathers them.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import click

from ..errors import MailerError
from ..store.connection import store_error
from . import compose, doctor, feedback, send, subscribers, web, workspace
from .options import current_workspace, workspace_option


class _Group(click.Group):
    """Turns library errors, and SQLite's, into click's one-line ``Error:`` messages."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except MailerError as exc:
            raise click.ClickException(str(exc)) from None
        except sqlite3.DatabaseError as exc:
            # A read the store could not finish (a damaged page met halfway
            # through a list): still one line, naming the store.
            raise click.ClickException(str(store_error(exc, current_workspace().store_path))) from None


@click.group(cls=_Group)
@workspace_option
@click.version_option(package_name="mailer")
@click.pass_context
def cli(ctx: click.Context, workspace: Path | None) -> None:
    """Newsletters from a folder of Markdown files.

    \b
    Example:
        mailer render issues/2024-26.md
    """
    # Resolved by each command, so that --help works outside a workspace.
    ctx.meta["workspace_arg"] = workspace


for _domain in (workspace, compose, subscribers, send, feedback, web, doctor):
    for _command in _domain.COMMANDS:
        cli.add_command(_command)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="mailer")
