"""The subscriber list: import, add, unsubscribe, erase, list, export, stats, show."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from ..errors import MailerError
from ..store import STATUSES, default_actor
from ..subscribers.addresses import clean_name, parse_address, unsendable_reason
from ..subscribers.export import export_csv
from ..subscribers.importer import import_file
from ..subscribers.report import ImportReport
from .options import echo_json, json_option, open_store, reading_store, yes_option


@click.group()
def subscribers() -> None:
    """Keep the subscriber list: import, add, unsubscribe, erase, list, export.

    The list lives in subscribers/mailer.db in the workspace. Someone who
    unsubscribed, bounced or complained stays so: an import or `add` only
    subscribes them again with --resubscribe, and their history says who did.

    \b
    Example:
        mailer subscribers import subscribers/example.csv
    """


@subscribers.command("import")
@click.argument("file")
@click.option("--dry-run", is_flag=True, help="Read and check everything, change nothing.")
@click.option("--tag", "tags", multiple=True, metavar="TAG",
              help="Add TAG to every imported or updated subscriber (repeatable).")
@click.option("--rejects", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the rejected rows to this CSV file, with line and reason.")
@click.option("--resubscribe", is_flag=True,
              help="Make people who unsubscribed, bounced or complained active again.")
@click.option("--encoding", metavar="NAME",
              help="The file's encoding, when the detected one is wrong (e.g. cp1252).")
@json_option("Print the report as JSON.")
def import_(file: str, dry_run: bool, tags: tuple[str, ...], rejects: Path | None,
            resubscribe: bool, encoding: str | None, as_json: bool) -> None:
    """Import subscribers from FILE, a CSV or TSV file ('-' reads standard input).

    Takes exports from Mailchimp, Substack, Buttondown and listmonk, a file
    from `mailer subscribers export`, or a plain column of addresses, in
    UTF-8 (with or without BOM), UTF-16 with BOM or GB18030. Columns it does
    not know become attributes. Existing subscribers are updated, rows with
    the same address are merged, and importing the same file again changes
    nothing. The report's counts add up to the file's rows (blank rows are
    ignored); every rejected row is listed with its line and reason. The
    columns rejected_line and rejected_reason that --rejects adds are ignored,
    so a fixed rejects file can be imported as it is.

    \b
    Example:
        mailer subscribers import members.csv --tag 2024 --rejects rejects.csv
    """
    with open_store() as store, _reading_progress(shown=not as_json and sys.stderr.isatty()) as progress:
        report = import_file(
            store, file, actor=default_actor(), tags=tags, resubscribe=resubscribe,
            dry_run=dry_run, encoding=encoding, rejects=rejects, progress=progress,
        )
    if as_json:
        echo_json(report.as_dict())
    else:
        _print_import(report)


@contextmanager
def _reading_progress(shown: bool) -> Iterator[Callable[[int, int], None]]:
    """A progress callback for a file being read, whose length is known only once reading begins."""
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if not shown:
            return
        if bar is None:
            bar = click.progressbar(length=total, label="Reading", file=sys.stderr)
            bar.__enter__()
        bar.update(done - bar.pos)

    try:
        yield progress
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)


# What each outcome of an import means, as the report's table words it.
_OUTCOME_MEANINGS = {
    "imported": "new subscribers",
    "updated": "existing subscribers changed",
    "unchanged": "already as in the file",
    "skipped": "unsubscribed, bounced, complained or erased: left as they are",
    "merged": "repeated an address from an earlier row",
}


def _print_import(report: ImportReport) -> None:
    click.echo(
        f"{'Checked' if report.dry_run else 'Imported'} {report.path} ({report.encoding}, "
        f"{report.delimiter}-separated, {report.kind}): {report.rows} rows"
    )
    for label, count in report.counts.items():
        meaning = _OUTCOME_MEANINGS.get(label, "listed below" if count else "")
        click.echo(f"  {label:<10}{count:>8}  {meaning}".rstrip())
    if report.erased:
        click.echo(f"  {'erased':<10}{report.erased:>8}  erasures carried by the file: kept, never imported")
    for rejection in report.rejections:
        click.echo(f"line {rejection.line}: {rejection.reason}")
    for warning in report.warnings:
        click.echo(f"line {warning.line}: warning: {warning.message}")
    if report.rejects_written:
        click.echo(f"Rejected rows written to {report.rejects_written}")
    if report.skipped_without_resubscribe:
        click.echo("Skipped people stay as they are; --resubscribe makes them active "
                   "(erased addresses are never re-imported).")
    if report.dry_run:
        click.echo("Dry run: nothing was saved.")


@subscribers.command()
@click.argument("email")
@click.option("--name", default="", help="Display name, e.g. 'Ann Lee'.")
@click.option("--resubscribe", is_flag=True,
              help="Subscribe them even if they unsubscribed, bounced, complained or were erased.")
def add(email: str, name: str, resubscribe: bool) -> None:
    """Subscribe EMAIL, or update the name of someone already subscribed.

    \b
    Example:
        mailer subscribers add ann@example.com --name "Ann Lee"
    """
    address = parse_address(email)
    with open_store() as store:
        outcome, subscriber = store.add(address, clean_name(name), actor=default_actor(),
                                        resubscribe=resubscribe)
    click.echo({
        "added": f"Added {subscriber.email}",
        "updated": f"Updated the name of {subscriber.email}",
        "unchanged": f"{subscriber.email} is already subscribed",
        "resubscribed": f"Subscribed {subscriber.email} again",
    }[outcome])
    if reason := unsendable_reason(subscriber.email):
        click.echo(f"Warning: {subscriber.email}: {reason}; every send will skip it", err=True)


@subscribers.command()
@click.argument("email")
@click.option("--reason", default="", help="Why, for the history (e.g. 'asked by reply').")
def unsubscribe(email: str, reason: str) -> None:
    """Unsubscribe EMAIL; they get no more issues and no import subscribes them again.

    \b
    Example:
        mailer subscribers unsubscribe ann@example.com --reason "asked by reply"
    """
    address = parse_address(email)
    with open_store() as store:
        changed, subscriber = store.set_status(address, "unsubscribed", actor=default_actor(),
                                               reason=reason or "by command")
    click.echo(f"Unsubscribed {subscriber.email}" if changed
               else f"{subscriber.email} was already unsubscribed")


@subscribers.command()
@click.argument("email")
@yes_option("Do not ask for confirmation.")
def delete(email: str, yes: bool) -> None:
    """Erase EMAIL and everything about them, for a data-erasure (GDPR) request.

    Only a hash of the address is kept, so that no later import brings them
    back. To only stop sending, use `unsubscribe`.

    \b
    Example:
        mailer subscribers delete ann@example.com --yes
    """
    address = parse_address(email)
    with open_store() as store:
        shown = store.require(address).email
        if not yes:
            click.confirm(f"Erase {shown} and their history for good?", abort=True)
        store.erase(address, actor=default_actor())
    click.echo(f"Erased {shown}; a hash of the address keeps it from being re-imported")


@subscribers.command("list")
@click.option("--status", type=click.Choice([*STATUSES, "all"]), default="active", show_default=True,
              help="Only subscribers with this status.")
@click.option("--tag", help="Only subscribers with this tag.")
@json_option("A JSON array of subscribers with all their fields.")
def list_(status: str, tag: str | None, as_json: bool) -> None:
    """Print subscribers' addresses, one a line, every match (for pipes).

    \b
    Example:
        mailer subscribers list --status unsubscribed | wc -l
    """
    with reading_store() as store:
        found = store.subscribers(status=None if status == "all" else status, tag=tag)
        if not as_json:
            for subscriber in found:
                click.echo(subscriber.email)
            return
        # Streamed element by element: the list may be long.
        click.echo("[", nl=False)
        for number, subscriber in enumerate(found):
            click.echo(("," if number else "") + "\n  " + json.dumps(
                subscriber.as_dict(), ensure_ascii=False), nl=False)
        click.echo("\n]")


@subscribers.command()
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
def export(file: Path | None) -> None:
    """Write every subscriber to FILE (default: standard output) as CSV.

    The CSV imports back without loss: tags and attributes are JSON, and a
    cell a spreadsheet would run as a formula (starting with = + - @) gets a
    leading ' that import removes again. Erased addresses go too, as their
    hashes (rows with an empty email and an 'erased' column), so that
    importing the file into a new store never brings them back.

    \b
    Example:
        mailer subscribers export backup.csv
    """
    with reading_store() as store:
        if file is None:
            export_csv(store, sys.stdout)
            return
        partial = file.with_name(file.name + ".partial")
        try:
            with open(partial, "w", encoding="utf-8", newline="") as out:
                count = export_csv(store, out)
            partial.replace(file)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise MailerError(f"cannot write: {exc.strerror or exc}", path=file) from None
    click.echo(f"Exported {count} subscribers to {file}")


@subscribers.command()
@json_option("Print the counts as JSON.")
def stats(as_json: bool) -> None:
    """Count subscribers by status, and the addresses erased on request.

    \b
    Example:
        mailer subscribers stats
    """
    with reading_store() as store:
        counts = store.counts()
    if as_json:
        echo_json(counts, indent=None)
        return
    for status, count in counts.items():
        click.echo(f"{status:<14}{count:>8}")
    click.echo(f"{'total':<14}{sum(counts[s] for s in STATUSES):>8}")


@subscribers.command()
@click.argument("email")
def show(email: str) -> None:
    """Show one subscriber: fields, then the history of what happened, and who did it.

    \b
    Example:
        mailer subscribers show ann@example.com
    """
    address = parse_address(email)
    with reading_store() as store:
        subscriber = store.require(address)
        history = store.history(subscriber)
    for key, value in subscriber.as_dict().items():
        if isinstance(value, (list, dict)):
            value = json.dumps(value, ensure_ascii=False)
        click.echo(f"{key + ':':<12}{value}")
    click.echo("history:")
    for event in history:
        why = f" ({event.reason})" if event.reason else ""
        click.echo(f"  {event.at}  {event.kind}{why} by {event.actor}")


COMMANDS = [subscribers]
