"""Commands that make a workspace and its parts: init, templates copy."""

from __future__ import annotations

from pathlib import Path

import click

from .. import starter
from ..compose.defaults import copy_templates
from ..errors import ConfigError, MailerError
from .options import current_workspace, yes_option


@click.command()
@click.argument("directory", default=".", type=click.Path(path_type=Path))
@click.option("--name", help="The newsletter's name.")
@click.option("--sender", help="The sender (From) address.")
@click.option("--language", help="Language tag of the issues, e.g. en or zh-CN (default: en).")
@click.option("--unsubscribe-url", help="https URL of the unsubscribe page.")
@click.option("--postal-address", help="The sender's postal address, which the footer shows.")
@yes_option("Ask nothing: take the options given, and the defaults for the rest.")
def init(directory: Path, yes: bool, **given: str | None) -> None:
    """Make a new newsletter workspace in DIRECTORY (default: here).

    Writes newsletter.toml (every setting, the optional ones as comments), a
    first issue in issues/, subscribers/ and a .gitignore, and never
    overwrites a file. Asks for what the options do not give.

    \b
    Example:
        mailer init news --name "Cloud Weekly" --sender weekly@example.com \\
            --unsubscribe-url https://example.com/unsubscribe --yes
    """
    starter.refuse_existing(directory)
    answers: dict[str, str] = {}
    for question in starter.QUESTIONS:
        answers[question.key] = _answer(question, given[question.option], answers, yes)
    for line in starter.create_workspace(directory, answers).lines():
        click.echo(line)


def _answer(question: starter.Question, given: str | None, answers: dict[str, str], yes: bool) -> str:
    """The option's value if it is good; else, unless --yes, the writer's answer."""
    if given is not None:
        try:
            return starter.check_answer(question, given, answers)
        except ConfigError as exc:
            if yes:
                raise MailerError(f"{question.flag}: {exc}") from None
            click.echo(f"Error: {exc}", err=True)
    if yes:
        # Only a real default; an offer such as the unsubscribe URL is a guess to confirm.
        if question.default is None:
            raise MailerError(f"{question.flag} is required with --yes")
        return question.default

    def check(value: str) -> str:
        try:
            return starter.check_answer(question, value, answers)
        except ConfigError as exc:
            raise click.UsageError(str(exc)) from None

    return click.prompt(question.prompt, default=starter.suggestion(question, answers), value_proc=check)


@click.group()
def templates() -> None:
    """The templates: the package's defaults, or the workspace's own.

    \b
    Example:
        mailer templates copy
    """


@templates.command("copy")
@click.argument("names", nargs=-1)
def copy(names: tuple[str, ...]) -> None:
    """Copy the default templates into the workspace's templates folder to change them.

    Each file there then overrides the default of its name; one that is
    already there is never overwritten. NAMES picks some (default: all).

    \b
    Example:
        mailer templates copy newsletter.mjml.j2
    """
    workspace = current_workspace()
    for line in copy_templates(workspace.templates_dir, list(names)).lines():
        click.echo(line)


COMMANDS = [init, templates]
