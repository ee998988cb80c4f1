"""`mailer doctor`: checks everything between the workspace and a delivered issue."""

from __future__ import annotations

import click

from .. import doctor as diagnosis
from .options import current_workspace, echo_json, json_option


@click.command()
@click.option("--online", is_flag=True, help="Also fetch the unsubscribe URL to see that it answers.")
@json_option("Print the checks as JSON, for scripts.")
@click.pass_context
def doctor(ctx: click.Context, online: bool, as_json: bool) -> None:
    """Check settings, templates, the transport, DNS and the unsubscribe URL.

    One line per check: ok, warning (works, but worth fixing) or problem
    (an issue would not be delivered), with what to do. Exit status 1 on
    any problem. Only reads; nothing is sent. MAILER_DNS_SERVER=HOST:PORT
    asks that nameserver instead of the system's.

    \b
    Example:
        mailer doctor --online
    """
    report = diagnosis.diagnose(current_workspace(), online=online)
    if as_json:
        echo_json(report.as_json())
    else:
        for check in report.checks:
            click.echo(check.line())
        click.echo(report.summary())
    if report.problems:
        ctx.exit(1)


COMMANDS = [doctor]
