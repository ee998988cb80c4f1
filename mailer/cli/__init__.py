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

from ..compose import build
from ..compose.lint import lint as lint_issue
from ..errors import MailerError
from ..send import campaign as sending
from ..send.transports import open_transport
from ..store import STATUSES, Store, default_actor
from ..subscribers.addresses import clean_name, parse_address
from ..subscribers.importer import export_csv, import_file
from ..tokens import load_secret
from ..web.preview import PreviewServer, open_browser
from ..workspace import Workspace, find_workspace, open_workspace


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


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


@cli.command("send-issue")
@click.argument("issue")
@click.option("--yes", is_flag=True, help="Do not ask before sending.")
@click.option("--dry-run", is_flag=True, help="Show the plan and who would be skipped; send and record nothing.")
@click.option("--to", "test_address", metavar="ADDRESS",
              help="Send one test message to ADDRESS; the ledger records nothing.")
@click.option("--rate", type=click.FloatRange(min=0.01), help="Messages per second.")
@click.option("--concurrency", type=click.IntRange(1, 64), help="Messages in flight at once.")
@click.option("--retry-unknown", is_flag=True,
              help="Also send to recipients whose earlier attempt has an unknown outcome.")
@click.option("--force", is_flag=True, help="Go on although the issue changed since its send began.")
@click.pass_context
def send_issue(ctx: click.Context, issue: str, yes: bool, dry_run: bool, test_address: str | None,
               rate: float | None, concurrency: int | None, retry_unknown: bool, force: bool) -> None:
    """Send ISSUE to every active subscriber, or resume its send.

    Renders and lints first, shows the plan and asks. Every recipient is
    recorded in the ledger (sent, failed with its reason, suppressed or
    unknown), so running the same command again resumes where the last run
    stopped and never sends anyone the issue twice. Ctrl-C finishes the
    messages in flight, records them and exits 130.

    \b
    Example:
        mailer send-issue 2024-26 --to me@example.com
        mailer send-issue 2024-26 --yes
    """
    workspace = _workspace(ctx)
    settings = workspace.settings
    rendered = build.render_checked(workspace, workspace.issue_path(issue))
    stem = rendered.issue.stem
    transport = open_transport(settings, workspace.outbox_dir(stem),
                               concurrency or settings.transport.concurrency)
    try:
        if test_address:
            message_id = sending.send_test(transport, rendered, settings, parse_address(test_address).email,
                                           load_secret(workspace.subscribers_dir))
            click.echo(f"Sent a test of {stem} to {test_address} through {transport.describe()} ({message_id}).")
            return
        if not workspace.store_path.exists():
            raise MailerError("no subscribers yet: nobody to send to",
                              hint="import them with `mailer subscribers import FILE`")
        with Store.open(workspace.store_path) as store:
            _send(ctx, workspace, store, transport, rendered, yes=yes, dry_run=dry_run, rate=rate,
                  concurrency=concurrency or settings.transport.concurrency,
                  retry_unknown=retry_unknown, force=force)
    finally:
        transport.close()


def _send(ctx, workspace, store, transport, rendered, *, yes, dry_run, rate, concurrency,
          retry_unknown, force) -> None:
    stem = rendered.issue.stem
    plan = sending.make_plan(store, transport, rendered, workspace.settings, rate, retry_unknown)
    if plan.changed and not force:
        raise sending.refuse_changed(stem)
    if plan.resuming and plan.recipients == 0:
        click.echo(f"{stem} is already sent: {_summary(plan.counts)}.")
        _exit_for(ctx, plan.counts, stem)
        return
    quota = "" if plan.quota_left == float("inf") else f", {int(plan.quota_left)} left of today's quota"
    click.echo(f"Issue:      {plan.subject}")
    click.echo(f"Recipients: {plan.recipients}"
               + (f" (resuming; {plan.counts['sent']} already sent)" if plan.resuming else ""))
    click.echo(f"Suppressed: {plan.suppressed}")
    click.echo(f"Transport:  {plan.transport}, {plan.rate:g} messages/s{quota}")
    click.echo(f"Estimate:   {_duration(plan.estimate_seconds)}")
    if dry_run:
        for email, status in store.skipped_subscribers():
            click.echo(f"  skip {email}: {status}")
        click.echo("Dry run: nothing sent, nothing recorded.")
        return
    if not yes:
        if not sys.stdin.isatty():
            raise MailerError("not sending without confirmation", hint="pass --yes to send without asking")
        click.confirm("Send now?", abort=True)
    with sending.send_lock(workspace.send_lock_path), click.progressbar(
            length=plan.recipients, label="Sending", show_eta=True, show_pos=True,
            item_show_func=lambda p: p and f"sent {p.sent}, failed {p.failed}, {p.rate:g}/s",
            file=sys.stderr) as bar:
        done = [0]

        def progress(p: sending.Progress) -> None:
            now_done = p.sent + p.failed + p.unknown
            bar.update(now_done - done[0], p)
            done[0] = now_done

        report = sending.run_send(
            store, transport, rendered, workspace.settings, secret=load_secret(workspace.subscribers_dir),
            rate=plan.rate, concurrency=concurrency, quota_left=plan.quota_left,
            retry_unknown=retry_unknown, force=force, on_progress=progress)
    if report.interrupted_before:
        click.echo(f"{report.interrupted_before} recipient(s) of an interrupted run have an unknown outcome.")
    click.echo(f"{stem}: {_summary(report.counts)}.")
    if report.run.stopped and not report.run.interrupted:
        click.echo(f"Stopped: {report.run.stopped}", err=True)
    if report.run.interrupted:
        click.echo(f"Interrupted. Resume with: mailer send-issue {stem}", err=True)
        ctx.exit(130)
    _exit_for(ctx, report.counts, stem)


def _summary(counts) -> str:
    parts = [f"{counts[s]} {s}" for s in ("sent", "failed", "unknown", "suppressed") if counts[s] or s == "sent"]
    if counts.open:
        parts.append(f"{counts.open} pending")
    return ", ".join(parts)


def _exit_for(ctx: click.Context, counts, stem: str) -> None:
    """Exit 1 with a line saying what is left, unless everyone was sent or suppressed."""
    left = []
    if counts["failed"]:
        left.append(f"{counts['failed']} failed (see `mailer status {stem}`)")
    if counts["unknown"]:
        left.append(f"{counts['unknown']} unknown (--retry-unknown sends to them again)")
    if counts.open:
        left.append(f"{counts.open} pending (run the same command again to resume)")
    if left:
        click.echo("Not everyone was sent the issue: " + "; ".join(left) + ".", err=True)
        ctx.exit(1)


@cli.command()
@click.argument("issue", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@click.pass_context
def status(ctx: click.Context, issue: str | None, as_json: bool) -> None:
    """Show the ledger of each send: sent, failed (with reasons), unknown, suppressed, pending.

    ISSUE (a path or a stem) shows just that issue's send.

    \b
    Example:
        mailer status 2024-26 --json
    """
    workspace = _workspace(ctx)
    stem = Path(issue).stem if issue else None
    with Store.open(workspace.store_path) as store:
        records = [r for r in store.sends() if stem is None or r.issue == stem]
        if stem and not records:
            raise MailerError(f"{stem} has not been sent", hint=f"mailer send-issue {stem}")
        report = []
        for record in records:
            counts = store.send_counts(record.id)
            report.append({
                "issue": record.issue, "subject": record.subject, "started_at": record.started_at,
                "finished_at": record.finished_at or None,
                "sent": counts["sent"], "failed": counts["failed"], "unknown": counts["unknown"],
                "suppressed": counts["suppressed"], "pending": counts.open,
                "in_flight": counts["inflight"],
                "failed_reasons": [{"reason": r, "count": n} for r, n in counts.failed_reasons],
                **_feedback_rates(counts["sent"], store.feedback_counts(record.id)),
            })
    if as_json:
        click.echo(json.dumps(report if stem is None else report[0], ensure_ascii=False, indent=2))
        return
    if not report:
        click.echo("No issue has been sent yet.")
    for entry in report:
        state = "finished" if entry["finished_at"] else "open"
        click.echo(f"{entry['issue']} ({state}): {entry['sent']} sent, {entry['failed']} failed, "
                   f"{entry['unknown']} unknown, {entry['suppressed']} suppressed, {entry['pending']} pending")
        for reason in entry["failed_reasons"]:
            click.echo(f"  {reason['count']} × {reason['reason']}")
        click.echo(f"  feedback: {entry['delivered']} delivered, {entry['unsubscribed']} unsubscribed")
        for key, label in (("bounced", "bounces"), ("complained", "complaints")):
            rate, threshold = entry[f"{key}_rate"], SES_REVIEW_RATES[key]
            verdict = "  ABOVE the review threshold" if rate >= threshold else ""
            click.echo(f"  {label}: {entry[key]} ({rate:.2%} of sent; SES reviews an account at "
                       f"{threshold:.1%}){verdict}")


# The bounce and complaint rates at which SES puts an account under review.
SES_REVIEW_RATES = {"bounced": 0.05, "complained": 0.001}


def _feedback_rates(sent: int, feedback: dict[str, int]) -> dict:
    """What came back for a send, and its bounce and complaint rates over the messages sent."""
    return {
        "delivered": feedback["delivered"], "unsubscribed": feedback["unsubscribed"],
        "bounced": feedback["bounced"], "complained": feedback["complained"],
        "bounced_rate": feedback["bounced"] / sent if sent else 0.0,
        "complained_rate": feedback["complained"] / sent if sent else 0.0,
    }


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 for every interface (put TLS in front).")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="Port to listen on.")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int) -> None:
    """Serve the unsubscribe page and the one-click unsubscribe (RFC 8058).

    GET /unsubscribe?t=TOKEN shows a page with a button and changes nothing
    (link scanners fetch every link); POST unsubscribes, from the button or
    from the mail client's one-click request. Run it behind an https proxy
    at the [unsubscribe] url, or point any WSGI server at
    mailer.unsubscribe:create_app.

    \b
    Example:
        mailer serve --port 8080
    """
    from ..web.unsubscribe import create_app, make_server

    server = make_server(create_app(_workspace(ctx).root), host, port)
    click.echo(f"Serving unsubscribes at http://{host}:{server.server_address[1]}/unsubscribe (Ctrl+C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@cli.command()
@click.option("--queue-url", metavar="URL", help="The SQS queue (default: [feedback] queue_url).")
@click.option("--watch", is_flag=True, help="Keep polling (long polls of 20 s) until Ctrl+C.")
@click.pass_context
def sync(ctx: click.Context, queue_url: str | None, watch: bool) -> None:
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
    from ..feedback.sqs import SqsQueue
    from ..feedback.sync import sync as run_sync

    workspace = _workspace(ctx)
    settings = workspace.settings
    url = queue_url or settings.feedback.queue_url
    if not url:
        raise MailerError("no queue to read", hint="pass --queue-url or set [feedback] queue_url")
    queue = SqsQueue(url, settings.ses)
    verbose = watch or sys.stdout.isatty()
    try:
        with Store.open(workspace.store_path) as store:
            report = run_sync(
                store, queue, load_secret(workspace.subscribers_dir),
                transient_limit=settings.feedback.transient_bounce_limit, actor="mailer sync", watch=watch,
                on_message=lambda message, line: verbose and click.echo(line))
    except KeyboardInterrupt:
        click.echo("Stopped.")
        return
    finally:
        queue.close()
    kinds = ", ".join(f"{n} {kind.lower()}" for kind, n in sorted(report.kinds.items())) or "none"
    click.echo(f"Read {report.messages} message(s): {kinds}.")
    changes = ", ".join(f"{n} {kind}" for kind, n in sorted(report.changes.items())) or "none"
    click.echo(f"Subscribers changed: {changes}.")
    if report.outcomes["duplicate"]:
        click.echo(f"Already applied before (delivered twice by SQS): {report.outcomes['duplicate']}.")
    if report.outcomes["nobody"]:
        click.echo(f"About nobody on the list: {report.outcomes['nobody']}.")
    if report.kept:
        click.echo(f"Kept in the queue, not understood: {len(report.kept)}.", err=True)
        for message_id, why in report.kept:
            click.echo(f"  {message_id}: {why}", err=True)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="mailer")
