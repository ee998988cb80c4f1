"""Every command documents itself: `--help` is its docstring, with an example."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from mailer.cli import cli


def walk(command: click.Command, path: tuple[str, ...] = ()):
    yield path, command
    if isinstance(command, click.Group):
        # Through click's own lookup: the root group finds its commands when asked.
        context = click.Context(command)
        for name in command.list_commands(context):
            yield from walk(command.get_command(context, name), (*path, name))


COMMANDS = list(walk(cli))


def test_every_command_is_walked():
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"", "render", "lint", "preview", "send-issue", "status", "sync", "serve",
            "subscribers", "subscribers import", "subscribers list", "subscribers show"} <= names


@pytest.mark.parametrize("path, command", COMMANDS, ids=[" ".join(p) or "mailer" for p, _ in COMMANDS])
def test_command_has_help_with_an_example(path, command):
    assert command.help and command.help.strip(), f"mailer {' '.join(path)} has no help"
    assert "Example:" in command.help, f"mailer {' '.join(path)} has no example"
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            assert param.help, f"mailer {' '.join(path)} {param.opts[0]} has no help"
    result = CliRunner().invoke(cli, [*path, "--help"], prog_name="mailer")
    assert result.exit_code == 0
    first_line = command.help.strip().splitlines()[0]
    assert " ".join(first_line.split()) in " ".join(result.output.split())  # click rewraps it
