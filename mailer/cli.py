"""The `mailer` command line: thin commands, one call each, one-line errors.

Every command finds its workspace by walking up from the current folder (or
takes --workspace), calls one function of the library, and prints. A
`MailerError` becomes ``Error: <one line>`` and exit status 1; anything else
is a bug and keeps its traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from . import build
from .addresses import clean_name, parse_address
from .errors import MailerError
from .importer import export_csv, import_file
from .lint import lint as lint_issue
from .preview import PreviewServer, open_browser
from .store import STATUSES, Store, default_actor
from .workspace import Workspace, find_workspace, open_workspace


class _Group(click.Group):
    """Turns library errors into click's one-line ``Error:`` messages."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except MailerError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=_Group)
@click.option(
    "--workspace", "-w", type=click.Path(file_okay=False, path_type=Path),
    help="Workspace folder (default: the nearest folder upwards with newsletter.toml).",
)
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


def _workspace(ctx: click.Context) -> Workspace:
    given = ctx.find_root().meta.get("workspace_arg")
    return open_workspace(given) if given else find_workspace()


@cli.command()
@click.argument("issue")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the files (default: build/ in the workspace).")
@click.pass_context
def render(ctx: click.Context, issue: str, out_dir: Path | None) -> None:
    """Render ISSUE to HTML, plain text and a sample .eml message.

    ISSUE is a path, or the name of a file in the workspace's issues/ folder.

    \b
    Example:
        mailer render 2024-26 --out /tmp/preview
    """
    workspace = _workspace(ctx)
    rendered = build.render_issue(workspace, workspace.issue_path(issue))
    paths = build.write_files(workspace, rendered, out_dir or workspace.build_dir)
    click.echo(f"Rendered {rendered.subject!r}:")
    for path in paths:
        click.echo(f"  {path}")


@cli.command()
@click.argument("issue")
@click.pass_context
def lint(ctx: click.Context, issue: str) -> None:
    """Check ISSUE before it is sent; exit 1 if there are errors.

    Reports the HTML size against Gmail's 102 KB clipping limit, images
    without alt text, unrendered template syntax, a missing preheader,
    links that are not https, empty sections and duplicate links.

    \b
    Example:
        mailer lint 2024-26
    """
    workspace = _workspace(ctx)
    path = workspace.issue_path(issue)
    report = lint_issue(build.render_issue(workspace, path))
    for finding in report.findings:
        click.echo(finding.format(str(path)))
    errors, warnings = len(report.errors), len(report.warnings)
    click.echo(f"{errors} error(s), {warnings} warning(s)")
    if errors:
        ctx.exit(1)


@cli.command()
@click.argument("issue", required=False)
@click.option("--port", type=click.IntRange(0, 65535), default=0,
              help="Port on 127.0.0.1 (default: a free one).")
@click.option("--no-open", is_flag=True, help="Do not open a browser.")
@click.pass_context
def preview(ctx: click.Context, issue: str | None, port: int, no_open: bool) -> None:
    """Show ISSUE in the browser, updated each time a source is saved.

    Saving the issue, a template or newsletter.toml re-renders it and the
    page follows without a refresh. The page has the envelope, desktop and
    phone widths, a dark-mode view, the text part, the HTML source and the
    checks of `mailer lint`. Without ISSUE it opens the newest issue; the
    page switches between all of them.

    \b
    Example:
        mailer preview 2024-26 --port 8025
    """
    workspace = _workspace(ctx)
    path = workspace.issue_path(issue) if issue else None
    server = PreviewServer(workspace, path, port=port, log=lambda line: click.echo(line, err=True))
    shown = server.preview.default_issue() or "an empty issues folder"
    click.echo(f"Previewing {shown} at {server.url} (Ctrl+C to stop)")
    if not no_open and not open_browser(server.url):
        click.echo("Open that address in a browser.")
    server.serve()


@cli.group()
def subscribers() -> None:
    """Keep the subscriber list: import, add, unsubscribe, erase, list, export.

    The list lives in subscribers/mailer.db in the workspace. Someone who
    unsubscribed, bounced or complained stays so: an import or `add` only
    subscribes them again with --resubscribe, and their history says who did.

    \b
    Example:
        mailer subscribers import subscribers/example.csv
    """


def _store(ctx: click.Context) -> Store:
    return Store.open(_workspace(ctx).store_path)


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
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def import_(ctx: click.Context, file: str, dry_run: bool, tags: tuple[str, ...],
            rejects: Path | None, resubscribe: bool, encoding: str | None, as_json: bool) -> None:
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
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            if as_json or not sys.stderr.isatty():
                return
            bar = click.progressbar(length=total, label="Reading", file=sys.stderr)
            bar.__enter__()
        bar.update(done - bar.pos)

    with _store(ctx) as store:
        try:
            report = import_file(
                store, file, actor=default_actor(), tags=tags, resubscribe=resubscribe,
                dry_run=dry_run, encoding=encoding, rejects=rejects, progress=progress,
            )
        finally:
            if bar is not None:
                bar.__exit__(None, None, None)
    if as_json:
        click.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
        return
    click.echo(
        f"{'Checked' if dry_run else 'Imported'} {report.path} ({report.encoding}, "
        f"{report.delimiter}-separated, {report.kind}): {report.rows} rows"
    )
    for label, count, meaning in (
        ("imported", report.imported, "new subscribers"),
        ("updated", report.updated, "existing subscribers changed"),
        ("unchanged", report.unchanged, "already as in the file"),
        ("skipped", report.skipped,
         "unsubscribed, bounced, complained or erased: left as they are"),
        ("merged", report.merged, "repeated an address from an earlier row"),
        ("rejected", report.rejected, "listed below" if report.rejected else ""),
    ):
        click.echo(f"  {label:<10}{count:>8}  {meaning}".rstrip())
    for rejection in report.rejections:
        click.echo(f"line {rejection.line}: {rejection.reason}")
    if rejects is not None and report.rejected:
        click.echo(f"Rejected rows written to {rejects}")
    if report.skipped and not resubscribe:
        click.echo("Skipped people stay as they are; --resubscribe makes them active "
                   "(erased addresses are never re-imported).")
    if dry_run:
        click.echo("Dry run: nothing was saved.")


@subscribers.command()
@click.argument("email")
@click.option("--name", default="", help="Display name, e.g. 'Ann Lee'.")
@click.option("--resubscribe", is_flag=True,
              help="Subscribe them even if they unsubscribed, bounced, complained or were erased.")
@click.pass_context
def add(ctx: click.Context, email: str, name: str, resubscribe: bool) -> None:
    """Subscribe EMAIL, or update the name of someone already subscribed.

    \b
    Example:
        mailer subscribers add ann@example.com --name "Ann Lee"
    """
    address = parse_address(email)
    with _store(ctx) as store:
        outcome, subscriber = store.add(address, clean_name(name), actor=default_actor(),
                                        resubscribe=resubscribe)
    click.echo({
        "added": f"Added {subscriber.email}",
        "updated": f"Updated the name of {subscriber.email}",
        "unchanged": f"{subscriber.email} is already subscribed",
        "resubscribed": f"Subscribed {subscriber.email} again",
    }[outcome])


@subscribers.command()
@click.argument("email")
@click.option("--reason", default="", help="Why, for the history (e.g. 'asked by reply').")
@click.pass_context
def unsubscribe(ctx: click.Context, email: str, reason: str) -> None:
    """Unsubscribe EMAIL; they get no more issues and no import subscribes them again.

    \b
    Example:
        mailer subscribers unsubscribe ann@example.com --reason "asked by reply"
    """
    address = parse_address(email)
    with _store(ctx) as store:
        changed, subscriber = store.set_status(address, "unsubscribed", actor=default_actor(),
                                               reason=reason or "by command")
    click.echo(f"Unsubscribed {subscriber.email}" if changed
               else f"{subscriber.email} was already unsubscribed")


@subscribers.command()
@click.argument("email")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def delete(ctx: click.Context, email: str, yes: bool) -> None:
    """Erase EMAIL and everything about them, for a data-erasure (GDPR) request.

    Only a hash of the address is kept, so that no later import brings them
    back. To only stop sending, use `unsubscribe`.

    \b
    Example:
        mailer subscribers delete ann@example.com --yes
    """
    address = parse_address(email)
    with _store(ctx) as store:
        shown = store.require(address).email
        if not yes:
            click.confirm(f"Erase {shown} and their history for good?", abort=True)
        store.erase(address, actor=default_actor())
    click.echo(f"Erased {shown}; a hash of the address keeps it from being re-imported")


@subscribers.command("list")
@click.option("--status", type=click.Choice([*STATUSES, "all"]), default="active", show_default=True,
              help="Only subscribers with this status.")
@click.option("--tag", help="Only subscribers with this tag.")
@click.option("--json", "as_json", is_flag=True,
              help="A JSON array of subscribers with all their fields.")
@click.pass_context
def list_(ctx: click.Context, status: str, tag: str | None, as_json: bool) -> None:
    """Print subscribers' addresses, one a line, every match (for pipes).

    \b
    Example:
        mailer subscribers list --status unsubscribed | wc -l
    """
    with _store(ctx) as store:
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
@click.pass_context
def export(ctx: click.Context, file: Path | None) -> None:
    """Write every subscriber to FILE (default: standard output) as CSV.

    The CSV imports back without loss: tags and attributes are JSON, and a
    cell a spreadsheet would run as a formula (starting with = + - @) gets a
    leading ' that import removes again.

    \b
    Example:
        mailer subscribers export backup.csv
    """
    with _store(ctx) as store:
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
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@click.pass_context
def stats(ctx: click.Context, as_json: bool) -> None:
    """Count subscribers by status, and the addresses erased on request.

    \b
    Example:
        mailer subscribers stats
    """
    with _store(ctx) as store:
        counts = store.counts()
    if as_json:
        click.echo(json.dumps(counts))
        return
    for status, count in counts.items():
        click.echo(f"{status:<14}{count:>8}")
    click.echo(f"{'total':<14}{sum(counts[s] for s in STATUSES):>8}")


@subscribers.command()
@click.argument("email")
@click.pass_context
def show(ctx: click.Context, email: str) -> None:
    """Show one subscriber: fields, then the history of what happened, and who did it.

    \b
    Example:
        mailer subscribers show ann@example.com
    """
    address = parse_address(email)
    with _store(ctx) as store:
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


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="mailer")
