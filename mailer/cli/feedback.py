"""Applying SES's feedback (bounces, complaints, deliveries, unsubscribes) from SQS."""

from __future__ import annotations

import sys

import click

from ..errors import MailerError
from ..feedback.sync import SyncReport
from ..feedback.sync import sync as run_sync
from ..tokens import load_secret
from .options import current_workspace, open_store


@click.command()
@click.option("--queue-url", metavar="URL", help="The SQS queue (default: [feedback] queue_url).")
@click.option("--watch", is_flag=True, help="Keep polling (long polls of 20 s) until Ctrl+C.")
def sync(queue_url: str | None, watch: bool) -> None:
    """Apply SES's bounces, complaints, deliveries and unsubscribes from an SQS queue.

    Reads SES notifications (identity notifications or configuration-set
    events, SNS-wrapped or raw) until the queue is empty: a permanent bounce
    marks the address bounced, a complaint complained, an SES unsubscribe
    unsubscribed, and [feedback] transient_bounce_limit soft bounces in a
    row bounced. A message is deleted only once its effect is saved, so an
    interrupted run loses nothing; one it cannot understand stays in the
    queue (for its dead-letter queue) and is listed.

    \b
    Example:
        mailer sync --queue-url https://sqs.eu-west-1.amazonaws.com/123456789012/ses-feedback
    """
    workspace = current_workspace()
    settings = workspace.settings
    queue = _open_queue(queue_url or settings.feedback.queue_url, settings)
    verbose = watch or sys.stdout.isatty()
    try:
        with open_store() as store:
            report = run_sync(
                store, queue, store.signer(load_secret(workspace.subscribers_dir), settings.list_id),
                transient_limit=settings.feedback.transient_bounce_limit, actor="mailer sync", watch=watch,
                on_message=lambda message, line: verbose and click.echo(line))
    except KeyboardInterrupt:
        click.echo("Stopped.")
        return
    finally:
        queue.close()
    _print_report(report)


def _open_queue(url: str | None, settings):
    # Imported here: boto3 is slow to load, and only sync needs it.
    from ..feedback.sqs import SqsQueue

    if not url:
        raise MailerError("no queue to read", hint="pass --queue-url or set [feedback] queue_url")
    return SqsQueue(url, settings.ses)


def _print_report(report: SyncReport) -> None:
    kinds = ", ".join(f"{n} {kind.lower()}" for kind, n in sorted(report.kinds.items())) or "none"
    click.echo(f"Read {report.messages} message(s): {kinds}.")
    changes = ", ".join(f"{n} {kind}" for kind, n in sorted(report.changes.items())) or "none"
    click.echo(f"Subscribers changed: {changes}.")
    if report.duplicates:
        click.echo(f"Already applied before (delivered twice by SQS): {report.duplicates}.")
    if report.about_nobody:
        click.echo(f"About nobody on the list: {report.about_nobody}.")
    if report.kept:
        click.echo(f"Kept in the queue, not understood: {len(report.kept)}.", err=True)
        for message_id, why in report.kept:
            click.echo(f"  {message_id}: {why}", err=True)


COMMANDS = [sync]
